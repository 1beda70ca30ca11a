/*
 * Unit tests for the channel layer (no Redis needed): hashing vs
 * channels_redis, names, msgpack surgery vs the wire doc's worked example,
 * Fernet vs Python's cryptography, config parsing, memory layer semantics.
 * Expected values were computed with /usr/bin/python3 (channels_redis 4.0,
 * msgpack, cryptography) and are written down here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fernet.h"
#include "layer.h"
#include "layer_int.h"
#include "check.h"

/* ---- hashing and names ---------------------------------------------------- */

static void test_crc_and_shards(void)
{
    static const struct {
        const char *s;
        size_t two, three;
    } v[] = {
        /* _consistent_hash(name, 2), _consistent_hash(name, 3) from Python */
        {"specific.abc123!", 0, 1},
        {"asgi", 1, 2},
        {"broadcast", 1, 2},
        {"7e8c980e", 1, 2},
        {"celery", 0, 1},
        {"specific.6bbcfd57b8e64d3188e3906c8bf4332b!", 0, 0},
        {"x", 0, 1},
        {"group-1", 0, 0},
    };
    size_t i;
    CHECK(dfws_layer_crc32("123456789", 9) == 0xCBF43926u);
    CHECK(dfws_layer_crc32("", 0) == 0);
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        CHECK(dfws_layer_shard(v[i].s, strlen(v[i].s), 1) == 0);
        CHECK(dfws_layer_shard(v[i].s, strlen(v[i].s), 2) == v[i].two);
        CHECK(dfws_layer_shard(v[i].s, strlen(v[i].s), 3) == v[i].three);
    }
}

static void test_names(void)
{
    char long_name[120];
    memset(long_name, 'a', 99);
    long_name[99] = '\0';
    CHECK(dfws_layer_valid_channel_name("http.request"));
    CHECK(dfws_layer_valid_channel_name("specific.abc!def"));
    CHECK(dfws_layer_valid_channel_name("specific.abc!"));
    CHECK(dfws_layer_valid_channel_name("a-b_c.d"));
    CHECK(dfws_layer_valid_channel_name(long_name));
    long_name[99] = 'a';
    long_name[100] = '\0';
    CHECK(!dfws_layer_valid_channel_name(long_name));
    CHECK(!dfws_layer_valid_channel_name(""));
    CHECK(!dfws_layer_valid_channel_name("!abc"));
    CHECK(!dfws_layer_valid_channel_name("a!b!c"));
    CHECK(!dfws_layer_valid_channel_name("a b"));
    CHECK(!dfws_layer_valid_channel_name("a\n"));
    CHECK(!dfws_layer_valid_channel_name("caf\xc3\xa9"));
    CHECK(!dfws_layer_valid_channel_name(NULL));
    CHECK(dfws_layer_valid_group_name("7e8c980e-_."));
    CHECK(!dfws_layer_valid_group_name("a!b"));
    CHECK(!dfws_layer_valid_group_name(""));
    CHECK(!dfws_layer_valid_group_name("a:b"));
    CHECK(dfws_layer_non_local_len("specific.abc!def") == strlen("specific.abc!"));
    CHECK(dfws_layer_non_local_len("specific.abc!") == strlen("specific.abc!"));
    CHECK(dfws_layer_non_local_len("celery") == 6);
}

/* ---- msgpack ---------------------------------------------------------------- */

/* msgpack.packb(...) of the wire doc's worked example, from Python. */
static const char EX_PLAIN[] =
    "82a474797065aa77735f6d657373616765a76d657373616765af7b227369676e616c223a202278227d";
static const char EX_LIST[] =
    "83a474797065aa77735f6d657373616765a76d657373616765af7b227369676e616c223a202278227d"
    "b05f5f617367695f6368616e6e656c5f5f91b373706563696669632e6162633132332178797a";
static const char EX_STR[] =
    "83a474797065aa77735f6d657373616765a76d657373616765af7b227369676e616c223a202278227d"
    "b05f5f617367695f6368616e6e656c5f5fb373706563696669632e6162633132332178797a";

