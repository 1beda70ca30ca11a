/*
 * dfws channel layer — the base both backends share: the local listener
 * registry, the deferred-completion queue, the log hook, closing, and the
 * public entry points that validate their arguments before the backend's
 * ops run. Names and randomness are in layer_names.c, the msgpack subset in
 * layer_msgpack.c, configuration parsing in layer_config.c.
 */
#include "layer_int.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dfws_layer_strerror(int code)
{
    switch (code) {
    case DFWS_LAYER_OK:
        return "ok";
    case DFWS_LAYER_EINVAL:
        return "invalid argument";
    case DFWS_LAYER_EFULL:
        return "channel full";
    case DFWS_LAYER_EIO:
        return "redis unavailable or command failed";
    case DFWS_LAYER_ENOMEM:
        return "out of memory";
    case DFWS_LAYER_ECLOSED:
        return "channel layer closed";
    case DFWS_LAYER_EEXIST:
        return "channel already has a listener";
    case DFWS_LAYER_ENOENT:
        return "no listener for channel";
    case DFWS_LAYER_EUNSUPPORTED:
        return "unsupported channel layer configuration";
    default:
        return "unknown error";
    }
}

/* ---- logging ----------------------------------------------------------- */

void dfws_layer_set_log(dfws_layer_t *l, dfws_layer_log_fn fn, void *ud)
{
    l->log_fn = fn;
    l->log_ud = ud;
}

void dfws_layer__log(const dfws_layer_t *l, int level, const char *fmt, ...)
{
    dfws_layer_log_fn fn = l != NULL ? l->log_fn : NULL;
    char line[1024];
    va_list ap;

    if (fn == NULL && level < DFWS_LOG_INFO)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (fn != NULL)
        fn(l->log_ud, level, line);
    else
        fprintf(stderr, "dfws.layer: %s\n", line);
}

/* ---- base layer --------------------------------------------------------- */

int dfws_layer__init(dfws_layer_t *l, uv_loop_t *loop, const dfws_layer_config_t *cfg,
                     const dfws_layer_ops_t *ops)
{
    size_t i;
    int rc;

    l->ops = ops;
    l->loop = loop;
    l->log_fn = cfg->log_fn;
    l->log_ud = cfg->log_ud;
    dfws_map_init(&l->listeners);
    if ((rc = dfws_layer__config_copy(&l->cfg, cfg)) != 0)
        return rc;
    if (l->cfg.ncapacity > 0) {
        l->regs = calloc(l->cfg.ncapacity, sizeof(*l->regs));
        if (l->regs == NULL) {
            dfws_layer_config_free(&l->cfg);
            return DFWS_LAYER_ENOMEM;
        }
        for (i = 0; i < l->cfg.ncapacity; i++) {
            dfws_layer_capacity_rule_t *r = &l->cfg.channel_capacity[i];
            if (r->kind == DFWS_LAYER_PATTERN_REGEX &&
                regcomp(&l->regs[i], r->pattern, REG_EXTENDED) != 0) {
                dfws_layer__log(l, DFWS_LOG_ERROR, "channel_capacity regex %s does not compile",
                                r->pattern);
                while (i-- > 0)
                    if (l->cfg.channel_capacity[i].kind == DFWS_LAYER_PATTERN_REGEX)
                        regfree(&l->regs[i]);
                free(l->regs);
                l->regs = NULL;
                dfws_layer_config_free(&l->cfg);
                return DFWS_LAYER_EINVAL;
            }
        }
    }
    if ((rc = dfws_layer__uuid4_hex(l->client_prefix)) != 0) {
        dfws_layer__fini(l);
        return rc;
    }
    return 0;
}

static void free_listener(void *ctx, const char *key, size_t klen, void *value)
{
    (void)ctx;
    (void)key;
    (void)klen;
    free(value);
}

void dfws_layer__fini(dfws_layer_t *l)
{
    size_t i;
    dfws_layer__history_free(l);
    dfws_map_foreach(&l->listeners, free_listener, NULL);
    dfws_map_free(&l->listeners);
    if (l->regs != NULL) {
        for (i = 0; i < l->cfg.ncapacity; i++)
            if (l->cfg.channel_capacity[i].kind == DFWS_LAYER_PATTERN_REGEX)
                regfree(&l->regs[i]);
        free(l->regs);
        l->regs = NULL;
    }
    dfws_layer_config_free(&l->cfg);
}

static void run_deferred(dfws_layer_t *l)
{
    /* Take the current list: callbacks queued by these callbacks wait for
     * the next iteration. */
    dfws_layer_defer_t *d = l->defer_head;
    l->defer_head = l->defer_tail = NULL;
    while (d != NULL) {
        dfws_layer_defer_t *next = d->next;
        d->done(d->ud, d->status);
        free(d);
        d = next;
    }
}

