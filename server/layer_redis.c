/*
 * dfws channel layer — the Redis backend, wire-compatible with
 * channels_redis.core.RedisChannelLayer (see
 * shared/reference/channels_redis-wire.md).
 *
 * Connections: per shard (host, list order) one command connection and one
 * receive connection, all on the caller's loop through hiredis's libuv
 * adapter. The receive connection of every shard loops
 *     BZPOPMIN <every listened queue key> <brpop_timeout>
 * then "ZPOPMIN key 64" while that key has a backlog. Listened keys are the
 * process's "<prefix>specific.<client_prefix>!" key plus plain channel keys.
 * Every shard is polled (not only hash(non-local name)) so that messages a
 * Python sender put on the shard of the full channel name (channels_redis'
 * send() hashes the full name) still arrive.
 * A change of the key set wakes a blocked pop with CLIENT UNBLOCK.
 *
 * Redis going away: commands fail with DFWS_LAYER_EIO at once while a
 * connection is down, every connection reconnects with exponential backoff
 * (100 ms .. 5 s), one log line per outage; after a reconnect the local
 * group memberships of that shard are added again and the receive loop
 * resumes. Memberships are also refreshed every group_expiry / 3.
 *
 * Sends, group sends and capacity checks run as Lua scripts so trim +
 * ZCOUNT + ZADD + EXPIRE happen atomically in one round trip.
 */
#include "layer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "fernet.h"
#include "layer_sentinel.h"
#include "redis_conn.h"

#define RANDOM_PREFIX_LEN 12
#define ZPOP_BATCH 64
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000
#define RECV_RETRY_MS 1000

static const char SEND_LUA[] =
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[5])\n"
    "if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[4]) then\n"
    "  return 1\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
    "return 0\n";

static const char GROUP_LUA[] =
    "local n = #KEYS\n"
    "local now = ARGV[2 * n + 1]\n"
    "local expiry = ARGV[2 * n + 2]\n"
    "local trim = ARGV[2 * n + 3]\n"
    "local over = 0\n"
    "for i = 1, n do\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, trim)\n"
    "  if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then\n"
    "    redis.call('ZADD', KEYS[i], now, ARGV[i])\n"
    "    redis.call('EXPIRE', KEYS[i], expiry)\n"
    "  else\n"
    "    over = over + 1\n"
    "  end\n"
    "end\n"
    "return over\n";

static const char FLUSH_LUA[] = "local keys = redis.call('KEYS', ARGV[1])\n"
                                "for i = 1, #keys, 5000 do\n"
                                "  redis.call('DEL', unpack(keys, i, math.min(i + 4999, #keys)))\n"
                                "end\n"
                                "return #keys\n";

enum { CONN_CMD = 0, CONN_RECV = 1 };
enum { ST_DOWN = 0, ST_CONNECTING = 1, ST_READY = 2 };

struct dfws_layer_redis_s;

typedef struct rconn_s {
    struct dfws_layer_redis_s *r;
    size_t shard;
    int kind;
    redisAsyncContext *ac; /* NULL while down */
    int state;
    uv_timer_t timer; /* DOWN: reconnect, CONNECTING: timeout, READY: recv retry */
    unsigned backoff_ms;
    int outage; /* an outage was logged and not yet recovered */
    int ever_ready;
    long long client_id; /* receive connection: CLIENT ID, -1 unknown */
    int popping;         /* receive connection: a pop is in flight */
    unsigned keys_gen;   /* key set generation of the in-flight BZPOPMIN */
    char error[200];     /* why it is down; AUTH/SELECT refusal while connecting */
} rconn_t;

typedef struct dfws_layer_redis_s {
    dfws_layer_t base; /* first */
    size_t nshards;
    rconn_t *cmd;
    rconn_t *recv;
    dfws_sentinel_t *
        *sentinel; /* per shard, owned; NULL unless the host names a master through sentinels */
    dfws_map_t recv_keys; /* queue key -> refcount (uintptr_t) */
    unsigned keys_gen;
    dfws_map_t members; /* group -> dfws_map_t* (channel -> (void *)1) */
    uv_timer_t refresh;
    size_t rr_send;
    uint64_t lost_in_outage;
    uint64_t undeliverable_logged;
} dfws_layer_redis_t;

/* ---- small helpers ------------------------------------------------------ */

/* Builds a queue key "<prefix><name[0:len]>" into buf. */
static int queue_key(const dfws_layer_redis_t *r, const char *name, size_t len, char *buf, size_t n)
{
    int k = snprintf(buf, n, "%s%.*s", r->base.cfg.prefix, (int)len, name);
    return k < 0 || (size_t)k >= n ? DFWS_LAYER_EINVAL : k;
}

static int group_key(const dfws_layer_redis_t *r, const char *group, char *buf, size_t n)
{
    int k = snprintf(buf, n, "%s:group:%s", r->base.cfg.prefix, group);
    return k < 0 || (size_t)k >= n ? DFWS_LAYER_EINVAL : k;
}

/* Serialize a wire message: 12 random bytes + (Fernet(msgpack) | msgpack). */
static int make_member(dfws_layer_redis_t *r, dfws_buf_t *wire, dfws_buf_t *member)
{
    unsigned char rnd[RANDOM_PREFIX_LEN];
    dfws_layer__fast_random(rnd, sizeof(rnd));
    if (dfws_buf_append(member, rnd, sizeof(rnd)) != 0)
        return DFWS_LAYER_ENOMEM;
    if (r->base.cfg.nkeys > 0) {
        char *tok = NULL;
        size_t toklen = 0;
        int rc = dfws_fernet_encrypt(&r->base.cfg.keys[0], wire->base, wire->len,
                                     (uint64_t)dfws_layer__now(), NULL, &tok, &toklen);
        if (rc != 0)
            return rc;
        rc = dfws_buf_append(member, tok, toklen);
        free(tok);
        return rc;
    }
    return dfws_buf_append(member, wire->base, wire->len);
}

/* ---- connections -------------------------------------------------------- */

static void rconn_connect(rconn_t *c);
static void recv_kick(rconn_t *c);
static void unblock(rconn_t *c);
static void register_memberships(dfws_layer_redis_t *r, size_t shard);

static int rconn_usable(const rconn_t *c)
{
    return c->ac != NULL && !c->r->base.closing;
}

static void on_rconn_timer(uv_timer_t *t);

static void start_timer(rconn_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_rconn_timer, ms, 0);
}

