/* Histories of topic groups: the in-process store of the memory layer, and
 * the layer-level append-and-send / read (memory or Redis). See history.h
 * and docs/recovery.md. */
#include "history.h"
#include "layer_int.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dfws_history_result_free(dfws_history_result_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->items[i]);
    free(r->items);
    free(r->lens);
    memset(r, 0, sizeof(*r));
}

int dfws_history_valid_epoch(const char *s, size_t len)
{
    if (len != DFWS_HISTORY_EPOCH_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int dfws_history_final_json(const char *msg, size_t len, const char *group, const char *epoch,
                            uint64_t seq, char **out, size_t *olen)
{
    /* the same splice as history_append.lua: everything before the last
     * '}', a comma unless the object is empty, the two fields, '}' */
    size_t end = len;
    while (end > 0 && (msg[end - 1] == ' ' || msg[end - 1] == '\n' || msg[end - 1] == '\r' ||
                       msg[end - 1] == '\t'))
        end--;
    if (end < 2 || msg[end - 1] != '}')
        return -1;
    size_t body = end - 1, k = body;
    while (k > 0 &&
           (msg[k - 1] == ' ' || msg[k - 1] == '\n' || msg[k - 1] == '\r' || msg[k - 1] == '\t'))
        k--;
    int comma = !(k > 0 && msg[k - 1] == '{');
    char tail[160];
    int tl = snprintf(tail, sizeof(tail), "%s\"topic\":\"", comma ? "," : "");
    size_t glen = strlen(group);
    char pos[64];
    int pl = snprintf(pos, sizeof(pos), "\",\"pos\":\"%s-%" PRIu64 "\"}", epoch, seq);
    size_t n = body + (size_t)tl + glen + (size_t)pl;
    char *o = malloc(n + 1);
    if (!o)
        return -1;
    memcpy(o, msg, body);
    memcpy(o + body, tail, (size_t)tl);
    memcpy(o + body + tl, group, glen);
    memcpy(o + body + tl + glen, pos, (size_t)pl);
    o[n] = 0;
    *out = o;
    *olen = n;
    return 0;
}

/* ---- the in-process store ------------------------------------------------ */

typedef struct hentry_s {
    uint64_t ms;
    uint64_t offset;
    char *json;
    size_t len;
} hentry_t;

typedef struct hgroup_s {
    char epoch[DFWS_HISTORY_EPOCH_LEN + 1];
    uint64_t seq;
    uint64_t last_write_ms;
    hentry_t *ring;     /* st->size entries */
    size_t head, count; /* oldest at ring[head] */
} hgroup_t;

struct dfws_history_store_s {
    size_t size;
    uint64_t ttl_ms;
    dfws_map_t groups; /* group name -> hgroup_t* (owned) */
    uint64_t last_sweep_ms;
};

dfws_history_store_t *dfws_history_store_new(size_t size, unsigned ttl_s)
{
    if (!size)
        return NULL;
    dfws_history_store_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->size = size;
    st->ttl_ms = (uint64_t)ttl_s * 1000;
    dfws_map_init(&st->groups);
    return st;
}

static void hgroup_free(hgroup_t *g, size_t size)
{
    for (size_t i = 0; i < g->count; i++)
        free(g->ring[(g->head + i) % size].json);
    free(g->ring);
    free(g);
}

static void free_group_cb(void *ctx, const char *key, size_t klen, void *value)
{
    (void)key, (void)klen;
    hgroup_free(value, ((dfws_history_store_t *)ctx)->size);
}

void dfws_history_store_free(dfws_history_store_t *st)
{
    if (!st)
        return;
    dfws_map_foreach(&st->groups, free_group_cb, st);
    dfws_map_free(&st->groups);
    free(st);
}

size_t dfws_history_store_groups(const dfws_history_store_t *st)
{
    return st->groups.count;
}

/* Drops the messages older than the TTL (the oldest first: times grow with
 * offsets in one process). */
static void prune(dfws_history_store_t *st, hgroup_t *g, uint64_t now_ms)
{
    while (g->count) {
        hentry_t *e = &g->ring[g->head];
        if (now_ms < e->ms + st->ttl_ms)
            break;
        free(e->json);
        e->json = NULL;
        g->head = (g->head + 1) % st->size;
        g->count--;
    }
}

static void sweep_one(void *ctx, const char *key, size_t klen, void *value)
{
    dfws_history_store_t *st = ctx;
    hgroup_t *g = value;
    uint64_t now_ms = st->last_sweep_ms;
    prune(st, g, now_ms);
    if (!g->count && now_ms >= g->last_write_ms + (uint64_t)DFWS_HISTORY_META_TTL * 1000) {
        dfws_map_del(&st->groups, key, klen); /* safe inside foreach */
        hgroup_free(g, st->size);
    }
}

/* Every group's expired messages go, and the groups whose meta outlived
 * DFWS_HISTORY_META_TTL: at most once a second, from append. */
static void sweep(dfws_history_store_t *st, uint64_t now_ms)
{
    if (now_ms < st->last_sweep_ms + 1000)
        return;
    st->last_sweep_ms = now_ms;
    dfws_map_foreach(&st->groups, sweep_one, st);
}

int dfws_history_store_append(dfws_history_store_t *st, const char *group,
                              const char *epoch_candidate, const char *msg, size_t len,
                              uint64_t now_ms, char **final, size_t *flen)
{
    size_t glen = strlen(group);
    sweep(st, now_ms);
    hgroup_t *g = dfws_map_get(&st->groups, group, glen);
    if (!g) {
        if (!dfws_history_valid_epoch(epoch_candidate, strlen(epoch_candidate)))
            return -1;
        /* a message that cannot be written creates no history */
        if (dfws_history_final_json(msg, len, group, epoch_candidate, 1, final, flen))
            return -1;
        free(*final);
        *final = NULL;
        if (!(g = calloc(1, sizeof(*g))) || !(g->ring = calloc(st->size, sizeof(*g->ring)))) {
            free(g);
            return -1;
        }
        memcpy(g->epoch, epoch_candidate, DFWS_HISTORY_EPOCH_LEN);
        if (dfws_map_put(&st->groups, group, glen, g)) {
            hgroup_free(g, st->size);
            return -1;
        }
    }
    if (dfws_history_final_json(msg, len, group, g->epoch, g->seq + 1, final, flen))
        return -1;
    char *copy = malloc(*flen + 1);
    if (!copy) {
        free(*final);
        *final = NULL;
        return -1;
    }
    memcpy(copy, *final, *flen + 1);
    g->seq++;
    g->last_write_ms = now_ms;
    if (g->count == st->size) { /* full: the oldest goes */
        free(g->ring[g->head].json);
        g->head = (g->head + 1) % st->size;
        g->count--;
    }
    hentry_t *e = &g->ring[(g->head + g->count) % st->size];
    e->ms = now_ms;
    e->offset = g->seq;
    e->json = copy;
    e->len = *flen;
    g->count++;
    return 0;
}

int dfws_history_store_read(dfws_history_store_t *st, const char *group, const char *epoch,
                            uint64_t offset, size_t max, uint64_t now_ms,
                            dfws_history_result_t *out)
{
    memset(out, 0, sizeof(*out));
    hgroup_t *g = dfws_map_get(&st->groups, group, strlen(group));
    if (!g)
        return 0;
    out->has_meta = 1;
    memcpy(out->epoch, g->epoch, sizeof(out->epoch));
    out->seq = g->seq;
    if (strcmp(epoch, g->epoch))
        return 0;
    prune(st, g, now_ms);
    size_t n = 0;
    for (size_t i = 0; i < g->count; i++)
        if (g->ring[(g->head + i) % st->size].offset > offset)
            n++;
    if (n > max)
        n = max;
    if (!n)
        return 0;
    out->items = calloc(n, sizeof(*out->items));
    out->lens = calloc(n, sizeof(*out->lens));
    if (!out->items || !out->lens)
        goto oom;
    for (size_t i = 0; i < g->count && out->n < n; i++) {
        hentry_t *e = &g->ring[(g->head + i) % st->size];
        if (e->offset <= offset)
            continue;
        if (!(out->items[out->n] = malloc(e->len + 1)))
            goto oom;
        memcpy(out->items[out->n], e->json, e->len + 1);
        out->lens[out->n++] = e->len;
    }
    return 0;
oom:
    dfws_history_result_free(out);
    return -1;
}

/* ---- the layer's history --------------------------------------------------- */

struct dfws_layer_history_s {
    size_t size;
    unsigned ttl;
    char *append_lua, *read_lua; /* Redis backends */
    dfws_history_store_t *store; /* memory backend */
};

void dfws_layer__history_free(dfws_layer_t *l)
{
    dfws_layer_history_t *h = l->history;
    if (!h)
        return;
    dfws_history_store_free(h->store);
    free(h->append_lua);
    free(h->read_lua);
    free(h);
    l->history = NULL;
}

int dfws_layer_history_configure(dfws_layer_t *l, size_t size, unsigned ttl, const char *append_lua,
                                 const char *read_lua)
{
    dfws_layer_history_t *old = l->history;
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (old && old->size == size && old->ttl == ttl &&
        (old->store || (append_lua && read_lua && !strcmp(old->append_lua, append_lua) &&
                        !strcmp(old->read_lua, read_lua))))
        return 0; /* the same settings again: the history stays */
    dfws_layer__history_free(l);
    if (!size)
        return 0;
    if (!l->ops->command && l->cfg.backend != DFWS_LAYER_BACKEND_MEMORY)
        return DFWS_LAYER_EUNSUPPORTED;
    dfws_layer_history_t *h = calloc(1, sizeof(*h));
    if (!h)
        return DFWS_LAYER_ENOMEM;
    h->size = size;
    h->ttl = ttl;
    if (l->ops->command) {
        if (!append_lua || !read_lua || !(h->append_lua = strdup(append_lua)) ||
            !(h->read_lua = strdup(read_lua))) {
            free(h->append_lua);
            free(h);
            return append_lua && read_lua ? DFWS_LAYER_ENOMEM : DFWS_LAYER_EINVAL;
        }
    } else if (!(h->store = dfws_history_store_new(size, ttl))) {
        free(h);
        return DFWS_LAYER_ENOMEM;
    }
    l->history = h;
    return 0;
}

size_t dfws_layer_history_size(const dfws_layer_t *l)
{
    return l->history ? l->history->size : 0;
}

static uint64_t now_ms(void)
{
    return (uint64_t)(dfws_layer__now() * 1000.0);
}

static int keys_of(const dfws_layer_t *l, const char *group, char *zkey, char *mkey, size_t n)
{
    int a = snprintf(zkey, n, "%s:hist:%s", l->cfg.prefix, group);
    int b = snprintf(mkey, n, "%s:hist:%s:m", l->cfg.prefix, group);
    return a < 0 || b < 0 || (size_t)a >= n || (size_t)b >= n ? -1 : 0;
}

/* {"type": "ws_message", "message": text} as msgpack, group_sent. */
static int send_text(dfws_layer_t *l, const char *group, const char *text, size_t len,
                     dfws_layer_done_cb done, void *ud)
{
    dfws_buf_t b = {0};
    int err = 0;
    dfws_mp_put_map_header(&b, 2, &err);
    dfws_mp_put_str(&b, "type", 4, &err);
    dfws_mp_put_str(&b, "ws_message", 10, &err);
    dfws_mp_put_str(&b, "message", 7, &err);
    dfws_mp_put_str(&b, text, len, &err);
    int rc = err ? DFWS_LAYER_ENOMEM : dfws_layer_group_send(l, group, b.base, b.len, done, ud);
    dfws_buf_free(&b);
    return rc;
}

typedef struct hsend_s {
    dfws_layer_t *l;
    char *group;
    char *json;
    size_t len;
    dfws_layer_done_cb done;
    void *ud;
} hsend_t;

static void hsend_free(hsend_t *s)
{
    free(s->group);
    free(s->json);
    free(s);
}

static void on_append_reply(void *ud, redisReply *rep)
{
    hsend_t *s = ud;
    int rc;
    if (rep && rep->type == REDIS_REPLY_STRING) {
        rc = send_text(s->l, s->group, rep->str, rep->len, s->done, s->ud);
    } else {
        /* the message still goes, without a position: a window misses
         * nothing live because history could not be written */
        dfws_layer__log(s->l, DFWS_LOG_WARNING,
                        "history of %s not written (%s); message sent without "
                        "a position",
                        s->group,
                        !rep                             ? "Redis unreachable"
                        : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                         : "unexpected reply");
        rc = s->l->closing ? DFWS_LAYER_ECLOSED
                           : send_text(s->l, s->group, s->json, s->len, s->done, s->ud);
    }
    if (rc && s->done)
        s->done(s->ud, rc);
    hsend_free(s);
}

int dfws_layer_history_send(dfws_layer_t *l, const char *group, const char *json, size_t len,
                            const char *epoch_candidate, dfws_layer_done_cb done, void *ud)
{
    dfws_layer_history_t *h = l->history;
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!dfws_layer_valid_group_name(group) ||
        !dfws_history_valid_epoch(epoch_candidate, strlen(epoch_candidate)))
        return DFWS_LAYER_EINVAL;
    if (!h)
        return send_text(l, group, json, len, done, ud);
    if (h->store) {
        char *final;
        size_t flen;
        if (dfws_history_store_append(h->store, group, epoch_candidate, json, len, now_ms(), &final,
                                      &flen))
            return DFWS_LAYER_EINVAL;
        int rc = send_text(l, group, final, flen, done, ud);
        free(final);
        return rc;
    }
    char zkey[256], mkey[256], size[24], ttl[24], now[24];
    if (keys_of(l, group, zkey, mkey, sizeof(zkey)))
        return DFWS_LAYER_EINVAL;
    snprintf(size, sizeof(size), "%zu", h->size);
    snprintf(ttl, sizeof(ttl), "%u", h->ttl);
    snprintf(now, sizeof(now), "%" PRIu64, now_ms());
    hsend_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->group = strdup(group)) || !(s->json = malloc(len ? len : 1))) {
        if (s)
            hsend_free(s);
        return DFWS_LAYER_ENOMEM;
    }
    memcpy(s->json, json, len);
    s->len = len;
    s->l = l;
    s->done = done;
    s->ud = ud;
    const char *argv[] = {"EVAL", h->append_lua, "2",  zkey, mkey, epoch_candidate,
                          json,   group,         size, ttl,  now};
    size_t lens[] = {4,
                     strlen(h->append_lua),
                     1,
                     strlen(zkey),
                     strlen(mkey),
                     strlen(epoch_candidate),
                     len,
                     strlen(group),
                     strlen(size),
                     strlen(ttl),
                     strlen(now)};
    int rc = l->ops->command(l, group, strlen(group), 11, argv, lens, on_append_reply, s);
    if (rc) {
        /* the shard is down: group_send says what becomes of the message */
        hsend_free(s);
        return send_text(l, group, json, len, done, ud);
    }
    return 0;
}

