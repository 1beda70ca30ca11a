/*
 * dfws channel layer — the embedded in-process backend.
 *
 * Semantics follow Channels' InMemoryChannelLayer: one FIFO queue per
 * channel with a capacity (send fails with EFULL, group_send skips), message
 * expiry (an expired message also removes its channel from every group, the
 * way Channels detects dead consumers), group membership expiry. Messages
 * wait in their queue until a listener exists; delivery always happens from
 * the idle handler, never inside the call that sent the message.
 */
#include "layer_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct mem_msg_s {
    struct mem_msg_s *next;
    double expires;
    size_t len;
    char data[];
} mem_msg_t;

typedef struct mem_chan_s {
    struct mem_chan_s *next_ready;
    mem_msg_t *head;
    mem_msg_t *tail;
    size_t count;
    int ready;  /* in the ready list */
    int busy;   /* delivering right now: do not free */
    char *name; /* owned copy */
} mem_chan_t;

typedef struct mem_member_s {
    double joined;
} mem_member_t;

typedef struct mem_group_s {
    dfws_map_t members; /* channel -> mem_member_t* */
} mem_group_t;

typedef struct dfws_layer_memory_s {
    dfws_layer_t base;   /* first: the base pointer is the backend pointer */
    dfws_map_t channels; /* name -> mem_chan_t* */
    dfws_map_t groups;   /* name -> mem_group_t* */
    mem_chan_t *ready_head;
    mem_chan_t *ready_tail;
    uv_timer_t sweep;
} dfws_layer_memory_t;

static void chan_clear(mem_chan_t *c)
{
    mem_msg_t *m = c->head, *next;
    for (; m != NULL; m = next) {
        next = m->next;
        free(m);
    }
    c->head = c->tail = NULL;
    c->count = 0;
}

static void chan_free(mem_chan_t *c)
{
    chan_clear(c);
    free(c->name);
    free(c);
}

/* Drop the channel from the table if nothing references it any more. */
static void chan_maybe_release(dfws_layer_memory_t *m, mem_chan_t *c)
{
    if (c->count == 0 && !c->ready && !c->busy) {
        dfws_map_del(&m->channels, c->name, strlen(c->name));
        chan_free(c);
    }
}

static void mark_ready(dfws_layer_memory_t *m, mem_chan_t *c)
{
    if (c->ready)
        return;
    c->ready = 1;
    c->next_ready = NULL;
    if (m->ready_tail)
        m->ready_tail->next_ready = c;
    else
        m->ready_head = c;
    m->ready_tail = c;
    dfws_layer__wake(&m->base);
}

static void remove_from_groups(dfws_layer_memory_t *m, const char *channel)
{
    size_t i, n = strlen(channel);
    for (i = 0; i < m->groups.nbuckets; i++) {
        dfws_map_entry_t *e = m->groups.buckets[i];
        for (; e != NULL; e = e->next) {
            mem_group_t *g = e->value;
            free(dfws_map_del(&g->members, channel, n));
        }
    }
}

/* Drop expired messages at the head of c; returns how many. */
static size_t chan_expire(dfws_layer_memory_t *m, mem_chan_t *c, double now)
{
    size_t dropped = 0;
    while (c->head != NULL && c->head->expires < now) {
        mem_msg_t *msg = c->head;
        c->head = msg->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->count--;
        free(msg);
        dropped++;
    }
    if (dropped > 0) {
        m->base.stats.undeliverable += dropped;
        dfws_layer__log(&m->base, DFWS_LOG_DEBUG,
                        "%zu message(s) expired on %s; channel left its groups", dropped, c->name);
        remove_from_groups(m, c->name);
    }
    return dropped;
}

static void sweep_one(void *ctx, const char *key, size_t klen, void *value)
{
    dfws_layer_memory_t *m = ((void **)ctx)[0];
    double now = *(double *)((void **)ctx)[1];
    (void)key;
    (void)klen;
    chan_expire(m, value, now);
    chan_maybe_release(m, value);
}

