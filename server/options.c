/* The declaration of every dfws-asgi option (see options.h), the parse
 * hooks of those that are not plain values, and the two texts generated
 * from it: --help and --help-markdown (docs/cli.md's option tables, checked
 * by tests/server/test_cli.py). */
#include "options.h"

#include "access_log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef DFWS_VERSION
#define DFWS_VERSION "0.0.0"
#endif

#define F(field) offsetof(dfws_cli_t, field)

enum {
    S_LISTEN,
    S_TLS,
    S_BEHAVIOUR,
    S_LIMITS,
    S_PROXIES,
    S_LOGGING,
    S_RESTARTS,
    S_WEBSOCKETS,
    S_DJANGO,
    S_STATIC,
    S_OPERATIONS,
    S_OTHER,
};

const char *const dfws_option_sections[] = {
    [S_LISTEN] = "Listening",
    [S_TLS] = "TLS",
    [S_BEHAVIOUR] = "Behaviour",
    [S_LIMITS] = "Limits",
    [S_PROXIES] = "Behind a proxy",
    [S_LOGGING] = "Logging",
    [S_RESTARTS] = "Restarts and recycling (SIGHUP: rolling restart; see docs/deploy.md)",
    [S_WEBSOCKETS] = "WebSockets and df_websockets",
    [S_DJANGO] = "Django",
    [S_STATIC] = "Static files, served from C (granian's flags)",
    [S_OPERATIONS] = "Operations",
    [S_OTHER] = "Other",
};
const size_t dfws_n_option_sections = sizeof(dfws_option_sections) /
                                      sizeof(dfws_option_sections[0]);

static const char *const lifespan_choices[] = {
    [DFWS_LIFESPAN_AUTO] = "auto", [DFWS_LIFESPAN_ON] = "on", [DFWS_LIFESPAN_OFF] = "off", NULL};

/* ---- parse hooks ----------------------------------------------------------------- */

static int endpoint_hook(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, char *err,
                         size_t errlen);

static int help_hook(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, char *err,
                     size_t errlen)
{
    dfws_options_help(stdout);
    return DFWS_CLI_EXIT;
}

static int markdown_hook(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, char *err,
                         size_t errlen)
{
    dfws_options_markdown(stdout);
    return DFWS_CLI_EXIT;
}

static int version_hook(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, char *err,
                        size_t errlen)
{
    printf("dfws-asgi %s\n", DFWS_VERSION);
    return DFWS_CLI_EXIT;
}

static int access_format_check(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, char *err,
                               size_t errlen)
{
    char why[200];
    if (!dfws_access_format_check(arg, why, sizeof(why)))
        return 0;
    snprintf(err, errlen, "--access-log-format: %s", why);
    return -1;
}

static int metrics_bind_check(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, char *err,
                              size_t errlen)
{
    const char *colon = strrchr(arg, ':');
    long port;
    if (!dfws_cli_parse_long(colon ? colon + 1 : arg, 1, 65535, &port))
        return 0;
    snprintf(err, errlen, "--metrics-bind takes HOST:PORT or PORT: %s", arg);
    return -1;
}

static int health_path_check(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, char *err,
                             size_t errlen)
{
    if (arg[0] == '/' && !strpbrk(arg, "?# "))
        return 0;
    snprintf(err, errlen, "--health-path takes a path starting with /: %s", arg);
    return -1;
}

/* ---- the declaration ------------------------------------------------------------- */