static void test_msgpack(void)
{
    unsigned char plain[128], list[128], str[128];
    size_t np = check_unhex(EX_PLAIN, plain), nl = check_unhex(EX_LIST, list),
           ns = check_unhex(EX_STR, str);
    const char *ch = "specific.abc123!xyz";
    size_t chl = strlen(ch), nd;
    dfws_buf_t b = {0};
    dfws_mp_strref_t *d;
    const char *type, *msg;
    size_t tl, ml;
    int had;

    CHECK(nl == 79);
    CHECK(dfws_layer_msg_check((const char *)plain, np) == 0);
    CHECK(dfws_layer_msg_check((const char *)list, nl) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_msg_check((const char *)plain, np - 1) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_msg_check("\x91\xa1x", 3) == DFWS_LAYER_EINVAL); /* array, not map */

    /* encode: list form (group_send) and string form (send) */
    CHECK(dfws_layer_msg_add_channel(&b, (const char *)plain, np, &ch, &chl, 1, 1) == 0);
    CHECK(b.len == nl && memcmp(b.base, list, nl) == 0);
    b.len = 0;
    CHECK(dfws_layer_msg_add_channel(&b, (const char *)plain, np, &ch, &chl, 1, 0) == 0);
    CHECK(b.len == ns && memcmp(b.base, str, ns) == 0);

    /* decode both forms back */
    b.len = 0;
    CHECK(dfws_layer_msg_strip_channel(&b, (const char *)list, nl, &d, &nd, &had) == 0);
    CHECK(had == 1 && nd == 1 && d[0].len == chl && memcmp(d[0].s, ch, chl) == 0);
    CHECK(b.len == np && memcmp(b.base, plain, np) == 0);
    free(d);
    b.len = 0;
    CHECK(dfws_layer_msg_strip_channel(&b, (const char *)str, ns, &d, &nd, &had) == 0);
    CHECK(had == 1 && nd == 1 && d[0].len == chl && memcmp(d[0].s, ch, chl) == 0);
    CHECK(b.len == np && memcmp(b.base, plain, np) == 0);
    free(d);
    b.len = 0;
    CHECK(dfws_layer_msg_strip_channel(&b, (const char *)plain, np, &d, &nd, &had) == 0);
    CHECK(had == 0 && nd == 0 && d == NULL && b.len == np);
    b.len = 0;
    CHECK(dfws_layer_msg_strip_channel(&b, (const char *)list, nl - 3, &d, &nd, &had) ==
          DFWS_LAYER_EINVAL);

    /* several destinations, key in the middle of the map */
    {
        const char *chs[3] = {"a!1", "a!2", "a!3"};
        size_t lens[3] = {3, 3, 3};
        dfws_buf_t w = {0};
        CHECK(dfws_layer_msg_add_channel(&w, (const char *)plain, np, chs, lens, 3, 1) == 0);
        b.len = 0;
        CHECK(dfws_layer_msg_strip_channel(&b, w.base, w.len, &d, &nd, &had) == 0);
        CHECK(nd == 3 && memcmp(d[2].s, "a!3", 3) == 0);
        CHECK(b.len == np && memcmp(b.base, plain, np) == 0);
        free(d);
        dfws_buf_free(&w);
    }

    /* peek */
    CHECK(dfws_layer_msg_peek((const char *)plain, np, &type, &tl, &msg, &ml) == 0);
    CHECK(tl == 10 && memcmp(type, "ws_message", 10) == 0);
    CHECK(ml == 15 && memcmp(msg, "{\"signal\": \"x\"}", 15) == 0);
    CHECK(dfws_layer_msg_peek("\x81\xa1x\x01", 4, &type, &tl, &msg, &ml) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_msg_peek("\x81\xa4type\x01", 7, &type, &tl, &msg, &ml) == DFWS_LAYER_EINVAL);

    /* skip: nested + truncated */
    {
        size_t used;
        CHECK(dfws_mp_skip(list, nl, &used) == 0 && used == nl);
        CHECK(dfws_mp_skip((const unsigned char *)"\x92\x01", 2, &used) == DFWS_LAYER_EINVAL);
        CHECK(dfws_mp_skip((const unsigned char *)"\xc1", 1, &used) == DFWS_LAYER_EINVAL);
        CHECK(dfws_mp_skip((const unsigned char *)"\xcb\x00\x00\x00\x00\x00\x00\x00\x00", 9,
                           &used) == 0 &&
              used == 9);
    }
    dfws_buf_free(&b);
}