static void expire_groups(dfws_layer_memory_t *m, mem_group_t *g, double now)
{
    double limit = (double)((long long)now - m->base.cfg.group_expiry);
    size_t i;
    for (i = 0; i < g->members.nbuckets; i++) {
        dfws_map_entry_t *e = g->members.buckets[i], *next;
        for (; e != NULL; e = next) {
            mem_member_t *mm = e->value;
            next = e->next;
            if ((double)(long long)mm->joined < limit)
                free(dfws_map_del(&g->members, e->key, e->klen));
        }
    }
}

static void clean_expired(dfws_layer_memory_t *m)
{
    double now = dfws_layer__now();
    void *ctx[2] = {m, &now};
    dfws_map_foreach(&m->channels, sweep_one, ctx);
}

static void on_sweep(uv_timer_t *t)
{
    clean_expired(t->data);
}

static int enqueue(dfws_layer_memory_t *m, const char *channel, const char *mp, size_t len)
{
    size_t n = strlen(channel);
    mem_chan_t *c = dfws_map_get(&m->channels, channel, n);
    mem_msg_t *msg;
    double now = dfws_layer__now();

    if (c != NULL)
        chan_expire(m, c, now);
    if (c != NULL && c->count >= (size_t)dfws_layer_capacity_for(&m->base, channel))
        return DFWS_LAYER_EFULL;
    if (c == NULL && dfws_layer_capacity_for(&m->base, channel) <= 0)
        return DFWS_LAYER_EFULL;
    msg = malloc(sizeof(*msg) + len);
    if (msg == NULL)
        return DFWS_LAYER_ENOMEM;
    msg->next = NULL;
    msg->expires = now + m->base.cfg.expiry;
    msg->len = len;
    memcpy(msg->data, mp, len);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL || (c->name = strdup(channel)) == NULL ||
            dfws_map_put(&m->channels, channel, n, c) != 0) {
            if (c)
                free(c->name);
            free(c);
            free(msg);
            return DFWS_LAYER_ENOMEM;
        }
    }
    if (c->tail)
        c->tail->next = msg;
    else
        c->head = msg;
    c->tail = msg;
    c->count++;
    m->base.stats.sent++;
    if (dfws_layer__listener(&m->base, channel, n) != NULL)
        mark_ready(m, c);
    return 0;
}

static int mem_send(dfws_layer_t *l, const char *channel, const char *mp, size_t len,
                    dfws_layer_done_cb done, void *ud)
{
    int rc = enqueue((dfws_layer_memory_t *)l, channel, mp, len);
    if (rc == DFWS_LAYER_ENOMEM)
        return rc;
    dfws_layer__complete(l, done, ud, rc);
    return 0;
}

static void deliver_ready(dfws_layer_t *l)
{
    dfws_layer_memory_t *m = (dfws_layer_memory_t *)l;
    mem_chan_t *c = m->ready_head;
    double now = dfws_layer__now();

    m->ready_head = m->ready_tail = NULL;
    while (c != NULL) {
        mem_chan_t *next = c->next_ready;
        size_t budget = c->count; /* messages sent from callbacks wait a turn */
        c->ready = 0;
        c->busy = 1;
        chan_expire(m, c, now);
        while (budget-- > 0 && c->head != NULL && !l->closing) {
            const dfws_layer_listener_t *li = dfws_layer__listener(l, c->name, strlen(c->name));
            mem_msg_t *msg;
            if (li == NULL)
                break;
            msg = c->head;
            c->head = msg->next;
            if (c->head == NULL)
                c->tail = NULL;
            c->count--;
            l->stats.received++;
            li->cb(li->ud, c->name, msg->data, msg->len);
            free(msg);
        }
        c->busy = 0;
        if (!l->closing) {
            if (c->head != NULL && dfws_layer__listener(l, c->name, strlen(c->name)) != NULL)
                mark_ready(m, c);
            chan_maybe_release(m, c);
        }
        c = next;
    }
}

