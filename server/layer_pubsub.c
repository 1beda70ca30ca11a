/*
 * dfws channel layer — the Redis pub/sub backend, wire-compatible with
 * channels_redis.pubsub.RedisPubSubChannelLayer 4.3 (its wire format and
 * behaviour are written down in docs/architecture.md, "The channel layer").
 *
 * Wire: every message is one Redis pub/sub message.
 *     send(ch, m)       PUBLISH ch <payload>
 *     group_send(g, m)  PUBLISH <prefix>__group__<g> <payload>
 *     payload           msgpack(m), or a Fernet token of it when
 *                       symmetric_encryption_keys are set; no random
 *                       prefix, no __asgi_channel__
 *     new channel       <prefix>specific.<uuid4 hex>
 * A pub/sub channel lives on shard consistent_hash(its exact name). Group
 * membership never reaches Redis: this process subscribes to a group's
 * channel while one of its local channels is a member, and fans a group
 * message out to those members itself. Pub/sub delivers at most once: what
 * is published while nobody (or no connection) listens is lost, as with
 * channels_redis.
 *
 * Connections: per shard (host, list order) one publishing and one
 * subscribing connection for the whole process (redis_conn.h: reconnect
 * with backoff, one log line per outage). A subscribing connection that
 * comes back subscribes again to every channel of its shard.
 *
 * hiredis 0.14 keeps one callback per subscribed channel. Every SUBSCRIBE
 * here passes the same callback and its shard, so each reply (a message, a
 * subscribe or unsubscribe confirmation) reaches on_sub_reply(), which
 * dispatches by name. The subscribing connection carries nothing but
 * (UN)SUBSCRIBE after AUTH/SELECT, and UNSUBSCRIBE names only channels
 * subscribed on that very connection: hiredis mis-routes other replies of a
 * subscribed context.
 */
#include "layer_pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fernet.h"
#include "layer_sentinel.h"
#include "redis_conn.h"

#define SUBSCRIBE_BATCH 512 /* channels per SUBSCRIBE when re-subscribing */
#define NAME_BUF 512        /* pub/sub channel names we build */
#define AFTER_CONNECT UINT64_MAX

struct dfws_layer_pubsub_s;
struct pop_s;

/* A sync() waiting for its shard's subscription replies. */
typedef struct barrier_s {
    struct barrier_s *next;
    uint64_t target; /* sub_acked to reach; AFTER_CONNECT: the subscriptions
                        made once the connection is ready */
    struct pop_s *op;
} barrier_t;

typedef struct shard_s {
    struct dfws_layer_pubsub_s *p;
    dfws_redis_conn_t pub;     /* PUBLISH, and PING for sync() */
    dfws_redis_conn_t sub;     /* SUBSCRIBE: every channel of this shard */
    dfws_sentinel_t *sentinel; /* owned; NULL unless the host names a master through sentinels */
    dfws_map_t subs;           /* pub/sub channel -> references (uintptr_t):
                                one per listener, one per group with members */
    uint64_t sub_sent;         /* channels (un)subscribed on this connection */
    uint64_t sub_acked;        /* and confirmed by Redis */
    barrier_t *barriers;       /* FIFO, targets ascending */
    barrier_t **barriers_tail;
} shard_t;

typedef struct dfws_layer_pubsub_s {
    dfws_layer_t base; /* first */
    size_t nshards;
    shard_t *shards;
    dfws_map_t groups; /* group channel -> dfws_map_t* (member channel -> (void *)1) */
    uint64_t lost;     /* publishes lost to a connection that was down */
    uint64_t undeliverable_logged;
} dfws_layer_pubsub_t;

/* A publish or a sync() in flight. */
typedef struct pop_s {
    dfws_layer_pubsub_t *p;
    dfws_layer_done_cb done;
    void *ud;
    int pending;
    int status;
} pop_t;

/* ---- names and shards ------------------------------------------------------ */

int dfws_pubsub_group_channel(const char *prefix, const char *group, char *buf, size_t n)
{
    int k = snprintf(buf, n, "%s__group__%s", prefix, group);
    return k < 0 || (size_t)k >= n ? DFWS_LAYER_EINVAL : k;
}

static shard_t *shard_of(dfws_layer_pubsub_t *p, const char *name, size_t len)
{
    return &p->shards[dfws_layer_shard(name, len, p->nshards)];
}