static void went_down(rconn_t *c, const char *why)
{
    char hd[300];
    if (why != c->error)
        snprintf(c->error, sizeof(c->error), "%s", why);
    c->ac = NULL;
    c->state = ST_DOWN;
    c->popping = 0;
    c->client_id = -1;
    if (c->r->base.closing) {
        dfws_layer__release(&c->r->base);
        return;
    }
    if (c->r->sentinel[c->shard] != NULL)
        dfws_sentinel_suspect(c->r->sentinel[c->shard]);
    if (!c->outage) {
        c->outage = 1;
        dfws_layer__log(&c->r->base, DFWS_LOG_WARNING,
                        "redis %s (shard %zu, %s connection): %s; reconnecting",
                        dfws_redis_host_desc(&c->r->base.cfg.hosts[c->shard], hd, sizeof(hd)),
                        c->shard, c->kind == CONN_CMD ? "command" : "receive", why);
    }
    start_timer(c, c->backoff_ms);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rconn_t *c = ac->data;
    dfws_layer_redis_t *r = c->r;
    char hd[300];

    uv_timer_stop(&c->timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        went_down(c, ac->errstr[0] ? ac->errstr : "connection failed");
        return;
    }
    c->state = ST_READY;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->error[0] = '\0';
    if (c->outage) {
        c->outage = 0;
        dfws_layer__log(
            &r->base, DFWS_LOG_WARNING, "redis %s (shard %zu, %s connection): reconnected%s",
            dfws_redis_host_desc(&r->base.cfg.hosts[c->shard], hd, sizeof(hd)), c->shard,
            c->kind == CONN_CMD ? "command" : "receive",
            c->kind == CONN_CMD && r->lost_in_outage ? "; messages were lost meanwhile" : "");
    }
    if (c->ever_ready)
        r->base.stats.reconnects++;
    c->ever_ready = 1;
    if (r->base.closing)
        return;
    if (c->kind == CONN_CMD)
        register_memberships(r, c->shard);
    else
        recv_kick(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rconn_t *c = ac->data;
    (void)status;
    uv_timer_stop(&c->timer);
    if (c->error[0] != '\0') /* AUTH or SELECT refused (on_setup_reply) */
        went_down(c, c->error);
    else
        went_down(c, ac->errstr[0] ? ac->errstr : "connection closed by the server");
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rep = reply;
    rconn_t *c = ac->data;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && c->error[0] == '\0') {
        /* Every later command would fail with NOAUTH: drop the connection
         * and retry with backoff, logging the real cause once. */
        snprintf(c->error, sizeof(c->error), "%s failed: %s", (const char *)priv, rep->str);
        redisAsyncFree(ac); /* deferred by hiredis until we return; on_disconnect follows */
    }
}

static void on_client_id(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rep = reply;
    rconn_t *c = ac->data;
    (void)priv;
    if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
        c->client_id = rep->integer;
}

static void rconn_connect(rconn_t *c)
{
    static const dfws_redis_callbacks_t cbs = {on_connect, on_disconnect, on_setup_reply};
    char why[sizeof(c->error)];
    const dfws_layer_host_t *h = &c->r->base.cfg.hosts[c->shard];
    dfws_sentinel_t *sentinel = c->r->sentinel[c->shard];
    redisAsyncContext *ac;

    if (h->master_name != NULL && sentinel == NULL) {
        went_down(c, "out of memory (sentinel)");
        return;
    }
    if (sentinel != NULL && (h = dfws_sentinel_master(sentinel, why, sizeof(why))) == NULL) {
        if (why[0] != '\0') {
            went_down(c, why);
        } else {
            /* the first discovery runs: rconn_reset() follows */
            c->state = ST_DOWN;
            snprintf(c->error, sizeof(c->error), "asking the sentinels for the master");
        }
        return;
    }
    ac = dfws_redis_open(h, &c->r->base, c, &cbs, NULL, why, sizeof(why));
    if (ac == NULL) {
        went_down(c, why);
        return;
    }
    c->ac = ac;
    c->state = ST_CONNECTING;
    c->client_id = -1;
    c->error[0] = '\0';
    if (c->kind == CONN_RECV)
        redisAsyncCommand(ac, on_client_id, NULL, "CLIENT ID");
    start_timer(c, CONNECT_TIMEOUT_MS);
}

static void on_rconn_timer(uv_timer_t *t)
{
    rconn_t *c = t->data;
    if (c->r->base.closing)
        return;
    switch (c->state) {
    case ST_DOWN:
        rconn_connect(c);
        break;
    case ST_CONNECTING: {
        /* Not connected in time: drop the context (never connected, so no
         * disconnect callback) and go down. */
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        redisAsyncFree(ac);
        went_down(c, "connect timed out");
        break;
    }
    default:
        if (c->kind == CONN_RECV && c->popping && c->keys_gen != c->r->keys_gen)
            unblock(c);
        else if (c->kind == CONN_RECV)
            recv_kick(c);
        break;
    }
}

/* The master of c's shard moved (Redis Sentinel), or c found it demoted:
 * drop the connection (its pending callbacks get NULL replies, as on any
 * lost connection) and connect again at once. */
static void rconn_reset(rconn_t *c, const char *why)
{
    if (c->r->base.closing)
        return;
    if (c->ac != NULL && c->state == ST_READY) {
        snprintf(c->error, sizeof(c->error), "%s", why);
        /* hiredis runs on_disconnect (maybe once the current callback of
         * that context returns): went_down() */
        redisAsyncFree(c->ac);
        if (c->ac != NULL)
            return; /* deferred: went_down() schedules the reconnect */
    } else if (c->ac != NULL) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        redisAsyncFree(ac); /* never connected: no disconnect callback */
        went_down(c, why);
    }
    uv_timer_stop(&c->timer);
    c->backoff_ms = BACKOFF_MIN_MS;
    start_timer(c, 0);
}

static void on_master_changed(void *ud, size_t shard)
{
    dfws_layer_redis_t *r = ud;
    rconn_reset(&r->cmd[shard], "the sentinels name another master");
    rconn_reset(&r->recv[shard], "the sentinels name another master");
}

/* A replica's answer: a failover happened; ask the sentinels again. */
static void note_readonly(dfws_layer_redis_t *r, const redisReply *rep)
{
    size_t s;
    if (!dfws_sentinel_is_readonly(rep))
        return;
    for (s = 0; s < r->nshards; s++)
        if (r->sentinel[s] != NULL)
            dfws_sentinel_suspect(r->sentinel[s]);
}

static void on_sentinel_closed(void *ud)
{
    dfws_layer__release(ud);
}

/* ---- operations --------------------------------------------------------- */

typedef struct rop_s {
    dfws_layer_redis_t *r;
    dfws_layer_done_cb done;
    void *ud;
    int pending; /* replies still expected (group_send, flush) */
    int status;
    char *group; /* group_send */
    char *msg;   /* group_send: the message (without __asgi_channel__) */
    size_t msglen;
    uint64_t over;
} rop_t;

