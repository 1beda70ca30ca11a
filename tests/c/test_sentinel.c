/*
 * Unit tests for Redis Sentinel support (server/layer_sentinel.c):
 *   - the replies it reads (get-master-addr-by-name, ROLE), as RESP bytes
 *     fed to hiredis's reader in every chunking, and "+switch-master"
 *     payloads, well-formed and not;
 *   - the discovery state machine against fake sentinels on loopback (a
 *     libuv server answering canned RESP): one refusing, one that does not
 *     know the master, one that answers; the answering one is asked first
 *     next time; a "+switch-master" pushed on the subscription moves the
 *     master; every sentinel gone gives a clear reason; the loop closes clean.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/read.h>

#include "layer.h"
#include "check.h"
#include "layer_int.h"
#include "layer_sentinel.h"

/* ---- replies, every chunking ------------------------------------------------------ */

/* Feed data to a fresh reader cut at cut (0: whole; else every cut bytes,
 * then one byte at a time when cut == 1) and return the one reply. */
static redisReply *read_reply(const char *data, size_t len, size_t cut)
{
    redisReader *rd = redisReaderCreate();
    void *rep = NULL;
    size_t off = 0;
    while (off < len) {
        size_t n = cut == 0 ? len - off : (len - off < cut ? len - off : cut);
        if (redisReaderFeed(rd, data + off, n) != REDIS_OK)
            break;
        off += n;
        if (off < len) {
            void *early = NULL;
            if (redisReaderGetReply(rd, &early) != REDIS_OK || early != NULL) {
                if (early)
                    freeReplyObject(early);
                break; /* a reply before the end of its bytes: wrong */
            }
        }
    }
    if (off == len && redisReaderGetReply(rd, &rep) != REDIS_OK)
        rep = NULL;
    redisReaderFree(rd);
    return rep;
}

static void test_master_reply(void)
{
    static const char ok[] = "*2\r\n$9\r\n10.0.0.2\r\n\r\n$4\r\n6380\r\n";
    static const char good[] = "*2\r\n$8\r\n10.0.0.2\r\n$4\r\n6380\r\n";
    static const char nil[] = "*-1\r\n";
    static const char nilbulk[] = "$-1\r\n";
    static const char err[] = "-ERR No such master with that name\r\n";
    static const char badport[] = "*2\r\n$8\r\n10.0.0.2\r\n$5\r\n70000\r\n";
    static const char words[] = "*2\r\n$8\r\n10.0.0.2\r\n$3\r\nabc\r\n";
    static const char three[] = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
    static const char intport[] = "*2\r\n$8\r\n10.0.0.2\r\n:6380\r\n";
    char host[64], e[200];
    int port;
    size_t cut;

    for (cut = 0; cut <= sizeof(good) - 1; cut++) {
        redisReply *r = read_reply(good, sizeof(good) - 1, cut);
        port = 0;
        CHECK(r != NULL &&
              dfws_sentinel_parse_master(r, host, sizeof(host), &port, e, sizeof(e)) == 0 &&
              strcmp(host, "10.0.0.2") == 0 && port == 6380);
        if (r)
            freeReplyObject(r);
        r = read_reply(err, sizeof(err) - 1, cut);
        CHECK(r != NULL &&
              dfws_sentinel_parse_master(r, host, sizeof(host), &port, e, sizeof(e)) ==
                  DFWS_LAYER_EINVAL &&
              strstr(e, "No such master") != NULL);
        if (r)
            freeReplyObject(r);
    }
    {
        const char *bad[] = {ok, badport, words, three, intport};
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            redisReply *r = read_reply(bad[i], strlen(bad[i]), 0);
            e[0] = '\0';
            /* ok[] has a 9-byte host "10.0.0.2\r" followed by stray bytes: the reader fails or the
             * host is refused */
            CHECK(r == NULL ||
                  dfws_sentinel_parse_master(r, host, sizeof(host), &port, e, sizeof(e)) != 0 ||
                  (i == 0 && strchr(host, '\r') != NULL));
            if (r)
                freeReplyObject(r);
        }
    }
    {
        redisReply *r = read_reply(nil, sizeof(nil) - 1, 1);
        CHECK(r != NULL &&
              dfws_sentinel_parse_master(r, host, sizeof(host), &port, e, sizeof(e)) == 1);
        if (r)
            freeReplyObject(r);
        r = read_reply(nilbulk, sizeof(nilbulk) - 1, 0);
        CHECK(r != NULL &&
              dfws_sentinel_parse_master(r, host, sizeof(host), &port, e, sizeof(e)) == 1);
        if (r)
            freeReplyObject(r);
    }
    /* a host too long for the buffer is refused, not cut */
    {
        static const char longhost[] = "*2\r\n$20\r\n01234567890123456789\r\n$4\r\n6380\r\n";
        redisReply *r = read_reply(longhost, sizeof(longhost) - 1, 0);
        char small[8];
        CHECK(r != NULL &&
              dfws_sentinel_parse_master(r, small, sizeof(small), &port, e, sizeof(e)) != 0);
        if (r)
            freeReplyObject(r);
    }
    CHECK(dfws_sentinel_parse_master(NULL, host, sizeof(host), &port, e, sizeof(e)) != 0);
}