static int pubsub_new_channel(dfws_layer_t *l, char *buf, size_t buflen)
{
    char id[33];
    int n, rc;
    if ((rc = dfws_layer__uuid4_hex(id)) != 0)
        return rc;
    n = snprintf(buf, buflen, "%sspecific.%s", l->cfg.prefix, id);
    return n < 0 || (size_t)n >= buflen ? DFWS_LAYER_EINVAL : 0;
}

/* ---- payloads ----------------------------------------------------------------- */

int dfws_pubsub_decode(const dfws_layer_config_t *cfg, const char *payload, size_t len,
                       dfws_buf_t *out)
{
    unsigned char *plain = NULL;
    size_t plen = len;
    const char *mp = payload;
    dfws_mp_strref_t *dests = NULL;
    size_t ndests = 0;
    int had_key = 0, rc;

    if (cfg->nkeys > 0) {
        /* channels_redis.pubsub decrypts with ttl=None: no age limit */
        rc = dfws_fernet_decrypt(cfg->keys, cfg->nkeys, payload, len, (uint64_t)dfws_layer__now(),
                                 0, &plain, &plen);
        if (rc != 0)
            return rc;
        mp = (const char *)plain;
    }
    /* A Python sender may leave __asgi_channel__ in (nothing strips it on
     * this layer); listeners get the map without it. */
    rc = dfws_layer_msg_strip_channel(out, mp, plen, &dests, &ndests, &had_key);
    free(dests);
    free(plain);
    return rc;
}

static int encode(const dfws_layer_pubsub_t *p, const char *mp, size_t len, char **tok,
                  size_t *toklen)
{
    *tok = NULL;
    if (p->base.cfg.nkeys == 0)
        return 0;
    return dfws_fernet_encrypt(&p->base.cfg.keys[0], mp, len, (uint64_t)dfws_layer__now(), NULL,
                               tok, toklen);
}

/* ---- subscriptions ------------------------------------------------------------ */

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv);

/* (UN)SUBSCRIBE names[0..n) on the shard's subscribing connection. */
static void sub_command(shard_t *s, const char *cmd, const char *const *names, const size_t *lens,
                        size_t n)
{
    const char **argv = malloc((n + 1) * sizeof(*argv));
    size_t *argl = malloc((n + 1) * sizeof(*argl)), i;

    if (argv == NULL || argl == NULL) {
        /* Left as it is until the next reconnect; say so. */
        dfws_layer__log(&s->p->base, DFWS_LOG_ERROR, "out of memory: %s of %zu channel(s) not sent",
                        cmd, n);
        goto out;
    }
    argv[0] = cmd;
    argl[0] = strlen(cmd);
    for (i = 0; i < n; i++) {
        argv[i + 1] = names[i];
        argl[i + 1] = lens[i];
    }
    if (redisAsyncCommandArgv(s->sub.ac, on_sub_reply, s, (int)(n + 1), argv, argl) == REDIS_OK)
        s->sub_sent += n;
out:
    free(argv);
    free(argl);
}

static int sub_ref(dfws_layer_pubsub_t *p, const char *name, size_t len)
{
    shard_t *s = shard_of(p, name, len);
    uintptr_t cnt = (uintptr_t)dfws_map_get(&s->subs, name, len);

    if (dfws_map_put(&s->subs, name, len, (void *)(cnt + 1)) != 0)
        return DFWS_LAYER_ENOMEM;
    /* Not connected: on_sub_ready() subscribes to everything in s->subs. */
    if (cnt == 0 && dfws_redis_conn_usable(&s->sub))
        sub_command(s, "SUBSCRIBE", &name, &len, 1);
    return 0;
}

static void sub_unref(dfws_layer_pubsub_t *p, const char *name, size_t len)
{
    shard_t *s = shard_of(p, name, len);
    uintptr_t cnt = (uintptr_t)dfws_map_get(&s->subs, name, len);

    if (cnt > 1) {
        dfws_map_put(&s->subs, name, len, (void *)(cnt - 1)); /* replaces: cannot fail */
    } else if (cnt == 1) {
        dfws_map_del(&s->subs, name, len);
        if (dfws_redis_conn_usable(&s->sub))
            sub_command(s, "UNSUBSCRIBE", &name, &len, 1);
    }
}