/* ---- Fernet --------------------------------------------------------------- */

/* Fernet(urlsafe_b64encode(sha256(b"dfws-secret"))).encrypt_at_time(
 *     msgpack.packb({"type": "enc.test", "n": 7}), 1700000000) */
static const char PY_TOKEN[] =
    "gAAAAABlU_EAe1CGrkhdJBEOkGze9NpgTWEn4gRCCxoHQdC1e66oiPZBrWkdSTNw5BqXsToPsM-_RRiY_uGVNMPRGgiq07inqC9LENV4q2oIUuwxOAdhyfc=";
static const char PY_PLAIN[] = "82a474797065a8656e632e74657374a16e07";

static void test_fernet(void)
{
    dfws_layer_key_t keys[2];
    unsigned char expect[64], *out = NULL;
    size_t ne = check_unhex(PY_PLAIN, expect), outlen = 0;
    char *tok = NULL;
    size_t toklen = 0;

    dfws_fernet_key_from_secret(&keys[0], "other", 5);
    dfws_fernet_key_from_secret(&keys[1], "dfws-secret", 11);
    /* Python token, right time, second key matches */
    CHECK(dfws_fernet_decrypt(keys, 2, PY_TOKEN, strlen(PY_TOKEN), 1700000030, 70, &out, &outlen) ==
          0);
    CHECK(outlen == ne && out && memcmp(out, expect, ne) == 0);
    free(out);
    out = NULL;
    /* too old for ttl 70 */
    CHECK(dfws_fernet_decrypt(keys, 2, PY_TOKEN, strlen(PY_TOKEN), 1700000071, 70, &out, &outlen) ==
          DFWS_LAYER_EINVAL);
    /* more than 60 s in the future */
    CHECK(dfws_fernet_decrypt(keys, 2, PY_TOKEN, strlen(PY_TOKEN), 1700000000 - 61, 70, &out,
                              &outlen) == DFWS_LAYER_EINVAL);
    /* wrong key only */
    CHECK(dfws_fernet_decrypt(keys, 1, PY_TOKEN, strlen(PY_TOKEN), 1700000030, 70, &out, &outlen) ==
          DFWS_LAYER_EINVAL);
    /* tampered */
    {
        char bad[sizeof(PY_TOKEN)];
        memcpy(bad, PY_TOKEN, sizeof(PY_TOKEN));
        bad[40] = bad[40] == 'A' ? 'B' : 'A';
        CHECK(dfws_fernet_decrypt(keys, 2, bad, strlen(bad), 1700000030, 70, &out, &outlen) ==
              DFWS_LAYER_EINVAL);
    }
    /* round trip, also through an unpadded token */
    CHECK(dfws_fernet_encrypt(&keys[1], "hello fernet", 12, 1700000000, NULL, &tok, &toklen) == 0);
    CHECK(toklen % 4 == 0 && tok[0] == 'g');
    CHECK(dfws_fernet_decrypt(keys, 2, tok, toklen, 1700000001, 70, &out, &outlen) == 0);
    CHECK(outlen == 12 && memcmp(out, "hello fernet", 12) == 0);
    free(out);
    out = NULL;
    while (toklen > 0 && tok[toklen - 1] == '=')
        toklen--;
    CHECK(dfws_fernet_decrypt(keys, 2, tok, toklen, 1700000001, 70, &out, &outlen) == 0);
    free(out);
    free(tok);
}

/* ---- config ----------------------------------------------------------------- */

