#include "cli.h"

#include "access_log.h"
#include "proxy.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef DFWS_VERSION
#define DFWS_VERSION "0.0.0"
#endif

#define DEFAULT_LOG_FMT "%(asctime)-15s %(levelname)-8s %(message)s"

enum {
    OPT_ACCESS_LOG = 256,
    OPT_WS_TIMEOUT,
    OPT_WS_CONNECT_TIMEOUT,
    OPT_PING_INTERVAL,
    OPT_PING_TIMEOUT,
    OPT_APP_CLOSE_TIMEOUT,
    OPT_ROOT_PATH,
    OPT_PROXY_HEADERS,
    OPT_PROXY_HOST,
    OPT_PROXY_PORT,
    OPT_NO_SERVER_NAME,
    OPT_LOG_FMT,
    OPT_WORKERS,
    OPT_LIFESPAN,
    OPT_BACKLOG,
    OPT_LIMIT_LINE,
    OPT_LIMIT_HEADERS,
    OPT_LIMIT_BODY,
    OPT_KEEP_ALIVE,
    OPT_HEADER_TIMEOUT,
    OPT_LIFESPAN_TIMEOUT,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_WS_MAX_MESSAGE,
    OPT_WS_MAX_FRAME,
    OPT_NO_NATIVE_WS,
    OPT_WS_RATE_LIMIT,
    OPT_FD,
    OPT_VERSION,
    OPT_GRACEFUL_TIMEOUT,
    OPT_SOCKET_MODE,
    OPT_MAX_REQUESTS,
    OPT_MAX_REQUESTS_JITTER,
    OPT_MAX_RSS,
    OPT_LIFETIME,
    OPT_RELOAD,
    OPT_RELOAD_DIR,
    OPT_WS_CONNECT_CAPACITY,
    OPT_NO_DJANGO_FAST,
    OPT_DJANGO_THREADS,
    OPT_ACCESS_LOG_FORMAT,
    OPT_HEALTH_PATH,
    OPT_FORWARDED_ALLOW_IPS,
    OPT_PROXY_PROTOCOL,
    OPT_STATIC_ROUTE,
    OPT_STATIC_MOUNT,
    OPT_STATIC_EXPIRES,
    OPT_DJANGO_STATIC,
    OPT_METRICS_BIND,
    OPT_WS_DEFLATE,
    OPT_NO_WS_DEFLATE,
    OPT_WS_DEFLATE_LEVEL,
    OPT_WS_DEFLATE_THRESHOLD,
    OPT_SSL_KEYFILE,
    OPT_SSL_CERTFILE,
    OPT_SSL_CA_CERTS,
    OPT_SSL_CIPHERS,
};