const dfws_option_t dfws_options[] = {
    /* APP, the positional argument: set by name ("app"), never a flag */
    {.name = "app", .type = DFWS_OPT_STRING, .offset = F(app), .flags = DFWS_OPT_F_POSITIONAL},

    /* Listening */
    {.name = "bind",
     .short_flag = 'b',
     .type = DFWS_OPT_STRING,
     .offset = F(bind),
     .def = "127.0.0.1",
     .metavar = "ADDR",
     .section = S_LISTEN,
     .help = "address to bind to",
     .doc = "address to bind to; `[::1]` and `::1` both work",
     .daphne = "same",
     .uvicorn = "`--host`",
     .gunicorn = "`--bind`",
     .granian = "`--host`"},
    {.name = "port",
     .short_flag = 'p',
     .type = DFWS_OPT_INT,
     .offset = F(port),
     .lo = 0,
     .hi = 65535,
     .def = "8000",
     .section = S_LISTEN,
     .help = "port to listen on",
     .daphne = "same",
     .uvicorn = "`--port`",
     .gunicorn = "`--bind`",
     .granian = "`--port`"},
    {.name = "unix-socket",
     .short_flag = 'u',
     .type = DFWS_OPT_STRING,
     .offset = F(unix_socket),
     .metavar = "PATH",
     .section = S_LISTEN,
     .help = "listen on a UNIX socket instead",
     .doc = "listen on a UNIX socket instead; a stale socket file (nothing answers a connect) "
            "is replaced, a live one is refused with exit status 1 (another server listens "
            "there), any other file is left alone (exit 1)",
     .daphne = "same",
     .uvicorn = "`--uds`",
     .gunicorn = "`--bind unix:PATH`",
     .granian = "`--uds`"},
    {.name = "fd",
     .type = DFWS_OPT_INT,
     .offset = F(fd),
     .lo = 0,
     .hi = 1 << 20,
     .flags = DFWS_OPT_F_UNSET,
     .section = S_LISTEN,
     .help = "listen on an inherited file descriptor",
     .daphne = "same",
     .uvicorn = "`--fd`"},
    {.name = "endpoint",
     .short_flag = 'e',
     .type = DFWS_OPT_ACTION,
     .hook = endpoint_hook,
     .flags = DFWS_OPT_F_NOKEY,
     .metavar = "SPEC",
     .section = S_LISTEN,
     .help = "tcp:PORT[:interface=ADDR], unix:PATH, fd:fileno=N or\n"
             "ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem",
     .doc = "daphne's Twisted endpoint strings, the common forms: `tcp:PORT[:interface=ADDR]`, "
            "`unix:PATH`, `fd:fileno=N`, and "
            "`ssl:PORT[:interface=ADDR]:privateKey=KEY.pem[:certKey=CERT.pem]"
            "[:extraCertChainFile=CHAIN.pem]`, which sets `--ssl-keyfile` and `--ssl-certfile` "
            "(the key file when not given, as Twisted); `extraCertChainFile` holds the "
            "intermediate certificates sent after the server's own ([tls.md](tls.md))",
     .daphne = "same (the common forms)"},
    {.name = "backlog",
     .type = DFWS_OPT_INT,
     .offset = F(backlog),
     .lo = 1,
     .hi = 1 << 20,
     .def = "2048",
     .section = S_LISTEN,
     .help = "listen backlog",
     .uvicorn = "`--backlog`",
     .gunicorn = "`--backlog`",
     .granian = "`--backlog`"},
    {.name = "socket-mode",
     .type = DFWS_OPT_OCTAL,
     .offset = F(socket_mode),
     .flags = DFWS_OPT_F_UNSET,
     .metavar = "MODE",
     .def_doc = "umask",
     .section = S_LISTEN,
     .help = "permissions of the UNIX socket file, octal (e.g. 660)",
     .doc = "permissions of the `-u` socket file, octal (`660`, `0660`, `0o660`), set before "
            "it accepts connections: lets nginx's worker user connect without running as root",
     .granian = "`--uds-permissions`"},
    {.name = "workers",
     .type = DFWS_OPT_INT,
     .offset = F(workers),
     .lo = 1,
     .hi = 1024,
     .def = "1",
     .section = S_LISTEN,
     .help = "pre-fork N worker processes sharing the socket",
     .doc = "pre-fork N worker processes sharing the listening socket, under a supervisor (see "
            "[Restarts, recycling, supervisor](#restarts-recycling-supervisor)). Refused (exit "
            "1, with the fix) for a Django project whose channel layer lives in one process: "
            "df_websockets' default embedded layer, Channels' `InMemoryChannelLayer`",
     .uvicorn = "`--workers`",
     .gunicorn = "`--workers`",
     .granian = "`--workers`"},

    /* TLS */
    {.name = "ssl-certfile",
     .type = DFWS_OPT_STRING,
     .offset = F(ssl_certfile),
     .metavar = "FILE",
     .section = S_TLS,
     .help = "certificate chain (PEM): serve HTTPS and WSS",
     .daphne = "`-e ssl:...:certKey=FILE`",
     .uvicorn = "`--ssl-certfile`",
     .gunicorn = "`--certfile`",
     .granian = "`--ssl-certificate`"},
    {.name = "ssl-keyfile",
     .type = DFWS_OPT_STRING,
     .offset = F(ssl_keyfile),
     .metavar = "FILE",
     .section = S_TLS,
     .help = "its private key (PEM)",
     .daphne = "`-e ssl:...:privateKey=FILE`",
     .uvicorn = "`--ssl-keyfile`",
     .gunicorn = "`--keyfile`",
     .granian = "`--ssl-keyfile`"},
    {.name = "ssl-ca-certs",
     .type = DFWS_OPT_STRING,
     .offset = F(ssl_ca_certs),
     .metavar = "FILE",
     .section = S_TLS,
     .help = "CA bundle to verify client certificates with",
     .doc = "CA bundle (PEM): clients are asked for a certificate, checked against it",
     .uvicorn = "`--ssl-ca-certs`",
     .gunicorn = "`--ca-certs`"},
    {.name = "ssl-ciphers",
     .type = DFWS_OPT_STRING,
     .offset = F(ssl_ciphers),
     .metavar = "LIST",
     .section = S_TLS,
     .help = "OpenSSL cipher list for TLS 1.2",
     .def_doc = "OpenSSL's",
     .uvicorn = "`--ssl-ciphers`",
     .gunicorn = "`--ciphers`"},

    /* Behaviour */
    {.name = "http-timeout",
     .short_flag = 't',
     .type = DFWS_OPT_SECONDS,
     .offset = F(http_timeout),
     .flags = DFWS_OPT_F_MINUS_ONE,
     .section = S_BEHAVIOUR,
     .def_doc = "none",
     .help = "answer 503 when the app has not responded in S s",
     .doc = "answer 503 when the application has not started its response in S seconds",
     .daphne = "same"},
    {.name = "application-close-timeout",
     .type = DFWS_OPT_SECONDS,
     .offset = F(application_close_timeout),
     .def = "10",
     .section = S_BEHAVIOUR,
     .help = "after a client left, cancel the app after S s",
     .daphne = "same"},
    {.name = "websocket_timeout",
     .alias = "websocket-timeout",
     .type = DFWS_OPT_SECONDS,
     .offset = F(websocket_timeout),
     .flags = DFWS_OPT_F_MINUS_ONE,
     .section = S_BEHAVIOUR,
     .def_doc = "no limit",
     .help = "maximum WebSocket lifetime",
     .doc = "maximum WebSocket lifetime; `-1` also means no limit (daphne's default is 86400). "
            "`--websocket-timeout` is accepted too",
     .daphne = "same"},
    {.name = "websocket_connect_timeout",
     .alias = "websocket-connect-timeout",
     .type = DFWS_OPT_SECONDS,
     .offset = F(websocket_connect_timeout),
     .flags = DFWS_OPT_F_MINUS_ONE,
     .def = "5",
     .section = S_BEHAVIOUR,
     .help = "time the app has to accept a WebSocket",
     .doc = "time the application has to accept a WebSocket. "
            "`--websocket-connect-timeout` is accepted too",
     .daphne = "same"},
    {.name = "ping-interval",
     .type = DFWS_OPT_SECONDS,
     .offset = F(ping_interval),
     .def = "20",
     .section = S_BEHAVIOUR,
     .help = "WebSocket keep-alive ping interval",
     .daphne = "same",
     .uvicorn = "`--ws-ping-interval`"},
    {.name = "ping-timeout",
     .type = DFWS_OPT_SECONDS,
     .offset = F(ping_timeout),
     .def = "30",
     .section = S_BEHAVIOUR,
     .help = "close a WebSocket whose ping is unanswered",
     .daphne = "same",
     .uvicorn = "`--ws-ping-timeout`"},
    {.name = "root-path",
     .type = DFWS_OPT_STRING,
     .offset = F(root_path),
     .def = "",
     .metavar = "P",
     .section = S_BEHAVIOUR,
     .help = "ASGI root_path",
     .doc = "ASGI `root_path`; a request's `Daphne-Root-Path` header (URL-encoded, set by a "
            "proxy that mounts the app under a prefix) replaces it for that request and is not "
            "passed to the app, as in daphne",
     .daphne = "same",
     .uvicorn = "`--root-path`",
     .granian = "`--url-path-prefix`"},
    {.name = "server-name",
     .short_flag = 's',
     .type = DFWS_OPT_STRING,
     .offset = F(server_name),
     .def = "dfws",
     .metavar = "NAME",
     .section = S_BEHAVIOUR,
     .help = "Server header value",
     .daphne = "same"},
    {.name = "no-server-name",
     .type = DFWS_OPT_CLEAR,
     .offset = F(server_name),
     .flags = DFWS_OPT_F_NOKEY,
     .section = S_BEHAVIOUR,
     .help = "send no Server header",
     .daphne = "same",
     .uvicorn = "`--no-server-header`"},
    {.name = "lifespan",
     .type = DFWS_OPT_ENUM,
     .offset = F(lifespan),
     .choices = lifespan_choices,
     .def = "auto",
     .section = S_BEHAVIOUR,
     .help = "ASGI lifespan protocol",
     .doc = "ASGI lifespan: `auto` tolerates apps that do not support it: they raise on the "
            "lifespan scope, or take it and do not answer `lifespan.startup` within "
            "`--lifespan-timeout` (daphne never sends it, so a daphne app may just wait), and "
            "are served without lifespan (the latter with a warning); `on` waits for the "
            "answer without bound",
     .uvicorn = "`--lifespan`"},
    {.name = "lifespan-timeout",
     .type = DFWS_OPT_SECONDS,
     .offset = F(lifespan_timeout),
     .def = "10",
     .section = S_BEHAVIOUR,
     .help = "auto: serve without lifespan if startup takes longer",
     .doc = "with `--lifespan auto`, how long startup may take before the app is served "
            "without lifespan"},
    {.name = "keep-alive-timeout",
     .type = DFWS_OPT_SECONDS,
     .offset = F(keep_alive_timeout),
     .def = "5",
     .section = S_BEHAVIOUR,
     .help = "close idle keep-alive connections",
     .uvicorn = "`--timeout-keep-alive`",
     .gunicorn = "`--keep-alive`"},
    {.name = "header-timeout",
     .type = DFWS_OPT_SECONDS,
     .offset = F(header_timeout),
     .def = "10",
     .section = S_BEHAVIOUR,
     .help = "time to send a complete header section",
     .doc = "a client must send a complete header section in time (slowloris) → 408. The same "
            "span bounds a pause in a request body, and a body must come at 500 bytes/s on "
            "average once that credit is spent → 408 (or the connection closed if the response "
            "started). Not while the application itself leaves the body unread"},
    {.name = "shutdown-timeout",
     .type = DFWS_OPT_SECONDS,
     .offset = F(shutdown_timeout),
     .def = "30",
     .section = S_BEHAVIOUR,
     .help = "graceful shutdown wait for requests",
     .doc = "graceful shutdown waits this long for requests and WebSockets",
     .uvicorn = "`--timeout-graceful-shutdown`",
     .gunicorn = "`--graceful-timeout`"},

    /* Limits */
    {.name = "limit-request-line",
     .type = DFWS_OPT_SIZE,
     .offset = F(limit_request_line),
     .lo = 16,
     .hi = (long)1 << 40,
     .def = "8190",
     .section = S_LIMITS,
     .help = "request target limit, 414 above",
     .doc = "request target size; above → 414",
     .gunicorn = "`--limit-request-line`"},
    {.name = "limit-request-headers",
     .type = DFWS_OPT_SIZE,
     .offset = F(limit_request_headers),
     .lo = 256,
     .hi = (long)1 << 40,
     .def = "65536",
     .section = S_LIMITS,
     .help = "request line + headers limit, 431 above",
     .doc = "request line + header section, every byte (separators and whitespace too); above "
            "→ 431. At most 100 header fields, whatever their size; more → 431"},
    {.name = "limit-request-body",
     .type = DFWS_OPT_SIZE,
     .offset = F(limit_request_body),
     .lo = 0,
     .hi = (long)1 << 40,
     .def = "0",
     .def_doc = "0 = unlimited",
     .section = S_LIMITS,
     .help = "body limit, 413 above",
     .doc = "request body; above → 413 (0 = unlimited)"},
    {.name = "websocket-max-message-size",
     .type = DFWS_OPT_SIZE,
     .offset = F(ws_max_message_size),
     .lo = 0,
     .hi = (long)1 << 40,
     .def = "1048576",
     .section = S_LIMITS,
     .help = "larger WebSocket messages: close 1009 (0: no limit)",
     .doc = "above → close 1009 (0 = unlimited); applies to an incoming message once inflated",
     .uvicorn = "`--ws-max-size`"},
    {.name = "websocket-max-frame-size",
     .type = DFWS_OPT_SIZE,
     .offset = F(ws_max_frame_size),
     .lo = 0,
     .hi = (long)1 << 40,
     .def = "1048576",
     .section = S_LIMITS,
     .help = "larger WebSocket frames: close 1009 (0: no limit)",
     .doc = "above → close 1009 (0 = unlimited)"},

    /* Behind a proxy */
    {.name = "proxy-headers",
     .type = DFWS_OPT_FLAG,
     .offset = F(proxy_headers),
     .lo = 1,
     .section = S_PROXIES,
     .help = "trust X-Forwarded-For/-Port/-Proto",
     .doc = "trust `X-Forwarded-For`/`-Port`, plus `X-Forwarded-Proto` for `scheme`, and RFC "
            "7239 `Forwarded` (`for=` and `proto=` of its first element; it wins over "
            "`X-Forwarded-*` when both are sent). The scope's `client` and `scheme` and the "
            "access log's client follow it. Only from peers listed in `--forwarded-allow-ips` "
            "(all by default, as daphne; UNIX-socket peers always)",
     .def_doc = "off",
     .daphne = "same (no `X-Forwarded-Proto`, no `Forwarded`)",
     .uvicorn = "`--proxy-headers`"},
    {.name = "proxy-headers-host",
     .type = DFWS_OPT_STRING,
     .offset = F(proxy_headers_host),
     .def = "X-Forwarded-For",
     .implies = "proxy-headers",
     .metavar = "HDR",
     .section = S_PROXIES,
     .help = "header carrying the client address",
     .doc = "header carrying the client address (implies `--proxy-headers`)",
     .daphne = "same"},
    {.name = "proxy-headers-port",
     .type = DFWS_OPT_STRING,
     .offset = F(proxy_headers_port),
     .def = "X-Forwarded-Port",
     .implies = "proxy-headers",
     .metavar = "HDR",
     .section = S_PROXIES,
     .help = "header carrying the client port",
     .doc = "header carrying the client port (implies `--proxy-headers`)",
     .daphne = "same"},
    {.name = "forwarded-allow-ips",
     .type = DFWS_OPT_STRING,
     .offset = F(forwarded_allow_ips),
     .def = "*",
     .env = "FORWARDED_ALLOW_IPS",
     .metavar = "LIST",
     .section = S_PROXIES,
     .help = "peers whose proxy headers are trusted: addresses,\n"
             "networks (10.0.0.0/8) or * (default: env\nFORWARDED_ALLOW_IPS, else *, as daphne)",
     .doc = "peers whose proxy headers count: comma-separated addresses and networks "
            "(`127.0.0.1,10.0.0.0/8,::1`) or `*`. Default: the `FORWARDED_ALLOW_IPS` "
            "environment variable, else `*` (daphne trusts every peer with `--proxy-headers`; "
            "uvicorn's default is `127.0.0.1`: set this flag when clients can reach the server "
            "without the proxy)",
     .def_doc = "`*`",
     .uvicorn = "`--forwarded-allow-ips`",
     .gunicorn = "`--forwarded-allow-ips`"},
    {.name = "proxy-protocol",
     .type = DFWS_OPT_FLAG,
     .offset = F(proxy_protocol),
     .lo = 1,
     .section = S_PROXIES,
     .def_doc = "off",
     .help = "connections start with a PROXY protocol v1/v2 header\n"
             "(HAProxy, AWS NLB): its source is the client",
     .doc = "every connection starts with a PROXY protocol header, v1 (text) or v2 (binary), as "
            "HAProxy (`send-proxy`, `send-proxy-v2`) and AWS NLB (proxy protocol v2) send it: "
            "its source address is the client of every request on that connection (scope "
            "`client` and `server`, access log). A v2 LOCAL command (the balancer's own health "
            "check) or v1 `UNKNOWN` keeps the socket's addresses. A connection without a valid "
            "header, or from a peer not in `--forwarded-allow-ips`, is closed with a log line",
     .gunicorn = "`--proxy-protocol` (v1 only)"},

    /* Logging */
    {.name = "verbosity",
     .short_flag = 'v',
     .type = DFWS_OPT_INT,
     .offset = F(verbosity),
     .lo = 0,
     .hi = 3,
     .def = "1",
     .section = S_LOGGING,
     .help = "0 warnings, 1 info, 2-3 debug",
     .doc = "0 warnings and no default access log, 1 info, 2-3 debug",
     .daphne = "same",
     .uvicorn = "`--log-level`",
     .gunicorn = "`--log-level`",
     .granian = "`--log-level`"},
    {.name = "access-log",
     .type = DFWS_OPT_STRING,
     .offset = F(access_log),
     .metavar = "PATH",
     .section = S_LOGGING,
     .help = "access log file, - for stdout",
     .doc = "access log file, `-` for stdout; without it, stdout at verbosity >= 1. daphne's "
            "line format (HTTP and WebSocket lines). Lines are formatted in C and written in "
            "batches, once per loop turn, straight to the file (no Python per request); when "
            "the project configures its own handlers or filters for the `dfws.access` logger "
            "(e.g. in `LOGGING`), they go through Python logging instead, one record per line. "
            "With `--proxy-headers` the line starts with the forwarded client, as daphne's",
     .daphne = "same",
     .uvicorn = "`--access-log`",
     .gunicorn = "`--access-logfile`",
     .granian = "`--access-log`"},
    {.name = "access-log-format",
     .type = DFWS_OPT_STRING,
     .offset = F(access_log_format),
     .check = access_format_check,
     .metavar = "FMT",
     .section = S_LOGGING,
     .def_doc = "daphne's line",
     .help = "access-log line with %(field)s: client, client_host,\nmethod, path, query, "
             "target, status, bytes,\nduration_ms, user_agent, referer, time, protocol",
     .doc = "the access-log line, with `%(field)s` placeholders (a printf conversion after the "
            "name is accepted and ignored, `%%` is a percent sign): `client` (host:port), "
            "`client_host`, `method`, `path`, `query`, `target` (path?query), `status`, "
            "`bytes`, `duration_ms` (first request byte to response complete, 3 decimals), "
            "`user_agent`, `referer`, `time` (daphne's date), `protocol` (`HTTP/1.1`). Client "
            "bytes are escaped (`\\xHH` for control bytes, non-ASCII, `\"` and `\\`). An "
            "unknown field is a usage error (exit 2)",
     .gunicorn = "`--access-logformat`",
     .granian = "`--access-log-fmt`"},
    {.name = "log-fmt",
     .type = DFWS_OPT_STRING,
     .offset = F(log_fmt),
     .def = "%(asctime)-15s %(levelname)-8s %(message)s",
     .metavar = "FMT",
     .section = S_LOGGING,
     .help = "Python logging format",
     .doc = "Python logging format; used only when the application configured no logging",
     .daphne = "same"},

    /* Restarts and recycling */
    {.name = "graceful-timeout",
     .type = DFWS_OPT_SECONDS,
     .offset = F(graceful_timeout),
     .flags = DFWS_OPT_F_UNSET,
     .def_doc = "`--shutdown-timeout`",
     .section = S_RESTARTS,
     .help = "a restarted or retired worker's time to drain",
     .doc = "how long a worker being replaced (SIGHUP, `--reload`, recycling) has to finish "
            "its requests",
     .uvicorn = "`--timeout-graceful-shutdown`",
     .gunicorn = "`--graceful-timeout`",
     .granian = "`--workers-kill-timeout`"},
    {.name = "limit-max-requests",
     .type = DFWS_OPT_LONG,
     .offset = F(limit_max_requests),
     .lo = 0,
     .hi = (long)1 << 40,
     .def = "0",
     .def_doc = "0 = never",
     .section = S_RESTARTS,
     .help = "replace a worker after N requests",
     .doc = "replace a worker after N requests (HTTP requests and WebSocket handshakes)",
     .uvicorn = "`--limit-max-requests`",
     .gunicorn = "`--max-requests`"},
    {.name = "limit-max-requests-jitter",
     .type = DFWS_OPT_LONG,
     .offset = F(limit_max_requests_jitter),
     .lo = 0,
     .hi = (long)1 << 40,
     .def = "0",
     .metavar = "J",
     .section = S_RESTARTS,
     .help = "each worker adds a random 0..J to that limit",
     .doc = "each worker adds a random 0..J to that limit, so workers are not all replaced at "
            "once",
     .uvicorn = "`--limit-max-requests-jitter`",
     .gunicorn = "`--max-requests-jitter`"},
    {.name = "workers-max-rss",
     .type = DFWS_OPT_LONG,
     .offset = F(workers_max_rss),
     .lo = 0,
     .hi = (long)1 << 40,
     .def = "0",
     .def_doc = "0 = no limit",
     .metavar = "MIB",
     .section = S_RESTARTS,
     .help = "replace a worker whose resident memory exceeds MIB",
     .doc = "replace a worker whose resident memory exceeds MIB (MiB, sampled every second)",
     .granian = "`--workers-max-rss`"},
    {.name = "workers-lifetime",
     .type = DFWS_OPT_SECONDS,
     .offset = F(workers_lifetime),
     .def = "0",
     .def_doc = "0 = no limit",
     .section = S_RESTARTS,
     .help = "replace a worker after S seconds",
     .doc = "replace a worker S seconds after it started",
     .granian = "`--workers-lifetime`"},
    {.name = "reload",
     .type = DFWS_OPT_FLAG,
     .offset = F(reload),
     .lo = 1,
     .section = S_RESTARTS,
     .def_doc = "off",
     .help = "restart the workers when a Python file changes",
     .doc = "restart the workers when a Python file under the current directory changes "
            "(inotify, no polling)",
     .uvicorn = "`--reload`",
     .gunicorn = "`--reload`",
     .granian = "`--reload`"},
    {.name = "reload-dir",
     .type = DFWS_OPT_LIST,
     .offset = F(reload_dirs),
     .count_offset = F(n_reload_dirs),
     .hi = DFWS_CLI_MAX_RELOAD_DIRS,
     .implies = "reload",
     .metavar = "DIR",
     .section = S_RESTARTS,
     .help = "watch DIR instead of the current directory (repeatable)",
     .doc = "watch DIR instead of the current directory (repeatable; implies `--reload`)",
     .def_doc = "the current directory",
     .uvicorn = "`--reload-dir`",
     .granian = "`--reload-paths`"},

    /* WebSockets and df_websockets */
    {.name = "no-native-websockets",
     .key = "native_websockets",
     .type = DFWS_OPT_FLAG,
     .offset = F(native_ws),
     .lo = 0,
     .def = "true",
     .def_doc = "native on",
     .section = S_WEBSOCKETS,
     .help = "serve df_websockets' socket with its Python consumer",
     .doc = "serve df_websockets' `WEBSOCKET_URL` with its Python consumer instead of C"},
    {.name = "websocket-rate-limit",
     .type = DFWS_OPT_NUMBER,
     .offset = F(ws_rate_limit),
     .def = "100",
     .metavar = "N",
     .section = S_WEBSOCKETS,
     .help = "df_websockets socket: messages/s per window",
     .doc = "messages per second a df_websockets window may send (burst 2N); above → close "
            "1008 (0 = none)"},
    {.name = "websocket-connect-capacity",
     .type = DFWS_OPT_SIZE,
     .offset = F(ws_connect_capacity),
     .lo = 0,
     .hi = 1 << 20,
     .def = "256",
     .metavar = "N",
     .section = S_WEBSOCKETS,
     .help = "df_websockets socket: windows connecting at once,\n"
             "more are answered 503 (0 = unlimited)",
     .doc = "df_websockets windows whose connect (the one Python call: middleware chain, "
            "topics from the cache) may be queued or running at once, per worker process; more "
            "are answered **503** at once with a log line (the browser client retries with its "
            "backoff) instead of waiting behind the others. Connects have threads of their own "
            "(`DFWS_NATIVE_THREADS` each, default min(32, CPUs + 4)), so browser calls queued "
            "in Python never delay them (0 = unlimited)"},
    {.name = "ws-per-message-deflate",
     .type = DFWS_OPT_BOOL,
     .offset = F(ws_per_message_deflate),
     .def = "true",
     .section = S_WEBSOCKETS,
     .help = "WebSocket compression (RFC 7692) when the client offers it",
     .doc = "WebSocket compression (RFC 7692 permessage-deflate) for every WebSocket whose "
            "client offers it (every browser does): ASGI consumers and df_websockets windows "
            "alike. `false` (or `--no-ws-per-message-deflate`) answers every offer without the "
            "extension. See [architecture.md, WebSocket "
            "compression](architecture.md#websocket-compression) for what it costs",
     .uvicorn = "`--ws-per-message-deflate`"},
    {.name = "no-ws-per-message-deflate",
     .type = DFWS_OPT_FLAG,
     .offset = F(ws_per_message_deflate),
     .lo = 0,
     .flags = DFWS_OPT_F_NOKEY,
     .section = S_WEBSOCKETS,
     .help = "same as --ws-per-message-deflate false"},
    {.name = "ws-deflate-level",
     .type = DFWS_OPT_INT,
     .offset = F(ws_deflate_level),
     .lo = 1,
     .hi = 9,
     .def = "6",
     .section = S_WEBSOCKETS,
     .help = "zlib level 1-9",
     .doc = "zlib compression level, 1 (fastest) to 9"},
    {.name = "ws-deflate-threshold",
     .type = DFWS_OPT_SIZE,
     .offset = F(ws_deflate_threshold),
     .lo = 0,
     .hi = (long)1 << 40,
     .def = "128",
     .section = S_WEBSOCKETS,
     .help = "messages shorter than B bytes go uncompressed",
     .doc = "messages shorter than B bytes are sent uncompressed (a message that does not get "
            "smaller is always sent as it is)"},

    /* Django */
    {.name = "no-django-fast-path",
     .key = "django_fast_path",
     .type = DFWS_OPT_FLAG,
     .offset = F(django_fast),
     .lo = 0,
     .def = "true",
     .def_doc = "fast path on",
     .section = S_DJANGO,
     .help = "serve Django's HTTP requests through its ASGIHandler",
     .doc = "serve a Django project's HTTP requests through Django's `ASGIHandler` on the event "
            "loop instead of the fast path ([architecture.md, The Django fast "
            "path](architecture.md#the-django-fast-path))"},
    {.name = "django-threads",
     .type = DFWS_OPT_INT,
     .offset = F(django_threads),
     .lo = 1,
     .hi = 256,
     .def = "4",
     .section = S_DJANGO,
     .help = "threads of the Django fast path",
     .doc = "threads the Django fast path runs sync views on (1-256); like a threaded WSGI "
            "server's threads, each keeps its own database connection",
     .gunicorn = "`--threads`"},

    /* Static files */
    {.name = "static-path-route",
     .type = DFWS_OPT_LIST,
     .offset = F(static_routes),
     .count_offset = F(n_static_routes),
     .hi = DFWS_CLI_MAX_STATIC,
     .metavar = "R",
     .section = S_STATIC,
     .def_doc = "`/static` (one mount)",
     .help = "URL prefix of the next mount (repeatable)",
     .doc = "the URL prefix of the mount at the same position (repeatable: the i-th route goes "
            "with the i-th mount); a trailing `/` is dropped, `/` alone is refused",
     .granian = "`--static-path-route`"},
    {.name = "static-path-mount",
     .type = DFWS_OPT_LIST,
     .offset = F(static_mounts),
     .count_offset = F(n_static_mounts),
     .hi = DFWS_CLI_MAX_STATIC,
     .metavar = "DIR",
     .section = S_STATIC,
     .help = "serve the files below DIR on that route (repeatable)",
     .doc = "serve the files below `DIR` (repeatable; must exist, else exit 2)",
     .granian = "`--static-path-mount`"},
    {.name = "static-path-expires",
     .type = DFWS_OPT_DURATION,
     .offset = F(static_expires),
     .def = "86400",
     .section = S_STATIC,
     .help = "Cache-Control max-age, seconds or 30m, 12h, 7d (0 = none)",
     .doc = "`Cache-Control: max-age=S` on files and 304s; seconds or `30m`, `12h`, `7d`, "
            "`1h30m`; `0`: no `Cache-Control` (what you want while developing without hashed "
            "file names)",
     .granian = "`--static-path-expires`"},
    {.name = "django-static",
     .type = DFWS_OPT_FLAG,
     .offset = F(django_static),
     .lo = 1,
     .section = S_STATIC,
     .def_doc = "off",
     .help = "serve Django's STATIC_URL from STATIC_ROOT (collectstatic)",
     .doc = "mount Django's `STATIC_URL` on `STATIC_ROOT` (`django.contrib.staticfiles`); "
            "refused at start-up (exit 1, with the fix) when the settings have no "
            "`STATIC_ROOT`, the directory does not exist (run `collectstatic`), `STATIC_URL` is "
            "on another host, or the application is not a Django project",
     .granian = "`--static-path-route /static --static-path-mount STATIC_ROOT`"},

    /* Operations */
    {.name = "health-path",
     .type = DFWS_OPT_STRING,
     .offset = F(health_path),
     .check = health_path_check,
     .metavar = "PATH",
     .section = S_OPERATIONS,
     .def_doc = "off",
     .help = "answer PATH from C: 200 while serving, 503 draining",
     .doc = "answer `PATH` (any query string) from C, without calling the application: `200 "
            "ok` while serving, `503 draining` once the worker stops accepting (SIGTERM, a "
            "rolling restart, recycling), so a load balancer's health check takes it out "
            "first"},
    {.name = "metrics-bind",
     .type = DFWS_OPT_STRING,
     .offset = F(metrics_bind),
     .check = metrics_bind_check,
     .metavar = "HOST:PORT",
     .section = S_OPERATIONS,
     .def_doc = "off",
     .help = "serve Prometheus metrics of all workers on\nhttp://HOST:PORT/metrics (from the "
             "supervisor)",
     .doc = "serve Prometheus metrics on `http://HOST:PORT/metrics` (text format 0.0.4), from "
            "the supervisor, summed over every worker (the gauges with a `worker` label). Makes "
            "the process a supervisor even with one worker. What is counted, and how: "
            "[deploy.md, Metrics](deploy.md#metrics)",
     .gunicorn = "statsd only",
     .granian = "`--metrics` (2.x)"},

    /* Other */
    {.name = "version",
     .type = DFWS_OPT_ACTION,
     .hook = version_hook,
     .flags = DFWS_OPT_F_NOKEY,
     .section = S_OTHER,
     .help = "print the version and exit"},
    {.name = "help",
     .short_flag = 'h',
     .type = DFWS_OPT_ACTION,
     .hook = help_hook,
     .flags = DFWS_OPT_F_NOKEY,
     .section = S_OTHER,
     .help = "print this help and exit"},
    {.name = "help-markdown",
     .type = DFWS_OPT_ACTION,
     .hook = markdown_hook,
     .flags = DFWS_OPT_F_NOKEY,
     .section = S_OTHER,
     .help = "print the option tables of docs/cli.md and exit"},
};
const size_t dfws_n_options = sizeof(dfws_options) / sizeof(dfws_options[0]);

