/* Unit tests for server/cli.c and server/options.c: the defaults, every
 * declared option set by name (dfws_cli_set, what test rigs use) and by
 * argv (dfws_cli_parse), a bad value of each refused with a message naming
 * the flag, the special cases (-e, negations, implied flags, lists), the
 * checks across options, and --help / --help-markdown listing every option. */
#include "cli.h"
#include "options.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"


/* stderr (usage errors) or stdout (--help) silenced while `fd` is swapped */
static int silence(int fd)
{
    fflush(NULL);
    int saved = dup(fd);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, fd);
    close(null);
    return saved;
}

static void restore(int fd, int saved)
{
    fflush(NULL);
    dup2(saved, fd);
    close(saved);
}

static int parse(dfws_cli_t *cli, int argc, char **argv)
{
    int saved = silence(2);
    int rc = dfws_cli_parse(cli, argc, argv);
    restore(2, saved);
    return rc;
}

static void test_defaults(void)
{
    dfws_cli_t c;
    unsetenv("FORWARDED_ALLOW_IPS");
    dfws_cli_defaults(&c);
    CHECK_OR_RETURN(,
                    !c.app && !strcmp(c.bind, "127.0.0.1") && c.port == 8000 && !c.unix_socket &&
                        c.fd == -1 && !c.access_log && !c.access_log_format && c.verbosity == 1,
                    "listening/logging");
    CHECK_OR_RETURN(,
                    c.http_timeout == 0 && c.websocket_timeout == 0 &&
                        c.websocket_connect_timeout == 5 && c.ping_interval == 20 &&
                        c.ping_timeout == 30 && c.application_close_timeout == 10,
                    "timeouts");
    CHECK_OR_RETURN(,
                    !strcmp(c.root_path, "") && !c.proxy_headers &&
                        !strcmp(c.proxy_headers_host, "X-Forwarded-For") &&
                        !strcmp(c.proxy_headers_port, "X-Forwarded-Port") &&
                        !strcmp(c.server_name, "dfws"),
                    "proxy, server name");
    CHECK_OR_RETURN(,
                    !strcmp(c.log_fmt, "%(asctime)-15s %(levelname)-8s %(message)s") &&
                        c.workers == 1 && c.lifespan == DFWS_LIFESPAN_AUTO && c.backlog == 2048,
                    "log_fmt, workers, lifespan, backlog");
    CHECK_OR_RETURN(,
                    c.limit_request_line == 8190 && c.limit_request_headers == 65536 &&
                        c.limit_request_body == 0 && c.keep_alive_timeout == 5 &&
                        c.header_timeout == 10 && c.lifespan_timeout == 10 &&
                        c.shutdown_timeout == 30 && c.graceful_timeout == -1,
                    "limits");
    CHECK_OR_RETURN(, dfws_cli_graceful_timeout(&c) == 30, "graceful = shutdown");
    CHECK_OR_RETURN(,
                    c.ws_max_message_size == 1 << 20 && c.ws_max_frame_size == 1 << 20 &&
                        c.native_ws && c.ws_rate_limit == 100 && c.socket_mode == -1 &&
                        c.ws_connect_capacity == 256,
                    "websockets");
    CHECK_OR_RETURN(,
                    !c.limit_max_requests && !c.limit_max_requests_jitter && !c.workers_max_rss &&
                        !c.workers_lifetime && !c.reload && !c.n_reload_dirs &&
                        !dfws_cli_supervised(&c),
                    "recycling");
    CHECK_OR_RETURN(,
                    c.django_fast && c.django_threads == 4 && !c.proxy_protocol &&
                        !strcmp(c.forwarded_allow_ips, "*") && !c.metrics_bind && !c.health_path,
                    "django, proxies");
    CHECK_OR_RETURN(
        , !c.n_static_routes && !c.n_static_mounts && c.static_expires == 86400 && !c.django_static,
        "static");
    CHECK_OR_RETURN(
        , c.ws_per_message_deflate == 1 && c.ws_deflate_level == 6 && c.ws_deflate_threshold == 128,
        "deflate");
    CHECK_OR_RETURN(, !c.ssl_keyfile && !c.ssl_certfile && !c.ssl_ca_certs && !c.ssl_ciphers,
                    "tls");
    setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8", 1);
    dfws_cli_defaults(&c);
    unsetenv("FORWARDED_ALLOW_IPS");
    CHECK_OR_RETURN(, !strcmp(c.forwarded_allow_ips, "10.0.0.0/8"), "env: %s",
                    c.forwarded_allow_ips);
    check_pass();
}