static const struct option long_options[] = {
    {"bind", required_argument, NULL, 'b'},
    {"port", required_argument, NULL, 'p'},
    {"unix-socket", required_argument, NULL, 'u'},
    {"fd", required_argument, NULL, OPT_FD},
    {"endpoint", required_argument, NULL, 'e'},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"verbosity", required_argument, NULL, 'v'},
    {"http-timeout", required_argument, NULL, 't'},
    {"websocket_timeout", required_argument, NULL, OPT_WS_TIMEOUT},
    {"websocket-timeout", required_argument, NULL, OPT_WS_TIMEOUT},
    {"websocket_connect_timeout", required_argument, NULL, OPT_WS_CONNECT_TIMEOUT},
    {"websocket-connect-timeout", required_argument, NULL, OPT_WS_CONNECT_TIMEOUT},
    {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
    {"ping-timeout", required_argument, NULL, OPT_PING_TIMEOUT},
    {"application-close-timeout", required_argument, NULL, OPT_APP_CLOSE_TIMEOUT},
    {"root-path", required_argument, NULL, OPT_ROOT_PATH},
    {"proxy-headers", no_argument, NULL, OPT_PROXY_HEADERS},
    {"proxy-headers-host", required_argument, NULL, OPT_PROXY_HOST},
    {"proxy-headers-port", required_argument, NULL, OPT_PROXY_PORT},
    {"server-name", required_argument, NULL, 's'},
    {"no-server-name", no_argument, NULL, OPT_NO_SERVER_NAME},
    {"log-fmt", required_argument, NULL, OPT_LOG_FMT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"lifespan", required_argument, NULL, OPT_LIFESPAN},
    {"backlog", required_argument, NULL, OPT_BACKLOG},
    {"limit-request-line", required_argument, NULL, OPT_LIMIT_LINE},
    {"limit-request-headers", required_argument, NULL, OPT_LIMIT_HEADERS},
    {"limit-request-body", required_argument, NULL, OPT_LIMIT_BODY},
    {"keep-alive-timeout", required_argument, NULL, OPT_KEEP_ALIVE},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"lifespan-timeout", required_argument, NULL, OPT_LIFESPAN_TIMEOUT},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
    {"websocket-max-message-size", required_argument, NULL, OPT_WS_MAX_MESSAGE},
    {"websocket-max-frame-size", required_argument, NULL, OPT_WS_MAX_FRAME},
    {"no-native-websockets", no_argument, NULL, OPT_NO_NATIVE_WS},
    {"websocket-rate-limit", required_argument, NULL, OPT_WS_RATE_LIMIT},
    {"graceful-timeout", required_argument, NULL, OPT_GRACEFUL_TIMEOUT},
    {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
    {"limit-max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
    {"limit-max-requests-jitter", required_argument, NULL, OPT_MAX_REQUESTS_JITTER},
    {"workers-max-rss", required_argument, NULL, OPT_MAX_RSS},
    {"workers-lifetime", required_argument, NULL, OPT_LIFETIME},
    {"reload", no_argument, NULL, OPT_RELOAD},
    {"reload-dir", required_argument, NULL, OPT_RELOAD_DIR},
    {"no-django-fast-path", no_argument, NULL, OPT_NO_DJANGO_FAST},
    {"django-threads", required_argument, NULL, OPT_DJANGO_THREADS},
    {"access-log-format", required_argument, NULL, OPT_ACCESS_LOG_FORMAT},
    {"health-path", required_argument, NULL, OPT_HEALTH_PATH},
    {"forwarded-allow-ips", required_argument, NULL, OPT_FORWARDED_ALLOW_IPS},
    {"proxy-protocol", no_argument, NULL, OPT_PROXY_PROTOCOL},
    {"metrics-bind", required_argument, NULL, OPT_METRICS_BIND},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {"websocket-connect-capacity", required_argument, NULL, OPT_WS_CONNECT_CAPACITY},
    {"static-path-route", required_argument, NULL, OPT_STATIC_ROUTE},
    {"static-path-mount", required_argument, NULL, OPT_STATIC_MOUNT},
    {"static-path-expires", required_argument, NULL, OPT_STATIC_EXPIRES},
    {"django-static", no_argument, NULL, OPT_DJANGO_STATIC},
    {"ws-per-message-deflate", required_argument, NULL, OPT_WS_DEFLATE},
    {"no-ws-per-message-deflate", no_argument, NULL, OPT_NO_WS_DEFLATE},
    {"ws-deflate-level", required_argument, NULL, OPT_WS_DEFLATE_LEVEL},
    {"ws-deflate-threshold", required_argument, NULL, OPT_WS_DEFLATE_THRESHOLD},
    {"ssl-keyfile", required_argument, NULL, OPT_SSL_KEYFILE},
    {"ssl-certfile", required_argument, NULL, OPT_SSL_CERTFILE},
    {"ssl-ca-certs", required_argument, NULL, OPT_SSL_CA_CERTS},
    {"ssl-ciphers", required_argument, NULL, OPT_SSL_CIPHERS},
    {NULL, 0, NULL, 0},
};

static const char usage_text[] =
    "usage: dfws-asgi [options] APP\n"
    "\n"
    "Serve the ASGI application APP (\"module:attribute\", e.g. myproj.asgi:application).\n"
    "\n"
    "Listening (daphne's flags):\n"
    "  -b, --bind ADDR               address to bind to (default 127.0.0.1)\n"
    "  -p, --port N                  port to listen on (default 8000)\n"
    "  -u, --unix-socket PATH        listen on a UNIX socket instead\n"
    "      --fd N                    listen on an inherited file descriptor\n"
    "  -e, --endpoint SPEC           tcp:PORT[:interface=ADDR], unix:PATH, fd:fileno=N or\n"
    "                                ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem\n"
    "      --backlog N               listen backlog (default 2048)\n"
    "TLS (uvicorn's flags):\n"
    "      --ssl-certfile FILE       certificate chain (PEM): serve HTTPS and WSS\n"
    "      --ssl-keyfile FILE        its private key (PEM)\n"
    "      --ssl-ca-certs FILE       CA bundle to verify client certificates with\n"
    "      --ssl-ciphers LIST        OpenSSL cipher list for TLS 1.2\n"
    "      --socket-mode MODE        permissions of the UNIX socket file, octal (e.g. 660)\n"
    "      --workers N               pre-fork N worker processes sharing the socket (default 1)\n"
    "Behaviour (daphne's flags):\n"
    "  -t, --http-timeout S          answer 503 when the app has not responded in S s\n"
    "      --application-close-timeout S\n"
    "                                after a client left, cancel the app after S s (default 10)\n"
    "      --websocket_timeout S     maximum WebSocket lifetime (default: no limit)\n"
    "      --websocket_connect_timeout S\n"
    "                                time the app has to accept a WebSocket (default 5)\n"
    "      --ping-interval S         WebSocket keep-alive ping interval (default 20)\n"
    "      --ping-timeout S          close a WebSocket whose ping is unanswered (default 30)\n"
    "      --root-path P             ASGI root_path\n"
    "      --proxy-headers           trust X-Forwarded-For/-Port/-Proto\n"
    "      --proxy-headers-host HDR  header carrying the client address\n"
    "      --proxy-headers-port HDR  header carrying the client port\n"
    "  -s, --server-name NAME        Server header value (default dfws)\n"
    "      --no-server-name          send no Server header\n"
    "Logging (daphne's flags):\n"
    "  -v, --verbosity N             0 warnings, 1 info (default), 2-3 debug\n"
    "      --access-log PATH         access log file, - for stdout\n"
    "      --log-fmt FMT             Python logging format\n"
    "dfws only:\n"
    "      --lifespan auto|on|off    ASGI lifespan protocol (default auto)\n"
    "      --lifespan-timeout S      auto: serve without lifespan if startup takes longer (default 10)\n"
    "      --limit-request-line B    request target limit, 414 above (default 8190)\n"
    "      --limit-request-headers B request line + headers limit, 431 above (default 65536)\n"
    "      --limit-request-body B    body limit, 413 above (default 0 = unlimited)\n"
    "      --keep-alive-timeout S    close idle keep-alive connections (default 5)\n"
    "      --header-timeout S        time to send a complete header section (default 10)\n"
    "      --shutdown-timeout S      graceful shutdown wait for requests (default 30)\n"
    "Restarts and recycling (SIGHUP: rolling restart; see docs/deploy.md):\n"
    "      --graceful-timeout S      a restarted or retired worker's time to drain\n"
    "                                (default: --shutdown-timeout)\n"
    "      --limit-max-requests N    replace a worker after N requests (default 0 = never)\n"
    "      --limit-max-requests-jitter J\n"
    "                                each worker adds a random 0..J to that limit\n"
    "      --workers-max-rss MIB     replace a worker whose resident memory exceeds MIB\n"
    "      --workers-lifetime S      replace a worker after S seconds\n"
    "      --reload                  restart the workers when a Python file changes\n"
    "      --reload-dir DIR          watch DIR instead of the current directory (repeatable)\n"
    "      --websocket-max-message-size B  (default 1048576, 0 = unlimited)\n"
    "      --websocket-max-frame-size B    (default 1048576, 0 = unlimited)\n"
    "      --websocket-rate-limit N  df_websockets socket: messages/s per window (default 100)\n"
    "      --no-native-websockets    serve df_websockets' socket with its Python consumer\n"
    "      --websocket-connect-capacity N  df_websockets socket: windows connecting at once,\n"
    "                                more are answered 503 (default 256, 0 = unlimited)\n"
    "      --no-django-fast-path     serve Django's HTTP requests through its ASGIHandler\n"
    "      --django-threads N        threads of the Django fast path (default 4)\n"
    "      --access-log-format FMT   access-log line with %(field)s: client, client_host,\n"
    "                                method, path, query, target, status, bytes,\n"
    "                                duration_ms, user_agent, referer, time, protocol\n"
    "      --health-path PATH        answer PATH from C: 200 while serving, 503 draining\n"
    "      --forwarded-allow-ips LIST  peers whose proxy headers are trusted: addresses,\n"
    "                                networks (10.0.0.0/8) or * (default: env\n"
    "                                FORWARDED_ALLOW_IPS, else *, as daphne)\n"
    "      --proxy-protocol          connections start with a PROXY protocol v1/v2 header\n"
    "                                (HAProxy, AWS NLB): its source is the client\n"
    "      --metrics-bind HOST:PORT  serve Prometheus metrics of all workers on\n"
    "                                http://HOST:PORT/metrics (from the supervisor)\n"
    "      --ws-per-message-deflate true|false\n"
    "                                WebSocket compression (RFC 7692) when the client offers\n"
    "                                it (default true; also --no-ws-per-message-deflate)\n"
    "      --ws-deflate-level N      zlib level 1-9 (default 6)\n"
    "      --ws-deflate-threshold B  messages shorter than B bytes go uncompressed (default 128)\n"
    "      --version                 print the version and exit\n"
    "  -h, --help                    print this help and exit\n"
    "Static files, served from C (granian's flags; see docs/cli.md):\n"
    "      --static-path-route R     URL prefix of the next mount (default /static; repeatable)\n"
    "      --static-path-mount DIR   serve the files below DIR on that route (repeatable)\n"
    "      --static-path-expires S   Cache-Control max-age, seconds or 30m, 12h, 7d\n"
    "                                (default 86400, 0 = none)\n"
    "      --django-static           serve Django's STATIC_URL from STATIC_ROOT (collectstatic)\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "dfws-asgi: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: dfws-asgi [options] APP   (see dfws-asgi --help)\n");
    return DFWS_CLI_USAGE;
}