/* ---- -e / --endpoint ------------------------------------------------------------- */

/* Twisted endpoint strings, the forms daphne users write. The spec is
 * copied into cli->arena (the fields it sets point there). */
static int endpoint_hook(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, char *err,
                         size_t errlen)
{
    long v;
    /* the fields it sets point into a copy kept in cli->arena */
    size_t n = strlen(arg) + 1;
    if (n > sizeof(cli->arena) - cli->arena_used) {
        snprintf(err, errlen, "-e: endpoints too long: %s", arg);
        return -1;
    }
    char *spec = memcpy(cli->arena + cli->arena_used, arg, n);
    cli->arena_used += n;
    if (!strncmp(spec, "tcp:", 4)) {
        char *save = NULL;
        char *tok = strtok_r(spec + 4, ":", &save);
        for (; tok; tok = strtok_r(NULL, ":", &save)) {
            if (!strncmp(tok, "port=", 5))
                tok += 5;
            if (!strncmp(tok, "interface=", 10))
                cli->bind = tok + 10;
            else if (!dfws_cli_parse_long(tok, 0, 65535, &v))
                cli->port = (int)v;
            else if (strncmp(tok, "backlog=", 8))
                goto bad;
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
                cli->ssl_chain = tok + 19;
            else if (!dfws_cli_parse_long(tok, 0, 65535, &v))
                cli->port = (int)v;
            else if (strncmp(tok, "backlog=", 8))
                goto bad;
        }
        if (!cli->ssl_keyfile)
            goto bad;
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
        if (dfws_cli_parse_long(n, 0, 1 << 20, &v))
            goto bad;
        cli->fd = (int)v;
        return 0;
    }
bad:
    snprintf(err, errlen, "unsupported endpoint: %s", arg);
    return -1;
}

