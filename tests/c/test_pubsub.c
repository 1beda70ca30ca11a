/*
 * Unit tests for the pub/sub channel layer's wire pieces (no Redis needed):
 *   - what a subscribing connection receives, as RESP bytes fed to hiredis's
 *     reader in every chunking (each split point, then one byte at a time),
 *     classified by dfws_pubsub_event() and decoded by dfws_pubsub_decode();
 *   - group channel names and shards vs channels_redis 4.3
 *     (_consistent_hash values computed with Python and written down);
 *   - Fernet payloads (a token from Python's cryptography, no age limit);
 *   - the layer's life with nothing listening on its port: a refused
 *     connection is reported as such, at once, and the loop closes clean.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fernet.h"
#include "layer.h"
#include "layer_int.h"
#include "layer_pubsub.h"
#include "check.h"

/* msgpack of {"type": "ws_message", "message": "a\r\nb", "b": b"\0\r\n\xff"}
 * (Python's msgpack.packb): CR LF inside, to catch a reader that splits on it. */
static const char MSG_HEX[] =
    "83a474797065aa77735f6d657373616765a76d657373616765a4610d0a62a162c404000d0aff";
/* {"type": "x", "__asgi_channel__": "c"} */
static const char WITH_KEY_HEX[] = "82a474797065a178b05f5f617367695f6368616e6e656c5f5fa163";
/* Fernet(urlsafe_b64(sha256(b"secret")))._encrypt_from_parts(
 *     msgpack.packb({"type": "enc"}), 1, b"\0" * 16): made in 1970 */
static const char OLD_TOKEN[] =
    "gAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAABkL3RpDoYY-57x96fY9JwmAmPkRTZncsdFqiyyBJzhbjh8C8NSILtnA6mr4FyF3Vw==";

/* ---- RESP stream, every chunking ------------------------------------------------ */

static void bulk(dfws_buf_t *b, const char *s, size_t n)
{
    char hdr[32];
    int k = snprintf(hdr, sizeof(hdr), "$%zu\r\n", n);
    dfws_buf_append(b, hdr, (size_t)k);
    dfws_buf_append(b, s, n);
    dfws_buf_append(b, "\r\n", 2);
}

static void strs(dfws_buf_t *b, const char *s)
{
    bulk(b, s, strlen(s));
}

enum { NREPLIES = 8 };

/* The stream a subscriber sees, and what each reply must turn into. */
static void build_stream(dfws_buf_t *b, const unsigned char *msg, size_t msglen)
{
    dfws_buf_append(b, "*3\r\n", 4); /* 1: subscribe confirmation */
    strs(b, "subscribe");
    strs(b, "asgi__group__g");
    dfws_buf_append(b, ":1\r\n", 4);
    dfws_buf_append(b, "*3\r\n", 4); /* 2: a message */
    strs(b, "message");
    strs(b, "asgispecific.0123");
    bulk(b, (const char *)msg, msglen);
    dfws_buf_append(b, "*3\r\n", 4); /* 3: an encrypted message */
    strs(b, "message");
    strs(b, "asgi__group__g");
    strs(b, OLD_TOKEN);
    dfws_buf_append(b, "*4\r\n", 4); /* 4: a pattern message: not ours */
    strs(b, "pmessage");
    strs(b, "asgi*");
    strs(b, "asgix");
    strs(b, "data");
    dfws_buf_append(b, "*2\r\n", 4); /* 5: PING's answer while subscribed */
    strs(b, "pong");
    strs(b, "");
    dfws_buf_append(b, "-ERR unknown\r\n", 14); /* 6 */
    dfws_buf_append(b, "*3\r\n", 4);            /* 7: unsubscribe confirmation */
    strs(b, "unsubscribe");
    strs(b, "asgispecific.0123");
    dfws_buf_append(b, ":0\r\n", 4);
    dfws_buf_append(b, "*3\r\n", 4); /* 8: an empty payload */
    strs(b, "message");
    strs(b, "c");
    strs(b, "");
}