static int parse_double(const char *s, double *out, int allow_negative_one)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isnan(v) || isinf(v))
        return -1;
    if (v < 0) {
        /* daphne spells "no limit" as -1 */
        if (!allow_negative_one)
            return -1;
        v = 0;
    }
    *out = v;
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Octal file permissions as chmod(1) writes them: 660, 0660, 0o660. */
static int parse_mode(const char *s, int *out)
{
    char *end;
    if (!strncmp(s, "0o", 2) || !strncmp(s, "0O", 2))
        s += 2;
    if (!*s || strspn(s, "01234567") != strlen(s))
        return -1;
    errno = 0;
    long v = strtol(s, &end, 8);
    if (errno || *end || v < 0 || v > 07777)
        return -1;
    *out = (int)v;
    return 0;
}

/* Twisted endpoint strings, the forms daphne users write. */
static int parse_endpoint(dfws_cli_t *cli, char *spec)
{
    long v;
    if (!strncmp(spec, "tcp:", 4)) {
        char *save = NULL;
        char *tok = strtok_r(spec + 4, ":", &save);
        for (; tok; tok = strtok_r(NULL, ":", &save)) {
            if (!strncmp(tok, "port=", 5))
                tok += 5;
            if (!strncmp(tok, "interface=", 10))
                cli->bind = tok + 10;
            else if (!parse_long(tok, 0, 65535, &v))
                cli->port = (int)v;
            else if (strncmp(tok, "backlog=", 8))
                return -1;
        }
        return 0;
    }
    if (!strncmp(spec, "ssl:", 4)) {
        /* ssl:PORT[:interface=ADDR]:privateKey=K[:certKey=C][:extraCertChainFile=CA] */
        char *save = NULL;
        char *tok = strtok_r(spec + 4, ":", &save);
        for (; tok; tok = strtok_r(NULL, ":", &save)) {
            if (!strncmp(tok, "port=", 5))
                tok += 5;
            if (!strncmp(tok, "interface=", 10))
                cli->bind = tok + 10;
            else if (!strncmp(tok, "privateKey=", 11))
                cli->ssl_keyfile = tok + 11;
            else if (!strncmp(tok, "certKey=", 8))
                cli->ssl_certfile = tok + 8;
            else if (!strncmp(tok, "extraCertChainFile=", 19))
                cli->ssl_ca_certs = tok + 19;
            else if (!parse_long(tok, 0, 65535, &v))
                cli->port = (int)v;
            else if (strncmp(tok, "backlog=", 8))
                return -1;
        }
        if (!cli->ssl_keyfile)
            return -1;
        if (!cli->ssl_certfile) /* Twisted: certKey defaults to privateKey */
            cli->ssl_certfile = cli->ssl_keyfile;
        return 0;
    }
    if (!strncmp(spec, "unix:", 5)) {
        char *path = spec + 5;
        if (!strncmp(path, "path=", 5))
            path += 5;
        char *colon = strchr(path, ':');
        if (colon)
            *colon = '\0';
        cli->unix_socket = path;
        return 0;
    }
    if (!strncmp(spec, "fd:", 3)) {
        const char *n = spec + 3;
        if (!strncmp(n, "fileno=", 7))
            n += 7;
        if (parse_long(n, 0, 1 << 20, &v))
            return -1;
        cli->fd = (int)v;
        return 0;
    }
    return -1;
}