static void rop_free(rop_t *op)
{
    free(op->group);
    free(op->msg);
    free(op);
}

static int reply_status(dfws_layer_redis_t *r, redisReply *rep, const char *what)
{
    if (rep == NULL)
        return r->base.closing ? DFWS_LAYER_ECLOSED : DFWS_LAYER_EIO;
    if (rep->type == REDIS_REPLY_ERROR) {
        note_readonly(r, rep);
        dfws_layer__log(&r->base, DFWS_LOG_ERROR, "%s failed: %s", what, rep->str);
        return DFWS_LAYER_EIO;
    }
    return 0;
}

static void note_lost(dfws_layer_redis_t *r, const char *what, const char *target)
{
    dfws_redis_note_lost(&r->base, &r->lost_in_outage, what, target);
}

static void on_send_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rop_t *op = priv;
    redisReply *rep = reply;
    int st = reply_status(op->r, rep, "send");
    (void)ac;
    if (st == 0 && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
        st = DFWS_LAYER_EFULL;
    else if (st == 0)
        op->r->base.stats.sent++;
    else if (st == DFWS_LAYER_EIO && rep == NULL)
        note_lost(op->r, "send", "a channel");
    dfws_layer__complete(&op->r->base, op->done, op->ud, st);
    rop_free(op);
}

static int redis_send(dfws_layer_t *l, const char *channel, const char *mp, size_t len,
                      dfws_layer_done_cb done, void *ud)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    dfws_buf_t wire = {0}, member = {0};
    size_t nl = dfws_layer_non_local_len(channel), shard;
    int is_specific = strchr(channel, '!') != NULL;
    char key[512], now[40], expiry[24], cap[24], trim[24];
    const char *argv[9];
    size_t lens[9];
    double t = dfws_layer__now();
    rop_t *op;
    int rc, klen;

    klen = queue_key(r, channel, nl, key, sizeof(key));
    if (klen < 0)
        return DFWS_LAYER_EINVAL;
    if (is_specific) {
        const char *c1 = channel;
        size_t n1 = strlen(channel);
        rc = dfws_layer_msg_add_channel(&wire, mp, len, &c1, &n1, 1, 0);
        shard = dfws_layer_shard(channel, nl, r->nshards);
    } else {
        rc = dfws_buf_append(&wire, mp, len);
        shard = r->rr_send++ % r->nshards;
    }
    if (rc == 0)
        rc = make_member(r, &wire, &member);
    dfws_buf_free(&wire);
    if (rc != 0) {
        dfws_buf_free(&member);
        return rc;
    }
    if (!rconn_usable(&r->cmd[shard])) {
        dfws_buf_free(&member);
        note_lost(r, "send", channel);
        dfws_layer__complete(l, done, ud, DFWS_LAYER_EIO);
        return 0;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        dfws_buf_free(&member);
        return DFWS_LAYER_ENOMEM;
    }
    op->r = r;
    op->done = done;
    op->ud = ud;
    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = SEND_LUA;
    lens[1] = sizeof(SEND_LUA) - 1;
    argv[2] = "1";
    lens[2] = 1;
    argv[3] = key;
    lens[3] = (size_t)klen;
    argv[4] = member.base;
    lens[4] = member.len;
    argv[5] = now;
    lens[5] = (size_t)snprintf(now, sizeof(now), "%.6f", t);
    argv[6] = expiry;
    lens[6] = (size_t)snprintf(expiry, sizeof(expiry), "%d", l->cfg.expiry);
    argv[7] = cap;
    lens[7] = (size_t)snprintf(cap, sizeof(cap), "%d", dfws_layer_capacity_for(l, channel));
    argv[8] = trim;
    lens[8] = (size_t)snprintf(trim, sizeof(trim), "%lld", (long long)t - l->cfg.expiry);
    rc = redisAsyncCommandArgv(r->cmd[shard].ac, on_send_reply, op, 9, argv, lens);
    dfws_buf_free(&member);
    if (rc != REDIS_OK) {
        free(op);
        note_lost(r, "send", channel);
        dfws_layer__complete(l, done, ud, DFWS_LAYER_EIO);
    }
    return 0;
}

/* ---- groups ------------------------------------------------------------- */

static void on_ignore_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rep = reply;
    (void)ac;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
        dfws_layer__log(&((rconn_t *)ac->data)->r->base, DFWS_LOG_ERROR, "%s failed: %s",
                        (const char *)priv, rep->str);
}

/* ZADD <group key> now ch1 now ch2 ... ; EXPIRE <group key> group_expiry */
static void zadd_members(dfws_layer_redis_t *r, const char *group, const char *const *channels,
                         size_t n)
{
    size_t shard = dfws_layer_shard(group, strlen(group), r->nshards), i;
    char key[256], now[40], exp[24];
    const char **argv;
    size_t *lens, nowlen;
    int klen = group_key(r, group, key, sizeof(key));

    if (klen < 0 || n == 0 || !rconn_usable(&r->cmd[shard]))
        return;
    argv = malloc((2 + 2 * n) * sizeof(*argv));
    lens = malloc((2 + 2 * n) * sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        dfws_layer__log(&r->base, DFWS_LOG_ERROR, "group %s: out of memory adding members", group);
        goto out;
    }
    nowlen = (size_t)snprintf(now, sizeof(now), "%.6f", dfws_layer__now());
    argv[0] = "ZADD";
    lens[0] = 4;
    argv[1] = key;
    lens[1] = (size_t)klen;
    for (i = 0; i < n; i++) {
        argv[2 + 2 * i] = now;
        lens[2 + 2 * i] = nowlen;
        argv[3 + 2 * i] = channels[i];
        lens[3 + 2 * i] = strlen(channels[i]);
    }
    redisAsyncCommandArgv(r->cmd[shard].ac, on_ignore_reply, "group_add ZADD", (int)(2 + 2 * n),
                          argv, lens);
    argv[0] = "EXPIRE";
    lens[0] = 6;
    argv[2] = exp;
    lens[2] = (size_t)snprintf(exp, sizeof(exp), "%d", r->base.cfg.group_expiry);
    redisAsyncCommandArgv(r->cmd[shard].ac, on_ignore_reply, "group_add EXPIRE", 3, argv, lens);
out:
    free(argv);
    free(lens);
}

typedef struct collect_s {
    const char **names;
    size_t n;
} collect_t;

static void collect_key(void *ctx, const char *key, size_t klen, void *value)
{
    collect_t *c = ctx;
    (void)klen;
    (void)value;
    c->names[c->n++] = key;
}

