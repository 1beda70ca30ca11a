/* The parser of dfws-asgi's options: generic per type, driven by the
 * declaration in server/options.c. getopt_long's tables are built from it,
 * and dfws_cli_set() sets one option by name for what has no argv (test
 * rigs, the options dict of dfws.testing). */
#include "cli.h"

#include "options.h"
#include "proxy.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int dfws_cli_usage_error(const char *msg)
{
    fprintf(stderr,
            "dfws-asgi: error: %s\n"
            "usage: dfws-asgi [options] APP   (see dfws-asgi --help)\n",
            msg);
    return DFWS_CLI_USAGE;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return DFWS_CLI_USAGE;
}

/* ---- values ---------------------------------------------------------------------- */

int dfws_cli_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out, int allow_negative)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isnan(v) || isinf(v))
        return -1;
    if (v < 0) {
        /* daphne spells "no limit" as -1 */
        if (!allow_negative)
            return -1;
        v = 0;
    }
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
        case '\0':
            break;
        case 's':
            unit = 1;
            end++;
            break;
        case 'm':
            unit = 60;
            end++;
            break;
        case 'h':
            unit = 3600;
            end++;
            break;
        case 'd':
            unit = 86400;
            end++;
            break;
        case 'w':
            unit = 7 * 86400;
            end++;
            break;
        default:
            return -1;
        }
        if (v > (1L << 40) / unit)
            return -1;
        total += v * unit;
        s = end;
    }
    *out = total;
    return 0;
}

/* uvicorn's spelling of booleans: 1 true, 0 false, -1 neither. */
static int parse_bool(const char *s)
{
    static const char *const yes[] = {"true", "1", "yes", "on", "True"};
    static const char *const no[] = {"false", "0", "no", "off", "False"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!strcmp(s, yes[i]))
            return 1;
        if (!strcmp(s, no[i]))
            return 0;
    }
    return -1;
}

/* "--port takes a number from 0 to 65535: x" and the like. */
static int bad_value(const dfws_option_t *o, const char *arg, char *err, size_t errlen)
{
    char what[160];
    switch (o->type) {
    case DFWS_OPT_INT:
    case DFWS_OPT_LONG:
        if (o->hi >= 1L << 30)
            snprintf(what, sizeof(what), "a whole number");
        else
            snprintf(what, sizeof(what), "a number from %ld to %ld", o->lo, o->hi);
        break;
    case DFWS_OPT_SIZE:
        if (o->metavar && !strcmp(o->metavar, "N")) /* a count kept in a size_t */
            snprintf(what, sizeof(what), "a whole number from %ld to %ld", o->lo, o->hi);
        else if (o->lo > 0)
            snprintf(what, sizeof(what), "a size in bytes, at least %ld", o->lo);
        else
            snprintf(what, sizeof(what), "a size in bytes");
        break;
    case DFWS_OPT_SECONDS:
        snprintf(what, sizeof(what), "a number of seconds");
        break;
    case DFWS_OPT_NUMBER:
        snprintf(what, sizeof(what), "a number, 0 or more");
        break;
    case DFWS_OPT_ENUM: {
        size_t n = 0;
        for (const char *const *c = o->choices; *c; c++)
            n += (size_t)snprintf(what + n, sizeof(what) - n, "%s%s",
                                  c == o->choices ? ""
                                  : c[1]          ? ", "
                                                  : " or ",
                                  *c);
        break;
    }
    case DFWS_OPT_OCTAL:
        snprintf(what, sizeof(what), "octal permissions, e.g. 660");
        break;
    case DFWS_OPT_DURATION:
        snprintf(what, sizeof(what), "seconds or a duration such as 30m, 12h, 7d");
        break;
    default:
        snprintf(what, sizeof(what), "true or false");
        break;
    }
    return fail(err, errlen, "--%s takes %s: %s", o->name, what, arg);
}

/* Applies `arg` to the field of `o`. `as_field`: a FLAG's value is the
 * field's (native_websockets=false), not the flag's (--no-native-websockets
 * true). `defaults`: no implied option. */