static void test_role_reply(void)
{
    static const char master[] = "*3\r\n$6\r\nmaster\r\n:3129659\r\n*1\r\n*3\r\n$9\r\n127.0.0."
                                 "1\r\n$4\r\n9001\r\n$7\r\n3129242\r\n";
    static const char slave[] =
        "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:9000\r\n$9\r\nconnected\r\n:3167038\r\n";
    static const char sentinel[] = "*2\r\n$8\r\nsentinel\r\n*1\r\n$8\r\nmymaster\r\n";
    static const char notarray[] = "+OK\r\n";
    char role[32];
    size_t cut;

    for (cut = 0; cut <= sizeof(master) - 1; cut++) {
        redisReply *r = read_reply(master, sizeof(master) - 1, cut);
        CHECK(r != NULL && dfws_sentinel_parse_role(r, role, sizeof(role)) == 1);
        if (r)
            freeReplyObject(r);
        r = read_reply(slave, sizeof(slave) - 1, cut);
        CHECK(r != NULL && dfws_sentinel_parse_role(r, role, sizeof(role)) == 0 &&
              strcmp(role, "slave") == 0);
        if (r)
            freeReplyObject(r);
    }
    {
        redisReply *r = read_reply(sentinel, sizeof(sentinel) - 1, 0);
        CHECK(r != NULL && dfws_sentinel_parse_role(r, role, sizeof(role)) == 0 &&
              strcmp(role, "sentinel") == 0);
        if (r)
            freeReplyObject(r);
        r = read_reply(notarray, sizeof(notarray) - 1, 0);
        CHECK(r != NULL && dfws_sentinel_parse_role(r, role, sizeof(role)) == DFWS_LAYER_EINVAL);
        if (r)
            freeReplyObject(r);
    }
    {
        static const char ro[] = "-READONLY You can't write against a read only replica.\r\n";
        static const char other[] = "-ERR READONLY later\r\n";
        redisReply *r = read_reply(ro, sizeof(ro) - 1, 1);
        CHECK(r != NULL && dfws_sentinel_is_readonly(r));
        if (r)
            freeReplyObject(r);
        r = read_reply(other, sizeof(other) - 1, 0);
        CHECK(r != NULL && !dfws_sentinel_is_readonly(r));
        if (r)
            freeReplyObject(r);
        CHECK(!dfws_sentinel_is_readonly(NULL));
    }
}

static void test_switch(void)
{
    char host[64];
    int port = 0;
    const char *m = "mymaster 127.0.0.1 6379 127.0.0.1 6380";
    CHECK(dfws_sentinel_parse_switch(m, strlen(m), "mymaster", host, sizeof(host), &port) == 0 &&
          strcmp(host, "127.0.0.1") == 0 && port == 6380);
    CHECK(dfws_sentinel_parse_switch(m, strlen(m), "other", host, sizeof(host), &port) == 1);
    CHECK(dfws_sentinel_parse_switch(m, strlen(m), "mymaste", host, sizeof(host), &port) == 1);
    /* every prefix of the message is malformed (too few words or a cut port) but the
     * ones ending inside the last port, which are smaller ports */
    {
        size_t n;
        for (n = 0; n < strlen(m) - 3; n++)
            CHECK(dfws_sentinel_parse_switch(m, n, "mymaster", host, sizeof(host), &port) ==
                  DFWS_LAYER_EINVAL);
    }
    {
        const char *bad[] = {
            "mymaster 127.0.0.1 6379 127.0.0.1 6380 extra", "mymaster 127.0.0.1 x 127.0.0.1 6380",
            "mymaster 127.0.0.1 6379 127.0.0.1 0", "mymaster 127.0.0.1 6379 127.0.0.1 65536", ""};
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            CHECK(dfws_sentinel_parse_switch(bad[i], strlen(bad[i]), "mymaster", host, sizeof(host),
                                             &port) == DFWS_LAYER_EINVAL);
    }
    {
        const char nul[] = "mymaster a 1 b\0c 2";
        CHECK(dfws_sentinel_parse_switch(nul, sizeof(nul) - 1, "mymaster", host, sizeof(host),
                                         &port) == DFWS_LAYER_EINVAL);
        CHECK(dfws_sentinel_parse_switch(m, strlen(m), "mymaster", host, 5, &port) ==
              DFWS_LAYER_EINVAL);
    }
}