typedef struct hread_s {
    dfws_layer_t *l;
    dfws_layer_history_cb cb;
    void *ud;
    dfws_history_result_t res;
    int status;
} hread_t;

static void on_read_deferred(void *ud, int status)
{
    hread_t *r = ud;
    r->cb(r->ud, status ? status : r->status, &r->res);
    dfws_history_result_free(&r->res);
    free(r);
}

/* Decodes the read script's answer: [epoch or nil, seq or nil,
 * "<ms>|<json>"...]. */
static int decode_read(const redisReply *rep, dfws_history_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2)
        return DFWS_LAYER_EIO;
    const redisReply *e = rep->element[0], *s = rep->element[1];
    if (e->type == REDIS_REPLY_NIL)
        return 0;
    if (e->type != REDIS_REPLY_STRING || !dfws_history_valid_epoch(e->str, e->len))
        return DFWS_LAYER_EIO;
    out->has_meta = 1;
    memcpy(out->epoch, e->str, DFWS_HISTORY_EPOCH_LEN);
    if (s->type == REDIS_REPLY_STRING)
        out->seq = strtoull(s->str, NULL, 10);
    else if (s->type == REDIS_REPLY_INTEGER)
        out->seq = (uint64_t)s->integer;
    size_t n = rep->elements - 2;
    if (!n)
        return 0;
    out->items = calloc(n, sizeof(*out->items));
    out->lens = calloc(n, sizeof(*out->lens));
    if (!out->items || !out->lens)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const redisReply *m = rep->element[2 + i];
        const char *bar = m->type == REDIS_REPLY_STRING ? memchr(m->str, '|', m->len) : NULL;
        if (!bar)
            continue; /* not ours: skipped (the recovery sees the gap) */
        size_t len = m->len - (size_t)(bar + 1 - m->str);
        if (!(out->items[out->n] = malloc(len + 1)))
            goto oom;
        memcpy(out->items[out->n], bar + 1, len);
        out->items[out->n][len] = 0;
        out->lens[out->n++] = len;
    }
    return 0;
