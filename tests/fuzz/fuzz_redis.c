/* libFuzzer driver for what the Redis channel layers do with the replies
 * of a Redis server (server/layer_redis.c, server/layer_pubsub.c): the
 * bytes are parsed by hiredis's reader, as the connection's read path does
 * (server/redis_conn.c hands the socket's bytes to hiredis, bounded by
 * dfws_redis_bound_reader), and each reply goes to the callback the first
 * input byte picks:
 *   0 the receive loop's BZPOPMIN reply   [key, member, score]
 *   1 its ZPOPMIN batch                   [member, score, ...]
 *   2 a group send's ZRANGE of members    [channel, ...]
 *   3 the pub/sub layer's subscribing connection: its reply callback
 *     (on_sub_reply) with ["message", channel, payload] or a confirmation,
 *     delivered to the listeners of a channel or fanned out to a group's
 *     local members (one of which leaves and joins again from inside its
 *     delivery)
 * with a layer that has Fernet keys or not (bit 2; with keys the member or
 * payload is also encrypted by the driver, so that the decrypted path is
 * reached). So a Redis reply stream whose payloads are channels_redis
 * msgpack messages goes through the same path as in the layers, down to
 * the listener callbacks, which check that they get a msgpack map.
 * Members are real channel_redis wire messages or anything else; the layer
 * must deliver, put back or drop each one, never crash or leak. Commands
 * the callbacks issue (ZADD put-backs, ZPOPMIN, group EVALs) go into a real
 * hiredis context connected to a unix socket of the driver, freed after
 * each input, which answers every pending callback with a NULL reply as a
 * lost connection does. The driver includes layer_redis.c to reach its
 * static callbacks. */
#include "../../server/layer_redis.c"
/* both backends in one program: the static names they have in common */
#define log_undeliverable pubsub_log_undeliverable
#define on_master_changed pubsub_on_master_changed
#define on_sentinel_closed pubsub_on_sentinel_closed
#define on_command_reply pubsub_on_command_reply
#include "../../server/layer_pubsub.c"
#undef log_undeliverable
#undef on_master_changed
#undef on_sentinel_closed
#undef on_command_reply

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PREFIX "0123456789abcdef0123456789abcdef"

static uv_loop_t loop;
static dfws_layer_redis_t *layers[2];
static dfws_layer_pubsub_t *pubsubs[2];
static char listened_key[2][160];
static int lfd = -1;
static char sock_path[108];
static unsigned long long delivered;

static void quiet(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)level;
    (void)msg;
}

static void on_deliver(void *ud, const char *channel, const char *mp, size_t len)
{
    (void)ud;
    (void)channel;
    /* what a listener gets is a map with string keys */
    uint32_t n;
    size_t hdr;
    if (dfws_mp_map_header((const unsigned char *)mp, len, &n, &hdr) != 0)
        abort();
    delivered++;
}

/* A pub/sub group member that leaves its group and joins it again while
 * the group's message is fanned out (fan_out copies the names first). */
static void on_deliver_rejoin(void *ud, const char *channel, const char *mp, size_t len)
{
    dfws_layer_t *l = ud;
    on_deliver(NULL, channel, mp, len);
    dfws_layer_group_discard(l, "g", channel);
    dfws_layer_group_add(l, "g", channel);
}

static void on_done(void *ud, int status)
{
    (void)ud;
    (void)status;
}

static dfws_layer_redis_t *make_layer(int keyed, char *key_out)
{
    dfws_layer_config_t cfg;
    dfws_layer_t *l;
    /* a fixed client prefix, so that seeds and dictionary can name the
     * process's channels */
    static const char ch[] = "specific." PREFIX "!w";
    dfws_layer_config_init(&cfg);
    cfg.backend = DFWS_LAYER_BACKEND_REDIS;
    free(cfg.hosts[0].host);
    cfg.hosts[0].host = NULL;
    /* nothing listens there: every connection stays down, and the driver
     * plugs its own context in */
    cfg.hosts[0].unix_path = strdup("/nonexistent/dfws-fuzz.sock");
    if (keyed) {
        cfg.keys = calloc(1, sizeof(*cfg.keys));
        dfws_fernet_key_from_secret(&cfg.keys[0], "fuzz", 4);
        cfg.nkeys = 1;
    }
    cfg.log_fn = quiet; /* the first connection attempt fails at once */
    if (dfws_layer_redis_new(&loop, &cfg, &l))
        abort();
    dfws_layer_config_free(&cfg);
    memcpy(l->client_prefix, PREFIX, sizeof(l->client_prefix));
    if (dfws_layer_listen(l, ch, on_deliver, NULL) ||
        dfws_layer_listen(l, "plainq", on_deliver, NULL))
        abort();
    dfws_layer_redis_t *r = (dfws_layer_redis_t *)l;
    if (listen_key(r, ch, key_out, 160) < 0)
        abort();
    return r;
}

static dfws_layer_pubsub_t *make_pubsub(int keyed)
{
    dfws_layer_config_t cfg;
    dfws_layer_t *l;
    static const char ch[] = "specific." PREFIX "!w";
    dfws_layer_config_init(&cfg);
    cfg.backend = DFWS_LAYER_BACKEND_PUBSUB;
    free(cfg.hosts[0].host);
    cfg.hosts[0].host = NULL;
    cfg.hosts[0].unix_path = strdup("/nonexistent/dfws-fuzz.sock");
    if (keyed) {
        cfg.keys = calloc(1, sizeof(*cfg.keys));
        dfws_fernet_key_from_secret(&cfg.keys[0], "fuzz", 4);
        cfg.nkeys = 1;
    }
    cfg.log_fn = quiet;
    if (dfws_layer_pubsub_new(&loop, &cfg, &l))
        abort();
    dfws_layer_config_free(&cfg);
    /* "c" and ch listen; both are members of group "g" ("asgi__group__g") */
    if (dfws_layer_listen(l, "c", on_deliver, NULL) ||
        dfws_layer_listen(l, ch, on_deliver_rejoin, l) || dfws_layer_group_add(l, "g", "c") ||
        dfws_layer_group_add(l, "g", ch))
        abort();
    return (dfws_layer_pubsub_t *)l;
}