/* A good value of `o` as the command line writes it, and whether the field
 * now holds it. */
static const char *sample(const dfws_option_t *o, char *buf, size_t len)
{
    switch (o->type) {
    case DFWS_OPT_STRING:
        if (!strcmp(o->name, "health-path"))
            return "/healthz";
        if (!strcmp(o->name, "metrics-bind"))
            return "127.0.0.1:9100";
        if (!strcmp(o->name, "access-log-format"))
            return "%(status)s %(path)s";
        if (!strcmp(o->name, "forwarded-allow-ips"))
            return "10.0.0.0/8,::1";
        return "sample-value";
    case DFWS_OPT_INT:
    case DFWS_OPT_LONG:
    case DFWS_OPT_SIZE:
        snprintf(buf, len, "%ld", o->hi < 1000 ? o->hi : o->lo + 7);
        return buf;
    case DFWS_OPT_SECONDS:
    case DFWS_OPT_NUMBER:
        return "2.5";
    case DFWS_OPT_ENUM:
        return o->choices[1];
    case DFWS_OPT_BOOL:
        return "false";
    case DFWS_OPT_OCTAL:
        return "0o640";
    case DFWS_OPT_DURATION:
        return "1h30m";
    case DFWS_OPT_LIST:
        return "/tmp";
    default:
        return NULL;
    }
}

static int holds(const dfws_cli_t *c, const dfws_option_t *o, const char *v)
{
    const void *f = dfws_option_field(c, o);
    switch (o->type) {
    case DFWS_OPT_STRING:
        return *(const char *const *)f == v;
    case DFWS_OPT_INT:
        return *(const int *)f == atoi(v);
    case DFWS_OPT_LONG:
        return *(const long *)f == atol(v);
    case DFWS_OPT_SIZE:
        return *(const size_t *)f == (size_t)atol(v);
    case DFWS_OPT_SECONDS:
    case DFWS_OPT_NUMBER:
        return *(const double *)f == 2.5;
    case DFWS_OPT_ENUM:
        return *(const int *)f == 1;
    case DFWS_OPT_BOOL:
        return *(const int *)f == 0;
    case DFWS_OPT_OCTAL:
        return *(const int *)f == 0640;
    case DFWS_OPT_DURATION:
        return *(const long *)f == 5400;
    case DFWS_OPT_LIST:
        return *(const int *)((const char *)c + o->count_offset) == 1 &&
               ((const char *const *)f)[0] == v;
    case DFWS_OPT_FLAG:
        return *(const int *)f == (int)o->lo;
    case DFWS_OPT_CLEAR:
        return *(const char *const *)f == NULL;
    default:
        return 1;
    }
}