oom:
    dfws_history_result_free(out);
    return DFWS_LAYER_ENOMEM;
}

static void on_read_reply(void *ud, redisReply *rep)
{
    hread_t *r = ud;
    int rc = decode_read(rep, &r->res);
    if (rc && rep && rep->type == REDIS_REPLY_ERROR)
        dfws_layer__log(r->l, DFWS_LOG_WARNING, "history read failed: %s", rep->str);
    r->cb(r->ud, rc, &r->res);
    dfws_history_result_free(&r->res);
    free(r);
}

int dfws_layer_history_read(dfws_layer_t *l, const char *group, const char *epoch, uint64_t offset,
                            dfws_layer_history_cb cb, void *ud)
{
    dfws_layer_history_t *h = l->history;
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!h)
        return DFWS_LAYER_EUNSUPPORTED;
    if (!dfws_layer_valid_group_name(group) || !dfws_history_valid_epoch(epoch, strlen(epoch)))
        return DFWS_LAYER_EINVAL;
    hread_t *r = calloc(1, sizeof(*r));
    if (!r)
        return DFWS_LAYER_ENOMEM;
    r->l = l;
    r->cb = cb;
    r->ud = ud;
    if (h->store) {
        if (dfws_history_store_read(h->store, group, epoch, offset, h->size, now_ms(), &r->res))
            r->status = DFWS_LAYER_ENOMEM;
        /* the answer comes from the loop, as every layer callback does */
        dfws_layer__complete(l, on_read_deferred, r, 0);
        return 0;
    }
    char zkey[256], mkey[256], off[24], max[24], now[24], ttl[24];
    if (keys_of(l, group, zkey, mkey, sizeof(zkey))) {
        free(r);
        return DFWS_LAYER_EINVAL;
    }
    snprintf(off, sizeof(off), "%" PRIu64, offset);
    snprintf(max, sizeof(max), "%zu", h->size);
    snprintf(now, sizeof(now), "%" PRIu64, now_ms());
    snprintf(ttl, sizeof(ttl), "%u", h->ttl);
    const char *argv[] = {"EVAL", h->read_lua, "2", zkey, mkey, epoch, off, max, now, ttl};
    size_t lens[] = {
        4,           strlen(h->read_lua), 1,           strlen(zkey), strlen(mkey), strlen(epoch),
        strlen(off), strlen(max),         strlen(now), strlen(ttl)};
    int rc = l->ops->command(l, group, strlen(group), 10, argv, lens, on_read_reply, r);
    if (rc)
        free(r);
    return rc;
}