static void refresh_group(dfws_layer_redis_t *r, const char *group, dfws_map_t *chans)
{
    collect_t c;
    c.names = malloc((chans->count ? chans->count : 1) * sizeof(*c.names));
    c.n = 0;
    if (c.names == NULL) {
        dfws_layer__log(&r->base, DFWS_LOG_ERROR, "group %s: out of memory refreshing members",
                        group);
        return;
    }
    dfws_map_foreach(chans, collect_key, &c);
    zadd_members(r, group, c.names, c.n);
    free(c.names);
}

typedef struct reg_ctx_s {
    dfws_layer_redis_t *r;
    size_t shard; /* SIZE_MAX = all */
} reg_ctx_t;

static void register_one(void *ctx, const char *key, size_t klen, void *value)
{
    reg_ctx_t *rc = ctx;
    if (rc->shard == SIZE_MAX || dfws_layer_shard(key, klen, rc->r->nshards) == rc->shard)
        refresh_group(rc->r, key, value);
}

static void register_memberships(dfws_layer_redis_t *r, size_t shard)
{
    reg_ctx_t ctx = {r, shard};
    dfws_map_foreach(&r->members, register_one, &ctx);
}

static void on_refresh(uv_timer_t *t)
{
    register_memberships(t->data, SIZE_MAX);
}

static int redis_group_add(dfws_layer_t *l, const char *group, const char *channel)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    size_t gn = strlen(group);
    dfws_map_t *chans = dfws_map_get(&r->members, group, gn);

    if (chans == NULL) {
        chans = malloc(sizeof(*chans));
        if (chans == NULL)
            return DFWS_LAYER_ENOMEM;
        dfws_map_init(chans);
        if (dfws_map_put(&r->members, group, gn, chans) != 0) {
            free(chans);
            return DFWS_LAYER_ENOMEM;
        }
    }
    if (dfws_map_put(chans, channel, strlen(channel), (void *)1) != 0)
        return DFWS_LAYER_ENOMEM;
    /* Down now: register_memberships() adds it after the reconnect. */
    zadd_members(r, group, &channel, 1);
    return 0;
}

static int redis_group_discard(dfws_layer_t *l, const char *group, const char *channel)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    size_t gn = strlen(group), shard = dfws_layer_shard(group, gn, r->nshards);
    dfws_map_t *chans = dfws_map_get(&r->members, group, gn);
    char key[256];
    int klen = group_key(r, group, key, sizeof(key));

    if (chans != NULL) {
        dfws_map_del(chans, channel, strlen(channel));
        if (chans->count == 0) {
            dfws_map_del(&r->members, group, gn);
            dfws_map_free(chans);
            free(chans);
        }
    }
    if (klen > 0 && rconn_usable(&r->cmd[shard])) {
        const char *argv[3] = {"ZREM", key, channel};
        size_t lens[3] = {4, (size_t)klen, strlen(channel)};
        redisAsyncCommandArgv(r->cmd[shard].ac, on_ignore_reply, "group_discard ZREM", 3, argv,
                              lens);
    }
    return 0;
}

/* One bucket of group members sharing a queue key. */
typedef struct bucket_s {
    char *key;
    size_t shard;
    int capacity;
    size_t n, cap;
    const char **chans;
    size_t *lens;
} bucket_t;

static void group_op_finish(rop_t *op)
{
    if (--op->pending > 0)
        return;
    if (op->over > 0)
        dfws_layer__log(&op->r->base, DFWS_LOG_INFO, "%llu channel(s) over capacity in group %s",
                        (unsigned long long)op->over, op->group);
    dfws_layer__complete(&op->r->base, op->done, op->ud, op->status);
    rop_free(op);
}

static void on_group_eval(redisAsyncContext *ac, void *reply, void *priv)
{
    rop_t *op = priv;
    redisReply *rep = reply;
    int st = reply_status(op->r, rep, "group_send");
    (void)ac;
    if (st != 0 && op->status == 0)
        op->status = st;
    if (st == DFWS_LAYER_EIO && rep == NULL)
        note_lost(op->r, "group_send", op->group);
    if (st == 0 && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
        op->over += (uint64_t)rep->integer;
        op->r->base.stats.group_dropped += (uint64_t)rep->integer;
    }
    group_op_finish(op);
}

static void free_buckets(bucket_t *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        free(b[i].key);
        free(b[i].chans);
        free(b[i].lens);
    }
    free(b);
}

/* Send one EVAL for the buckets of one shard. Returns 0 or EIO/ENOMEM. */
static int group_eval_shard(rop_t *op, bucket_t *b, size_t nb, size_t shard, double t)
{
    dfws_layer_redis_t *r = op->r;
    size_t i, k = 0, count = 0, argc;
    const char **argv = NULL;
    size_t *lens = NULL;
    dfws_buf_t *members = NULL;
    char(*caps)[16] = NULL;
    char now[40], exp[24], trim[24], nkeys[24];
    int rc = DFWS_LAYER_ENOMEM;

    for (i = 0; i < nb; i++)
        if (b[i].shard == shard)
            count++;
    if (count == 0)
        return 0;
    if (!rconn_usable(&r->cmd[shard]))
        return DFWS_LAYER_EIO;
    argc = 3 + 3 * count + 3;
    argv = malloc(argc * sizeof(*argv));
    lens = malloc(argc * sizeof(*lens));
    members = calloc(count, sizeof(*members));
    caps = malloc(count * sizeof(*caps));
    if (!argv || !lens || !members || !caps)
        goto out;
    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = GROUP_LUA;
    lens[1] = sizeof(GROUP_LUA) - 1;
    argv[2] = nkeys;
    lens[2] = (size_t)snprintf(nkeys, sizeof(nkeys), "%zu", count);
    for (i = 0; i < nb; i++) {
        dfws_buf_t wire = {0};
        if (b[i].shard != shard)
            continue;
        if (dfws_layer_msg_add_channel(&wire, op->msg, op->msglen, b[i].chans, b[i].lens, b[i].n,
                                       1) != 0 ||
            make_member(r, &wire, &members[k]) != 0) {
            dfws_buf_free(&wire);
            goto out;
        }
        dfws_buf_free(&wire);
        argv[3 + k] = b[i].key;
        lens[3 + k] = strlen(b[i].key);
        argv[3 + count + k] = members[k].base;
        lens[3 + count + k] = members[k].len;
        argv[3 + 2 * count + k] = caps[k];
        lens[3 + 2 * count + k] = (size_t)snprintf(caps[k], sizeof(caps[k]), "%d", b[i].capacity);
        k++;
    }
    argv[3 + 3 * count] = now;
    lens[3 + 3 * count] = (size_t)snprintf(now, sizeof(now), "%.6f", t);
    argv[4 + 3 * count] = exp;
    lens[4 + 3 * count] = (size_t)snprintf(exp, sizeof(exp), "%d", r->base.cfg.expiry);
    argv[5 + 3 * count] = trim;
    lens[5 + 3 * count] = (size_t)snprintf(trim, sizeof(trim), "%lld",
                                           (long long)t - r->base.cfg.expiry);
    op->pending++;
    if (redisAsyncCommandArgv(r->cmd[shard].ac, on_group_eval, op, (int)argc, argv, lens) !=
        REDIS_OK) {
        op->pending--;
        rc = DFWS_LAYER_EIO;
        goto out;
    }
    rc = 0;
out:
    if (members)
        for (i = 0; i < count; i++)
            dfws_buf_free(&members[i]);
    free(members);
    free(caps);
    free(argv);
    free(lens);
    return rc;
}