static int check_replies(redisReply **r, const unsigned char *msg, size_t msglen)
{
    dfws_layer_config_t plain, keyed;
    dfws_pubsub_event_t ev;
    dfws_buf_t out = {0};
    int ok = 1;

    dfws_layer_config_init(&plain);
    dfws_layer_config_init(&keyed);
    keyed.keys = calloc(2, sizeof(*keyed.keys));
    keyed.nkeys = 2;
    dfws_fernet_key_from_secret(&keyed.keys[0], "wrong", 5);
    dfws_fernet_key_from_secret(&keyed.keys[1], "secret", 6);

    ok &= dfws_pubsub_event(r[0], &ev) == DFWS_PUBSUB_CONFIRM && ev.channel_len == 14 &&
          memcmp(ev.channel, "asgi__group__g", 14) == 0;
    ok &= dfws_pubsub_event(r[1], &ev) == DFWS_PUBSUB_MESSAGE && ev.channel_len == 17 &&
          memcmp(ev.channel, "asgispecific.0123", 17) == 0 && ev.data_len == msglen &&
          memcmp(ev.data, msg, msglen) == 0;
    ok &= dfws_pubsub_decode(&plain, ev.data, ev.data_len, &out) == 0 && out.len == msglen &&
          memcmp(out.base, msg, msglen) == 0;
    out.len = 0;
    ok &= dfws_pubsub_event(r[2], &ev) == DFWS_PUBSUB_MESSAGE;
    /* a 1970 token decrypts: channels_redis.pubsub sets no ttl */
    ok &= dfws_pubsub_decode(&keyed, ev.data, ev.data_len, &out) == 0 && out.len == 10 &&
          memcmp(out.base,
                 "\x81\xa4type\xa3"
                 "enc",
                 10) == 0;
    out.len = 0;
    ok &= dfws_pubsub_decode(&plain, ev.data, ev.data_len, &out) == DFWS_LAYER_EINVAL;
    ok &= dfws_pubsub_event(r[3], &ev) == DFWS_PUBSUB_OTHER;
    ok &= dfws_pubsub_event(r[4], &ev) == DFWS_PUBSUB_OTHER;
    ok &= dfws_pubsub_event(r[5], &ev) == DFWS_PUBSUB_OTHER;
    ok &= dfws_pubsub_event(r[6], &ev) == DFWS_PUBSUB_CONFIRM && ev.channel_len == 17;
    ok &= dfws_pubsub_event(r[7], &ev) == DFWS_PUBSUB_MESSAGE && ev.data_len == 0;
    out.len = 0;
    ok &= dfws_pubsub_decode(&plain, ev.data, ev.data_len, &out) == DFWS_LAYER_EINVAL;
    dfws_buf_free(&out);
    dfws_layer_config_free(&plain);
    dfws_layer_config_free(&keyed);
    return ok;
}

/* Feed [0:len) in pieces ending at the cuts (ascending, last == len). */
static int feed(const char *data, const size_t *cuts, size_t ncuts, const unsigned char *msg,
                size_t msglen)
{
    redisReader *rd = redisReaderCreate();
    redisReply *r[NREPLIES + 1] = {0};
    size_t got = 0, prev = 0, i;
    int ok = 1;

    for (i = 0; i < ncuts && ok; i++) {
        void *rep;
        ok &= redisReaderFeed(rd, data + prev, cuts[i] - prev) == REDIS_OK;
        prev = cuts[i];
        while (ok && redisReaderGetReply(rd, &rep) == REDIS_OK && rep != NULL) {
            if (got < NREPLIES)
                r[got] = rep;
            else
                freeReplyObject(rep);
            got++;
        }
    }
    ok &= got == NREPLIES && check_replies(r, msg, msglen);
    for (i = 0; i < NREPLIES; i++)
        if (r[i])
            freeReplyObject(r[i]);
    redisReaderFree(rd);
    return ok;
}

