/* The recovery of missed signals on the native socket: see recovery.h and
 * docs/recovery.md. */
#include "recovery.h"
#include "history.h"
#include "log.h"
#include "map.h"
#include "text.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <uv.h>

#define MAX_OFFSET (1ULL << 53) /* what a JavaScript number holds exactly */
#define DFWS_RECOVERY_FILTER_NS (10ULL * 1000 * 1000 * 1000)

/* ---- the request ------------------------------------------------------------ */

int dfws_recovery_param(const char *target, size_t len, char **out, size_t *olen)
{
    static const char name[] = DFWS_RECOVERY_PARAM;
    const size_t nlen = sizeof(name) - 1;
    const char *q = memchr(target, '?', len);
    const char *p = q ? q + 1 : target, *end = target + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nlen && !memcmp(p, name, nlen) && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = (size_t)(stop - v);
            if (vlen > 3 * DFWS_RECOVERY_MAX_PARAM)
                return -1;
            char *d = malloc(vlen + 1);
            size_t n = 0;
            if (!d)
                return -2;
            for (size_t i = 0; i < vlen; i++) {
                char c = v[i];
                if (c == '%') {
                    int hi = i + 2 < vlen ? dfws_hex_digit(v[i + 1]) : -1;
                    int lo = i + 2 < vlen ? dfws_hex_digit(v[i + 2]) : -1;
                    c = (char)(hi * 16 + lo);
                    if (hi < 0 || lo < 0 || !c) {
                        free(d);
                        return -1;
                    }
                    i += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                d[n++] = c;
            }
            if (n > DFWS_RECOVERY_MAX_PARAM) {
                free(d);
                return -1;
            }
            d[n] = 0;
            *out = d;
            *olen = n;
            return 1;
        }
        p = stop + 1;
    }
    return 0;
}

/* "<8 lowercase hex>-<offset>": 1 and the parts, or 0. */
static int parse_position(const char *s, size_t len, char epoch[9], uint64_t *offset)
{
    if (len < 10 || len > 9 + 16 || s[8] != '-' || !dfws_history_valid_epoch(s, 8))
        return 0;
    const char *d = s + 9;
    size_t dl = len - 9;
    if (dl > 1 && d[0] == '0')
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < dl; i++) {
        if (d[i] < '0' || d[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(d[i] - '0');
    }
    if (v > MAX_OFFSET)
        return 0;
    memcpy(epoch, s, 8);
    epoch[8] = 0;
    *offset = v;
    return 1;
}

void dfws_recovery_req_free(dfws_recovery_req_t *req)
{
    for (size_t i = 0; i < req->nwants; i++)
        free(req->wants[i].group);
    free(req->wants);
    for (size_t i = 0; i < req->nfailed; i++)
        free(req->failed[i]);
    free(req->failed);
    memset(req, 0, sizeof(*req));
}

static int add_failed(dfws_recovery_req_t *req, const char *group)
{
    char **f = realloc(req->failed, (req->nfailed + 1) * sizeof(*f));
    if (!f)
        return -1;
    req->failed = f;
    if (!(f[req->nfailed] = strdup(group)))
        return -1;
    req->nfailed++;
    return 0;
}

static ssize_t held_index(const char *const *held, size_t nheld, const char *name)
{
    for (size_t i = 0; i < nheld; i++)
        if (!strcmp(held[i], name))
            return (ssize_t)i;
    return -1;
}

int dfws_recovery_parse(const char *json, size_t len, const char *const *held, size_t nheld,
                        dfws_recovery_req_t *req)
{
    memset(req, 0, sizeof(*req));
    json_t *obj = NULL;
    if (!dfws_json_too_deep(json, len, DFWS_RECOVERY_MAX_DEPTH))
        obj = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(obj)) {
        /* nothing in it can be trusted: every group the window holds is
         * reloaded rather than silently missed */
        json_decref(obj);
        for (size_t i = 0; i < nheld; i++)
            if (held_index(held, i, held[i]) < 0 && add_failed(req, held[i]))
                goto oom;
        return 0;
    }
    const char *key;
    json_t *val;
    size_t nread = 0;
    req->wants = calloc(DFWS_RECOVERY_MAX_GROUPS, sizeof(*req->wants));
    if (!req->wants)
        goto oom;
    json_object_foreach(obj, key, val)
    {
        if (held_index(held, nheld, key) < 0) {
            req->ignored++;
            continue;
        }
        dfws_recovery_want_t *w = &req->wants[req->nwants];
        if (nread >= DFWS_RECOVERY_MAX_GROUPS || !json_is_string(val) ||
            !parse_position(json_string_value(val), json_string_length(val), w->epoch,
                            &w->offset)) {
            if (add_failed(req, key))
                goto oom;
            continue;
        }
        nread++;
        if (!(w->group = strdup(key)))
            goto oom;
        req->nwants++;
    }
    json_decref(obj);
    return 0;
oom:
    json_decref(obj);
    dfws_recovery_req_free(req);
    return -1;
}