static void on_group_members(redisAsyncContext *ac, void *reply, void *priv)
{
    rop_t *op = priv;
    dfws_layer_redis_t *r = op->r;
    redisReply *rep = reply;
    dfws_map_t by_key;
    bucket_t *b = NULL;
    size_t nb = 0, i, s;
    double t = dfws_layer__now();
    int st = reply_status(r, rep, "group_send ZRANGE");
    (void)ac;

    dfws_map_init(&by_key);
    op->pending = 1; /* held while the EVALs are being issued */
    if (st != 0) {
        op->status = st;
        if (st == DFWS_LAYER_EIO && rep == NULL)
            note_lost(r, "group_send", op->group);
        goto done;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
        goto done;
    b = calloc(rep->elements, sizeof(*b));
    if (b == NULL) {
        op->status = DFWS_LAYER_ENOMEM;
        goto done;
    }
    for (i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        char key[512];
        size_t nl;
        bucket_t *bk;
        int klen;
        if (e->type != REDIS_REPLY_STRING || !dfws_layer_valid_channel_name(e->str))
            continue;
        nl = dfws_layer_non_local_len(e->str);
        klen = queue_key(r, e->str, nl, key, sizeof(key));
        if (klen < 0)
            continue;
        bk = dfws_map_get(&by_key, key, (size_t)klen);
        if (bk == NULL) {
            bk = &b[nb];
            bk->key = strdup(key);
            bk->shard = dfws_layer_shard(e->str, nl, r->nshards);
            bk->capacity = dfws_layer_capacity_for(&r->base, e->str);
            bk->cap = 4;
            bk->chans = malloc(bk->cap * sizeof(*bk->chans));
            bk->lens = malloc(bk->cap * sizeof(*bk->lens));
            nb++;
            if (!bk->key || !bk->chans || !bk->lens ||
                dfws_map_put(&by_key, key, (size_t)klen, bk) != 0) {
                op->status = DFWS_LAYER_ENOMEM;
                goto done;
            }
        }
        if (bk->n == bk->cap) {
            const char **nc = realloc(bk->chans, 2 * bk->cap * sizeof(*nc));
            size_t *nlens;
            if (nc == NULL) {
                op->status = DFWS_LAYER_ENOMEM;
                goto done;
            }
            bk->chans = nc;
            nlens = realloc(bk->lens, 2 * bk->cap * sizeof(*nlens));
            if (nlens == NULL) {
                op->status = DFWS_LAYER_ENOMEM;
                goto done;
            }
            bk->lens = nlens;
            bk->cap *= 2;
        }
        bk->chans[bk->n] = e->str; /* valid during this callback */
        bk->lens[bk->n] = e->len;
        bk->n++;
    }
    for (s = 0; s < r->nshards; s++) {
        int rc = group_eval_shard(op, b, nb, s, t);
        if (rc != 0) {
            size_t lost = 0;
            for (i = 0; i < nb; i++)
                if (b[i].shard == s)
                    lost += b[i].n;
            if (op->status == 0)
                op->status = rc;
            if (rc == DFWS_LAYER_EIO) {
                r->lost_in_outage += lost - 1;
                note_lost(r, "group_send", op->group);
            }
        }
    }
done:
    free_buckets(b, nb);
    dfws_map_free(&by_key);
    group_op_finish(op);
}

static int redis_group_send(dfws_layer_t *l, const char *group, const char *mp, size_t len,
                            dfws_layer_done_cb done, void *ud)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    size_t shard = dfws_layer_shard(group, strlen(group), r->nshards);
    char key[256], trim[24];
    int klen = group_key(r, group, key, sizeof(key));
    rop_t *op;

    if (klen < 0)
        return DFWS_LAYER_EINVAL;
    if (!rconn_usable(&r->cmd[shard])) {
        note_lost(r, "group_send", group);
        dfws_layer__complete(l, done, ud, DFWS_LAYER_EIO);
        return 0;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL || (op->group = strdup(group)) == NULL ||
        (op->msg = malloc(len ? len : 1)) == NULL) {
        if (op)
            rop_free(op);
        return DFWS_LAYER_ENOMEM;
    }
    memcpy(op->msg, mp, len);
    op->msglen = len;
    op->r = r;
    op->done = done;
    op->ud = ud;
    {
        const char *argv[4] = {"ZREMRANGEBYSCORE", key, "0", trim};
        size_t lens[4] = {16, (size_t)klen, 1, 0};
        lens[3] = (size_t)snprintf(trim, sizeof(trim), "%lld",
                                   (long long)dfws_layer__now() - l->cfg.group_expiry);
        redisAsyncCommandArgv(r->cmd[shard].ac, on_ignore_reply, "group_send ZREMRANGEBYSCORE", 4,
                              argv, lens);
    }
    {
        const char *argv[4] = {"ZRANGE", key, "0", "-1"};
        size_t lens[4] = {6, (size_t)klen, 1, 2};
        if (redisAsyncCommandArgv(r->cmd[shard].ac, on_group_members, op, 4, argv, lens) !=
            REDIS_OK) {
            rop_free(op);
            note_lost(r, "group_send", group);
            dfws_layer__complete(l, done, ud, DFWS_LAYER_EIO);
        }
    }
    return 0;
}

/* ---- flush -------------------------------------------------------------- */

static void on_flush_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rop_t *op = priv;
    int st = reply_status(op->r, reply, "flush");
    (void)ac;
    if (st != 0 && op->status == 0)
        op->status = st;
    if (--op->pending == 0) {
        dfws_layer__complete(&op->r->base, op->done, op->ud, op->status);
        rop_free(op);
    }
}

static void free_member_map(void *ctx, const char *key, size_t klen, void *value)
{
    (void)ctx;
    (void)key;
    (void)klen;
    dfws_map_free(value);
    free(value);
}

