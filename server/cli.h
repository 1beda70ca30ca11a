/* Configuration of dfws-asgi: daphne 4's flags plus our own. Every option
 * is declared once, in server/options.c (name, type, field below, default,
 * help, peers' equivalents); docs/cli.md's tables are generated from it. */
#ifndef DFWS_CLI_H
#define DFWS_CLI_H

#include <stddef.h>

enum { DFWS_LIFESPAN_AUTO, DFWS_LIFESPAN_ON, DFWS_LIFESPAN_OFF };

#define DFWS_CLI_MAX_RELOAD_DIRS 16
#define DFWS_CLI_MAX_STATIC 16

typedef struct dfws_cli_s {
    const char *app;                  /* "module:attr" */
    const char *bind;                 /* host or address, default 127.0.0.1 */
    int port;                         /* default 8000 */
    const char *unix_socket;          /* path, or NULL */
    int fd;                           /* inherited listening fd, or -1 */
    const char *access_log;           /* path, "-" for stdout, or NULL */
    const char *access_log_format;    /* --access-log-format, or NULL: daphne's line */
    int verbosity;                    /* 0..3 like daphne */
    double http_timeout;              /* s before 503 when the app has not answered; 0 = none */
    double websocket_timeout;         /* max WebSocket lifetime; 0 = no limit */
    double websocket_connect_timeout; /* s to accept; 0 = none */
    double ping_interval;
    double ping_timeout;
    double application_close_timeout;
    const char *root_path;
    int proxy_headers;
    const char *proxy_headers_host; /* header name, default X-Forwarded-For */
    const char *proxy_headers_port; /* header name, default X-Forwarded-Port */
    const char *server_name;        /* Server header; NULL with --no-server-name */
    const char *log_fmt;
    int workers;
    int lifespan;
    int backlog;
    size_t limit_request_line;    /* bytes of the request target, 414 above */
    size_t limit_request_headers; /* bytes of request line + headers */
    size_t limit_request_body;    /* 0 = unlimited */
    double keep_alive_timeout;
    double header_timeout;
    double lifespan_timeout; /* --lifespan auto: startup answered within it, else unsupported */
    double shutdown_timeout;
    double graceful_timeout;    /* a retired worker's drain; < 0 = shutdown_timeout */
    size_t ws_max_message_size; /* 0 = unlimited */
    size_t ws_max_frame_size;   /* 0 = unlimited */
    int native_ws;              /* serve df_websockets' WEBSOCKET_URL in C */
    double ws_rate_limit;       /* native socket: messages per second allowed, 0 = none */
    int socket_mode;            /* permissions of the UNIX socket file, or -1 (umask) */
    /* Restarts and recycling (server/supervisor.c). Each one of these, or
     * workers > 1, makes the process a supervisor of its workers. */
    long limit_max_requests;        /* retire a worker after about N requests; 0 = never */
    long limit_max_requests_jitter; /* each worker adds 0..J to the limit */
    long workers_max_rss;           /* MiB; retire a worker above it; 0 = no limit */
    double workers_lifetime;        /* s; retire a worker that old; 0 = no limit */
    int reload;                     /* restart the workers when a Python file changes */
    int n_reload_dirs;
    const char *reload_dirs[DFWS_CLI_MAX_RELOAD_DIRS]; /* none: the current directory */
    size_t ws_connect_capacity; /* native socket: windows waiting for their connect; 0 = none */
    /* Django fast path (asgi/django_fast.c): plain HTTP requests to Django's
     * ASGIHandler served on one of `django_threads` threads in one hop. */
    int django_fast;
    int django_threads;
    int proxy_protocol;              /* connections start with a PROXY protocol v1/v2 header */
    const char *forwarded_allow_ips; /* peers trusted with proxy headers; "*" = all */
    const char *metrics_bind;        /* HOST:PORT the supervisor serves /metrics on, or NULL */
    const char *health_path; /* answered 200 (503 while draining) without the app, or NULL */
    /* Static files served from C (server/static.c), granian's flags: the
     * i-th route is mounted on the i-th directory; without any route, the
     * one mount is on /static. */
    int n_static_routes, n_static_mounts;
    const char *static_routes[DFWS_CLI_MAX_STATIC];
    const char *static_mounts[DFWS_CLI_MAX_STATIC];
    long static_expires; /* Cache-Control max-age, s; 0 = none (default 86400) */
    int django_static;   /* mount Django's STATIC_URL on STATIC_ROOT (dfws/runner.py) */
    /* permessage-deflate (RFC 7692) on WebSockets, ASGI and native alike */
    int ws_per_message_deflate;  /* negotiate it when offered (default on) */
    int ws_deflate_level;        /* zlib level 1-9 (default 6) */
    size_t ws_deflate_threshold; /* messages shorter are sent uncompressed (default 128) */
    /* TLS (uvicorn's flags, or daphne's `-e ssl:PORT:privateKey=K:certKey=C`):
     * with a certificate, the listener serves HTTPS and WSS. */
    const char *ssl_keyfile;
    const char *ssl_certfile;
    const char *ssl_ca_certs; /* CA bundle: client certificates are asked for and checked */
    const char *ssl_ciphers;  /* OpenSSL cipher list for TLS 1.2 (default: OpenSSL's) */
    const char *ssl_chain;    /* -e ssl:...:extraCertChainFile=F: intermediate certificates
                                   sent after the server's own (Twisted's meaning) */
    /* Copies of the -e specs, which the fields they set point into. */
    size_t arena_used;
    char arena[2048];
} dfws_cli_t;