int dfws_recovery_failed_message(const char *const *groups, size_t n, char **out, size_t *olen)
{
    unsigned char u[16];
    char id[37];
    if (RAND_bytes(u, sizeof(u)) != 1)
        return -1;
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    snprintf(id, sizeof(id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
    json_t *topics = json_array();
    for (size_t i = 0; topics && i < n; i++)
        json_array_append_new(topics, json_string(groups[i]));
    json_t *msg = json_pack("{s:s,s:{s:o},s:s}", "signal", DFWS_RECOVERY_FAILED_SIGNAL, "opts",
                            "topics", topics, "signal_id", id);
    if (!msg)
        return -1;
    *out = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!*out)
        return -1;
    *olen = strlen(*out);
    return 0;
}

/* ---- a recovery under way ----------------------------------------------------- */

/* One group's read: its answer, kept until every read is back. */
typedef struct slot_s {
    struct dfws_recovery_s *r;
    int status;
    dfws_history_result_t res;
} slot_t;

typedef struct held_s {
    char *msg;
    size_t len;
} held_t;

struct dfws_recovery_s {
    dfws_layer_t *l;
    dfws_recovery_req_t req;
    slot_t *slots;  /* one per want */
    size_t pending; /* reads not answered yet */
    size_t max_bytes;
    held_t *held;
    size_t nheld, held_cap, held_bytes;
    dfws_map_t dropped; /* groups of held deliveries dropped over the budget */
    dfws_recovery_send_fn send;
    dfws_recovery_done_fn done;
    void *ud;
    int gone; /* abandoned: send nothing, free when the reads are back */
    /* After the replay, for DFWS_RECOVERY_FILTER_NS: live deliveries that
     * were replayed already (a message appended before the read whose
     * group_send reaches the window after it) are dropped. */
    int filtering;
    uint64_t filter_until; /* uv_hrtime() */
    dfws_map_t ids;        /* signal_ids sent */
    dfws_map_t upto;       /* group -> its slot's result: offsets replayed */
};

static void recovery_free(dfws_recovery_t *r)
{
    dfws_map_free(&r->ids);
    dfws_map_free(&r->upto);
    for (size_t i = 0; i < r->req.nwants; i++)
        dfws_history_result_free(&r->slots[i].res);
    free(r->slots);
    for (size_t i = 0; i < r->nheld; i++)
        free(r->held[i].msg);
    free(r->held);
    dfws_map_free(&r->dropped);
    dfws_recovery_req_free(&r->req);
    free(r);
}

/* The "topic", "pos" and "signal_id" of a message (pointers into j). */
typedef struct meta_s {
    const char *topic, *signal_id;
    char epoch[9];
    uint64_t offset;
    int has_pos;
} meta_t;

static json_t *message_meta(const char *msg, size_t len, meta_t *m)
{
    memset(m, 0, sizeof(*m));
    json_t *j = json_loadb(msg, len, 0, NULL);
    if (!json_is_object(j))
        return j;
    json_t *t = json_object_get(j, "topic"), *p = json_object_get(j, "pos"),
           *s = json_object_get(j, "signal_id");
    m->topic = json_is_string(t) ? json_string_value(t) : NULL;
    m->signal_id = json_is_string(s) ? json_string_value(s) : NULL;
    m->has_pos = json_is_string(p) &&
                 parse_position(json_string_value(p), json_string_length(p), m->epoch, &m->offset);
    return j;
}

/* The failed groups, without repeats. */
typedef struct failed_s {
    dfws_map_t seen;
    const char **names;
    size_t n;
} failed_t;

static void fail(failed_t *f, const char *group)
{
    size_t len = strlen(group);
    if (dfws_map_get(&f->seen, group, len) || dfws_map_put(&f->seen, group, len, (void *)1))
        return;
    const char **names = realloc(f->names, (f->n + 1) * sizeof(*names));
    if (!names)
        return;
    f->names = names;
    names[f->n++] = group;
}

static void collect_dropped(void *ctx, const char *key, size_t klen, void *value)
{
    (void)klen, (void)value;
    fail(ctx, key);
}

/* Sends one message unless its signal_id went already; 0, or -1 when the
 * window went away meanwhile. */
static int send_once(dfws_recovery_t *r, dfws_map_t *ids, const char *sid, const char *msg,
                     size_t len)
{
    if (sid) {
        size_t sl = strlen(sid);
        if (dfws_map_get(ids, sid, sl))
            return 0;
        dfws_map_put(ids, sid, sl, (void *)1);
    }
    r->send(r->ud, msg, len);
    return r->gone ? -1 : 0;
}

/* Whether group i's answer is a replay: the whole gap, nothing expired. */
static int replay_ok(const dfws_recovery_want_t *w, const slot_t *s, json_t **docs, meta_t *metas)
{
    if (s->status || !s->res.has_meta || strcmp(s->res.epoch, w->epoch) || w->offset > s->res.seq)
        return 0;
    if (s->res.n != s->res.seq - w->offset)
        return 0; /* some of the gap left history (size, TTL) */
    for (size_t k = 0; k < s->res.n; k++) {
        docs[k] = message_meta(s->res.items[k], s->res.lens[k], &metas[k]);
        if (!metas[k].has_pos || metas[k].offset != w->offset + 1 + k)
            return 0;
    }
    return 1;
}

static void finish(dfws_recovery_t *r, int from_start)
{
    failed_t f = {0};
    dfws_map_t *ids = &r->ids, *upto = &r->upto;
    size_t used = 0, replayed = 0, held_sent = 0;
    dfws_map_init(&f.seen);
    for (size_t i = 0; i < r->req.nfailed; i++)
        fail(&f, r->req.failed[i]);
    for (size_t i = 0; i < r->req.nwants && !r->gone; i++) {
        const dfws_recovery_want_t *w = &r->req.wants[i];
        slot_t *s = &r->slots[i];
        size_t n = s->res.n, bytes = 0;
        json_t **docs = calloc(n ? n : 1, sizeof(*docs));
        meta_t *metas = calloc(n ? n : 1, sizeof(*metas));
        int ok = docs && metas && replay_ok(w, s, docs, metas);
        for (size_t k = 0; ok && k < n; k++)
            bytes += s->res.lens[k];
        if (ok && used + bytes > r->max_bytes)
            ok = 0; /* past the budget: the page reloads this one */
        if (!ok) {
            fail(&f, w->group);
        } else {
            used += bytes;
            dfws_map_put(upto, w->group, strlen(w->group), &s->res);
            for (size_t k = 0; k < n && !r->gone; k++)
                if (!send_once(r, ids, metas[k].signal_id, s->res.items[k], s->res.lens[k]))
                    replayed++;
        }
        for (size_t k = 0; docs && k < n; k++)
            json_decref(docs[k]);
        free(docs);
        free(metas);
    }
    if (r->dropped.count)
        dfws_map_foreach(&r->dropped, collect_dropped, &f);
    for (size_t i = 0; i < r->nheld && !r->gone; i++) {
        meta_t m;
        json_t *j = message_meta(r->held[i].msg, r->held[i].len, &m);
        const dfws_history_result_t *res = m.topic ? dfws_map_get(upto, m.topic, strlen(m.topic))
                                                   : NULL;
        int replayed_already = res && m.has_pos && !strcmp(m.epoch, res->epoch) &&
                               m.offset <= res->seq;
        if (!replayed_already && !send_once(r, ids, m.signal_id, r->held[i].msg, r->held[i].len))
            held_sent++;
        json_decref(j);
    }
    if (f.n && !r->gone) {
        char *msg;
        size_t len;
        if (!dfws_recovery_failed_message(f.names, f.n, &msg, &len)) {
            r->send(r->ud, msg, len);
            free(msg);
        }
    }
    dfws_log_debug("native window recovery: %zu replayed, %zu held sent, %zu groups failed, %zu "
                   "names not held ignored",
                   replayed, held_sent, f.n, r->req.ignored);
    free(f.names);
    dfws_map_free(&f.seen);
    if (!r->gone && !from_start && (ids->count || upto->count)) {
        /* the reads are over; the handle stays a while as a filter */
        for (size_t i = 0; i < r->nheld; i++)
            free(r->held[i].msg);
        r->nheld = 0;
        r->filtering = 1;
        r->filter_until = uv_hrtime() + DFWS_RECOVERY_FILTER_NS;
        return;
    }
    if (!r->gone && !from_start)
        r->done(r->ud);
    recovery_free(r);
}

static void on_read(void *ud, int status, dfws_history_result_t *res)
{
    slot_t *s = ud;
    dfws_recovery_t *r = s->r;
    s->status = status;
    s->res = *res;
    memset(res, 0, sizeof(*res)); /* taken */
    if (--r->pending)
        return;
    if (r->gone)
        recovery_free(r);
    else
        finish(r, 0);
}

dfws_recovery_t *dfws_recovery_start(dfws_layer_t *l, dfws_recovery_req_t *req, size_t max_bytes,
                                     dfws_recovery_send_fn send, dfws_recovery_done_fn done,
                                     void *ud)
{
    dfws_recovery_t *r = calloc(1, sizeof(*r));
    if (!r) {
        dfws_recovery_req_free(req);
        return NULL;
    }
    r->l = l;
    r->req = *req;
    memset(req, 0, sizeof(*req));
    r->max_bytes = max_bytes;
    r->send = send;
    r->done = done;
    r->ud = ud;
    dfws_map_init(&r->dropped);
    dfws_map_init(&r->ids);
    dfws_map_init(&r->upto);
    r->slots = calloc(r->req.nwants ? r->req.nwants : 1, sizeof(*r->slots));
    if (!r->slots) {
        recovery_free(r);
        return NULL;
    }
    /* one count for the loop below, so that reads refused at once do not
     * finish it early */
    r->pending = 1;
    for (size_t i = 0; i < r->req.nwants; i++) {
        slot_t *s = &r->slots[i];
        s->r = r;
        const dfws_recovery_want_t *w = &r->req.wants[i];
        r->pending++;
        int rc = dfws_layer_history_read(l, w->group, w->epoch, w->offset, on_read, s);
        if (rc) {
            r->pending--;
            s->status = rc; /* refused at once: the group fails */
        }
    }
    if (--r->pending == 0) {
        finish(r, 1);
        return NULL;
    }
    return r;
}

static void drop_held(dfws_recovery_t *r, const char *msg, size_t len)
{
    meta_t m;
    json_t *j = message_meta(msg, len, &m);
    if (m.topic && !dfws_map_get(&r->dropped, m.topic, strlen(m.topic)))
        dfws_map_put(&r->dropped, m.topic, strlen(m.topic), (void *)1);
    json_decref(j);
}

static void hold(dfws_recovery_t *r, const char *msg, size_t len);

int dfws_recovery_live(dfws_recovery_t *r, const char *msg, size_t len)
{
    if (!r->filtering) {
        hold(r, msg, len);
        return 1;
    }
    if (uv_hrtime() > r->filter_until) {
        r->done(r->ud);
        recovery_free(r);
        return 0;
    }
    meta_t m;
    json_t *j = message_meta(msg, len, &m);
    const dfws_history_result_t *res = m.topic ? dfws_map_get(&r->upto, m.topic, strlen(m.topic))
                                               : NULL;
    int dup = (res && m.has_pos && !strcmp(m.epoch, res->epoch) && m.offset <= res->seq) ||
              (m.signal_id && dfws_map_get(&r->ids, m.signal_id, strlen(m.signal_id)));
    json_decref(j);
    return dup;
}

static void hold(dfws_recovery_t *r, const char *msg, size_t len)
{
    if (r->held_bytes + len > r->max_bytes || r->dropped.count) {
        /* over the budget: every held delivery goes, and the page reloads
         * their groups (recovery_failed) */
        for (size_t i = 0; i < r->nheld; i++) {
            drop_held(r, r->held[i].msg, r->held[i].len);
            free(r->held[i].msg);
        }
        r->nheld = 0;
        r->held_bytes = 0;
        drop_held(r, msg, len);
        return;
    }
    if (r->nheld == r->held_cap) {
        size_t cap = r->held_cap ? r->held_cap * 2 : 16;
        held_t *h = realloc(r->held, cap * sizeof(*h));
        if (!h) {
            drop_held(r, msg, len);
            return;
        }
        r->held = h;
        r->held_cap = cap;
    }
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        drop_held(r, msg, len);
        return;
    }
    memcpy(copy, msg, len);
    r->held[r->nheld].msg = copy;
    r->held[r->nheld++].len = len;
    r->held_bytes += len;
}

void dfws_recovery_abandon(dfws_recovery_t *r)
{
    if (r->filtering) {
        recovery_free(r);
        return;
    }
    r->gone = 1;
    /* finish() and on_read() free it; abandoning only stops the sending */
}