/* Every option, by dfws_cli_set and by argv, under its name and alias. */
static void test_every_option(void)
{
    for (size_t i = 0; i < dfws_n_options; i++) {
        const dfws_option_t *o = &dfws_options[i];
        char buf[64], err[256], flag[80];
        if (o->type == DFWS_OPT_ACTION)
            continue;
        const char *v = sample(o, buf, sizeof(buf));
        for (int k = 0; k < 2; k++) {
            const char *name = k ? o->alias : o->name;
            if (!name)
                continue;
            dfws_cli_t c;
            dfws_cli_defaults(&c);
            int rc = dfws_cli_set(&c, name, v, err, sizeof(err));
            if (o->type == DFWS_OPT_FLAG || o->type == DFWS_OPT_CLEAR) {
                dfws_cli_defaults(&c);
                rc = dfws_cli_set(&c, name, NULL, err, sizeof(err));
            }
            CHECK_OR_RETURN(, rc == DFWS_CLI_OK, "set %s %s: %s", name, v ? v : "", err);
            CHECK_OR_RETURN(, holds(&c, o, v), "set %s %s: not held", name, v ? v : "");
            if (o->flags & DFWS_OPT_F_POSITIONAL)
                continue;
            /* the same on a command line (a static mount must pair with its route) */
            snprintf(flag, sizeof(flag), "--%s", name);
            char *argv[8] = {"dfws-asgi", flag};
            int argc = 2;
            if (dfws_option_takes_value(o))
                argv[argc++] = (char *)v;
            if (!strcmp(o->name, "socket-mode")) {
                argv[argc++] = "-u";
                argv[argc++] = "/tmp/s";
            }
            if (!strcmp(o->name, "static-path-route")) {
                argv[argc++] = "--static-path-mount";
                argv[argc++] = "/tmp";
            }
            argv[argc++] = "app:application";
            rc = parse(&c, argc, argv);
            CHECK_OR_RETURN(, rc == DFWS_CLI_OK, "argv %s", flag);
            CHECK_OR_RETURN(, holds(&c, o, v), "argv %s: not held", flag);
            CHECK_OR_RETURN(, !strcmp(c.app, "app:application"), "argv %s: app", flag);
            if (o->short_flag) {
                snprintf(flag, sizeof(flag), "-%c", o->short_flag);
                rc = parse(&c, argc, argv);
                CHECK_OR_RETURN(, rc == DFWS_CLI_OK && holds(&c, o, v), "argv %s", flag);
            }
        }
        check_pass();
    }
}

/* A bad value of every typed option is refused, naming the flag and value. */
static void test_bad_values(void)
{
    for (size_t i = 0; i < dfws_n_options; i++) {
        const dfws_option_t *o = &dfws_options[i];
        char err[256] = "";
        const char *bad = "x1";
        switch (o->type) {
        case DFWS_OPT_STRING:
            if (!o->check)
                continue;
            bad = strstr(o->name, "format") ? "%(x1)s" : "x1:";
            break;
        case DFWS_OPT_LIST:
        case DFWS_OPT_ACTION:
        case DFWS_OPT_CLEAR:
            continue;
        default:
            break;
        }
        dfws_cli_t c;
        dfws_cli_defaults(&c);
        int rc = dfws_cli_set(&c, o->name, bad, err, sizeof(err));
        CHECK_OR_RETURN(, rc == DFWS_CLI_USAGE, "--%s %s accepted", o->name, bad);
        CHECK_OR_RETURN(, strstr(err, o->name) && (strstr(err, bad) || strstr(err, "x1")),
                        "--%s: %s", o->name, err);
        /* one past the range */
        if (o->type == DFWS_OPT_INT || o->type == DFWS_OPT_LONG || o->type == DFWS_OPT_SIZE) {
            char v[32];
            snprintf(v, sizeof(v), "%ld", o->hi + 1);
            CHECK_OR_RETURN(, dfws_cli_set(&c, o->name, v, err, sizeof(err)) == DFWS_CLI_USAGE,
                            "--%s %s accepted", o->name, v);
            snprintf(v, sizeof(v), "%ld", o->lo - 1);
            CHECK_OR_RETURN(, dfws_cli_set(&c, o->name, v, err, sizeof(err)) == DFWS_CLI_USAGE,
                            "--%s %s accepted", o->name, v);
            CHECK_OR_RETURN(, dfws_cli_set(&c, o->name, "", err, sizeof(err)) == DFWS_CLI_USAGE,
                            "--%s '' accepted", o->name);
        }
        check_pass();
    }
}