static void test_stream_every_chunking(void)
{
    unsigned char msg[64];
    size_t msglen = check_unhex(MSG_HEX, msg), i, j, bad = 0;
    dfws_buf_t b = {0};
    size_t cuts[3], *one;

    build_stream(&b, msg, msglen);
    cuts[0] = b.len;
    CHECK(feed(b.base, cuts, 1, msg, msglen));
    /* every pair of split points */
    for (i = 1; i < b.len; i++)
        for (j = i; j < b.len; j += 7) {
            cuts[0] = i;
            cuts[1] = j;
            cuts[2] = b.len;
            if (!feed(b.base, cuts, 3, msg, msglen))
                bad++;
        }
    CHECK(bad == 0);
    /* one byte at a time */
    one = malloc(b.len * sizeof(*one));
    for (i = 0; i < b.len; i++)
        one[i] = i + 1;
    CHECK(feed(b.base, one, b.len, msg, msglen));
    free(one);
    dfws_buf_free(&b);
}

/* ---- payloads ---------------------------------------------------------------------- */

static void test_decode(void)
{
    dfws_layer_config_t cfg, other;
    unsigned char with_key[64], msg[64];
    size_t n = check_unhex(WITH_KEY_HEX, with_key), mlen = check_unhex(MSG_HEX, msg);
    char *tok = NULL;
    size_t toklen = 0;
    dfws_buf_t out = {0};

    dfws_layer_config_init(&cfg);
    /* __asgi_channel__ left in by a Python sender: listeners never see it */
    CHECK(dfws_pubsub_decode(&cfg, (const char *)with_key, n, &out) == 0);
    CHECK(out.len == 8 && memcmp(out.base, "\x81\xa4type\xa1x", 8) == 0);
    out.len = 0;
    /* not one map: an array, trailing bytes, a truncated map */
    CHECK(dfws_pubsub_decode(&cfg, "\x91\x01", 2, &out) == DFWS_LAYER_EINVAL);
    CHECK(dfws_pubsub_decode(&cfg, (const char *)msg, mlen - 1, &out) == DFWS_LAYER_EINVAL);
    memcpy(msg + mlen, "\xc0", 1);
    CHECK(dfws_pubsub_decode(&cfg, (const char *)msg, mlen + 1, &out) == DFWS_LAYER_EINVAL);
    /* round trip through a key, refused with another one */
    cfg.keys = calloc(1, sizeof(*cfg.keys));
    cfg.nkeys = 1;
    dfws_fernet_key_from_secret(&cfg.keys[0], "k1", 2);
    CHECK(dfws_fernet_encrypt(&cfg.keys[0], msg, mlen, (uint64_t)dfws_layer__now(), NULL, &tok,
                              &toklen) == 0);
    out.len = 0;
    CHECK(dfws_pubsub_decode(&cfg, tok, toklen, &out) == 0 && out.len == mlen &&
          memcmp(out.base, msg, mlen) == 0);
    dfws_layer_config_init(&other);
    other.keys = calloc(1, sizeof(*other.keys));
    other.nkeys = 1;
    dfws_fernet_key_from_secret(&other.keys[0], "k2", 2);
    out.len = 0;
    CHECK(dfws_pubsub_decode(&other, tok, toklen, &out) == DFWS_LAYER_EINVAL);
    free(tok);
    dfws_buf_free(&out);
    dfws_layer_config_free(&cfg);
    dfws_layer_config_free(&other);
}

/* ---- names and shards ---------------------------------------------------------------- */

static void test_names_and_shards(void)
{
    static const struct {
        const char *s;
        size_t two, three, five;
    } v[] = {
        /* channels_redis.utils._consistent_hash(name, 2 | 3 | 5), Python */
        {"asgi__group__7e8c980efe5bc654f4eae9b110014bcb3cb1a892a0eb70092abec016072eeb2d", 1, 1, 3},
        {"asgi__group__broadcast", 1, 2, 4},
        {"asgispecific.6bbcfd57b8e64d3188e3906c8bf4332b", 1, 2, 3},
        {"asgi__group__room-11", 0, 0, 1},
        {"celery", 0, 1, 2},
        {"myapp.__group__x", 0, 1, 2},
    };
    char buf[128], small[16];
    size_t i;

    CHECK(dfws_pubsub_group_channel("asgi", "broadcast", buf, sizeof(buf)) == 22);
    CHECK(strcmp(buf, "asgi__group__broadcast") == 0);
    CHECK(dfws_pubsub_group_channel("", "g", buf, sizeof(buf)) == 10 &&
          strcmp(buf, "__group__g") == 0);
    CHECK(dfws_pubsub_group_channel("asgi", "broadcast", small, sizeof(small)) ==
          DFWS_LAYER_EINVAL);
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = strlen(v[i].s);
        CHECK(dfws_layer_shard(v[i].s, n, 1) == 0);
        CHECK(dfws_layer_shard(v[i].s, n, 2) == v[i].two);
        CHECK(dfws_layer_shard(v[i].s, n, 3) == v[i].three);
        CHECK(dfws_layer_shard(v[i].s, n, 5) == v[i].five);
    }
}