static void on_idle(uv_idle_t *h)
{
    dfws_layer_t *l = h->data;
    int again = 0;
    if (l->backend_wants_idle && l->ops->on_idle != NULL) {
        l->backend_wants_idle = 0;
        l->ops->on_idle(l);
    }
    if (l->defer_head != NULL)
        run_deferred(l);
    again = l->backend_wants_idle || l->defer_head != NULL;
    if (!again && l->idle_active && !l->closing) {
        uv_idle_stop(&l->idle);
        l->idle_active = 0;
    }
}

int dfws_layer__start(dfws_layer_t *l)
{
    int rc = uv_idle_init(l->loop, &l->idle);
    if (rc != 0)
        return DFWS_LAYER_EIO;
    l->idle.data = l;
    return 0;
}

void dfws_layer__wake(dfws_layer_t *l)
{
    l->backend_wants_idle = 1;
    if (!l->idle_active && !l->closing) {
        uv_idle_start(&l->idle, on_idle);
        l->idle_active = 1;
    }
}

void dfws_layer__complete(dfws_layer_t *l, dfws_layer_done_cb done, void *ud, int status)
{
    dfws_layer_defer_t *d;
    if (done == NULL)
        return;
    d = malloc(sizeof(*d));
    if (d == NULL) {
        /* Cannot defer: better late-binding than a lost completion. */
        dfws_layer__log(l, DFWS_LOG_ERROR, "out of memory queueing a completion; calling it now");
        done(ud, status);
        return;
    }
    d->next = NULL;
    d->done = done;
    d->ud = ud;
    d->status = status;
    if (l->defer_tail)
        l->defer_tail->next = d;
    else
        l->defer_head = d;
    l->defer_tail = d;
    if (!l->idle_active && !l->closing) {
        uv_idle_start(&l->idle, on_idle);
        l->idle_active = 1;
    }
}

void dfws_layer__release(dfws_layer_t *l)
{
    dfws_layer_closed_cb closed;
    void *ud;

    if (--l->pending_closes > 0)
        return;
    /* Completions queued before or during closing. */
    while (l->defer_head != NULL)
        run_deferred(l);
    closed = l->closed_cb;
    ud = l->closed_ud;
    l->ops->destroy(l);
    dfws_layer__fini(l);
    free(l);
    if (closed)
        closed(ud);
}

static void on_idle_closed(uv_handle_t *h)
{
    dfws_layer__release(h->data);
}

void dfws_layer_close(dfws_layer_t *l, dfws_layer_closed_cb closed, void *ud)
{
    if (l == NULL || l->closing)
        return;
    l->closing = 1;
    l->closed_cb = closed;
    l->closed_ud = ud;
    dfws_map_foreach(&l->listeners, free_listener, NULL);
    dfws_map_free(&l->listeners);
    l->pending_closes++; /* held until the backend has started closing */
    l->pending_closes++;
    uv_close((uv_handle_t *)&l->idle, on_idle_closed);
    l->ops->close(l);
    dfws_layer__release(l);
}

int dfws_layer_new(uv_loop_t *loop, const dfws_layer_config_t *cfg, dfws_layer_t **out)
{
    if (cfg->backend == DFWS_LAYER_BACKEND_REDIS)
        return dfws_layer_redis_new(loop, cfg, out);
    if (cfg->backend == DFWS_LAYER_BACKEND_PUBSUB)
        return dfws_layer_pubsub_new(loop, cfg, out);
    if (cfg->backend == DFWS_LAYER_BACKEND_MEMORY)
        return dfws_layer_memory_new(loop, cfg, out);
    return DFWS_LAYER_EUNSUPPORTED;
}

int dfws_layer_state(const dfws_layer_t *l, char *why, size_t whylen)
{
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    return l->ops->state != NULL ? l->ops->state(l, why, whylen) : DFWS_LAYER_UP;
}

const char *dfws_layer_client_prefix(const dfws_layer_t *l)
{
    return l->client_prefix;
}

int dfws_layer_new_channel(dfws_layer_t *l, char *buf, size_t buflen)
{
    char id[33];
    int n, rc;
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (l->ops->new_channel != NULL)
        return l->ops->new_channel(l, buf, buflen);
    if ((rc = dfws_layer__uuid4_hex(id)) != 0)
        return rc;
    n = snprintf(buf, buflen, "specific.%s!%s", l->client_prefix, id);
    return n < 0 || (size_t)n >= buflen ? DFWS_LAYER_EINVAL : 0;
}

const dfws_layer_listener_t *dfws_layer__listener(const dfws_layer_t *l, const char *channel,
                                                  size_t len)
{
    return dfws_map_get(&l->listeners, channel, len);
}

