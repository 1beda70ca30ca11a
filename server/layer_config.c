/*
 * dfws channel layer — configuration: redis:// URLs, the CHANNEL_LAYERS
 * JSON handed over by Python (or a test), and the deep copy a layer keeps.
 */
#include "layer_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fernet.h"
#include "layer_sentinel.h"
#include "text.h"

/* ---- configuration ------------------------------------------------------ */

static char *xstrndup(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

void dfws_layer_host_free(dfws_layer_host_t *h)
{
    free(h->host);
    free(h->unix_path);
    free(h->username);
    free(h->password);
    dfws_sentinel_config_free(h);
    memset(h, 0, sizeof(*h));
}

static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Percent-decode s[0:n] into a new string. */
static char *pct_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    size_t i, j = 0;
    if (o == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && dfws_hex_digit(s[i + 1]) >= 0 &&
            dfws_hex_digit(s[i + 2]) >= 0) {
            o[j++] = (char)(dfws_hex_digit(s[i + 1]) * 16 + dfws_hex_digit(s[i + 2]));
            i += 2;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    return o;
}

static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    char buf[32];
    char *end;
    long v;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int dfws_layer_host_parse_url(dfws_layer_host_t *h, const char *url, char *err, size_t errlen)
{
    const char *p, *netloc, *nl_end, *path, *path_end, *query, *at;
    int is_unix = 0, rc = DFWS_LAYER_EINVAL;

    memset(h, 0, sizeof(*h));
    h->port = 6379;
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "unix://", 7) == 0) {
        p = url + 7;
        is_unix = 1;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        return set_err(err, errlen, DFWS_LAYER_EUNSUPPORTED,
                       "redis host %s: rediss:// (TLS) is not supported by the C layer", url);
    } else {
        return set_err(err, errlen, DFWS_LAYER_EINVAL,
                       "redis host %s: URL must start with redis:// or unix://", url);
    }
    netloc = p;
    nl_end = netloc + strcspn(netloc, "/?#");
    path = nl_end;
    path_end = path + strcspn(path, "?#");
    query = *path_end == '?' ? path_end + 1 : NULL;

    /* userinfo: everything before the last '@' of the netloc */
    at = NULL;
    for (p = netloc; p < nl_end; p++)
        if (*p == '@')
            at = p;
    if (at != NULL) {
        const char *colon = memchr(netloc, ':', (size_t)(at - netloc));
        const char *uend = colon ? colon : at;
        if (uend > netloc && (h->username = pct_decode(netloc, (size_t)(uend - netloc))) == NULL)
            goto nomem;
        if (colon && at > colon + 1 &&
            (h->password = pct_decode(colon + 1, (size_t)(at - colon - 1))) == NULL)
            goto nomem;
        netloc = at + 1;
    }
    if (!is_unix) {
        const char *hend, *port = NULL;
        if (*netloc == '[') {
            hend = memchr(netloc, ']', (size_t)(nl_end - netloc));
            if (hend == NULL) {
                rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "redis host %s: bad IPv6 address",
                             url);
                goto fail;
            }
            h->host = xstrndup(netloc + 1, (size_t)(hend - netloc - 1));
            if (hend + 1 < nl_end && hend[1] == ':')
                port = hend + 2;
        } else {
            hend = memchr(netloc, ':', (size_t)(nl_end - netloc));
            if (hend == NULL)
                hend = nl_end;
            else
                port = hend + 1;
            h->host = hend > netloc ? pct_decode(netloc, (size_t)(hend - netloc))
                                    : strdup("localhost");
        }
        if (h->host == NULL)
            goto nomem;
        if (port != NULL && parse_int(port, (size_t)(nl_end - port), 1, 65535, &h->port) != 0) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "redis host %s: bad port", url);
            goto fail;
        }
        if (path_end - path > 1) {
            /* redis-py: int(path.replace("/", "")), ignored when not a number */
            char tmp[32];
            size_t j = 0;
            for (p = path; p < path_end && j < sizeof(tmp) - 1; p++)
                if (*p != '/')
                    tmp[j++] = *p;
            if (parse_int(tmp, j, 0, 1 << 20, &h->db) != 0)
                h->db = 0;
        }
    } else {
        if (path_end == path) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "redis host %s: unix URL without a path",
                         url);
            goto fail;
        }
        if ((h->unix_path = pct_decode(path, (size_t)(path_end - path))) == NULL)
            goto nomem;
    }
    while (query != NULL && *query && *query != '#') {
        const char *amp = query + strcspn(query, "&#");
        const char *eq = memchr(query, '=', (size_t)(amp - query));
        if (eq != NULL) {
            size_t kl = (size_t)(eq - query), vl = (size_t)(amp - eq - 1);
            if (kl == 2 && memcmp(query, "db", 2) == 0) {
                char *v = pct_decode(eq + 1, vl);
                int bad = v == NULL || parse_int(v, strlen(v), 0, 1 << 20, &h->db) != 0;
                free(v);
                if (bad) {
                    rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "redis host %s: bad db", url);
                    goto fail;
                }
            } else if (kl == 8 && memcmp(query, "password", 8) == 0 && h->password == NULL) {
                if ((h->password = pct_decode(eq + 1, vl)) == NULL)
                    goto nomem;
            } else if (kl == 8 && memcmp(query, "username", 8) == 0 && h->username == NULL) {
                if ((h->username = pct_decode(eq + 1, vl)) == NULL)
                    goto nomem;
            }
        }
        query = *amp == '&' ? amp + 1 : NULL;
    }
    return 0;