/* ---- the layer with nothing listening ------------------------------------------------- */

static int closed_called, done_status = 1, logged_refused;

static void on_closed(void *ud)
{
    (void)ud;
    closed_called++;
}

static void on_done(void *ud, int status)
{
    (void)ud;
    done_status = status;
}

static void on_deliver(void *ud, const char *channel, const char *mp, size_t len)
{
    (void)ud;
    (void)channel;
    (void)mp;
    (void)len;
}

static void capture_log(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)level;
    if (strstr(msg, "Connection refused; reconnecting"))
        logged_refused++;
}

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &alen);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void test_refused(void)
{
    uv_loop_t loop;
    dfws_layer_config_t cfg;
    dfws_layer_t *l = NULL;
    char json[160], err[128], ch[DFWS_LAYER_CHANNEL_BUF], why[300];
    int i, st = -1;

    uv_loop_init(&loop);
    snprintf(json, sizeof(json),
             "{\"kind\": \"pubsub\", \"prefix\": \"p.\", \"hosts\": [\"redis://127.0.0.1:%d\"]}",
             free_port());
    dfws_layer_config_init(&cfg);
    CHECK(dfws_layer_config_parse_json(&cfg, json, err, sizeof(err)) == 0);
    CHECK(cfg.backend == DFWS_LAYER_BACKEND_PUBSUB);
    CHECK(dfws_layer_new(&loop, &cfg, &l) == 0);
    dfws_layer_set_log(l, capture_log, NULL);
    dfws_layer_config_free(&cfg);
    CHECK(dfws_layer_state(l, why, sizeof(why)) != DFWS_LAYER_UP);
    CHECK(dfws_layer_new_channel(l, ch, sizeof(ch)) == 0);
    CHECK(strncmp(ch, "p.specific.", 11) == 0 && strlen(ch) == 11 + 32 && strchr(ch, '!') == NULL);
    /* remembered while down, subscribed once Redis is there */
    CHECK(dfws_layer_listen(l, ch, on_deliver, NULL) == 0);
    CHECK(dfws_layer_group_add(l, "g", ch) == 0);
    /* a refused connect is seen at once (not after the 5 s time limit) */
    for (i = 0; i < 200 && logged_refused < 2; i++)
        uv_run(&loop, UV_RUN_ONCE);
    st = dfws_layer_state(l, why, sizeof(why));
    CHECK(st == DFWS_LAYER_DOWN);
    CHECK(strstr(why, "Connection refused") != NULL && strstr(why, "127.0.0.1:") != NULL);
    CHECK(logged_refused == 2); /* once per connection */
    CHECK(dfws_layer_send(l, ch, "\x81\xa4type\xa1x", 8, on_done, NULL) == 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(done_status == DFWS_LAYER_EIO);
    done_status = 1;
    CHECK(dfws_layer_sync(l, on_done, NULL) == 0);
    CHECK(dfws_layer_group_discard(l, "g", ch) == 0);
    CHECK(dfws_layer_unlisten(l, ch) == 0);
    dfws_layer_close(l, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(done_status == DFWS_LAYER_EIO || done_status == DFWS_LAYER_ECLOSED);
    CHECK(closed_called == 1);
    CHECK(uv_loop_close(&loop) == 0);
}

int main(void)
{
    test_stream_every_chunking();
    test_decode();
    test_names_and_shards();
    test_refused();
    return check_summary();
}