static int apply(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, int as_field,
                 int defaults, char *err, size_t errlen)
{
    void *f = dfws_option_field(cli, o);
    long v;
    double d;
    int b;
    err[0] = '\0';
    if (!arg && dfws_option_takes_value(o))
        return fail(err, errlen, "option --%s needs a value", o->name);
    switch (o->type) {
    case DFWS_OPT_STRING:
        if (o->check && o->check(cli, o, arg, err, errlen))
            return err[0] ? DFWS_CLI_USAGE : bad_value(o, arg, err, errlen);
        *(const char **)f = arg;
        break;
    case DFWS_OPT_INT:
    case DFWS_OPT_LONG:
    case DFWS_OPT_SIZE:
        if (dfws_cli_parse_long(arg, o->lo, o->hi, &v))
            return bad_value(o, arg, err, errlen);
        if (o->type == DFWS_OPT_INT)
            *(int *)f = (int)v;
        else if (o->type == DFWS_OPT_LONG)
            *(long *)f = v;
        else
            *(size_t *)f = (size_t)v;
        break;
    case DFWS_OPT_SECONDS:
    case DFWS_OPT_NUMBER:
        if (parse_double(arg, &d, (o->flags & DFWS_OPT_F_MINUS_ONE) != 0))
            return bad_value(o, arg, err, errlen);
        *(double *)f = d;
        break;
    case DFWS_OPT_ENUM:
        for (v = 0; o->choices[v] && strcmp(o->choices[v], arg); v++)
            ;
        if (!o->choices[v])
            return bad_value(o, arg, err, errlen);
        *(int *)f = (int)v;
        break;
    case DFWS_OPT_BOOL:
        if ((b = parse_bool(arg)) < 0)
            return bad_value(o, arg, err, errlen);
        *(int *)f = b;
        break;
    case DFWS_OPT_FLAG:
        b = arg ? parse_bool(arg) : 1;
        if (b < 0)
            return bad_value(o, arg, err, errlen);
        *(int *)f = as_field ? b : b ? (int)o->lo : !o->lo;
        break;
    case DFWS_OPT_CLEAR:
        b = arg ? parse_bool(arg) : 1;
        if (b < 0)
            return bad_value(o, arg, err, errlen);
        if (b)
            *(const char **)f = NULL;
        break;
    case DFWS_OPT_OCTAL:
        if (parse_mode(arg, (int *)f))
            return bad_value(o, arg, err, errlen);
        break;
    case DFWS_OPT_DURATION:
        if (parse_duration(arg, (long *)f))
            return bad_value(o, arg, err, errlen);
        break;
    case DFWS_OPT_LIST: {
        int *n = (int *)((char *)cli + o->count_offset);
        if (*n >= o->hi)
            return fail(err, errlen, "at most %ld --%s: %s", o->hi, o->name, arg);
        ((const char **)f)[(*n)++] = arg;
        break;
    }
    case DFWS_OPT_ACTION: {
        int rc = o->hook(cli, o, arg, err, errlen);
        if (rc == DFWS_CLI_EXIT)
            return rc;
        if (rc)
            return err[0] ? DFWS_CLI_USAGE : fail(err, errlen, "invalid --%s: %s", o->name, arg);
        break;
    }
    }
    if (o->implies && !defaults)
        return apply(cli, dfws_option_find(o->implies), NULL, 0, 0, err, errlen);
    return DFWS_CLI_OK;
}

/* ---- the API --------------------------------------------------------------------- */

void dfws_cli_defaults(dfws_cli_t *cli)
{
    char err[256];
    memset(cli, 0, sizeof(*cli));
    for (size_t i = 0; i < dfws_n_options; i++) {
        const dfws_option_t *o = &dfws_options[i];
        const char *def = o->def;
        const char *env = o->env ? getenv(o->env) : NULL;
        if (env && *env)
            def = env; /* refused by dfws_cli_check() when invalid */
        if (def) {
            if (apply(cli, o, def, 1, 1, err, sizeof(err)) && def == o->def) {
                fprintf(stderr, "dfws-asgi: bad default of --%s: %s\n", o->name, err);
                abort(); /* a mistake in options.c, caught by tests/c/test_cli.c */
            }
        } else if (o->flags & DFWS_OPT_F_UNSET) {
            void *f = dfws_option_field(cli, o);
            if (o->type == DFWS_OPT_SECONDS || o->type == DFWS_OPT_NUMBER)
                *(double *)f = -1;
            else
                *(int *)f = -1;
        }
    }
}

int dfws_cli_set(dfws_cli_t *cli, const char *name, const char *value, char *err, size_t errlen)
{
    const dfws_option_t *o = dfws_option_find(name);
    if (!o)
        return fail(err, errlen, "unrecognized option: %s", name);
    char key[64];
    const char *bare = name + strspn(name, "-");
    int as_field = 1;
    if (o->type == DFWS_OPT_FLAG) {
        /* by the flag's name: the flag's meaning; by the dict key: the field's */
        dfws_option_key(o, key, sizeof(key));
        as_field = 0;
        for (size_t i = 0;; i++) {
            char c = bare[i] == '-' ? '_' : bare[i];
            if (c != key[i])
                break;
            if (!c) {
                as_field = 1;
                break;
            }
        }
        if (!o->key)
            as_field = 0; /* the same thing: name and key are the flag's */
    }
    return apply(cli, o, value, as_field, 0, err, errlen);
}