/* ---- fake sentinels ------------------------------------------------------------------- */

typedef struct fake_s {
    uv_tcp_t server;
    int port;
    const char *answer; /* RESP bytes answering get-master-addr-by-name */
    int asked;          /* questions received */
    uv_tcp_t *sub;      /* the client that subscribed (one) */
    uv_tcp_t clients[8];
    int nclients;
} fake_t;

typedef struct wreq_s {
    uv_write_t w;
    char *data;
} wreq_t;

static void on_written(uv_write_t *w, int status)
{
    wreq_t *r = (wreq_t *)w;
    (void)status;
    free(r->data);
    free(r);
}

static void say(uv_tcp_t *t, const char *s)
{
    wreq_t *r = calloc(1, sizeof(*r));
    uv_buf_t b;
    r->data = strdup(s);
    b = uv_buf_init(r->data, (unsigned)strlen(s));
    uv_write(&r->w, (uv_stream_t *)t, &b, 1, on_written);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = sz;
}

static void on_client_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fake_t *f = s->data;
    if (n > 0) {
        /* one command per read is enough for these clients (they send one) */
        if (memmem(b->base, (size_t)n, "get-master-addr-by-name", 23) != NULL) {
            f->asked++;
            say((uv_tcp_t *)s, f->answer);
        } else if (memmem(b->base, (size_t)n, "SUBSCRIBE", 9) != NULL) {
            f->sub = (uv_tcp_t *)s;
            say((uv_tcp_t *)s, "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n");
        }
    } else if (n < 0) {
        if (f->sub == (uv_tcp_t *)s)
            f->sub = NULL;
        uv_close((uv_handle_t *)s, on_client_closed);
    }
    free(b->base);
}

static void on_fake_conn(uv_stream_t *srv, int status)
{
    fake_t *f = srv->data;
    uv_tcp_t *c;
    if (status != 0 || f->nclients == 8)
        return;
    c = &f->clients[f->nclients++];
    uv_tcp_init(srv->loop, c);
    c->data = f;
    if (uv_accept(srv, (uv_stream_t *)c) == 0)
        uv_read_start((uv_stream_t *)c, on_alloc, on_fake_read);
}

static int fake_start(uv_loop_t *loop, fake_t *f, const char *answer)
{
    struct sockaddr_in a;
    int len = sizeof(a);
    memset(f, 0, sizeof(*f));
    f->answer = answer;
    uv_tcp_init(loop, &f->server);
    f->server.data = f;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&f->server, (struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&f->server, 8, on_fake_conn) != 0)
        return -1;
    uv_tcp_getsockname(&f->server, (struct sockaddr *)&a, &len);
    f->port = ntohs(a.sin_port);
    return 0;
}

static void fake_stop(fake_t *f)
{
    int i;
    for (i = 0; i < f->nclients; i++)
        if (!uv_is_closing((uv_handle_t *)&f->clients[i]))
            uv_close((uv_handle_t *)&f->clients[i], on_client_closed);
    uv_close((uv_handle_t *)&f->server, on_client_closed);
}

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void push_switch(uv_tcp_t *t, const char *payload)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$%zu\r\n%s\r\n",
             strlen(payload), payload);
    say(t, buf);
}

static int changes, closed_called;
static char last_log[512];
static void on_changed(void *ud, size_t shard)
{
    (void)ud;
    CHECK(shard == 3);
    changes++;
}
static void on_closed(void *ud)
{
    (void)ud;
    closed_called++;
}
static void capture_log(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)level;
    snprintf(last_log, sizeof(last_log), "%s", msg);
}

/* A memory layer on loop: the sentinel's loop and log hook (captured). */
static dfws_layer_t *log_layer(uv_loop_t *loop)
{
    dfws_layer_config_t cfg;
    dfws_layer_t *l = NULL;
    dfws_layer_config_init(&cfg);
    CHECK(dfws_layer_new(loop, &cfg, &l) == 0);
    dfws_layer_config_free(&cfg);
    dfws_layer_set_log(l, capture_log, NULL);
    return l;
}