/* ---- lookup ---------------------------------------------------------------------- */

const char *dfws_option_key(const dfws_option_t *o, char *buf, size_t len)
{
    const char *src = o->key ? o->key : o->name;
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++)
        buf[i] = src[i] == '-' ? '_' : src[i];
    buf[i] = '\0';
    return buf;
}

/* a and b are the same name, - and _ alike */
static int same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '_' ? '-' : *a, y = *b == '_' ? '-' : *b;
        if (x != y)
            return 0;
    }
    return !*a && !*b;
}

const dfws_option_t *dfws_option_find(const char *name)
{
    if (name[0] == '-' && name[1] && name[1] != '-' && !name[2]) {
        for (size_t i = 0; i < dfws_n_options; i++)
            if (dfws_options[i].short_flag == name[1])
                return &dfws_options[i];
        return NULL;
    }
    if (!strncmp(name, "--", 2))
        name += 2;
    /* a dict key first (native_websockets is the key of --no-native-websockets) */
    for (size_t i = 0; i < dfws_n_options; i++) {
        const dfws_option_t *o = &dfws_options[i];
        if (o->key && same_name(o->key, name))
            return o;
    }
    for (size_t i = 0; i < dfws_n_options; i++) {
        const dfws_option_t *o = &dfws_options[i];
        if (same_name(o->name, name) || (o->alias && same_name(o->alias, name)))
            return o;
    }
    return NULL;
}