static int mem_listen(dfws_layer_t *l, const char *channel)
{
    dfws_layer_memory_t *m = (dfws_layer_memory_t *)l;
    mem_chan_t *c = dfws_map_get(&m->channels, channel, strlen(channel));
    if (c != NULL && c->count > 0)
        mark_ready(m, c);
    return 0;
}

static void mem_unlisten(dfws_layer_t *l, const char *channel)
{
    (void)l;
    (void)channel;
}

static int mem_group_add(dfws_layer_t *l, const char *group, const char *channel)
{
    dfws_layer_memory_t *m = (dfws_layer_memory_t *)l;
    size_t gn = strlen(group), cn = strlen(channel);
    mem_group_t *g = dfws_map_get(&m->groups, group, gn);
    mem_member_t *mm;

    if (g == NULL) {
        g = calloc(1, sizeof(*g));
        if (g == NULL)
            return DFWS_LAYER_ENOMEM;
        dfws_map_init(&g->members);
        if (dfws_map_put(&m->groups, group, gn, g) != 0) {
            free(g);
            return DFWS_LAYER_ENOMEM;
        }
    }
    mm = dfws_map_get(&g->members, channel, cn);
    if (mm == NULL) {
        mm = malloc(sizeof(*mm));
        if (mm == NULL || dfws_map_put(&g->members, channel, cn, mm) != 0) {
            free(mm);
            return DFWS_LAYER_ENOMEM;
        }
    }
    mm->joined = dfws_layer__now();
    return 0;
}

static void group_free(mem_group_t *g)
{
    size_t i;
    for (i = 0; i < g->members.nbuckets; i++) {
        dfws_map_entry_t *e = g->members.buckets[i];
        for (; e != NULL; e = e->next)
            free(e->value);
    }
    dfws_map_free(&g->members);
    free(g);
}

static int mem_group_discard(dfws_layer_t *l, const char *group, const char *channel)
{
    dfws_layer_memory_t *m = (dfws_layer_memory_t *)l;
    size_t gn = strlen(group);
    mem_group_t *g = dfws_map_get(&m->groups, group, gn);
    if (g == NULL)
        return 0;
    free(dfws_map_del(&g->members, channel, strlen(channel)));
    if (g->members.count == 0)
        group_free(dfws_map_del(&m->groups, group, gn));
    return 0;
}

static int mem_group_send(dfws_layer_t *l, const char *group, const char *mp, size_t len,
                          dfws_layer_done_cb done, void *ud)
{
    dfws_layer_memory_t *m = (dfws_layer_memory_t *)l;
    mem_group_t *g;
    size_t i, nmembers = 0, j = 0;
    char **names = NULL;
    int rc = 0;

    clean_expired(m);
    g = dfws_map_get(&m->groups, group, strlen(group));
    if (g != NULL) {
        expire_groups(m, g, dfws_layer__now());
        nmembers = g->members.count;
    }
    if (nmembers > 0) {
        /* Snapshot the member names: enqueue() may change group tables
         * (an expired message removes its channel from every group). */
        names = malloc(nmembers * sizeof(*names));
        if (names == NULL)
            return DFWS_LAYER_ENOMEM;
        for (i = 0; i < g->members.nbuckets; i++) {
            dfws_map_entry_t *e = g->members.buckets[i];
            for (; e != NULL; e = e->next)
                names[j++] = e->key;
        }
        for (i = 0; i < j && rc == 0; i++) {
            char *name = strdup(names[i]);
            if (name == NULL) {
                rc = DFWS_LAYER_ENOMEM;
                break;
            }
            names[i] = name;
        }
        if (rc != 0) {
            while (i-- > 0)
                free(names[i]);
            free(names);
            return rc;
        }
        for (i = 0; i < j; i++) {
            int r = enqueue(m, names[i], mp, len);
            if (r == DFWS_LAYER_EFULL) {
                l->stats.group_dropped++;
                dfws_layer__log(l, DFWS_LOG_DEBUG,
                                "group %s: channel %s over capacity, message dropped", group,
                                names[i]);
            } else if (r != 0) {
                dfws_layer__log(l, DFWS_LOG_ERROR, "group %s: cannot queue for %s: %s", group,
                                names[i], dfws_layer_strerror(r));
            }
            free(names[i]);
        }
        free(names);
    }
    dfws_layer__complete(l, done, ud, 0);
    return 0;
}