static void set_ok(dfws_cli_t *c, const char *name, const char *value)
{
    char err[256];
    int rc = dfws_cli_set(c, name, value, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s:%d: set %s %s: %s\n", __FILE__, __LINE__, name, value, err);
        check_state.failed++;
    }
}

static int set_rc(dfws_cli_t *c, const char *name, const char *value, char *err)
{
    return dfws_cli_set(c, name, value, err, 256);
}

static void test_special_cases(void)
{
    dfws_cli_t c;
    char err[256];
    /* -e: Twisted endpoints */
    dfws_cli_defaults(&c);
    set_ok(&c, "-e", "tcp:9001:interface=127.0.0.2");
    CHECK_OR_RETURN(, c.port == 9001 && !strcmp(c.bind, "127.0.0.2"), "tcp: %d %s", c.port, c.bind);
    dfws_cli_defaults(&c);
    set_ok(&c, "endpoint", "tcp:port=9002:backlog=10");
    CHECK_OR_RETURN(, c.port == 9002 && !strcmp(c.bind, "127.0.0.1"), "tcp port=");
    dfws_cli_defaults(&c);
    set_ok(&c, "-e", "ssl:8443:privateKey=k.pem:certKey=c.pem:extraCertChainFile=chain.pem");
    CHECK_OR_RETURN(,
                    c.port == 8443 && !strcmp(c.ssl_keyfile, "k.pem") &&
                        !strcmp(c.ssl_certfile, "c.pem") && c.ssl_chain &&
                        !strcmp(c.ssl_chain, "chain.pem") && !c.ssl_ca_certs,
                    "ssl (extraCertChainFile is the intermediate chain, not a client CA)");
    dfws_cli_defaults(&c);
    set_ok(&c, "-e", "ssl:8443:privateKey=both.pem");
    CHECK_OR_RETURN(, !strcmp(c.ssl_certfile, "both.pem"), "ssl: certKey defaults to privateKey");
    dfws_cli_defaults(&c);
    CHECK_OR_RETURN(,
                    set_rc(&c, "-e", "ssl:8443", err) == DFWS_CLI_USAGE && strstr(err, "endpoint"),
                    "ssl without a key: %s", err);
    dfws_cli_defaults(&c);
    set_ok(&c, "-e", "unix:path=/run/x.sock:lockfile=1");
    CHECK_OR_RETURN(, !strcmp(c.unix_socket, "/run/x.sock"), "unix: %s", c.unix_socket);
    set_ok(&c, "-e", "fd:fileno=5");
    CHECK_OR_RETURN(, c.fd == 5 && !strcmp(c.unix_socket, "/run/x.sock"),
                    "fd, and the earlier spec kept");
    CHECK_OR_RETURN(,
                    set_rc(&c, "-e", "udp:53", err) == DFWS_CLI_USAGE &&
                        !strcmp(err, "unsupported endpoint: udp:53"),
                    "%s", err);
    CHECK_OR_RETURN(, set_rc(&c, "-e", "fd:fileno=x", err) == DFWS_CLI_USAGE, "fd:x");
    /* negations, by flag and by key */
    dfws_cli_defaults(&c);
    set_ok(&c, "no-native-websockets", NULL);
    CHECK_OR_RETURN(, !c.native_ws, "--no-native-websockets");
    set_ok(&c, "native_websockets", "true");
    CHECK_OR_RETURN(, c.native_ws, "native_websockets=true");
    set_ok(&c, "native_websockets", "false");
    CHECK_OR_RETURN(, !c.native_ws, "native_websockets=false");
    dfws_cli_defaults(&c);
    set_ok(&c, "no_native_websockets", "true");
    CHECK_OR_RETURN(, !c.native_ws, "no_native_websockets=true");
    set_ok(&c, "django_fast_path", "false");
    CHECK_OR_RETURN(, !c.django_fast, "django_fast_path=false");
    set_ok(&c, "--no-server-name", NULL);
    CHECK_OR_RETURN(, !c.server_name, "--no-server-name");
    set_ok(&c, "ws-per-message-deflate", "off");
    CHECK_OR_RETURN(, !c.ws_per_message_deflate, "deflate off");
    set_ok(&c, "ws-per-message-deflate", "True");
    CHECK_OR_RETURN(, c.ws_per_message_deflate, "deflate True");
    set_ok(&c, "no-ws-per-message-deflate", NULL);
    CHECK_OR_RETURN(, !c.ws_per_message_deflate, "--no-ws-per-message-deflate");
    CHECK_OR_RETURN(,
                    set_rc(&c, "ws-per-message-deflate", "maybe", err) == DFWS_CLI_USAGE &&
                        strstr(err, "true or false"),
                    "%s", err);
    /* implied flags */
    dfws_cli_defaults(&c);
    set_ok(&c, "proxy-headers-host", "X-Real-IP");
    CHECK_OR_RETURN(, c.proxy_headers && !strcmp(c.proxy_headers_host, "X-Real-IP"), "implies");
    dfws_cli_defaults(&c);
    set_ok(&c, "proxy_headers_port", "X-Port");
    CHECK_OR_RETURN(, c.proxy_headers, "implies");
    dfws_cli_defaults(&c);
    set_ok(&c, "reload-dir", "/srv/a");
    set_ok(&c, "reload-dir", "/srv/b");
    CHECK_OR_RETURN(,
                    c.reload && c.n_reload_dirs == 2 && !strcmp(c.reload_dirs[1], "/srv/b") &&
                        dfws_cli_supervised(&c),
                    "reload dirs");
    /* lists are bounded */
    dfws_cli_defaults(&c);
    for (int i = 0; i < DFWS_CLI_MAX_STATIC; i++)
        set_ok(&c, "static-path-mount", "/tmp");
    CHECK_OR_RETURN(,
                    set_rc(&c, "static-path-mount", "/tmp", err) == DFWS_CLI_USAGE &&
                        !strcmp(err, "at most 16 --static-path-mount: /tmp"),
                    "%s", err);
    /* seconds: -1 is daphne's no limit where daphne takes it */
    dfws_cli_defaults(&c);
    set_ok(&c, "websocket_timeout", "-1");
    set_ok(&c, "http-timeout", "-1");
    CHECK_OR_RETURN(, c.websocket_timeout == 0 && c.http_timeout == 0, "-1");
    CHECK_OR_RETURN(,
                    set_rc(&c, "ping-interval", "-1", err) == DFWS_CLI_USAGE &&
                        !strcmp(err, "--ping-interval takes a number of seconds: -1"),
                    "%s", err);
    CHECK_OR_RETURN(, set_rc(&c, "shutdown-timeout", "nan", err) == DFWS_CLI_USAGE, "nan");
    set_ok(&c, "graceful-timeout", "3");
    CHECK_OR_RETURN(, dfws_cli_graceful_timeout(&c) == 3, "graceful");
    /* enum, octal, duration */
    set_ok(&c, "lifespan", "off");
    CHECK_OR_RETURN(, c.lifespan == DFWS_LIFESPAN_OFF, "lifespan");
    CHECK_OR_RETURN(,
                    set_rc(&c, "lifespan", "yes", err) == DFWS_CLI_USAGE &&
                        !strcmp(err, "--lifespan takes auto, on or off: yes"),
                    "%s", err);
    set_ok(&c, "socket-mode", "660");
    CHECK_OR_RETURN(, c.socket_mode == 0660, "mode");
    CHECK_OR_RETURN(
        , set_rc(&c, "socket-mode", "890", err) == DFWS_CLI_USAGE && strstr(err, "octal"), "890");
    set_ok(&c, "static-path-expires", "7d");
    CHECK_OR_RETURN(, c.static_expires == 7 * 86400, "7d");
    CHECK_OR_RETURN(, set_rc(&c, "static-path-expires", "-5", err) == DFWS_CLI_USAGE, "-5");
    /* strings with a check */
    CHECK_OR_RETURN(,
                    set_rc(&c, "health-path", "healthz", err) == DFWS_CLI_USAGE &&
                        strstr(err, "--health-path"),
                    "%s", err);
    CHECK_OR_RETURN(,
                    set_rc(&c, "metrics-bind", "127.0.0.1:notaport", err) == DFWS_CLI_USAGE &&
                        strstr(err, "--metrics-bind"),
                    "%s", err);
    CHECK_OR_RETURN(,
                    set_rc(&c, "access-log-format", "%(nope)s", err) == DFWS_CLI_USAGE &&
                        !strncmp(err, "--access-log-format: ", 21),
                    "%s", err);
    /* names: unknown, short, with dashes */
    CHECK_OR_RETURN(,
                    set_rc(&c, "no-such-option", "1", err) == DFWS_CLI_USAGE &&
                        !strcmp(err, "unrecognized option: no-such-option"),
                    "%s", err);
    set_ok(&c, "-p", "81");
    set_ok(&c, "--workers", "3");
    CHECK_OR_RETURN(, c.port == 81 && c.workers == 3 && dfws_cli_supervised(&c), "names");
    CHECK_OR_RETURN(,
                    set_rc(&c, "port", NULL, err) == DFWS_CLI_USAGE &&
                        !strcmp(err, "option --port needs a value"),
                    "%s", err);
    check_pass();
}