static int redis_flush(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    rop_t *op = calloc(1, sizeof(*op));
    char pattern[300];
    size_t s;

    if (op == NULL)
        return DFWS_LAYER_ENOMEM;
    op->r = r;
    op->done = done;
    op->ud = ud;
    op->pending = 1;
    dfws_map_foreach(&r->members, free_member_map, NULL);
    dfws_map_free(&r->members);
    snprintf(pattern, sizeof(pattern), "%s*", l->cfg.prefix);
    for (s = 0; s < r->nshards; s++) {
        const char *argv[4] = {"EVAL", FLUSH_LUA, "0", pattern};
        size_t lens[4] = {4, sizeof(FLUSH_LUA) - 1, 1, strlen(pattern)};
        op->pending++;
        if (!rconn_usable(&r->cmd[s]) ||
            redisAsyncCommandArgv(r->cmd[s].ac, on_flush_reply, op, 4, argv, lens) != REDIS_OK) {
            op->pending--;
            op->status = DFWS_LAYER_EIO;
        }
    }
    if (--op->pending == 0) {
        dfws_layer__complete(l, done, ud, op->status);
        rop_free(op);
    }
    return 0;
}

static int redis_sync(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    rop_t *op = calloc(1, sizeof(*op));
    size_t s;

    if (op == NULL)
        return DFWS_LAYER_ENOMEM;
    op->r = r;
    op->done = done;
    op->ud = ud;
    op->pending = 1;
    for (s = 0; s < r->nshards; s++) {
        op->pending++;
        if (!rconn_usable(&r->cmd[s]) ||
            redisAsyncCommand(r->cmd[s].ac, on_flush_reply, op, "PING") != REDIS_OK) {
            op->pending--;
            op->status = DFWS_LAYER_EIO;
        }
    }
    if (--op->pending == 0) {
        dfws_layer__complete(l, done, ud, op->status);
        rop_free(op);
    }
    return 0;
}

/* ---- receiving ---------------------------------------------------------- */

static void on_bzpop(redisAsyncContext *ac, void *reply, void *priv);
static void on_zpop(redisAsyncContext *ac, void *reply, void *priv);

static void recv_kick(rconn_t *c)
{
    dfws_layer_redis_t *r = c->r;
    dfws_redis_argv_t k;
    char tmo[16];
    size_t n = r->recv_keys.count;

    if (c->popping || c->state != ST_READY || !rconn_usable(c) || n == 0)
        return;
    k.argv = malloc((n + 2) * sizeof(*k.argv));
    k.lens = malloc((n + 2) * sizeof(*k.lens));
    if (k.argv == NULL || k.lens == NULL) {
        free(k.argv);
        free(k.lens);
        start_timer(c, RECV_RETRY_MS);
        return;
    }
    k.argv[0] = "BZPOPMIN";
    k.lens[0] = 8;
    k.n = 1;
    dfws_map_foreach(&r->recv_keys, dfws_redis_argv_push_key, &k);
    k.argv[k.n] = tmo;
    k.lens[k.n] = (size_t)snprintf(tmo, sizeof(tmo), "%d", r->base.cfg.brpop_timeout);
    k.n++;
    if (redisAsyncCommandArgv(c->ac, on_bzpop, c, (int)k.n, k.argv, k.lens) == REDIS_OK) {
        c->popping = 1;
        c->keys_gen = r->keys_gen;
    }
    free(k.argv);
    free(k.lens);
}

static void log_undeliverable(dfws_layer_redis_t *r, const char *why, const char *where,
                              size_t wlen)
{
    dfws_redis_note_undeliverable(&r->base, &r->undeliverable_logged, why, where, wlen);
}

static void deliver_to(dfws_layer_redis_t *r, const char *ch, size_t chlen, const char *mp,
                       size_t len)
{
    char name[DFWS_LAYER_NAME_MAX + 1];
    const dfws_layer_listener_t *li;
    if (chlen >= sizeof(name)) {
        log_undeliverable(r, "destination name too long", ch, 60);
        return;
    }
    memcpy(name, ch, chlen);
    name[chlen] = '\0';
    li = dfws_layer__listener(&r->base, name, chlen);
    if (li == NULL) {
        log_undeliverable(r, "no local listener", name, chlen);
        return;
    }
    r->base.stats.received++;
    li->cb(li->ud, name, mp, len);
}

static int cmp_strref(const void *a, const void *b)
{
    const dfws_mp_strref_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

/* Decode one popped member and deliver it. */
static void handle_member(dfws_layer_redis_t *r, const char *key, size_t klen, const char *m,
                          size_t mlen)
{
    unsigned char *plain = NULL;
    size_t plen = 0, ndests = 0, i, plen_prefix = strlen(r->base.cfg.prefix);
    const char *payload;
    dfws_buf_t out = {0};
    dfws_mp_strref_t *dests = NULL;
    int had_key = 0;

    if (mlen < RANDOM_PREFIX_LEN) {
        log_undeliverable(r, "member shorter than 12 bytes", key, klen);
        return;
    }
    payload = m + RANDOM_PREFIX_LEN;
    plen = mlen - RANDOM_PREFIX_LEN;
    if (r->base.cfg.nkeys > 0) {
        if (dfws_fernet_decrypt(r->base.cfg.keys, r->base.cfg.nkeys, payload, plen,
                                (uint64_t)dfws_layer__now(), r->base.cfg.expiry + 10, &plain,
                                &plen) != 0) {
            log_undeliverable(r, "cannot decrypt (wrong key, expired or corrupt)", key, klen);
            return;
        }
        payload = (const char *)plain;
    }
    if (dfws_layer_msg_strip_channel(&out, payload, plen, &dests, &ndests, &had_key) != 0) {
        log_undeliverable(r, "not a msgpack map", key, klen);
        goto out;
    }
    if (had_key) {
        /* A channel listed twice gets the message once: channels_redis
         * never repeats one, but any sender may (a browser would see the
         * signal twice). Sorted, the repeats are neighbours; the order
         * between different channels means nothing. */
        if (ndests > 1)
            qsort(dests, ndests, sizeof(*dests), cmp_strref);
        for (i = 0; i < ndests && !r->base.closing; i++) {
            if (i > 0 && !cmp_strref(&dests[i - 1], &dests[i]))
                continue;
            deliver_to(r, dests[i].s, dests[i].len, out.base, out.len);
        }
    } else if (klen > plen_prefix && memchr(key, '!', klen) == NULL) {
        deliver_to(r, key + plen_prefix, klen - plen_prefix, out.base, out.len);
    } else {
        log_undeliverable(r, "no __asgi_channel__ on a process-specific queue", key, klen);
    }
out:
    free(dests);
    dfws_buf_free(&out);
    free(plain);
}

/* A message popped from a key nobody listens to any more goes back. */
static int put_back_if_unlistened(rconn_t *c, const redisReply *key, const redisReply *member,
                                  const redisReply *score)
{
    dfws_layer_redis_t *r = c->r;
    if (dfws_map_get(&r->recv_keys, key->str, key->len) != NULL)
        return 0;
    if (rconn_usable(&r->cmd[c->shard])) {
        const char *argv[4] = {"ZADD", key->str, score->str, member->str};
        size_t lens[4] = {4, key->len, score->len, member->len};
        redisAsyncCommandArgv(r->cmd[c->shard].ac, on_ignore_reply, "put back ZADD", 4, argv, lens);
    }
    return 1;
}

static void zpop_more(rconn_t *c, const char *key, size_t klen)
{
    char n[16];
    const char *argv[3] = {"ZPOPMIN", key, n};
    size_t lens[3] = {7, klen, 0};
    lens[2] = (size_t)snprintf(n, sizeof(n), "%d", ZPOP_BATCH);
    if (dfws_map_get(&c->r->recv_keys, key, klen) == NULL || !rconn_usable(c)) {
        recv_kick(c);
        return;
    }
    /* privdata: the key, needed again for the next batch */
    {
        char *k = malloc(klen + 1);
        if (k == NULL) {
            recv_kick(c);
            return;
        }
        memcpy(k, key, klen);
        k[klen] = '\0';
        if (redisAsyncCommandArgv(c->ac, on_zpop, k, 3, argv, lens) == REDIS_OK)
            c->popping = 1;
        else
            free(k);
    }
}

static void on_bzpop(redisAsyncContext *ac, void *reply, void *priv)
{
    rconn_t *c = priv;
    redisReply *rep = reply;
    (void)ac;

    c->popping = 0;
    if (rep == NULL)
        return; /* disconnecting: on_connect restarts the loop */
    if (c->r->base.closing)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        if (dfws_sentinel_is_readonly(rep) && c->r->sentinel[c->shard] != NULL) {
            rconn_reset(c, "READONLY: the master became a replica");
            return;
        }
        dfws_layer__log(&c->r->base, DFWS_LOG_ERROR, "BZPOPMIN failed: %s; retrying", rep->str);
        start_timer(c, RECV_RETRY_MS);
        return;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING) {
        redisReply *key = rep->element[0];
        if (!put_back_if_unlistened(c, key, rep->element[1], rep->element[2])) {
            handle_member(c->r, key->str, key->len, rep->element[1]->str, rep->element[1]->len);
            if (c->r->base.closing)
                return;
            zpop_more(c, key->str, key->len);
            return;
        }
    }
    recv_kick(c); /* timeout, unblocked, or put back */
}