enum { DFWS_CLI_OK = 0, DFWS_CLI_EXIT = 1, DFWS_CLI_USAGE = 2 };

/* Fills `cli` from argv: dfws_cli_defaults(), then dfws_cli_set() for each
 * flag and APP, then dfws_cli_check(). Returns DFWS_CLI_OK, DFWS_CLI_EXIT
 * (help or version was printed: exit 0) or DFWS_CLI_USAGE (an error was
 * printed on stderr: exit 2). String fields point into argv or static
 * storage. */
int dfws_cli_parse(dfws_cli_t *cli, int argc, char **argv);

/* Every option's default (the environment's FORWARDED_ALLOW_IPS included). */
void dfws_cli_defaults(dfws_cli_t *cli);

/* Sets one option, as its flag would: `name` is the options dict key
 * ("websocket_timeout", "native_websockets", "app"), a flag's name, with
 * or without "--" ("--no-native-websockets", "websocket-timeout"), or a
 * short flag ("-p"). `value` is NULL for a flag without a value; for those
 * "true"/"false" is accepted too (for a dict key, the field's value:
 * native_websockets=false is --no-native-websockets). A string field keeps
 * `value`: it must outlive `cli`. Returns DFWS_CLI_OK, DFWS_CLI_EXIT (--help
 * or --version printed) or DFWS_CLI_USAGE with the reason in err. */
int dfws_cli_set(dfws_cli_t *cli, const char *name, const char *value, char *err, size_t errlen);

/* What involves several options, once all are set: APP is given,
 * --socket-mode with -u, --forwarded-allow-ips, the static mounts. Returns
 * DFWS_CLI_OK, or DFWS_CLI_USAGE with the reason in err. */
int dfws_cli_check(const dfws_cli_t *cli, char *err, size_t errlen);

/* Prints "dfws-asgi: error: MSG" and the usage line on stderr; returns
 * DFWS_CLI_USAGE. */
int dfws_cli_usage_error(const char *msg);

/* Whether the command line asks for a supervisor process: several workers,
 * --reload, or a recycling limit (a replacement must be started and ready
 * before a worker stops accepting, even with one worker). */
int dfws_cli_supervised(const dfws_cli_t *cli);
/* --graceful-timeout, or --shutdown-timeout when it was not given. */
double dfws_cli_graceful_timeout(const dfws_cli_t *cli);

#endif