static int pubsub_listen(dfws_layer_t *l, const char *channel)
{
    return sub_ref((dfws_layer_pubsub_t *)l, channel, strlen(channel));
}

static void pubsub_unlisten(dfws_layer_t *l, const char *channel)
{
    sub_unref((dfws_layer_pubsub_t *)l, channel, strlen(channel));
}

/* ---- groups: in this process only ------------------------------------------------ */

static void free_members(void *ctx, const char *key, size_t klen, void *value)
{
    (void)ctx;
    (void)key;
    (void)klen;
    dfws_map_free(value);
    free(value);
}

/* The group's pub/sub channel into name[NAME_BUF] (*n: its length, or a
 * negative code) and its local members (NULL when it has none). */
static dfws_map_t *group_members(dfws_layer_pubsub_t *p, const char *group, char *name, int *n)
{
    *n = dfws_pubsub_group_channel(p->base.cfg.prefix, group, name, NAME_BUF);
    return *n < 0 ? NULL : dfws_map_get(&p->groups, name, (size_t)*n);
}

static int pubsub_group_add(dfws_layer_t *l, const char *group, const char *channel)
{
    dfws_layer_pubsub_t *p = (dfws_layer_pubsub_t *)l;
    char name[NAME_BUF];
    int n;
    dfws_map_t *members = group_members(p, group, name, &n);

    if (n < 0)
        return n;
    if (members == NULL) {
        if ((members = malloc(sizeof(*members))) == NULL)
            return DFWS_LAYER_ENOMEM;
        dfws_map_init(members);
        if (dfws_map_put(&p->groups, name, (size_t)n, members) != 0) {
            free(members);
            return DFWS_LAYER_ENOMEM;
        }
        if (sub_ref(p, name, (size_t)n) != 0) {
            dfws_map_del(&p->groups, name, (size_t)n);
            free(members);
            return DFWS_LAYER_ENOMEM;
        }
    }
    return dfws_map_put(members, channel, strlen(channel), (void *)1) ? DFWS_LAYER_ENOMEM : 0;
}

static int pubsub_group_discard(dfws_layer_t *l, const char *group, const char *channel)
{
    dfws_layer_pubsub_t *p = (dfws_layer_pubsub_t *)l;
    char name[NAME_BUF];
    int n;
    dfws_map_t *members = group_members(p, group, name, &n);

    if (members == NULL)
        return n < 0 ? n : 0;
    dfws_map_del(members, channel, strlen(channel));
    if (members->count == 0) {
        dfws_map_del(&p->groups, name, (size_t)n);
        free_members(NULL, NULL, 0, members);
        sub_unref(p, name, (size_t)n);
    }
    return 0;
}

typedef struct unref_ctx_s {
    dfws_layer_pubsub_t *p;
} unref_ctx_t;

static void forget_group(void *ctx, const char *key, size_t klen, void *value)
{
    unref_ctx_t *u = ctx;
    sub_unref(u->p, key, klen);
    free_members(NULL, NULL, 0, value);
}

/* channels_redis.pubsub's flush() forgets its groups and channels; here the
 * listeners stay (they belong to the caller), the groups go. */
static int pubsub_flush(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    dfws_layer_pubsub_t *p = (dfws_layer_pubsub_t *)l;
    unref_ctx_t u = {p};
    dfws_map_foreach(&p->groups, forget_group, &u);
    dfws_map_free(&p->groups);
    dfws_map_init(&p->groups);
    dfws_layer__complete(l, done, ud, 0);
    return 0;
}

/* ---- publishing ------------------------------------------------------------------ */

static void op_finish(pop_t *op)
{
    if (--op->pending > 0)
        return;
    dfws_layer__complete(&op->p->base, op->done, op->ud, op->status);
    free(op);
}

static void on_publish_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    pop_t *op = priv;
    redisReply *rep = reply;
    (void)ac;
    if (rep == NULL) {
        op->status = op->p->base.closing ? DFWS_LAYER_ECLOSED : DFWS_LAYER_EIO;
        if (op->status == DFWS_LAYER_EIO)
            dfws_redis_note_lost(&op->p->base, &op->p->lost, "publish", "a channel");
    } else if (rep->type == REDIS_REPLY_ERROR) {
        dfws_layer__log(&op->p->base, DFWS_LOG_ERROR, "PUBLISH failed: %s", rep->str);
        op->status = DFWS_LAYER_EIO;
    } else {
        op->p->base.stats.sent++;
    }
    op_finish(op);
}