static void test_checks(void)
{
    dfws_cli_t c;
    char err[256];
    dfws_cli_defaults(&c);
    CHECK_OR_RETURN(, dfws_cli_check(&c, err, sizeof(err)) == DFWS_CLI_USAGE && strstr(err, "APP"),
                    "app");
    set_ok(&c, "app", "m:a");
    CHECK_OR_RETURN(, dfws_cli_check(&c, err, sizeof(err)) == DFWS_CLI_OK, "%s", err);
    set_ok(&c, "socket-mode", "660");
    CHECK_OR_RETURN(,
                    dfws_cli_check(&c, err, sizeof(err)) == DFWS_CLI_USAGE &&
                        strstr(err, "--socket-mode applies to a UNIX socket"),
                    "%s", err);
    set_ok(&c, "unix-socket", "/tmp/x.sock");
    CHECK_OR_RETURN(, dfws_cli_check(&c, err, sizeof(err)) == DFWS_CLI_OK, "%s", err);
    set_ok(&c, "forwarded-allow-ips", "10.0.0.0/33");
    CHECK_OR_RETURN(,
                    dfws_cli_check(&c, err, sizeof(err)) == DFWS_CLI_USAGE &&
                        strstr(err, "--forwarded-allow-ips"),
                    "%s", err);
    dfws_cli_defaults(&c);
    set_ok(&c, "app", "m:a");
    set_ok(&c, "static-path-route", "/s");
    CHECK_OR_RETURN(,
                    dfws_cli_check(&c, err, sizeof(err)) == DFWS_CLI_USAGE &&
                        strstr(err, "needs a --static-path-mount"),
                    "%s", err);
    set_ok(&c, "static-path-mount", "/nonexistent/dir");
    CHECK_OR_RETURN(,
                    dfws_cli_check(&c, err, sizeof(err)) == DFWS_CLI_USAGE &&
                        strstr(err, "not a directory: /nonexistent/dir"),
                    "%s", err);
    dfws_cli_defaults(&c);
    set_ok(&c, "app", "m:a");
    set_ok(&c, "static-path-route", "/");
    set_ok(&c, "static-path-mount", "/tmp");
    CHECK_OR_RETURN(
        , dfws_cli_check(&c, err, sizeof(err)) == DFWS_CLI_USAGE && strstr(err, "not / alone"),
        "%s", err);
    check_pass();
}