int dfws_layer_listen(dfws_layer_t *l, const char *channel, dfws_layer_deliver_cb cb, void *ud)
{
    dfws_layer_listener_t *li;
    size_t n;
    int rc;

    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (cb == NULL || !dfws_layer_valid_channel_name(channel)) {
        dfws_layer__log(l, DFWS_LOG_WARNING, "listen: invalid channel name %.120s",
                        channel ? channel : "(null)");
        return DFWS_LAYER_EINVAL;
    }
    n = strlen(channel);
    if (dfws_map_get(&l->listeners, channel, n) != NULL)
        return DFWS_LAYER_EEXIST;
    li = malloc(sizeof(*li));
    if (li == NULL)
        return DFWS_LAYER_ENOMEM;
    li->cb = cb;
    li->ud = ud;
    if (dfws_map_put(&l->listeners, channel, n, li) != 0) {
        free(li);
        return DFWS_LAYER_ENOMEM;
    }
    if ((rc = l->ops->listen(l, channel)) != 0) {
        free(dfws_map_del(&l->listeners, channel, n));
        return rc;
    }
    return 0;
}

int dfws_layer_unlisten(dfws_layer_t *l, const char *channel)
{
    void *li;
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (channel == NULL)
        return DFWS_LAYER_EINVAL;
    li = dfws_map_del(&l->listeners, channel, strlen(channel));
    if (li == NULL)
        return DFWS_LAYER_ENOENT;
    free(li);
    l->ops->unlisten(l, channel);
    return 0;
}

int dfws_layer_send(dfws_layer_t *l, const char *channel, const char *mp, size_t len,
                    dfws_layer_done_cb done, void *ud)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!dfws_layer_valid_channel_name(channel)) {
        dfws_layer__log(l, DFWS_LOG_WARNING, "send: invalid channel name %.120s",
                        channel ? channel : "(null)");
        return DFWS_LAYER_EINVAL;
    }
    if (dfws_layer_msg_check(mp, len) != 0) {
        dfws_layer__log(l, DFWS_LOG_WARNING,
                        "send to %s: message is not a msgpack map with string keys "
                        "(or contains __asgi_channel__)",
                        channel);
        return DFWS_LAYER_EINVAL;
    }
    return l->ops->send(l, channel, mp, len, done, ud);
}

int dfws_layer_group_add(dfws_layer_t *l, const char *group, const char *channel)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!dfws_layer_valid_group_name(group) || !dfws_layer_valid_channel_name(channel)) {
        dfws_layer__log(l, DFWS_LOG_WARNING, "group_add: invalid group %.120s or channel %.120s",
                        group ? group : "(null)", channel ? channel : "(null)");
        return DFWS_LAYER_EINVAL;
    }
    return l->ops->group_add(l, group, channel);
}

int dfws_layer_group_discard(dfws_layer_t *l, const char *group, const char *channel)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!dfws_layer_valid_group_name(group) || !dfws_layer_valid_channel_name(channel))
        return DFWS_LAYER_EINVAL;
    return l->ops->group_discard(l, group, channel);
}

int dfws_layer_group_send(dfws_layer_t *l, const char *group, const char *mp, size_t len,
                          dfws_layer_done_cb done, void *ud)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!dfws_layer_valid_group_name(group)) {
        dfws_layer__log(l, DFWS_LOG_WARNING, "group_send: invalid group name %.120s",
                        group ? group : "(null)");
        return DFWS_LAYER_EINVAL;
    }
    if (dfws_layer_msg_check(mp, len) != 0) {
        dfws_layer__log(l, DFWS_LOG_WARNING,
                        "group_send to %s: message is not a msgpack map with string "
                        "keys (or contains __asgi_channel__)",
                        group);
        return DFWS_LAYER_EINVAL;
    }
    return l->ops->group_send(l, group, mp, len, done, ud);
}

int dfws_layer_flush(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    return l->ops->flush(l, done, ud);
}

int dfws_layer_sync(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    return l->ops->sync(l, done, ud);
}

void dfws_layer_get_stats(const dfws_layer_t *l, dfws_layer_stats_t *st)
{
    *st = l->stats;
}

int dfws_layer_capacity_for(const dfws_layer_t *l, const char *channel)
{
    size_t i;
    for (i = 0; i < l->cfg.ncapacity; i++) {
        const dfws_layer_capacity_rule_t *r = &l->cfg.channel_capacity[i];
        if (r->kind == DFWS_LAYER_PATTERN_GLOB) {
            if (fnmatch(r->pattern, channel, FNM_NOESCAPE) == 0)
                return r->capacity;
        } else {
            regmatch_t m;
            if (regexec(&l->regs[i], channel, 1, &m, 0) == 0 && m.rm_so == 0)
                return r->capacity;
        }
    }
    return l->cfg.capacity;
}