static int publish(dfws_layer_pubsub_t *p, const char *what, const char *name, size_t nlen,
                   const char *mp, size_t len, dfws_layer_done_cb done, void *ud)
{
    shard_t *s = shard_of(p, name, nlen);
    const char *argv[3];
    size_t lens[3];
    char *tok = NULL;
    size_t toklen = 0;
    pop_t *op;
    int rc;

    if (!dfws_redis_conn_queueable(&s->pub)) {
        dfws_redis_note_lost(&p->base, &p->lost, what, name);
        dfws_layer__complete(&p->base, done, ud, DFWS_LAYER_EIO);
        return 0;
    }
    if ((rc = encode(p, mp, len, &tok, &toklen)) != 0)
        return rc;
    if ((op = calloc(1, sizeof(*op))) == NULL) {
        free(tok);
        return DFWS_LAYER_ENOMEM;
    }
    op->p = p;
    op->done = done;
    op->ud = ud;
    op->pending = 1;
    argv[0] = "PUBLISH";
    lens[0] = 7;
    argv[1] = name;
    lens[1] = nlen;
    argv[2] = tok ? tok : mp;
    lens[2] = tok ? toklen : len;
    rc = redisAsyncCommandArgv(s->pub.ac, on_publish_reply, op, 3, argv, lens);
    free(tok);
    if (rc != REDIS_OK) {
        free(op);
        dfws_redis_note_lost(&p->base, &p->lost, what, name);
        dfws_layer__complete(&p->base, done, ud, DFWS_LAYER_EIO);
    }
    return 0;
}

static int pubsub_send(dfws_layer_t *l, const char *channel, const char *mp, size_t len,
                       dfws_layer_done_cb done, void *ud)
{
    return publish((dfws_layer_pubsub_t *)l, "send", channel, strlen(channel), mp, len, done, ud);
}

static int pubsub_group_send(dfws_layer_t *l, const char *group, const char *mp, size_t len,
                             dfws_layer_done_cb done, void *ud)
{
    char name[NAME_BUF];
    int n = dfws_pubsub_group_channel(l->cfg.prefix, group, name, sizeof(name));
    if (n < 0)
        return n;
    return publish((dfws_layer_pubsub_t *)l, "group_send", name, (size_t)n, mp, len, done, ud);
}

/* ---- sync: PING the publishers, wait for the subscription replies ---------------- */

static void on_ping_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    pop_t *op = priv;
    (void)ac;
    if (reply == NULL && op->status == 0)
        op->status = op->p->base.closing ? DFWS_LAYER_ECLOSED : DFWS_LAYER_EIO;
    op_finish(op);
}

static void run_barriers(shard_t *s, int status)
{
    while (s->barriers != NULL && (status != 0 || s->sub_acked >= s->barriers->target)) {
        barrier_t *b = s->barriers;
        s->barriers = b->next;
        if (s->barriers == NULL)
            s->barriers_tail = &s->barriers;
        if (status != 0 && b->op->status == 0)
            b->op->status = status;
        op_finish(b->op);
        free(b);
    }
}

static int pubsub_sync(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    dfws_layer_pubsub_t *p = (dfws_layer_pubsub_t *)l;
    pop_t *op = calloc(1, sizeof(*op));
    size_t i;

    if (op == NULL)
        return DFWS_LAYER_ENOMEM;
    op->p = p;
    op->done = done;
    op->ud = ud;
    op->pending = 1; /* held while issuing */
    for (i = 0; i < p->nshards; i++) {
        shard_t *s = &p->shards[i];
        barrier_t *b;
        /* Connecting counts: the barrier then waits for the connection. */
        if (!dfws_redis_conn_queueable(&s->pub) || !dfws_redis_conn_queueable(&s->sub)) {
            op->status = DFWS_LAYER_EIO;
            continue;
        }
        op->pending++;
        if (redisAsyncCommand(s->pub.ac, on_ping_reply, op, "PING") != REDIS_OK) {
            op->pending--;
            op->status = DFWS_LAYER_EIO;
        }
        if (dfws_redis_conn_usable(&s->sub) && s->sub_acked >= s->sub_sent)
            continue;
        if ((b = calloc(1, sizeof(*b))) == NULL) {
            op->status = DFWS_LAYER_ENOMEM;
            continue;
        }
        b->target = dfws_redis_conn_usable(&s->sub) ? s->sub_sent : AFTER_CONNECT;
        b->op = op;
        op->pending++;
        *s->barriers_tail = b;
        s->barriers_tail = &b->next;
    }
    op_finish(op);
    return 0;
}