nomem:
    rc = set_err(err, errlen, DFWS_LAYER_ENOMEM, "out of memory");
fail:
    dfws_layer_host_free(h);
    return rc;
}

int dfws_layer_config_init(dfws_layer_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->backend = DFWS_LAYER_BACKEND_MEMORY;
    cfg->prefix = strdup("asgi");
    cfg->expiry = 60;
    cfg->group_expiry = 86400;
    cfg->capacity = 100;
    cfg->brpop_timeout = 5;
    cfg->hosts = calloc(1, sizeof(*cfg->hosts));
    if (cfg->prefix == NULL || cfg->hosts == NULL) {
        dfws_layer_config_free(cfg);
        return DFWS_LAYER_ENOMEM;
    }
    cfg->nhosts = 1;
    cfg->hosts[0].host = strdup("localhost");
    cfg->hosts[0].port = 6379;
    if (cfg->hosts[0].host == NULL) {
        dfws_layer_config_free(cfg);
        return DFWS_LAYER_ENOMEM;
    }
    return 0;
}

void dfws_layer_config_free(dfws_layer_config_t *cfg)
{
    size_t i;
    for (i = 0; i < cfg->nhosts; i++)
        dfws_layer_host_free(&cfg->hosts[i]);
    free(cfg->hosts);
    for (i = 0; i < cfg->ncapacity; i++)
        free(cfg->channel_capacity[i].pattern);
    free(cfg->channel_capacity);
    free(cfg->keys);
    free(cfg->prefix);
    free(cfg->backend_name);
    memset(cfg, 0, sizeof(*cfg));
}