static void test_argv(void)
{
    dfws_cli_t c;
    char *unknown[] = {"dfws-asgi", "--no-such-flag-xyz", "m:a"};
    CHECK_OR_RETURN(, parse(&c, 3, unknown) == DFWS_CLI_USAGE, "unknown flag");
    char *two[] = {"dfws-asgi", "m:a", "extra"};
    CHECK_OR_RETURN(, parse(&c, 3, two) == DFWS_CLI_USAGE, "two APPs");
    char *none[] = {"dfws-asgi", "-p", "81"};
    CHECK_OR_RETURN(, parse(&c, 3, none) == DFWS_CLI_USAGE, "no APP");
    char *novalue[] = {"dfws-asgi", "m:a", "--port"};
    CHECK_OR_RETURN(, parse(&c, 3, novalue) == DFWS_CLI_USAGE, "no value");
    char *mixed[] = {"dfws-asgi",       "-b", "::", "--websocket-timeout=30", "m:a", "-v0",
                     "--no-server-name"};
    CHECK_OR_RETURN(,
                    parse(&c, 7, mixed) == DFWS_CLI_OK && !strcmp(c.bind, "::") &&
                        c.websocket_timeout == 30 && c.verbosity == 0 && !c.server_name &&
                        !strcmp(c.app, "m:a"),
                    "mixed");
    char *help[] = {"dfws-asgi", "--help"};
    int saved = silence(1);
    int rc = parse(&c, 2, help);
    restore(1, saved);
    CHECK_OR_RETURN(, rc == DFWS_CLI_EXIT, "--help");
    check_pass();
}