/* ---- receiving -------------------------------------------------------------------- */

static void log_undeliverable(dfws_layer_pubsub_t *p, const char *why, const char *where,
                              size_t wlen)
{
    dfws_redis_note_undeliverable(&p->base, &p->undeliverable_logged, why, where, wlen);
}

/* Deliver to the listener of name[0:len], if there is one. 1 delivered. */
static int deliver(dfws_layer_pubsub_t *p, const char *name, size_t len, const char *mp,
                   size_t mplen)
{
    char ch[DFWS_LAYER_NAME_MAX + 1];
    const dfws_layer_listener_t *li;

    if (len >= sizeof(ch) || (li = dfws_layer__listener(&p->base, name, len)) == NULL)
        return 0;
    memcpy(ch, name, len);
    ch[len] = '\0';
    p->base.stats.received++;
    li->cb(li->ud, ch, mp, mplen);
    return 1;
}

static void copy_member(void *ctx, const char *key, size_t klen, void *value)
{
    (void)value;
    if (dfws_buf_append(ctx, key, klen + 1) != 0) /* with its NUL */
        ((dfws_buf_t *)ctx)->len = (size_t)-1;
}

/* A group message: to every local member. The names are copied first: a
 * deliver callback may leave groups or close the layer. */
static void fan_out(dfws_layer_pubsub_t *p, const char *group, size_t glen, dfws_map_t *members,
                    const char *mp, size_t mplen)
{
    dfws_buf_t names = {0};
    size_t off = 0;

    dfws_map_foreach(members, copy_member, &names);
    if (names.len == (size_t)-1) {
        names.len = 0;
        log_undeliverable(p, "out of memory", group, glen);
    }
    while (off < names.len && !p->base.closing) {
        const char *name = names.base + off;
        size_t n = strlen(name);
        if (!deliver(p, name, n, mp, mplen))
            log_undeliverable(p, "group member without a listener", name, n);
        off += n + 1;
    }
    dfws_buf_free(&names);
}

static void on_message(dfws_layer_pubsub_t *p, const char *name, size_t nlen, const char *payload,
                       size_t len)
{
    dfws_buf_t mp = {0};
    dfws_map_t *members;

    if (dfws_pubsub_decode(&p->base.cfg, payload, len, &mp) != 0) {
        log_undeliverable(p,
                          p->base.cfg.nkeys
                              ? "cannot decrypt (wrong key or corrupt), or not a msgpack map"
                              : "not a msgpack map",
                          name, nlen);
    } else if (deliver(p, name, nlen, mp.base, mp.len)) {
        /* a channel of ours (channels_redis checks channels before groups) */
    } else if ((members = dfws_map_get(&p->groups, name, nlen)) != NULL) {
        fan_out(p, name, nlen, members, mp.base, mp.len);
    } else {
        /* unsubscribed a moment ago: Redis had sent it already */
        log_undeliverable(p, "no local listener", name, nlen);
    }
    dfws_buf_free(&mp);
}

int dfws_pubsub_event(const redisReply *rep, dfws_pubsub_event_t *ev)
{
    const redisReply *kind;

    memset(ev, 0, sizeof(*ev));
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        (kind = rep->element[0])->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING)
        return DFWS_PUBSUB_OTHER;
    ev->channel = rep->element[1]->str;
    ev->channel_len = rep->element[1]->len;
    if (kind->len == 7 && memcmp(kind->str, "message", 7) == 0 &&
        rep->element[2]->type == REDIS_REPLY_STRING) {
        ev->data = rep->element[2]->str;
        ev->data_len = rep->element[2]->len;
        return DFWS_PUBSUB_MESSAGE;
    }
    if ((kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0) ||
        (kind->len == 11 && memcmp(kind->str, "unsubscribe", 11) == 0))
        return DFWS_PUBSUB_CONFIRM;
    return DFWS_PUBSUB_OTHER;
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    shard_t *s = priv;
    dfws_pubsub_event_t ev;
    (void)ac;

    if (reply == NULL || s->p->base.closing)
        return; /* the connection is going away: on_sub_down() follows */
    switch (dfws_pubsub_event(reply, &ev)) {
    case DFWS_PUBSUB_MESSAGE:
        on_message(s->p, ev.channel, ev.channel_len, ev.data, ev.data_len);
        break;
    case DFWS_PUBSUB_CONFIRM:
        s->sub_acked++;
        run_barriers(s, 0);
        break;
    default:
        break;
    }
}