int dfws_layer__config_copy(dfws_layer_config_t *dst, const dfws_layer_config_t *src)
{
    size_t i;
    memset(dst, 0, sizeof(*dst));
    dst->backend = src->backend;
    dst->expiry = src->expiry;
    dst->group_expiry = src->group_expiry;
    dst->capacity = src->capacity;
    dst->brpop_timeout = src->brpop_timeout > 0 ? src->brpop_timeout : 5;
    dst->log_fn = src->log_fn;
    dst->log_ud = src->log_ud;
    if ((src->backend_name && !(dst->backend_name = strdup(src->backend_name))) ||
        !(dst->prefix = strdup(src->prefix ? src->prefix : "asgi")))
        goto nomem;
    if (src->nhosts > 0) {
        if (!(dst->hosts = calloc(src->nhosts, sizeof(*dst->hosts))))
            goto nomem;
        dst->nhosts = src->nhosts;
        for (i = 0; i < src->nhosts; i++) {
            const dfws_layer_host_t *s = &src->hosts[i];
            dfws_layer_host_t *d = &dst->hosts[i];
            d->port = s->port;
            d->db = s->db;
            if ((s->host && !(d->host = strdup(s->host))) ||
                (s->unix_path && !(d->unix_path = strdup(s->unix_path))) ||
                (s->username && !(d->username = strdup(s->username))) ||
                (s->password && !(d->password = strdup(s->password))) ||
                dfws_sentinel_config_copy(d, s) != 0)
                goto nomem;
        }
    }
    if (src->ncapacity > 0) {
        if (!(dst->channel_capacity = calloc(src->ncapacity, sizeof(*dst->channel_capacity))))
            goto nomem;
        dst->ncapacity = src->ncapacity;
        for (i = 0; i < src->ncapacity; i++) {
            dst->channel_capacity[i] = src->channel_capacity[i];
            if (!(dst->channel_capacity[i].pattern = strdup(src->channel_capacity[i].pattern)))
                goto nomem;
        }
    }
    if (src->nkeys > 0) {
        if (!(dst->keys = malloc(src->nkeys * sizeof(*dst->keys))))
            goto nomem;
        memcpy(dst->keys, src->keys, src->nkeys * sizeof(*dst->keys));
        dst->nkeys = src->nkeys;
    }
    return 0;
nomem:
    dfws_layer_config_free(dst);
    return DFWS_LAYER_ENOMEM;
}

static int json_int_field(json_t *root, const char *name, int lo, int *out, char *err,
                          size_t errlen)
{
    json_t *v = json_object_get(root, name);
    double d;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return set_err(err, errlen, DFWS_LAYER_EINVAL, "%s must be a number", name);
    d = json_number_value(v);
    if (d < lo || d > 2147483647.0)
        return set_err(err, errlen, DFWS_LAYER_EINVAL, "%s out of range", name);
    *out = (int)d;
    return 0;
}

static int parse_host_json(dfws_layer_host_t *h, json_t *e, size_t idx, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    if (json_is_string(e))
        return dfws_layer_host_parse_url(h, json_string_value(e), err, errlen);
    if (json_is_array(e)) {
        json_t *host = json_array_get(e, 0), *port = json_array_get(e, 1);
        if (json_array_size(e) != 2 || !json_is_string(host) || !json_is_integer(port) ||
            json_integer_value(port) < 1 || json_integer_value(port) > 65535)
            return set_err(err, errlen, DFWS_LAYER_EINVAL, "hosts[%zu]: expected [host, port]",
                           idx);
        h->port = (int)json_integer_value(port);
        h->host = strdup(json_string_value(host));
        return h->host ? 0 : DFWS_LAYER_ENOMEM;
    }
    if (json_is_object(e)) {
        json_t *v;
        if (json_object_get(e, "master_name") || json_object_get(e, "sentinels"))
            return dfws_sentinel_config_parse(h, e, idx, err, errlen);
        if ((v = json_object_get(e, "address")) != NULL) {
            if (!json_is_string(v))
                return set_err(err, errlen, DFWS_LAYER_EINVAL,
                               "hosts[%zu].address must be a string", idx);
            return dfws_layer_host_parse_url(h, json_string_value(v), err, errlen);
        }
        h->port = 6379;
        if ((v = json_object_get(e, "path")) != NULL && json_is_string(v))
            h->unix_path = strdup(json_string_value(v));
        else
            h->host = strdup(json_is_string(v = json_object_get(e, "host")) ? json_string_value(v)
                                                                            : "localhost");
        if (json_is_integer(v = json_object_get(e, "port")))
            h->port = (int)json_integer_value(v);
        if (json_is_integer(v = json_object_get(e, "db")))
            h->db = (int)json_integer_value(v);
        if (json_is_string(v = json_object_get(e, "password")))
            h->password = strdup(json_string_value(v));
        if (json_is_string(v = json_object_get(e, "username")))
            h->username = strdup(json_string_value(v));
        if (json_is_true(json_object_get(e, "ssl")))
            return set_err(err, errlen, DFWS_LAYER_EUNSUPPORTED, "hosts[%zu]: TLS is not supported",
                           idx);
        if (h->host == NULL && h->unix_path == NULL)
            return DFWS_LAYER_ENOMEM;
        if (h->port < 1 || h->port > 65535)
            return set_err(err, errlen, DFWS_LAYER_EINVAL, "hosts[%zu]: bad port", idx);
        return 0;
    }
    return set_err(err, errlen, DFWS_LAYER_EINVAL,
                   "hosts[%zu]: expected a URL, [host, port] or object", idx);
}