static void run_until(uv_loop_t *loop, int *counter, int target)
{
    int i;
    for (i = 0; i < 2000 && *counter < target; i++)
        uv_run(loop, UV_RUN_ONCE);
}

static void test_discovery(void)
{
    uv_loop_t loop;
    fake_t nil, good;
    dfws_layer_sentinel_addr_t addrs[3];
    dfws_layer_host_t cfg;
    dfws_sentinel_t *s;
    dfws_layer_t *l;
    const dfws_layer_host_t *m;
    char why[400];
    char h0[] = "127.0.0.1", h1[] = "127.0.0.1", h2[] = "127.0.0.1", name[] = "mymaster";

    uv_loop_init(&loop);
    l = log_layer(&loop);
    CHECK(fake_start(&loop, &nil, "*-1\r\n") == 0);
    CHECK(fake_start(&loop, &good, "*2\r\n$9\r\n127.0.0.9\r\n$4\r\n6400\r\n") == 0);
    addrs[0].host = h0;
    addrs[0].port = free_port(); /* refuses */
    addrs[1].host = h1;
    addrs[1].port = nil.port;
    addrs[2].host = h2;
    addrs[2].port = good.port;
    memset(&cfg, 0, sizeof(cfg));
    cfg.master_name = name;
    cfg.sentinels = addrs;
    cfg.nsentinels = 3;
    cfg.db = 2;

    s = dfws_sentinel_new(l, &cfg, 3, on_changed, NULL);
    CHECK(s != NULL);
    /* before the first round: unknown, quietly */
    CHECK(dfws_sentinel_master(s, why, sizeof(why)) == NULL && why[0] == '\0');
    run_until(&loop, &changes, 1);
    CHECK(changes == 1);
    m = dfws_sentinel_master(s, why, sizeof(why));
    CHECK(m != NULL && m != NULL && strcmp(m->host, "127.0.0.9") == 0 && m->port == 6400 &&
          m->db == 2 && m->master_name == cfg.master_name);
    CHECK(nil.asked == 1 && good.asked == 1);
    CHECK(strstr(last_log, "127.0.0.9:6400") != NULL);
    /* the subscription reaches the sentinel that answered */
    {
        int i;
        for (i = 0; i < 2000 && good.sub == NULL; i++)
            uv_run(&loop, UV_RUN_ONCE);
        CHECK(good.sub != NULL);
    }
    /* a suspicion right after the round waits a little, then asks the good one first */
    dfws_sentinel_suspect(s);
    run_until(&loop, &good.asked, 2);
    CHECK(good.asked == 2 && nil.asked == 1);
    CHECK(changes == 1); /* same address: no change */
    /* +switch-master for another master: ignored; for ours: moves */
    if (good.sub != NULL) {
        push_switch(good.sub, "other 127.0.0.9 6400 127.0.0.8 6500");
        push_switch(good.sub, "mymaster 127.0.0.9 6400 127.0.0.7 6401");
    }
    run_until(&loop, &changes, 2);
    CHECK(changes == 2);
    m = dfws_sentinel_master(s, why, sizeof(why));
    CHECK(m != NULL && strcmp(m->host, "127.0.0.7") == 0 && m->port == 6401);
    CHECK(strstr(last_log, "switched from 127.0.0.9:6400 to 127.0.0.7:6401") != NULL &&
          strstr(last_log, "+switch-master") != NULL);

    /* every sentinel gone: the address is kept, the reason logged once */
    fake_stop(&nil);
    fake_stop(&good);
    {
        int i;
        last_log[0] = '\0';
        for (i = 0; i < 40; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        dfws_sentinel_suspect(s);
        for (i = 0; i < 3000 && strstr(last_log, "no sentinel gave") == NULL; i++)
            uv_run(&loop, UV_RUN_ONCE);
        CHECK(strstr(last_log, "no sentinel gave the master 'mymaster' (shard 3)") != NULL);
        CHECK(strstr(last_log, "Connection refused") != NULL);
        m = dfws_sentinel_master(s, why, sizeof(why));
        CHECK(m != NULL && m->port == 6401);
    }
    dfws_sentinel_close(s, on_closed, NULL);
    dfws_layer_close(l, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(closed_called == 1);
    CHECK(uv_loop_close(&loop) == 0);
}

/* Nothing answers from the start: the reason says so. */
static void test_nobody(void)
{
    uv_loop_t loop;
    dfws_layer_sentinel_addr_t addr;
    dfws_layer_host_t cfg;
    dfws_sentinel_t *s;
    dfws_layer_t *l;
    char why[400], h[] = "127.0.0.1", name[] = "m";
    int i;

    uv_loop_init(&loop);
    l = log_layer(&loop);
    addr.host = h;
    addr.port = free_port();
    memset(&cfg, 0, sizeof(cfg));
    cfg.master_name = name;
    cfg.sentinels = &addr;
    cfg.nsentinels = 1;
    changes = 0;
    closed_called = 0;
    s = dfws_sentinel_new(l, &cfg, 3, on_changed, NULL);
    run_until(&loop, &changes, 1); /* the first failed round wakes the waiting connections */
    CHECK(changes == 1);
    CHECK(dfws_sentinel_master(s, why, sizeof(why)) == NULL);
    CHECK(strstr(why, "master 'm' unknown: sentinel 127.0.0.1:") != NULL &&
          strstr(why, "refused") != NULL);
    for (i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    dfws_sentinel_close(s, on_closed, NULL);
    dfws_layer_close(l, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(closed_called == 1);
    CHECK(uv_loop_close(&loop) == 0);
}

/* ---- configuration ------------------------------------------------------------------ */

static void test_config(void)
{
    dfws_layer_config_t cfg, copy;
    char err[200];
    const char *good =
        "{\"kind\": \"redis\", \"hosts\": [\"redis://a:1\", {\"master_name\": \"mymaster\", "
        "\"sentinels\": [[\"10.0.0.1\", 26379], [\"s2\", 26380]], \"sentinel_kwargs\": "
        "{\"password\": \"sp\"}, "
        "\"password\": \"mp\", \"username\": \"mu\", \"db\": 4}]}";
    const char *bad[] = {
        "{\"hosts\": [{\"master_name\": \"m\", \"sentinels\": []}]}",
        "{\"hosts\": [{\"master_name\": \"\", \"sentinels\": [[\"a\", 1]]}]}",
        "{\"hosts\": [{\"sentinels\": [[\"a\", 1]]}]}",
        "{\"hosts\": [{\"master_name\": \"m\", \"sentinels\": [[\"a\", 0]]}]}",
        "{\"hosts\": [{\"master_name\": \"m\", \"sentinels\": [[\"a\", 1], [\"b\"]]}]}",
        "{\"hosts\": [{\"master_name\": \"m\", \"sentinels\": [[\"a\", 1]], \"sentinel_kwargs\": "
        "3}]}",
        "{\"hosts\": [{\"master_name\": \"m\", \"sentinels\": [[\"a\", 1]], \"db\": \"x\"}]}",
    };
    size_t i;

    dfws_layer_config_init(&cfg);
    CHECK(dfws_layer_config_parse_json(&cfg, good, err, sizeof(err)) == 0);
    CHECK(cfg.nhosts == 2 && cfg.hosts[0].master_name == NULL);
    CHECK(cfg.hosts[1].master_name && strcmp(cfg.hosts[1].master_name, "mymaster") == 0);
    CHECK(cfg.hosts[1].nsentinels == 2 && strcmp(cfg.hosts[1].sentinels[1].host, "s2") == 0 &&
          cfg.hosts[1].sentinels[1].port == 26380);
    CHECK(cfg.hosts[1].sentinel_password && strcmp(cfg.hosts[1].sentinel_password, "sp") == 0 &&
          cfg.hosts[1].sentinel_username == NULL);
    CHECK(strcmp(cfg.hosts[1].password, "mp") == 0 && strcmp(cfg.hosts[1].username, "mu") == 0 &&
          cfg.hosts[1].db == 4 && cfg.hosts[1].host == NULL);
    CHECK(dfws_layer__config_copy(&copy, &cfg) == 0);
    CHECK(copy.hosts[1].sentinels != cfg.hosts[1].sentinels && copy.hosts[1].nsentinels == 2 &&
          strcmp(copy.hosts[1].sentinels[0].host, "10.0.0.1") == 0 &&
          strcmp(copy.hosts[1].master_name, "mymaster") == 0 &&
          strcmp(copy.hosts[1].sentinel_password, "sp") == 0);
    dfws_layer_config_free(&copy);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(dfws_layer_config_parse_json(&cfg, bad[i], err, sizeof(err)) == DFWS_LAYER_EINVAL);
        CHECK(strncmp(err, "hosts[0]: ", 10) == 0);
    }
    dfws_layer_config_free(&cfg);
}

int main(void)
{
    test_config();
    test_master_reply();
    test_role_reply();
    test_switch();
    test_discovery();
    test_nobody();
    return check_summary();
}