/* ---- connections -------------------------------------------------------------------- */

static void subscribe_all(shard_t *s);

static void on_sub_ready(dfws_redis_conn_t *c)
{
    shard_t *s = c->data;
    barrier_t *b;

    s->sub_sent = s->sub_acked = 0;
    if (c->connects > 1)
        s->p->base.stats.reconnects++;
    if (s->subs.count > 0)
        subscribe_all(s);
    /* sync() calls made while connecting wait for what was just sent */
    for (b = s->barriers; b != NULL; b = b->next)
        if (b->target == AFTER_CONNECT)
            b->target = s->sub_sent;
    run_barriers(s, 0);
}

static void subscribe_all(shard_t *s)
{
    dfws_redis_argv_t all = {0};
    size_t i;

    all.argv = malloc(s->subs.count * sizeof(*all.argv));
    all.lens = malloc(s->subs.count * sizeof(*all.lens));
    if (all.argv == NULL || all.lens == NULL) {
        dfws_layer__log(&s->p->base, DFWS_LOG_ERROR,
                        "out of memory: cannot subscribe again after a reconnect");
    } else {
        dfws_map_foreach(&s->subs, dfws_redis_argv_push_key, &all);
        for (i = 0; i < all.n; i += SUBSCRIBE_BATCH)
            sub_command(s, "SUBSCRIBE", all.argv + i, all.lens + i,
                        all.n - i < SUBSCRIBE_BATCH ? all.n - i : SUBSCRIBE_BATCH);
    }
    free(all.argv);
    free(all.lens);
}

static void on_sub_down(dfws_redis_conn_t *c)
{
    shard_t *s = c->data;
    run_barriers(s, DFWS_LAYER_EIO);
    s->sub_sent = s->sub_acked = 0;
}

static void on_pub_ready(dfws_redis_conn_t *c)
{
    shard_t *s = c->data;
    if (c->connects > 1)
        s->p->base.stats.reconnects++;
}

static void on_conn_closed(dfws_redis_conn_t *c)
{
    shard_t *s = c->data;
    dfws_layer__release(&s->p->base);
}

static const dfws_redis_conn_ops_t pub_ops = {on_pub_ready, NULL, on_conn_closed};
static const dfws_redis_conn_ops_t sub_ops = {on_sub_ready, on_sub_down, on_conn_closed};

/* The sentinels moved the master of shard i (or named it first). */
static void on_master_changed(void *ud, size_t i)
{
    dfws_layer_pubsub_t *p = ud;
    dfws_redis_conn_reset(&p->shards[i].sub, "the sentinels name another master");
    dfws_redis_conn_reset(&p->shards[i].pub, "the sentinels name another master");
}

static void on_sentinel_closed(void *ud)
{
    dfws_layer__release(ud);
}