int dfws_layer_config_parse_json(dfws_layer_config_t *cfg, const char *json, char *err,
                                 size_t errlen)
{
    json_error_t jerr;
    json_t *root, *v;
    int rc = 0;
    size_t i;

    if (err && errlen)
        err[0] = '\0';
    root = json_loads(json, 0, &jerr);
    if (root == NULL) {
        rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "layer config: invalid JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "layer config: expected a JSON object");
        goto out;
    }
    if ((v = json_object_get(root, "backend")) != NULL && json_is_string(v)) {
        free(cfg->backend_name);
        if (!(cfg->backend_name = strdup(json_string_value(v)))) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
    }
    if ((v = json_object_get(root, "kind")) != NULL) {
        const char *k = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(k, "redis") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_REDIS;
        else if (strcmp(k, "pubsub") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_PUBSUB;
        else if (strcmp(k, "memory") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_MEMORY;
        else {
            rc = set_err(err, errlen, DFWS_LAYER_EUNSUPPORTED,
                         "channel layer backend %s is not supported by dfws (kind %s)",
                         cfg->backend_name ? cfg->backend_name : "?", k);
            goto out;
        }
    } else if (cfg->backend_name != NULL) {
        if (strcmp(cfg->backend_name, "channels_redis.core.RedisChannelLayer") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_REDIS;
        else if (strcmp(cfg->backend_name, "channels_redis.pubsub.RedisPubSubChannelLayer") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_PUBSUB;
        else if (strcmp(cfg->backend_name, "channels.layers.InMemoryChannelLayer") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_MEMORY;
        else {
            rc = set_err(err, errlen, DFWS_LAYER_EUNSUPPORTED,
                         "channel layer backend %s is not supported by dfws", cfg->backend_name);
            goto out;
        }
    }
    if ((v = json_object_get(root, "prefix")) != NULL && !json_is_null(v)) {
        if (!json_is_string(v)) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "prefix must be a string");
            goto out;
        }
        free(cfg->prefix);
        if (!(cfg->prefix = strdup(json_string_value(v)))) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
    }
    if ((rc = json_int_field(root, "expiry", 1, &cfg->expiry, err, errlen)) != 0 ||
        (rc = json_int_field(root, "group_expiry", 1, &cfg->group_expiry, err, errlen)) != 0 ||
        (rc = json_int_field(root, "capacity", 1, &cfg->capacity, err, errlen)) != 0 ||
        (rc = json_int_field(root, "brpop_timeout", 1, &cfg->brpop_timeout, err, errlen)) != 0)
        goto out;
    if ((v = json_object_get(root, "hosts")) != NULL && !json_is_null(v) &&
        !(json_is_array(v) && json_array_size(v) == 0)) {
        dfws_layer_host_t *hosts;
        if (!json_is_array(v)) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                         "hosts must be a list of Redis hosts, even if there is only one");
            goto out;
        }
        hosts = calloc(json_array_size(v), sizeof(*hosts));
        if (hosts == NULL) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
        for (i = 0; i < cfg->nhosts; i++)
            dfws_layer_host_free(&cfg->hosts[i]);
        free(cfg->hosts);
        cfg->hosts = hosts;
        cfg->nhosts = 0;
        for (i = 0; i < json_array_size(v); i++) {
            rc = parse_host_json(&cfg->hosts[i], json_array_get(v, i), i, err, errlen);
            cfg->nhosts = i + 1;
            if (rc != 0)
                goto out;
        }
    }
    if ((v = json_object_get(root, "channel_capacity")) != NULL && !json_is_null(v)) {
        if (!json_is_array(v)) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                         "channel_capacity must be a list of rules");
            goto out;
        }
        cfg->channel_capacity = calloc(json_array_size(v) + 1, sizeof(*cfg->channel_capacity));
        if (cfg->channel_capacity == NULL) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
        for (i = 0; i < json_array_size(v); i++) {
            json_t *r = json_array_get(v, i), *g = json_object_get(r, "glob"),
                   *re = json_object_get(r, "regex"), *c = json_object_get(r, "capacity");
            dfws_layer_capacity_rule_t *rule = &cfg->channel_capacity[i];
            if (!json_is_integer(c) || json_integer_value(c) < 0 ||
                json_integer_value(c) > INT32_MAX || !(json_is_string(g) || json_is_string(re))) {
                rc = set_err(
                    err, errlen, DFWS_LAYER_EINVAL,
                    "channel_capacity[%zu]: expected {\"glob\"|\"regex\": str, \"capacity\": int}",
                    i);
                goto out;
            }
            rule->kind = json_is_string(g) ? DFWS_LAYER_PATTERN_GLOB : DFWS_LAYER_PATTERN_REGEX;
            rule->capacity = (int)json_integer_value(c);
            rule->pattern = strdup(json_string_value(json_is_string(g) ? g : re));
            cfg->ncapacity = i + 1;
            if (rule->pattern == NULL) {
                rc = DFWS_LAYER_ENOMEM;
                goto out;
            }
            if (rule->kind == DFWS_LAYER_PATTERN_REGEX) {
                regex_t tmp;
                if (regcomp(&tmp, rule->pattern, REG_EXTENDED | REG_NOSUB) != 0) {
                    rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                                 "channel_capacity[%zu]: regex %s is not a POSIX extended regex", i,
                                 rule->pattern);
                    goto out;
                }
                regfree(&tmp);
            }
        }
    }
    if ((v = json_object_get(root, "symmetric_encryption_keys")) != NULL && !json_is_null(v) &&
        !(json_is_array(v) && json_array_size(v) == 0)) {
        if (!json_is_array(v)) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                         "symmetric_encryption_keys must be a list of possible keys");
            goto out;
        }
        cfg->keys = calloc(json_array_size(v), sizeof(*cfg->keys));
        if (cfg->keys == NULL) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
        for (i = 0; i < json_array_size(v); i++) {
            json_t *k = json_array_get(v, i), *b;
            if (json_is_string(k)) {
                dfws_fernet_key_from_secret(&cfg->keys[i], json_string_value(k),
                                            json_string_length(k));
            } else if (json_is_object(k) && json_is_string(b = json_object_get(k, "base64"))) {
                unsigned char *raw;
                size_t rawlen;
                if (dfws_base64_decode(json_string_value(b), json_string_length(b), &raw,
                                       &rawlen) != 0) {
                    rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                                 "symmetric_encryption_keys[%zu]: bad base64", i);
                    goto out;
                }
                dfws_fernet_key_from_secret(&cfg->keys[i], raw, rawlen);
                free(raw);
            } else {
                rc = set_err(
                    err, errlen, DFWS_LAYER_EINVAL,
                    "symmetric_encryption_keys[%zu]: expected a string or {\"base64\": ...}", i);
                goto out;
            }
            cfg->nkeys = i + 1;
        }
    }
out:
    if (root != NULL)
        json_decref(root);
    if (rc != 0) {
        /* The caller reports what it got in err; without a buffer the reason
         * would be lost, so it goes to the default log. */
        if (err == NULL || errlen == 0)
            dfws_layer__log(NULL, DFWS_LOG_ERROR, "%s", dfws_layer_strerror(rc));
        dfws_layer_config_free(cfg);
        dfws_layer_config_init(cfg);
    }
    return rc;
}