static void setup(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    dfws_log_set_level(DFWS_LOG_ERROR + 1);
    uv_loop_init(&loop);
    layers[0] = make_layer(0, listened_key[0]);
    layers[1] = make_layer(1, listened_key[1]);
    pubsubs[0] = make_pubsub(0);
    pubsubs[1] = make_pubsub(1);
    snprintf(sock_path, sizeof(sock_path), "/tmp/dfws-fuzz-redis-%d.sock", (int)getpid());
    unlink(sock_path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 16))
        abort();
}

/* Replace the string of element e by 12 random bytes + Fernet(its bytes),
 * what a keyed sender would have stored. */
static void encrypt_member(dfws_layer_redis_t *r, redisReply *e)
{
    char *tok;
    size_t toklen;
    if (e->type != REDIS_REPLY_STRING)
        return;
    if (dfws_fernet_encrypt(&r->base.cfg.keys[0], e->str, e->len, (uint64_t)dfws_layer__now(), NULL,
                            &tok, &toklen))
        return;
    char *s = malloc(toklen + RANDOM_PREFIX_LEN + 1);
    memset(s, 'r', RANDOM_PREFIX_LEN);
    memcpy(s + RANDOM_PREFIX_LEN, tok, toklen);
    s[RANDOM_PREFIX_LEN + toklen] = '\0';
    free(tok);
    free(e->str);
    e->str = s;
    e->len = RANDOM_PREFIX_LEN + toklen;
}

/* The payload of a pub/sub message as a keyed sender publishes it: the
 * Fernet token of its bytes (no random prefix on this layer). */
static void encrypt_payload(const dfws_layer_t *l, redisReply *e)
{
    char *tok;
    size_t toklen;
    if (e->type != REDIS_REPLY_STRING ||
        dfws_fernet_encrypt(&l->cfg.keys[0], e->str, e->len, (uint64_t)dfws_layer__now(), NULL,
                            &tok, &toklen))
        return;
    free(e->str);
    e->str = tok;
    e->len = toklen;
}

static void handle(dfws_layer_redis_t *r, int target, int keyed, const char *lkey, redisReply *rep)
{
    rconn_t *c = &r->recv[0];
    switch (target) {
    case 0:
        if (keyed && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3)
            encrypt_member(r, rep->element[1]);
        c->popping = 1;
        on_bzpop(c->ac, rep, c);
        break;
    case 1: {
        if (keyed && rep->type == REDIS_REPLY_ARRAY)
            for (size_t i = 0; i < rep->elements; i += 2)
                encrypt_member(r, rep->element[i]);
        c->popping = 1;
        /* the key of the batch: the listened one, or one dropped meanwhile */
        on_zpop(c->ac, rep,
                strdup(rep->type == REDIS_REPLY_ARRAY && rep->elements % 4 ? "asgiother" : lkey));
        break;
    }
    case 2: {
        static const char msg[] = "\x81\xa4type\xa4test";
        rop_t *op = calloc(1, sizeof(*op));
        op->r = r;
        op->done = on_done;
        op->group = strdup("g");
        op->msg = malloc(sizeof(msg) - 1);
        memcpy(op->msg, msg, sizeof(msg) - 1);
        op->msglen = sizeof(msg) - 1;
        on_group_members(r->cmd[0].ac, rep, op);
        break;
    }
    default: {
        dfws_layer_pubsub_t *p = pubsubs[keyed];
        if (keyed && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3)
            encrypt_payload(&p->base, rep->element[2]);
        /* as hiredis calls it for the shard's subscribing connection */
        on_sub_reply(NULL, rep, &p->shards[0]);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!layers[0])
        setup();
    if (size < 1)
        return 0;
    int target = data[0] & 3, keyed = (data[0] >> 2) & 1;
    dfws_layer_redis_t *r = layers[keyed];

    redisAsyncContext *ac = redisAsyncConnectUnix(sock_path);
    int sfd = accept(lfd, NULL, NULL);
    if (!ac || ac->err || sfd < 0)
        abort();
    ac->data = &r->recv[0];
    r->cmd[0].ac = r->recv[0].ac = ac;
    r->recv[0].state = ST_READY;
    r->recv[0].client_id = 7;

    /* bounded as every connection's reader is (dfws_redis_attach) */
    static dfws_redis_bound_t bound;
    redisReader *rd = redisReaderCreate();
    bound.layer = &r->base;
    dfws_redis_bound_reader(rd, &bound);
    redisReaderFeed(rd, (const char *)data + 1, size - 1);
    void *reply;
    for (int i = 0; i < 8 && redisReaderGetReply(rd, &reply) == REDIS_OK && reply; i++) {
        handle(r, target, keyed, listened_key[keyed], reply);
        freeReplyObject(reply);
    }
    redisReaderFree(rd);

    /* The connection is lost: every pending command's callback gets NULL. */
    r->cmd[0].ac = r->recv[0].ac = NULL;
    r->recv[0].state = ST_DOWN;
    r->recv[0].popping = 0;
    redisAsyncFree(ac);
    close(sfd);
    uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