/* --help and --help-markdown name every option (and its alias). */
static void test_help_lists_everything(void)
{
    for (int md = 0; md < 2; md++) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (md)
            dfws_options_markdown(f);
        else
            dfws_options_help(f);
        fclose(f);
        for (size_t i = 0; i < dfws_n_options; i++) {
            const dfws_option_t *o = &dfws_options[i];
            char flag[80];
            if (o->flags & DFWS_OPT_F_POSITIONAL)
                continue;
            snprintf(flag, sizeof(flag), "--%s%s", o->name, dfws_option_takes_value(o) ? " " : "");
            CHECK_OR_RETURN(, strstr(text, flag), "%s lacks %s", md ? "markdown" : "help", flag);
            CHECK_OR_RETURN(, o->help && o->help[0], "--%s has no help", o->name);
            if (o->short_flag) {
                snprintf(flag, sizeof(flag), md ? "`-%c`, " : "-%c, ", o->short_flag);
                CHECK_OR_RETURN(, strstr(text, flag), "lacks %s", flag);
            }
            if (o->alias && !md) {
                snprintf(flag, sizeof(flag), "--%s", o->alias);
                CHECK_OR_RETURN(, strstr(text, flag), "lacks %s", flag);
            }
        }
        if (!md) {
            /* no line wider than the terminal it is written for */
            for (char *line = text; *line;) {
                size_t n = strcspn(line, "\n");
                CHECK_OR_RETURN(, n <= 92, "a %zu-column line: %.*s", n, (int)n, line);
                line += n + (line[n] == '\n');
            }
        }
        free(text);
    }
    /* every row: a unique name, a section, a field inside dfws_cli_t */
    for (size_t i = 0; i < dfws_n_options; i++) {
        const dfws_option_t *o = &dfws_options[i];
        CHECK_OR_RETURN(, dfws_option_find(o->name) == o || o->key, "--%s found as another row",
                        o->name);
        CHECK_OR_RETURN(, (size_t)o->section < dfws_n_option_sections, "--%s section", o->name);
        CHECK_OR_RETURN(, o->offset < sizeof(dfws_cli_t), "--%s offset", o->name);
        CHECK_OR_RETURN(, !o->implies || dfws_option_find(o->implies), "--%s implies", o->name);
    }
    check_pass();
}

int main(void)
{
    test_defaults();
    test_every_option();
    test_bad_values();
    test_special_cases();
    test_checks();
    test_argv();
    test_help_lists_everything();
    return check_summary();
}