/* ---- --help ---------------------------------------------------------------------- */

int dfws_option_takes_value(const dfws_option_t *o)
{
    return o->type != DFWS_OPT_FLAG && o->type != DFWS_OPT_CLEAR &&
           (o->type != DFWS_OPT_ACTION || o->metavar);
}

/* The value's placeholder: METAVAR, or one from the type. */
static void metavar(const dfws_option_t *o, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!dfws_option_takes_value(o))
        return;
    if (o->metavar) {
        snprintf(buf, len, "%s", o->metavar);
        return;
    }
    switch (o->type) {
    case DFWS_OPT_ENUM: {
        size_t n = 0;
        for (const char *const *c = o->choices; *c && n < len; c++)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", c == o->choices ? "" : "|", *c);
        break;
    }
    case DFWS_OPT_BOOL:
        snprintf(buf, len, "true|false");
        break;
    case DFWS_OPT_SECONDS:
    case DFWS_OPT_DURATION:
        snprintf(buf, len, "S");
        break;
    case DFWS_OPT_SIZE:
        snprintf(buf, len, "B");
        break;
    case DFWS_OPT_STRING:
    case DFWS_OPT_LIST:
        snprintf(buf, len, "VALUE");
        break;
    default:
        snprintf(buf, len, "N");
        break;
    }
}