int dfws_cli_check(const dfws_cli_t *cli, char *err, size_t errlen)
{
    if (!cli->app)
        return fail(err, errlen, "the APP argument is required (e.g. myproj.asgi:application)");
    if (cli->socket_mode >= 0 && !cli->unix_socket)
        return fail(err, errlen, "--socket-mode applies to a UNIX socket (-u PATH)");
    dfws_proxy_allow_t allow;
    char why[128];
    if (dfws_proxy_allow_parse(&allow, cli->forwarded_allow_ips, why, sizeof(why)))
        return fail(err, errlen, "--forwarded-allow-ips (or FORWARDED_ALLOW_IPS): %s", why);
    /* the static mounts pair up with their routes, and exist */
    if (cli->n_static_routes && !cli->n_static_mounts)
        return fail(err, errlen, "--static-path-route needs a --static-path-mount DIR");
    if (cli->n_static_mounts > 1 && cli->n_static_routes != cli->n_static_mounts)
        return fail(err, errlen,
                    "give one --static-path-route per --static-path-mount (they "
                    "pair up in order)");
    if (cli->n_static_mounts == 1 && cli->n_static_routes > 1)
        return fail(err, errlen, "give one --static-path-mount per --static-path-route");
    for (int i = 0; i < cli->n_static_routes; i++) {
        const char *r = cli->static_routes[i];
        if (r[0] != '/' || strspn(r, "/") == strlen(r) || strpbrk(r, "?%\\"))
            return fail(err, errlen,
                        "--static-path-route takes a path such as /static (not / "
                        "alone, no ? %% or \\): %s",
                        r);
    }
    for (int i = 0; i < cli->n_static_mounts; i++) {
        struct stat st;
        if (stat(cli->static_mounts[i], &st) || !S_ISDIR(st.st_mode))
            return fail(err, errlen, "--static-path-mount: not a directory: %s",
                        cli->static_mounts[i]);
    }
    return DFWS_CLI_OK;
}

/* getopt_long's tables, from the declaration: a long option's `val` is
 * 256 + its row. */
#define MAX_LONG_OPTIONS 160

int dfws_cli_parse(dfws_cli_t *cli, int argc, char **argv)
{
    struct option longopts[MAX_LONG_OPTIONS + 1];
    char shortopts[64] = ":";
    size_t nl = 0, ns = 1;
    for (size_t i = 0; i < dfws_n_options; i++) {
        const dfws_option_t *o = &dfws_options[i];
        if (o->flags & DFWS_OPT_F_POSITIONAL)
            continue;
        int has_arg = dfws_option_takes_value(o) ? required_argument : no_argument;
        for (int k = 0; k < 2; k++) {
            const char *name = k ? o->alias : o->name;
            if (name && nl < MAX_LONG_OPTIONS)
                longopts[nl++] = (struct option){name, has_arg, NULL, 256 + (int)i};
        }
        if (o->short_flag && ns + 3 < sizeof(shortopts)) {
            shortopts[ns++] = o->short_flag;
            if (has_arg == required_argument)
                shortopts[ns++] = ':';
        }
    }
    longopts[nl] = (struct option){NULL, 0, NULL, 0};
    shortopts[ns] = '\0';

    char err[512];
    dfws_cli_defaults(cli);
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const dfws_option_t *o = NULL;
        if (c >= 256 && (size_t)(c - 256) < dfws_n_options) {
            o = &dfws_options[c - 256];
        } else if (c != ':' && c != '?') {
            for (size_t i = 0; i < dfws_n_options && !o; i++)
                if (dfws_options[i].short_flag == c)
                    o = &dfws_options[i];
        }
        if (c == ':') {
            snprintf(err, sizeof(err), "option %s needs a value", argv[optind - 1]);
            return dfws_cli_usage_error(err);
        }
        if (!o) {
            snprintf(err, sizeof(err), "unrecognized option: %s", argv[optind - 1]);
            return dfws_cli_usage_error(err);
        }
        int rc = apply(cli, o, optarg, 0, 0, err, sizeof(err));
        if (rc == DFWS_CLI_EXIT)
            return rc;
        if (rc)
            return dfws_cli_usage_error(err);
    }
    if (optind + 1 < argc) {
        snprintf(err, sizeof(err), "unexpected argument: %s", argv[optind + 1]);
        return dfws_cli_usage_error(err);
    }
    if (optind < argc)
        cli->app = argv[optind];
    if (dfws_cli_check(cli, err, sizeof(err)))
        return dfws_cli_usage_error(err);
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