/* granian's durations: seconds, or numbers with units: 90, 30m, 12h, 7d, 1h30m. */
static int parse_duration(const char *s, long *out)
{
    long total = 0;
    if (!*s)
        return -1;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || v < 0 || *s == '-' || *s == '+')
            return -1;
        long unit = 1;
        switch (*end) {
        case '\0': break;
        case 's': unit = 1; end++; break;
        case 'm': unit = 60; end++; break;
        case 'h': unit = 3600; end++; break;
        case 'd': unit = 86400; end++; break;
        case 'w': unit = 7 * 86400; end++; break;
        default: return -1;
        }
        if (v > (1L << 40) / unit)
            return -1;
        total += v * unit;
        s = end;
    }
    *out = total;
    return 0;
}

/* The static mounts pair up with their routes, and exist. */
static int check_static(const dfws_cli_t *cli)
{
    if (cli->n_static_routes && !cli->n_static_mounts)
        return usage_error("%s", "--static-path-route needs a --static-path-mount DIR");
    if (cli->n_static_mounts > 1 && cli->n_static_routes != cli->n_static_mounts)
        return usage_error("%s", "give one --static-path-route per --static-path-mount (they "
                                 "pair up in order)");
    if (cli->n_static_mounts == 1 && cli->n_static_routes > 1)
        return usage_error("%s", "give one --static-path-mount per --static-path-route");
    for (int i = 0; i < cli->n_static_routes; i++) {
        const char *r = cli->static_routes[i];
        if (r[0] != '/' || strspn(r, "/") == strlen(r) || strpbrk(r, "?%\\"))
            return usage_error("--static-path-route takes a path such as /static (not / alone, "
                               "no ? %% or \\): %s", r);
    }
    for (int i = 0; i < cli->n_static_mounts; i++) {
        struct stat st;
        if (stat(cli->static_mounts[i], &st) || !S_ISDIR(st.st_mode))
            return usage_error("--static-path-mount: not a directory: %s", cli->static_mounts[i]);
    }
    return 0;
}