/* "-b, --bind ADDR" */
static void flag_words(const dfws_option_t *o, char *buf, size_t len, int markdown)
{
    char mv[64];
    metavar(o, mv, sizeof(mv));
    const char *q = markdown ? "`" : "";
    size_t n = 0;
    if (o->short_flag)
        n += (size_t)snprintf(buf, len, "%s-%c%s, ", q, o->short_flag, q);
    else if (!markdown)
        n += (size_t)snprintf(buf, len, "    ");
    snprintf(buf + n, len - n, "%s--%s%s%s%s", q, o->name, mv[0] ? " " : "", mv, q);
}

/* The default as --help and the docs say it, or NULL. */
static const char *default_text(const dfws_option_t *o)
{
    if (o->def_doc)
        return o->def_doc;
    if (o->def && o->def[0] && o->type != DFWS_OPT_FLAG)
        return o->def;
    return NULL;
}

#define HELP_COLUMN 32
#define HELP_WIDTH 92

/* Writes `text` from column HELP_COLUMN, its lines broken at "\n" and
 * wrapped at HELP_WIDTH; `col` is where the cursor is (after the flag). */
static void help_text(FILE *out, const char *text, int col)
{
    const size_t room = HELP_WIDTH - HELP_COLUMN;
    const char *p = text;
    do {
        size_t take = strcspn(p, "\n");
        if (take > room) {
            size_t k = room;
            while (k > 0 && p[k] != ' ')
                k--;
            if (k)
                take = k;
        }
        if (col >= HELP_COLUMN) {
            fputc('\n', out);
            col = 0;
        }
        fprintf(out, "%*s%.*s", HELP_COLUMN - col, "", (int)take, p);
        col = HELP_COLUMN + 1; /* what follows starts on a line of its own */
        p += take;
        if (*p == ' ' || *p == '\n')
            p++;
    } while (*p);
    fputc('\n', out);
}