static int pubsub_state(const dfws_layer_t *l, char *why, size_t whylen)
{
    const dfws_layer_pubsub_t *p = (const dfws_layer_pubsub_t *)l;
    int worst = DFWS_LAYER_UP;
    size_t i;

    for (i = 0; i < p->nshards && worst != DFWS_LAYER_DOWN; i++) {
        int a = dfws_redis_conn_health(&p->shards[i].pub, why, whylen);
        int b = a == DFWS_LAYER_DOWN ? a : dfws_redis_conn_health(&p->shards[i].sub, why, whylen);
        if (b > worst)
            worst = b;
    }
    return worst;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static void pubsub_close(dfws_layer_t *l)
{
    dfws_layer_pubsub_t *p = (dfws_layer_pubsub_t *)l;
    size_t i;
    for (i = 0; i < p->nshards; i++) {
        run_barriers(&p->shards[i], DFWS_LAYER_ECLOSED);
        l->pending_closes += 2;
        dfws_redis_conn_close(&p->shards[i].sub);
        dfws_redis_conn_close(&p->shards[i].pub); /* lets written PUBLISHes finish */
        if (p->shards[i].sentinel != NULL) {
            l->pending_closes++;
            dfws_sentinel_close(p->shards[i].sentinel, on_sentinel_closed, l);
            p->shards[i].sentinel = NULL;
        }
    }
}

static void pubsub_destroy(dfws_layer_t *l)
{
    dfws_layer_pubsub_t *p = (dfws_layer_pubsub_t *)l;
    size_t i;
    dfws_map_foreach(&p->groups, free_members, NULL);
    dfws_map_free(&p->groups);
    for (i = 0; i < p->nshards; i++)
        dfws_map_free(&p->shards[i].subs);
    free(p->shards);
}

/* ops->command (history.c): one command on the shard's publish connection. */
typedef struct pcmd_s {
    dfws_layer_reply_cb cb;
    void *ud;
} pcmd_t;

static void on_command_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    pcmd_t *c = priv;
    (void)ac;
    c->cb(c->ud, reply);
    free(c);
}

static int pubsub_command(dfws_layer_t *l, const char *key, size_t klen, int argc,
                          const char **argv, const size_t *lens, dfws_layer_reply_cb cb, void *ud)
{
    shard_t *s = shard_of((dfws_layer_pubsub_t *)l, key, klen);
    pcmd_t *c;
    if (l->closing || !dfws_redis_conn_queueable(&s->pub))
        return DFWS_LAYER_EIO;
    if ((c = malloc(sizeof(*c))) == NULL)
        return DFWS_LAYER_ENOMEM;
    c->cb = cb;
    c->ud = ud;
    if (redisAsyncCommandArgv(s->pub.ac, on_command_reply, c, argc, argv, lens) != REDIS_OK) {
        free(c);
        return DFWS_LAYER_EIO;
    }
    return 0;
}

static const dfws_layer_ops_t pubsub_ops = {
    "pubsub",     pubsub_send,    pubsub_group_add,   pubsub_group_discard, pubsub_group_send,
    pubsub_flush, pubsub_sync,    pubsub_listen,      pubsub_unlisten,      NULL,
    pubsub_close, pubsub_destroy, pubsub_new_channel, pubsub_state,         pubsub_command,
};

int dfws_layer_pubsub_new(uv_loop_t *loop, const dfws_layer_config_t *cfg, dfws_layer_t **out)
{
    dfws_layer_pubsub_t *p;
    size_t i;
    int rc;

    if (cfg->nhosts == 0)
        return DFWS_LAYER_EINVAL;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return DFWS_LAYER_ENOMEM;
    if ((rc = dfws_layer__init(&p->base, loop, cfg, &pubsub_ops)) != 0) {
        free(p);
        return rc;
    }
    p->base.cfg.backend = DFWS_LAYER_BACKEND_PUBSUB;
    p->nshards = p->base.cfg.nhosts;
    dfws_map_init(&p->groups);
    p->shards = calloc(p->nshards, sizeof(*p->shards));
    if (p->shards == NULL || (rc = dfws_layer__start(&p->base)) != 0) {
        free(p->shards);
        dfws_layer__fini(&p->base);
        free(p);
        return rc ? rc : DFWS_LAYER_ENOMEM;
    }
    for (i = 0; i < p->nshards; i++) {
        shard_t *s = &p->shards[i];
        s->p = p;
        dfws_map_init(&s->subs);
        s->barriers_tail = &s->barriers;
        /* NULL when out of memory: the connections then say the master is unknown */
        if (p->base.cfg.hosts[i].master_name != NULL)
            s->sentinel = dfws_sentinel_new(&p->base, &p->base.cfg.hosts[i], i, on_master_changed,
                                            p);
    }
    for (i = 0; i < p->nshards; i++) {
        shard_t *s = &p->shards[i];
        const dfws_layer_host_t *h = &p->base.cfg.hosts[i];
        dfws_redis_conn_start(&s->pub, &p->base, h, s->sentinel, i, "publish", 1, &pub_ops, s);
        dfws_redis_conn_start(&s->sub, &p->base, h, s->sentinel, i, "subscribe", 0, &sub_ops, s);
    }
    *out = &p->base;
    return 0;
}