static void on_zpop(redisAsyncContext *ac, void *reply, void *priv)
{
    char *key = priv;
    rconn_t *c = ac->data;
    redisReply *rep = reply;
    size_t i, klen = strlen(key);

    c->popping = 0;
    if (rep == NULL || c->r->base.closing) {
        free(key);
        return;
    }
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i + 1 < rep->elements && !c->r->base.closing; i += 2) {
            redisReply kr;
            kr.str = key;
            kr.len = klen;
            if (rep->element[i]->type != REDIS_REPLY_STRING)
                continue;
            if (!put_back_if_unlistened(c, &kr, rep->element[i], rep->element[i + 1]))
                handle_member(c->r, key, klen, rep->element[i]->str, rep->element[i]->len);
        }
        if (!c->r->base.closing && rep->elements == 2 * ZPOP_BATCH) {
            zpop_more(c, key, klen);
            free(key);
            return;
        }
    } else if (rep->type == REDIS_REPLY_ERROR) {
        dfws_layer__log(&c->r->base, DFWS_LOG_ERROR, "ZPOPMIN failed: %s", rep->str);
    }
    free(key);
    if (!c->r->base.closing)
        recv_kick(c);
}

static void on_unblock(redisAsyncContext *ac, void *reply, void *priv)
{
    rconn_t *c = priv;
    redisReply *rep = reply;
    (void)ac;
    /* 0: the pop was not blocked yet (still on its way to Redis). Try again
     * shortly while it still waits on a stale key set. */
    if (rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0 &&
        !c->r->base.closing && c->popping && c->keys_gen != c->r->keys_gen)
        start_timer(c, 10);
}

static void unblock(rconn_t *c)
{
    dfws_layer_redis_t *r = c->r;
    if (c->client_id >= 0 && rconn_usable(&r->cmd[c->shard])) {
        char id[32];
        const char *argv[3] = {"CLIENT", "UNBLOCK", id};
        size_t lens[3] = {6, 7, 0};
        lens[2] = (size_t)snprintf(id, sizeof(id), "%lld", c->client_id);
        redisAsyncCommandArgv(r->cmd[c->shard].ac, on_unblock, c, 3, argv, lens);
    }
}

/* The key set changed: wake every blocked pop so it picks the new set. */
static void keys_changed(dfws_layer_redis_t *r)
{
    size_t s;
    r->keys_gen++;
    for (s = 0; s < r->nshards; s++) {
        rconn_t *c = &r->recv[s];
        if (!c->popping)
            recv_kick(c);
        else
            unblock(c);
    }
}

static int listen_key(dfws_layer_redis_t *r, const char *channel, char *key, size_t keysz)
{
    size_t nl = dfws_layer_non_local_len(channel);
    if (channel[nl - 1] == '!') {
        size_t cpl = strlen(r->base.client_prefix);
        if (nl < cpl + 1 || memcmp(channel + nl - 1 - cpl, r->base.client_prefix, cpl) != 0) {
            dfws_layer__log(&r->base, DFWS_LOG_WARNING,
                            "listen: %s is not a channel of this process (client prefix %s)",
                            channel, r->base.client_prefix);
            return DFWS_LAYER_EINVAL;
        }
    }
    return queue_key(r, channel, nl, key, keysz);
}

static int redis_listen(dfws_layer_t *l, const char *channel)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    char key[512];
    int klen = listen_key(r, channel, key, sizeof(key));
    uintptr_t cnt;

    if (klen < 0)
        return klen;
    cnt = (uintptr_t)dfws_map_get(&r->recv_keys, key, (size_t)klen);
    if (dfws_map_put(&r->recv_keys, key, (size_t)klen, (void *)(cnt + 1)) != 0)
        return DFWS_LAYER_ENOMEM;
    if (cnt == 0)
        keys_changed(r);
    return 0;
}

static void redis_unlisten(dfws_layer_t *l, const char *channel)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    char key[512];
    int klen = listen_key(r, channel, key, sizeof(key));
    uintptr_t cnt;

    if (klen < 0)
        return;
    cnt = (uintptr_t)dfws_map_get(&r->recv_keys, key, (size_t)klen);
    if (cnt > 1) {
        dfws_map_put(&r->recv_keys, key, (size_t)klen, (void *)(cnt - 1));
    } else if (cnt == 1) {
        dfws_map_del(&r->recv_keys, key, (size_t)klen);
        keys_changed(r);
    }
}