void dfws_options_help(FILE *out)
{
    fputs("usage: dfws-asgi [options] APP\n"
          "\n"
          "Serve the ASGI application APP (\"module:attribute\", e.g. "
          "myproj.asgi:application).\n"
          "Every option is described in docs/cli.md, with daphne's, uvicorn's, gunicorn's and\n"
          "granian's equivalents.\n",
          out);
    for (size_t s = 0; s < dfws_n_option_sections; s++) {
        fprintf(out, "\n%s:\n", dfws_option_sections[s]);
        for (size_t i = 0; i < dfws_n_options; i++) {
            const dfws_option_t *o = &dfws_options[i];
            if ((size_t)o->section != s || (o->flags & DFWS_OPT_F_POSITIONAL))
                continue;
            char words[128], text[1024];
            flag_words(o, words, sizeof(words), 0);
            const char *def = default_text(o);
            /* a flag's default goes without saying in --help (docs/cli.md says it) */
            size_t n = (size_t)snprintf(text, sizeof(text), "%s", o->help);
            if (def && o->type != DFWS_OPT_FLAG && !strstr(o->help, "(default")) {
                /* the markdown of def_doc, without its backquotes */
                n += (size_t)snprintf(text + n, sizeof(text) - n, " (default ");
                for (; *def && n + 2 < sizeof(text); def++)
                    if (*def != '`')
                        text[n++] = *def;
                text[n++] = ')';
                text[n] = '\0';
            }
            help_text(out, text, fprintf(out, "  %s", words));
            if (o->alias)
                fprintf(out, "%*s(also --%s)\n", HELP_COLUMN, "", o->alias);
        }
    }
}