int dfws_cli_parse(dfws_cli_t *cli, int argc, char **argv)
{
    memset(cli, 0, sizeof(*cli));
    cli->bind = "127.0.0.1";
    cli->port = 8000;
    cli->fd = -1;
    cli->verbosity = 1;
    cli->websocket_connect_timeout = 5;
    cli->ping_interval = 20;
    cli->ping_timeout = 30;
    cli->application_close_timeout = 10;
    cli->root_path = "";
    cli->proxy_headers_host = "X-Forwarded-For";
    cli->proxy_headers_port = "X-Forwarded-Port";
    cli->server_name = "dfws";
    cli->log_fmt = DEFAULT_LOG_FMT;
    cli->workers = 1;
    cli->lifespan = DFWS_LIFESPAN_AUTO;
    cli->backlog = 2048;
    cli->limit_request_line = 8190;
    cli->limit_request_headers = 65536;
    cli->keep_alive_timeout = 5;
    cli->header_timeout = 10;
    cli->lifespan_timeout = 10;
    cli->shutdown_timeout = 30;
    cli->graceful_timeout = -1;
    cli->socket_mode = -1;
    cli->ws_max_message_size = 1 << 20;
    cli->ws_max_frame_size = 1 << 20;
    cli->native_ws = 1;
    cli->django_fast = 1;
    cli->django_threads = 4;
    cli->forwarded_allow_ips = getenv("FORWARDED_ALLOW_IPS");
    if (!cli->forwarded_allow_ips || !*cli->forwarded_allow_ips)
        cli->forwarded_allow_ips = "*";
    cli->ws_rate_limit = 100;
    cli->ws_connect_capacity = 256;
    cli->static_expires = 86400;
    cli->ws_per_message_deflate = 1;
    cli->ws_deflate_level = 6;
    cli->ws_deflate_threshold = 128;

    opterr = 0;
    optind = 1;
    int c;
    long v;
    double d;
    while ((c = getopt_long(argc, argv, ":b:p:u:e:v:t:s:h", long_options, NULL)) != -1) {
        switch (c) {
        case 'b':
            cli->bind = optarg;
            break;
        case 'p':
            if (parse_long(optarg, 0, 65535, &v))
                return usage_error("invalid port: %s", optarg);
            cli->port = (int)v;
            break;
        case 'u':
            cli->unix_socket = optarg;
            break;
        case OPT_FD:
            if (parse_long(optarg, 0, 1 << 20, &v))
                return usage_error("invalid file descriptor: %s", optarg);
            cli->fd = (int)v;
            break;
        case 'e':
            if (parse_endpoint(cli, optarg))
                return usage_error("unsupported endpoint: %s", optarg);
            break;
        case OPT_ACCESS_LOG:
            cli->access_log = optarg;
            break;
        case 'v':
            if (parse_long(optarg, 0, 3, &v))
                return usage_error("verbosity must be 0 to 3: %s", optarg);
            cli->verbosity = (int)v;
            break;
#define DOUBLE_OPT(code, field, neg)                                                               \
    case code:                                                                                     \
        if (parse_double(optarg, &d, neg))                                                         \
            return usage_error("invalid number of seconds: %s", optarg);                           \
        cli->field = d;                                                                            \
        break;
            DOUBLE_OPT('t', http_timeout, 1)
            DOUBLE_OPT(OPT_WS_TIMEOUT, websocket_timeout, 1)
            DOUBLE_OPT(OPT_WS_CONNECT_TIMEOUT, websocket_connect_timeout, 1)
            DOUBLE_OPT(OPT_PING_INTERVAL, ping_interval, 0)
            DOUBLE_OPT(OPT_PING_TIMEOUT, ping_timeout, 0)
            DOUBLE_OPT(OPT_APP_CLOSE_TIMEOUT, application_close_timeout, 0)
            DOUBLE_OPT(OPT_KEEP_ALIVE, keep_alive_timeout, 0)
            DOUBLE_OPT(OPT_HEADER_TIMEOUT, header_timeout, 0)
            DOUBLE_OPT(OPT_LIFESPAN_TIMEOUT, lifespan_timeout, 0)
            DOUBLE_OPT(OPT_SHUTDOWN_TIMEOUT, shutdown_timeout, 0)
            DOUBLE_OPT(OPT_WS_RATE_LIMIT, ws_rate_limit, 0)
            DOUBLE_OPT(OPT_GRACEFUL_TIMEOUT, graceful_timeout, 0)
            DOUBLE_OPT(OPT_LIFETIME, workers_lifetime, 0)
#undef DOUBLE_OPT
        case OPT_ROOT_PATH:
            cli->root_path = optarg;
            break;
        case OPT_PROXY_HEADERS:
            cli->proxy_headers = 1;
            break;
        case OPT_PROXY_HOST:
            cli->proxy_headers_host = optarg;
            cli->proxy_headers = 1;
            break;
        case OPT_PROXY_PORT:
            cli->proxy_headers_port = optarg;
            cli->proxy_headers = 1;
            break;
        case 's':
            cli->server_name = optarg;
            break;
        case OPT_NO_SERVER_NAME:
            cli->server_name = NULL;
            break;
        case OPT_LOG_FMT:
            cli->log_fmt = optarg;
            break;
        case OPT_WORKERS:
            if (parse_long(optarg, 1, 1024, &v))
                return usage_error("--workers takes a number from 1 to 1024: %s", optarg);
            cli->workers = (int)v;
            break;
        case OPT_LIFESPAN:
            if (!strcmp(optarg, "auto"))
                cli->lifespan = DFWS_LIFESPAN_AUTO;
            else if (!strcmp(optarg, "on"))
                cli->lifespan = DFWS_LIFESPAN_ON;
            else if (!strcmp(optarg, "off"))
                cli->lifespan = DFWS_LIFESPAN_OFF;
            else
                return usage_error("--lifespan takes auto, on or off: %s", optarg);
            break;
        case OPT_BACKLOG:
            if (parse_long(optarg, 1, 1 << 20, &v))
                return usage_error("invalid backlog: %s", optarg);
            cli->backlog = (int)v;
            break;
#define SIZE_OPT(code, field, lo)                                                                  \
    case code:                                                                                     \
        if (parse_long(optarg, lo, (long)1 << 40, &v))                                             \
            return usage_error("invalid size in bytes: %s", optarg);                               \
        cli->field = (size_t)v;                                                                    \
        break;
            SIZE_OPT(OPT_LIMIT_LINE, limit_request_line, 16)
            SIZE_OPT(OPT_LIMIT_HEADERS, limit_request_headers, 256)
            SIZE_OPT(OPT_LIMIT_BODY, limit_request_body, 0)
            SIZE_OPT(OPT_WS_MAX_MESSAGE, ws_max_message_size, 0)
            SIZE_OPT(OPT_WS_MAX_FRAME, ws_max_frame_size, 0)
#undef SIZE_OPT
        case OPT_NO_NATIVE_WS:
            cli->native_ws = 0;
            break;
        case OPT_SOCKET_MODE:
            if (parse_mode(optarg, &cli->socket_mode))
                return usage_error("--socket-mode takes octal permissions, e.g. 660: %s", optarg);
            break;
#define COUNT_OPT(code, field, what)                                                               \
    case code:                                                                                     \
        if (parse_long(optarg, 0, (long)1 << 40, &v))                                              \
            return usage_error(what " takes a whole number: %s", optarg);                          \
        cli->field = v;                                                                            \
        break;
            COUNT_OPT(OPT_MAX_REQUESTS, limit_max_requests, "--limit-max-requests")
            COUNT_OPT(OPT_MAX_REQUESTS_JITTER, limit_max_requests_jitter,
                      "--limit-max-requests-jitter")
            COUNT_OPT(OPT_MAX_RSS, workers_max_rss, "--workers-max-rss")
#undef COUNT_OPT
        case OPT_RELOAD:
            cli->reload = 1;
            break;
        case OPT_WS_CONNECT_CAPACITY:
            if (parse_long(optarg, 0, 1 << 20, &v))
                return usage_error("--websocket-connect-capacity takes a whole number: %s", optarg);
            cli->ws_connect_capacity = (size_t)v;
            break;
        case OPT_NO_DJANGO_FAST:
            cli->django_fast = 0;
            break;
        case OPT_ACCESS_LOG_FORMAT: {
            char err[200];
            if (dfws_access_format_check(optarg, err, sizeof(err)))
                return usage_error("--access-log-format: %s", err);
            cli->access_log_format = optarg;
            break;
        }
        case OPT_METRICS_BIND: {
            const char *colon = strrchr(optarg, ':');
            const char *port = colon ? colon + 1 : optarg;
            if (parse_long(port, 1, 65535, &v))
                return usage_error("--metrics-bind takes HOST:PORT or PORT: %s", optarg);
            cli->metrics_bind = optarg;
            break;
        }
        case OPT_PROXY_PROTOCOL:
            cli->proxy_protocol = 1;
            break;
        case OPT_FORWARDED_ALLOW_IPS:
            cli->forwarded_allow_ips = optarg;
            break;
        case OPT_HEALTH_PATH:
            if (optarg[0] != '/' || strpbrk(optarg, "?# "))
                return usage_error("--health-path takes a path starting with /: %s", optarg);
            cli->health_path = optarg;
            break;
        case OPT_DJANGO_THREADS:
            if (parse_long(optarg, 1, 256, &v))
                return usage_error("--django-threads takes a number from 1 to 256: %s", optarg);
            cli->django_threads = (int)v;
            break;
        case OPT_RELOAD_DIR:
            if (cli->n_reload_dirs == DFWS_CLI_MAX_RELOAD_DIRS)
                return usage_error("at most 16 --reload-dir: %s", optarg);
            cli->reload_dirs[cli->n_reload_dirs++] = optarg;
            cli->reload = 1;
            break;
        case OPT_WS_DEFLATE: {
            /* uvicorn's spelling: --ws-per-message-deflate BOOL */
            static const char *const yes[] = {"true", "1", "yes", "on", "True"};
            static const char *const no[] = {"false", "0", "no", "off", "False"};
            int val = -1;
            for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                if (!strcmp(optarg, yes[i]))
                    val = 1;
                if (!strcmp(optarg, no[i]))
                    val = 0;
            }
            if (val < 0)
                return usage_error("--ws-per-message-deflate takes true or false: %s", optarg);
            cli->ws_per_message_deflate = val;
            break;
        }
        case OPT_NO_WS_DEFLATE:
            cli->ws_per_message_deflate = 0;
            break;
        case OPT_WS_DEFLATE_LEVEL:
            if (parse_long(optarg, 1, 9, &v))
                return usage_error("--ws-deflate-level takes a number from 1 to 9: %s", optarg);
            cli->ws_deflate_level = (int)v;
            break;
        case OPT_WS_DEFLATE_THRESHOLD:
            if (parse_long(optarg, 0, (long)1 << 40, &v))
                return usage_error("--ws-deflate-threshold takes a size in bytes: %s", optarg);
            cli->ws_deflate_threshold = (size_t)v;
            break;
        case OPT_VERSION:
            printf("dfws-asgi %s\n", DFWS_VERSION);
            return DFWS_CLI_EXIT;
        case 'h':
            fputs(usage_text, stdout);
            return DFWS_CLI_EXIT;
        case OPT_STATIC_ROUTE:
            if (cli->n_static_routes == DFWS_CLI_MAX_STATIC)
                return usage_error("at most 16 --static-path-route: %s", optarg);
            cli->static_routes[cli->n_static_routes++] = optarg;
            break;
        case OPT_STATIC_MOUNT:
            if (cli->n_static_mounts == DFWS_CLI_MAX_STATIC)
                return usage_error("at most 16 --static-path-mount: %s", optarg);
            cli->static_mounts[cli->n_static_mounts++] = optarg;
            break;
        case OPT_STATIC_EXPIRES:
            if (parse_duration(optarg, &cli->static_expires))
                return usage_error("--static-path-expires takes seconds or a duration such as "
                                   "30m, 12h, 7d: %s", optarg);
            break;
        case OPT_DJANGO_STATIC:
            cli->django_static = 1;
            break;
        case OPT_SSL_KEYFILE:
            cli->ssl_keyfile = optarg;
            break;
        case OPT_SSL_CERTFILE:
            cli->ssl_certfile = optarg;
            break;
        case OPT_SSL_CA_CERTS:
            cli->ssl_ca_certs = optarg;
            break;
        case OPT_SSL_CIPHERS:
            cli->ssl_ciphers = optarg;
            break;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unrecognized option: %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("%s", "the APP argument is required (e.g. myproj.asgi:application)");
    if (optind + 1 < argc)
        return usage_error("unexpected argument: %s", argv[optind + 1]);
    cli->app = argv[optind];
    if (cli->socket_mode >= 0 && !cli->unix_socket)
        return usage_error("%s", "--socket-mode applies to a UNIX socket (-u PATH)");
    dfws_proxy_allow_t allow;
    char err[128];
    if (dfws_proxy_allow_parse(&allow, cli->forwarded_allow_ips, err, sizeof(err)))
        return usage_error("--forwarded-allow-ips (or FORWARDED_ALLOW_IPS): %s", err);
    int rc = check_static(cli);
    if (rc)
        return rc;
    return DFWS_CLI_OK;
}

int dfws_cli_supervised(const dfws_cli_t *cli)
{
    return cli->workers > 1 || cli->reload || cli->limit_max_requests > 0 || cli->metrics_bind ||
           cli->workers_max_rss > 0 || cli->workers_lifetime > 0;
}

double dfws_cli_graceful_timeout(const dfws_cli_t *cli)
{
    return cli->graceful_timeout >= 0 ? cli->graceful_timeout : cli->shutdown_timeout;
}