/* ---- lifecycle ---------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    dfws_layer__release(h->data);
}

static void rconn_close(rconn_t *c)
{
    dfws_layer_t *l = &c->r->base;
    l->pending_closes++;
    c->timer.data = l;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->ac != NULL) {
        redisAsyncContext *ac = c->ac;
        l->pending_closes++;
        if (c->state == ST_READY) {
            /* went_down() releases from on_disconnect */
            if (c->kind == CONN_CMD)
                redisAsyncDisconnect(ac); /* let written commands finish */
            else
                redisAsyncFree(ac);
        } else {
            /* never connected: no disconnect callback will come */
            c->ac = NULL;
            redisAsyncFree(ac);
            dfws_layer__release(l);
        }
    }
}

static void redis_close(dfws_layer_t *l)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    size_t s;
    l->pending_closes++;
    r->refresh.data = l;
    uv_close((uv_handle_t *)&r->refresh, on_handle_closed);
    for (s = 0; s < r->nshards; s++) {
        rconn_close(&r->recv[s]);
        rconn_close(&r->cmd[s]);
        if (r->sentinel[s] != NULL) {
            l->pending_closes++;
            dfws_sentinel_close(r->sentinel[s], on_sentinel_closed, l);
            r->sentinel[s] = NULL;
        }
    }
}

static void redis_destroy(dfws_layer_t *l)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    dfws_map_foreach(&r->members, free_member_map, NULL);
    dfws_map_free(&r->members);
    dfws_map_free(&r->recv_keys);
    free(r->cmd);
    free(r->recv);
    free(r->sentinel);
}

static int rconn_health(const rconn_t *c, char *why, size_t whylen)
{
    return dfws_redis_health(c->state == ST_READY, c->outage, &c->r->base.cfg.hosts[c->shard],
                             c->shard, c->kind == CONN_CMD ? "command" : "receive", c->error, why,
                             whylen);
}

static int redis_state(const dfws_layer_t *l, char *why, size_t whylen)
{
    const dfws_layer_redis_t *r = (const dfws_layer_redis_t *)l;
    int worst = DFWS_LAYER_UP;
    size_t s;
    for (s = 0; s < r->nshards && worst != DFWS_LAYER_DOWN; s++) {
        int a = rconn_health(&r->cmd[s], why, whylen);
        int b = a == DFWS_LAYER_DOWN ? a : rconn_health(&r->recv[s], why, whylen);
        if (b > worst)
            worst = b;
    }
    return worst;
}

/* ops->command (history.c): one command on the shard's command connection. */
typedef struct rcmd_s {
    dfws_layer_reply_cb cb;
    void *ud;
} rcmd_t;

static void on_command_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rcmd_t *c = priv;
    (void)ac;
    c->cb(c->ud, reply);
    free(c);
}

static int redis_command(dfws_layer_t *l, const char *key, size_t klen, int argc, const char **argv,
                         const size_t *lens, dfws_layer_reply_cb cb, void *ud)
{
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    size_t shard = dfws_layer_shard(key, klen, r->nshards);
    rcmd_t *c;
    if (!rconn_usable(&r->cmd[shard]))
        return DFWS_LAYER_EIO;
    if ((c = malloc(sizeof(*c))) == NULL)
        return DFWS_LAYER_ENOMEM;
    c->cb = cb;
    c->ud = ud;
    if (redisAsyncCommandArgv(r->cmd[shard].ac, on_command_reply, c, argc, argv, lens) !=
        REDIS_OK) {
        free(c);
        return DFWS_LAYER_EIO;
    }
    return 0;
}

static const dfws_layer_ops_t redis_ops = {
    "redis",
    redis_send,
    redis_group_add,
    redis_group_discard,
    redis_group_send,
    redis_flush,
    redis_sync,
    redis_listen,
    redis_unlisten,
    NULL,
    redis_close,
    redis_destroy,
    NULL,
    redis_state,
    redis_command,
};

static void rconn_init(dfws_layer_redis_t *r, rconn_t *c, size_t shard, int kind)
{
    c->r = r;
    c->shard = shard;
    c->kind = kind;
    c->state = ST_DOWN;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->client_id = -1;
    uv_timer_init(r->base.loop, &c->timer);
    c->timer.data = c;
}

int dfws_layer_redis_new(uv_loop_t *loop, const dfws_layer_config_t *cfg, dfws_layer_t **out)
{
    dfws_layer_redis_t *r;
    uint64_t period;
    size_t s;
    int rc;

    if (cfg->nhosts == 0)
        return DFWS_LAYER_EINVAL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return DFWS_LAYER_ENOMEM;
    if ((rc = dfws_layer__init(&r->base, loop, cfg, &redis_ops)) != 0) {
        free(r);
        return rc;
    }
    r->base.cfg.backend = DFWS_LAYER_BACKEND_REDIS;
    r->nshards = r->base.cfg.nhosts;
    dfws_map_init(&r->recv_keys);
    dfws_map_init(&r->members);
    r->cmd = calloc(r->nshards, sizeof(*r->cmd));
    r->recv = calloc(r->nshards, sizeof(*r->recv));
    r->sentinel = calloc(r->nshards, sizeof(*r->sentinel));
    if (r->cmd == NULL || r->recv == NULL || r->sentinel == NULL ||
        (rc = dfws_layer__start(&r->base)) != 0) {
        free(r->cmd);
        free(r->recv);
        free(r->sentinel);
        dfws_layer__fini(&r->base);
        free(r);
        return rc ? rc : DFWS_LAYER_ENOMEM;
    }
    uv_timer_init(loop, &r->refresh);
    r->refresh.data = r;
    period = (uint64_t)r->base.cfg.group_expiry * 1000 / 3;
    if (period < 500)
        period = 500;
    uv_timer_start(&r->refresh, on_refresh, period, period);
    uv_unref((uv_handle_t *)&r->refresh);
    for (s = 0; s < r->nshards; s++) {
        rconn_init(r, &r->cmd[s], s, CONN_CMD);
        rconn_init(r, &r->recv[s], s, CONN_RECV);
    }
    for (s = 0; s < r->nshards; s++) {
        /* NULL when out of memory: the connections then say so */
        if (r->base.cfg.hosts[s].master_name != NULL)
            r->sentinel[s] = dfws_sentinel_new(&r->base, &r->base.cfg.hosts[s], s,
                                               on_master_changed, r);
    }
    for (s = 0; s < r->nshards; s++) {
        rconn_connect(&r->cmd[s]);
        rconn_connect(&r->recv[s]);
    }
    *out = &r->base;
    return 0;
}