/* ---- --help-markdown ------------------------------------------------------------- */

/* A table cell: "|" escaped, "\n" a space. */
static void cell(FILE *out, const char *s)
{
    fputs(" ", out);
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '\n')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
    fputs(" |", out);
}

void dfws_options_markdown(FILE *out)
{
    for (size_t s = 0; s < dfws_n_option_sections; s++) {
        const char *title = dfws_option_sections[s];
        const char *paren = strstr(title, " (");
        int len = paren ? (int)(paren - title) : (int)strlen(title);
        fprintf(out, "%s### %.*s\n\n", s ? "\n" : "", len, title);
        fputs("| flag | meaning | default | daphne | uvicorn | gunicorn | granian |\n"
              "|---|---|---|---|---|---|---|\n",
              out);
        for (size_t i = 0; i < dfws_n_options; i++) {
            const dfws_option_t *o = &dfws_options[i];
            if ((size_t)o->section != s || (o->flags & DFWS_OPT_F_POSITIONAL))
                continue;
            char words[160];
            flag_words(o, words, sizeof(words), 1);
            fputs("|", out);
            cell(out, words);
            cell(out, o->doc ? o->doc : o->help);
            if (o->def_doc || !default_text(o)) {
                cell(out, o->def_doc);
            } else {
                char def[160];
                snprintf(def, sizeof(def), "`%s`", default_text(o));
                cell(out, def);
            }
            cell(out, o->daphne);
            cell(out, o->uvicorn);
            cell(out, o->gunicorn);
            cell(out, o->granian);
            fputs("\n", out);
        }
    }
}