static void test_config(void)
{
    dfws_layer_config_t cfg;
    dfws_layer_host_t h;
    char err[256];

    CHECK(dfws_layer_host_parse_url(&h, "redis://localhost", err, sizeof(err)) == 0);
    CHECK(strcmp(h.host, "localhost") == 0 && h.port == 6379 && h.db == 0 && !h.password &&
          !h.username);
    dfws_layer_host_free(&h);
    CHECK(dfws_layer_host_parse_url(&h, "redis://:p%40ss@10.0.0.1:6380/3", err, sizeof(err)) == 0);
    CHECK(strcmp(h.host, "10.0.0.1") == 0 && h.port == 6380 && h.db == 3);
    CHECK(h.password && strcmp(h.password, "p@ss") == 0 && h.username == NULL);
    dfws_layer_host_free(&h);
    CHECK(dfws_layer_host_parse_url(&h, "redis://user:pw@[::1]:7000/0?db=2", err, sizeof(err)) ==
          0);
    CHECK(strcmp(h.host, "::1") == 0 && h.port == 7000 && h.db == 2);
    CHECK(strcmp(h.username, "user") == 0 && strcmp(h.password, "pw") == 0);
    dfws_layer_host_free(&h);
    CHECK(dfws_layer_host_parse_url(&h, "unix:///run/redis.sock?db=5", err, sizeof(err)) == 0);
    CHECK(h.host == NULL && strcmp(h.unix_path, "/run/redis.sock") == 0 && h.db == 5);
    dfws_layer_host_free(&h);
    CHECK(dfws_layer_host_parse_url(&h, "rediss://x", err, sizeof(err)) == DFWS_LAYER_EUNSUPPORTED);
    CHECK(dfws_layer_host_parse_url(&h, "http://x", err, sizeof(err)) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_host_parse_url(&h, "redis://x:99999", err, sizeof(err)) == DFWS_LAYER_EINVAL);

    CHECK(dfws_layer_config_init(&cfg) == 0);
    CHECK(
        dfws_layer_config_parse_json(
            &cfg,
            "{\"backend\": \"channels_redis.core.RedisChannelLayer\", \"kind\": \"redis\","
            " \"hosts\": [\"redis://a:1\", [\"b\", 2], {\"address\": \"redis://c:3/4\"},"
            " {\"host\": \"d\", \"port\": 5, \"db\": 6, \"password\": \"pw\"}],"
            " \"prefix\": \"pfx\", \"expiry\": 30, \"group_expiry\": 600, \"capacity\": 7,"
            " \"channel_capacity\": [{\"glob\": \"http.*\", \"capacity\": 200},"
            "   {\"regex\": \"ws[0-9]+\", \"capacity\": 9}],"
            " \"symmetric_encryption_keys\": [\"dfws-secret\", {\"base64\": \"ZGZ3cy1zZWNyZXQ=\"}]}",
            err, sizeof(err)) == 0);
    CHECK(cfg.backend == DFWS_LAYER_BACKEND_REDIS && cfg.nhosts == 4);
    CHECK(strcmp(cfg.hosts[1].host, "b") == 0 && cfg.hosts[1].port == 2);
    CHECK(strcmp(cfg.hosts[2].host, "c") == 0 && cfg.hosts[2].db == 4);
    CHECK(cfg.hosts[3].port == 5 && cfg.hosts[3].db == 6 &&
          strcmp(cfg.hosts[3].password, "pw") == 0);
    CHECK(strcmp(cfg.prefix, "pfx") == 0 && cfg.expiry == 30 && cfg.group_expiry == 600 &&
          cfg.capacity == 7);
    CHECK(cfg.ncapacity == 2 && cfg.nkeys == 2);
    CHECK(memcmp(cfg.keys[0].sha, cfg.keys[1].sha, 32) == 0); /* same secret, two spellings */
    {
        uv_loop_t loop;
        dfws_layer_t *l = NULL;
        uv_loop_init(&loop);
        cfg.backend = DFWS_LAYER_BACKEND_MEMORY;
        CHECK(dfws_layer_memory_new(&loop, &cfg, &l) == 0);
        CHECK(dfws_layer_capacity_for(l, "http.request") == 200);
        CHECK(dfws_layer_capacity_for(l, "http") == 7);
        CHECK(dfws_layer_capacity_for(l, "ws12") == 9);
        CHECK(dfws_layer_capacity_for(l, "ws12abc") == 9); /* re.match: anchored at start only */
        CHECK(dfws_layer_capacity_for(l, "xws12") == 7);
        dfws_layer_close(l, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(uv_loop_close(&loop) == 0);
    }
    dfws_layer_config_free(&cfg);

    dfws_layer_config_init(&cfg);
    CHECK(dfws_layer_config_parse_json(&cfg, "{\"kind\": \"unsupported\", \"backend\": \"x.Y\"}",
                                       err, sizeof(err)) == DFWS_LAYER_EUNSUPPORTED);
    CHECK(strstr(err, "x.Y") != NULL);
    CHECK(dfws_layer_config_parse_json(&cfg, "{\"hosts\": \"redis://x\"}", err, sizeof(err)) ==
          DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_config_parse_json(&cfg, "{\"hosts\": [{\"master_name\": \"m\"}]}", err,
                                       sizeof(err)) ==
          DFWS_LAYER_EINVAL); /* no sentinels: test_sentinel.c has the rest */
    CHECK(dfws_layer_config_parse_json(
              &cfg, "{\"channel_capacity\": [{\"regex\": \"(\", \"capacity\": 1}]}", err,
              sizeof(err)) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_config_parse_json(&cfg, "not json", err, sizeof(err)) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_config_parse_json(&cfg,
                                       "{\"backend\": \"channels.layers.InMemoryChannelLayer\"}",
                                       err, sizeof(err)) == 0);
    CHECK(cfg.backend == DFWS_LAYER_BACKEND_MEMORY && cfg.capacity == 100 && cfg.expiry == 60);
    dfws_layer_config_free(&cfg);
}

/* ---- memory layer ------------------------------------------------------------ */

typedef struct rec_s {
    int count;
    char channel[DFWS_LAYER_CHANNEL_BUF];
    char last[256];
    size_t last_len;
    int in_call;   /* set while the test is inside a layer call */
    int reentered; /* a delivery happened inside a layer call */
    dfws_layer_t *l;
    int unlisten_after; /* unlisten from inside the callback after N */
} rec_t;

static void on_deliver(void *ud, const char *channel, const char *mp, size_t len)
{
    rec_t *r = ud;
    r->count++;
    if (r->in_call)
        r->reentered = 1;
    snprintf(r->channel, sizeof(r->channel), "%s", channel);
    if (len < sizeof(r->last)) {
        memcpy(r->last, mp, len);
        r->last_len = len;
    }
    if (r->unlisten_after && r->count == r->unlisten_after)
        dfws_layer_unlisten(r->l, channel);
}

static int done_status[300], done_count;
static void on_done(void *ud, int status)
{
    (void)ud;
    if (done_count < 300)
        done_status[done_count] = status;
    done_count++;
}

static void run_once(uv_loop_t *loop)
{
    int i;
    for (i = 0; i < 3; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

static int closed_called;
static void on_closed(void *ud)
{
    (void)ud;
    closed_called++;
}

static void on_sleep_timer(uv_timer_t *t)
{
    (void)t;
}

static void sleep_loop(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_sleep_timer, ms, 0);
    uv_run(loop, UV_RUN_ONCE);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static const char MSG[] = "\x82\xa4type\xa5hello\xa1n\x01"; /* {"type": "hello", "n": 1} */
#define MSG_LEN (sizeof(MSG) - 1)

static void test_memory(void)
{
    uv_loop_t loop;
    dfws_layer_config_t cfg;
    dfws_layer_t *l;
    rec_t a, b;
    char ch[DFWS_LAYER_CHANNEL_BUF], ch2[DFWS_LAYER_CHANNEL_BUF];
    int i, rc;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    uv_loop_init(&loop);
    dfws_layer_config_init(&cfg);
    cfg.group_expiry = 1;
    cfg.expiry = 1;
    CHECK(dfws_layer_memory_new(&loop, &cfg, &l) == 0);
    dfws_layer_config_free(&cfg);
    a.l = b.l = l;

    /* new_channel format */
    CHECK(dfws_layer_new_channel(l, ch, sizeof(ch)) == 0);
    CHECK(strncmp(ch, "specific.", 9) == 0 && strlen(ch) == 9 + 32 + 1 + 32);
    CHECK(strncmp(ch + 9, dfws_layer_client_prefix(l), 32) == 0 && ch[41] == '!');
    CHECK(ch[42 + 12] == '4'); /* uuid4 version nibble */
    CHECK(dfws_layer_new_channel(l, ch2, 20) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_new_channel(l, ch2, sizeof(ch2)) == 0 && strcmp(ch, ch2) != 0);

    /* bad input: sync errors, no callback */
    done_count = 0;
    CHECK(dfws_layer_send(l, "bad name", MSG, MSG_LEN, on_done, NULL) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_send(l, ch, "\x91\x01", 2, on_done, NULL) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_listen(l, "bad name", on_deliver, &a) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_group_add(l, "bad!group", ch) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_unlisten(l, ch) == DFWS_LAYER_ENOENT);
    run_once(&loop);
    CHECK(done_count == 0);

    /* listen then send: delivered from the loop, not inside send */
    CHECK(dfws_layer_listen(l, ch, on_deliver, &a) == 0);
    CHECK(dfws_layer_listen(l, ch, on_deliver, &a) == DFWS_LAYER_EEXIST);
    a.in_call = 1;
    CHECK(dfws_layer_send(l, ch, MSG, MSG_LEN, on_done, NULL) == 0);
    a.in_call = 0;
    CHECK(a.count == 0 && done_count == 0);
    run_once(&loop);
    CHECK(a.count == 1 && !a.reentered && done_count == 1 && done_status[0] == 0);
    CHECK(strcmp(a.channel, ch) == 0 && a.last_len == MSG_LEN && memcmp(a.last, MSG, MSG_LEN) == 0);

    /* send before listen: queued, then delivered after listen */
    done_count = 0;
    CHECK(dfws_layer_send(l, ch2, MSG, MSG_LEN, on_done, NULL) == 0);
    CHECK(dfws_layer_send(l, ch2, MSG, MSG_LEN, on_done, NULL) == 0);
    run_once(&loop);
    CHECK(b.count == 0 && done_count == 2);
    CHECK(dfws_layer_listen(l, ch2, on_deliver, &b) == 0);
    CHECK(b.count == 0);
    run_once(&loop);
    CHECK(b.count == 2);

    /* capacity: 100 queued on an unlistened channel, the 101st is EFULL */
    done_count = 0;
    rc = 0;
    for (i = 0; i < 101 && rc == 0; i++)
        rc = dfws_layer_send(l, "full.channel", MSG, MSG_LEN, on_done, NULL);
    CHECK(rc == 0);
    run_once(&loop);
    CHECK(done_count == 101 && done_status[99] == 0 && done_status[100] == DFWS_LAYER_EFULL);

    /* groups */
    a.count = b.count = 0;
    CHECK(dfws_layer_group_add(l, "g1", ch) == 0);
    CHECK(dfws_layer_group_add(l, "g1", ch2) == 0);
    CHECK(dfws_layer_group_add(l, "g1", "full.channel") == 0);
    done_count = 0;
    a.in_call = b.in_call = 1;
    CHECK(dfws_layer_group_send(l, "g1", MSG, MSG_LEN, on_done, NULL) == 0);
    a.in_call = b.in_call = 0;
    run_once(&loop);
    CHECK(a.count == 1 && b.count == 1 && !a.reentered && !b.reentered);
    CHECK(done_count == 1 && done_status[0] == 0);
    {
        dfws_layer_stats_t st;
        dfws_layer_get_stats(l, &st);
        CHECK(st.group_dropped == 1); /* full.channel over capacity: skipped silently */
    }
    CHECK(dfws_layer_group_discard(l, "g1", ch2) == 0);
    CHECK(dfws_layer_group_send(l, "g1", MSG, MSG_LEN, NULL, NULL) == 0);
    run_once(&loop);
    CHECK(a.count == 2 && b.count == 1);

    /* unlisten from inside the callback: the rest waits in the queue */
    a.count = 0;
    a.unlisten_after = 1;
    CHECK(dfws_layer_send(l, ch, MSG, MSG_LEN, NULL, NULL) == 0);
    CHECK(dfws_layer_send(l, ch, MSG, MSG_LEN, NULL, NULL) == 0);
    run_once(&loop);
    CHECK(a.count == 1);
    a.unlisten_after = 0;
    CHECK(dfws_layer_listen(l, ch, on_deliver, &a) == 0);
    run_once(&loop);
    CHECK(a.count == 2);

    /* expiry (1 s): messages expire, the channel leaves its groups, group
     * memberships older than group_expiry go away */
    CHECK(dfws_layer_group_add(l, "g2", "dead.consumer") == 0);
    CHECK(dfws_layer_send(l, "dead.consumer", MSG, MSG_LEN, NULL, NULL) == 0);
    CHECK(dfws_layer_group_add(l, "g3", ch2) == 0);
    sleep_loop(&loop, 2100);
    b.count = 0;
    CHECK(dfws_layer_group_send(l, "g3", MSG, MSG_LEN, NULL, NULL) == 0); /* membership expired */
    CHECK(dfws_layer_group_send(l, "g2", MSG, MSG_LEN, NULL, NULL) == 0);
    run_once(&loop);
    CHECK(b.count == 0);
    done_count = 0;
    for (i = 0; i < 100; i++) /* full.channel's 100 expired: room again */
        dfws_layer_send(l, "full.channel", MSG, MSG_LEN, on_done, NULL);
    run_once(&loop);
    CHECK(done_count == 100 && done_status[99] == 0);
    {
        rec_t dead;
        memset(&dead, 0, sizeof(dead));
        CHECK(dfws_layer_listen(l, "dead.consumer", on_deliver, &dead) == 0);
        run_once(&loop);
        CHECK(dead.count == 0); /* expired, and g2 no longer lists it */
        CHECK(dfws_layer_unlisten(l, "dead.consumer") == 0);
    }

    /* flush */
    done_count = 0;
    CHECK(dfws_layer_group_add(l, "g4", ch) == 0);
    CHECK(dfws_layer_flush(l, on_done, NULL) == 0);
    a.count = 0;
    CHECK(dfws_layer_group_send(l, "g4", MSG, MSG_LEN, NULL, NULL) == 0);
    run_once(&loop);
    CHECK(a.count == 0 && done_count == 1);

    /* close with a pending completion: it still runs, before closed */
    done_count = 0;
    CHECK(dfws_layer_send(l, ch, MSG, MSG_LEN, on_done, NULL) == 0);
    closed_called = 0;
    dfws_layer_close(l, on_closed, NULL);
    CHECK(closed_called == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(closed_called == 1 && done_count == 1);
    CHECK(uv_loop_close(&loop) == 0);
}

/* The log hook is each layer's own: set from the config at creation,
 * changed with dfws_layer_set_log, never shared between layers. */
typedef struct logrec_s {
    int lines;
    int level;
    char last[200];
} logrec_t;

static void record_log(void *ud, int level, const char *msg)
{
    logrec_t *r = ud;
    r->lines++;
    r->level = level;
    snprintf(r->last, sizeof(r->last), "%s", msg);
}

static void test_log_hook_per_layer(void)
{
    uv_loop_t loop;
    dfws_layer_config_t cfg;
    dfws_layer_t *l1, *l2;
    logrec_t r1 = {0}, r2 = {0};

    uv_loop_init(&loop);
    dfws_layer_config_init(&cfg);
    cfg.log_fn = record_log;
    cfg.log_ud = &r1;
    CHECK(dfws_layer_memory_new(&loop, &cfg, &l1) == 0);
    cfg.log_fn = NULL;
    cfg.log_ud = NULL;
    CHECK(dfws_layer_memory_new(&loop, &cfg, &l2) == 0);
    dfws_layer_config_free(&cfg);
    dfws_layer_set_log(l2, record_log, &r2);

    CHECK(dfws_layer_send(l1, "bad name!", "\x80", 1, NULL, NULL) == DFWS_LAYER_EINVAL);
    CHECK(r1.lines == 1 && r2.lines == 0 && r1.level == DFWS_LOG_WARNING);
    CHECK(strstr(r1.last, "invalid channel name") != NULL);
    CHECK(dfws_layer_group_send(l2, "bad group!", "\x80", 1, NULL, NULL) == DFWS_LAYER_EINVAL);
    CHECK(r1.lines == 1 && r2.lines == 1 && strstr(r2.last, "invalid group name") != NULL);
    /* back to the default (stderr) for l1: its hook hears nothing more */
    dfws_layer_set_log(l1, NULL, NULL);
    fprintf(stderr, "(one line of the default log sink expected next)\n");
    CHECK(dfws_layer_send(l1, "bad name!", "\x80", 1, NULL, NULL) == DFWS_LAYER_EINVAL);
    CHECK(r1.lines == 1 && r2.lines == 1);

    dfws_layer_close(l1, on_closed, NULL);
    dfws_layer_close(l2, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

int main(void)
{
    test_crc_and_shards();
    test_names();
    test_msgpack();
    test_fernet();
    test_config();
    test_memory();
    test_log_hook_per_layer();
    return check_summary();
}