static void drop_group(void *ctx, const char *key, size_t klen, void *value)
{
    (void)ctx;
    (void)key;
    (void)klen;
    group_free(value);
}

static void drop_chan(void *ctx, const char *key, size_t klen, void *value)
{
    dfws_layer_memory_t *m = ctx;
    mem_chan_t *c = value;
    (void)key;
    (void)klen;
    chan_clear(c);
    chan_maybe_release(m, c);
}

static int mem_flush(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    dfws_layer_memory_t *m = (dfws_layer_memory_t *)l;
    dfws_map_foreach(&m->groups, drop_group, NULL);
    dfws_map_free(&m->groups);
    dfws_map_foreach(&m->channels, drop_chan, m);
    dfws_layer__complete(l, done, ud, 0);
    return 0;
}

static int mem_sync(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    dfws_layer__complete(l, done, ud, 0);
    return 0;
}

static void on_sweep_closed(uv_handle_t *h)
{
    dfws_layer__release(h->data);
}

static void mem_close(dfws_layer_t *l)
{
    dfws_layer_memory_t *m = (dfws_layer_memory_t *)l;
    l->pending_closes++;
    m->sweep.data = l;
    uv_close((uv_handle_t *)&m->sweep, on_sweep_closed);
}

static void free_chan(void *ctx, const char *key, size_t klen, void *value)
{
    (void)ctx;
    (void)key;
    (void)klen;
    chan_free(value);
}

static void mem_destroy(dfws_layer_t *l)
{
    dfws_layer_memory_t *m = (dfws_layer_memory_t *)l;
    dfws_map_foreach(&m->groups, drop_group, NULL);
    dfws_map_free(&m->groups);
    dfws_map_foreach(&m->channels, free_chan, NULL);
    dfws_map_free(&m->channels);
}

static const dfws_layer_ops_t memory_ops = {
    "memory", mem_send,   mem_group_add, mem_group_discard, mem_group_send, mem_flush,
    mem_sync, mem_listen, mem_unlisten,  deliver_ready,     mem_close,      mem_destroy,
    NULL,     NULL,       NULL, /* history lives in the process (history.c) */
};

int dfws_layer_memory_new(uv_loop_t *loop, const dfws_layer_config_t *cfg, dfws_layer_t **out)
{
    dfws_layer_memory_t *m = calloc(1, sizeof(*m));
    uint64_t period;
    int rc;

    if (m == NULL)
        return DFWS_LAYER_ENOMEM;
    if ((rc = dfws_layer__init(&m->base, loop, cfg, &memory_ops)) != 0) {
        free(m);
        return rc;
    }
    m->base.cfg.backend = DFWS_LAYER_BACKEND_MEMORY;
    dfws_map_init(&m->channels);
    dfws_map_init(&m->groups);
    if ((rc = dfws_layer__start(&m->base)) != 0) {
        dfws_layer__fini(&m->base);
        free(m);
        return rc;
    }
    /* From here on the idle handle exists: failures go through close. */
    uv_timer_init(loop, &m->sweep);
    m->sweep.data = m;
    period = (uint64_t)(m->base.cfg.expiry < 10 ? m->base.cfg.expiry : 10) * 1000;
    if (period < 1000)
        period = 1000;
    uv_timer_start(&m->sweep, on_sweep, period, period);
    uv_unref((uv_handle_t *)&m->sweep); /* never keeps the loop alive */
    *out = &m->base;
    return 0;
}
