/* Unit tests for server/history.c: the final JSON splice, the in-process
 * store (epochs, offsets, the ring bound, the TTL, the sweep of quiet
 * groups) and the layer-level append-and-send / read on the memory layer.
 * The Redis side is tested black-box (tests/native/test_recovery_redis.py)
 * against a real redis-server. */
#include "history.h"
#include "layer.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static void test_final_json(void)
{
    char *out;
    size_t n;
    CHECK(dfws_history_final_json("{\"signal\":\"a\"}", 14, "g1", "0011aabb", 7, &out, &n) == 0);
    CHECK(!strcmp(out, "{\"signal\":\"a\",\"topic\":\"g1\",\"pos\":\"0011aabb-7\"}") &&
          n == strlen(out));
    free(out);
    /* an empty object gets no comma; trailing spaces go */
    CHECK(dfws_history_final_json("{ } \n", 5, "g", "00000000", 1, &out, &n) == 0);
    CHECK(!strcmp(out, "{ \"topic\":\"g\",\"pos\":\"00000000-1\"}"));
    free(out);
    /* not an object: refused */
    CHECK(dfws_history_final_json("[1]", 3, "g", "00000000", 1, &out, &n) == -1);
    CHECK(dfws_history_final_json("}", 1, "g", "00000000", 1, &out, &n) == -1);
    CHECK(dfws_history_final_json("", 0, "g", "00000000", 1, &out, &n) == -1);
    CHECK(dfws_history_valid_epoch("0123abcd", 8));
    CHECK(!dfws_history_valid_epoch("0123ABCD", 8));
    CHECK(!dfws_history_valid_epoch("0123abc", 7));
    CHECK(!dfws_history_valid_epoch("0123abcg", 8));
}

static char *append(dfws_history_store_t *st, const char *group, const char *epoch, const char *msg,
                    uint64_t now)
{
    char *final = NULL;
    size_t n;
    if (dfws_history_store_append(st, group, epoch, msg, strlen(msg), now, &final, &n))
        return NULL;
    return final;
}

static void test_store(void)
{
    dfws_history_store_t *st = dfws_history_store_new(3, 10);
    dfws_history_result_t r;
    uint64_t t = 1000000;
    CHECK(dfws_history_store_new(0, 10) == NULL);
    /* no history yet: no meta */
    CHECK(dfws_history_store_read(st, "g", "aaaaaaaa", 0, 3, t, &r) == 0 && !r.has_meta && !r.n);
    /* a bad epoch candidate creates nothing */
    CHECK(append(st, "g", "AAAAAAAA", "{}", t) == NULL);
    CHECK(dfws_history_store_groups(st) == 0);
    char *f = append(st, "g", "aaaaaaaa", "{\"n\":1}", t);
    CHECK(f && !strcmp(f, "{\"n\":1,\"topic\":\"g\",\"pos\":\"aaaaaaaa-1\"}"));
    free(f);
    /* the epoch stays the first one */
    f = append(st, "g", "bbbbbbbb", "{\"n\":2}", t + 1);
    CHECK(f && strstr(f, "\"pos\":\"aaaaaaaa-2\""));
    free(f);
    CHECK(dfws_history_store_read(st, "g", "aaaaaaaa", 0, 10, t + 2, &r) == 0);
    CHECK(r.has_meta && r.seq == 2 && r.n == 2 && !strcmp(r.epoch, "aaaaaaaa"));
    CHECK(r.n == 2 && strstr(r.items[0], "\"n\":1") && strstr(r.items[1], "\"n\":2"));
    dfws_history_result_free(&r);
    /* after offset 1 */
    CHECK(dfws_history_store_read(st, "g", "aaaaaaaa", 1, 10, t + 2, &r) == 0 && r.n == 1 &&
          strstr(r.items[0], "-2\""));
    dfws_history_result_free(&r);
    /* another epoch: the meta, no messages */
    CHECK(dfws_history_store_read(st, "g", "cccccccc", 0, 10, t + 2, &r) == 0 && r.has_meta &&
          r.seq == 2 && r.n == 0);
    dfws_history_result_free(&r);
    /* max */
    CHECK(dfws_history_store_read(st, "g", "aaaaaaaa", 0, 1, t + 2, &r) == 0 && r.n == 1 &&
          strstr(r.items[0], "-1\""));
    dfws_history_result_free(&r);
    /* the ring keeps the last 3 */
    for (int i = 3; i <= 5; i++) {
        char m[32];
        snprintf(m, sizeof(m), "{\"n\":%d}", i);
        free(append(st, "g", "aaaaaaaa", m, t + 3));
    }
    CHECK(dfws_history_store_read(st, "g", "aaaaaaaa", 0, 10, t + 4, &r) == 0 && r.seq == 5 &&
          r.n == 3);
    CHECK(r.n == 3 && strstr(r.items[0], "-3\"") && strstr(r.items[2], "-5\""));
    dfws_history_result_free(&r);
    /* the TTL: 10 s after its write a message is gone, the meta stays */
    CHECK(dfws_history_store_read(st, "g", "aaaaaaaa", 0, 10, t + 3 + 10000, &r) == 0 &&
          r.has_meta && r.seq == 5 && r.n == 0);
    dfws_history_result_free(&r);
    /* another group, its own epoch and offsets */
    f = append(st, "h", "dddddddd", "{\"x\":true}", t + 20000);
    CHECK(f && strstr(f, "\"topic\":\"h\",\"pos\":\"dddddddd-1\""));
    free(f);
    CHECK(dfws_history_store_groups(st) == 2);
    /* a quiet group's meta goes DFWS_HISTORY_META_TTL after its last write
     * (swept from an append) */
    free(append(st, "h", "dddddddd", "{}", t + 3 + (uint64_t)DFWS_HISTORY_META_TTL * 1000));
    CHECK(dfws_history_store_groups(st) == 1);
    CHECK(dfws_history_store_read(st, "g", "aaaaaaaa", 0, 10,
                                  t + 3 + (uint64_t)DFWS_HISTORY_META_TTL * 1000, &r) == 0 &&
          !r.has_meta);
    dfws_history_store_free(st);
}

/* ---- the layer API on the memory layer ---------------------------------------- */

typedef struct got_s {
    int calls, status;
    dfws_history_result_t res;
    char delivered[8][256];
    int ndelivered;
} got_t;

static void on_read(void *ud, int status, dfws_history_result_t *res)
{
    got_t *g = ud;
    g->calls++;
    g->status = status;
    g->res = *res;
    memset(res, 0, sizeof(*res));
}

static void on_deliver(void *ud, const char *channel, const char *mp, size_t len)
{
    got_t *g = ud;
    const char *type, *msg;
    size_t tl, ml;
    (void)channel;
    if (dfws_layer_msg_peek(mp, len, &type, &tl, &msg, &ml) == 0 && msg && g->ndelivered < 8 &&
        ml < 255) {
        memcpy(g->delivered[g->ndelivered], msg, ml);
        g->delivered[g->ndelivered++][ml] = 0;
    }
}

static void test_layer(void)
{
    uv_loop_t loop;
    dfws_layer_config_t cfg;
    dfws_layer_t *l;
    got_t got = {0};
    uv_loop_init(&loop);
    dfws_layer_config_init(&cfg);
    CHECK(dfws_layer_memory_new(&loop, &cfg, &l) == 0);
    /* history off: reads are refused, sends go as they are */
    CHECK(dfws_layer_history_size(l) == 0);
    CHECK(dfws_layer_history_read(l, "g", "aaaaaaaa", 0, on_read, &got) == DFWS_LAYER_EUNSUPPORTED);
    CHECK(dfws_layer_listen(l, "specific.x!1", on_deliver, &got) == 0);
    CHECK(dfws_layer_group_add(l, "g", "specific.x!1") == 0);
    CHECK(dfws_layer_history_send(l, "g", "{\"a\":1}", 7, "aaaaaaaa", NULL, NULL) == 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(got.ndelivered == 1 && !strcmp(got.delivered[0], "{\"a\":1}"));
    CHECK(dfws_layer_history_configure(l, 2, 60, NULL, NULL) == 0 &&
          dfws_layer_history_size(l) == 2);
    /* bad input */
    CHECK(dfws_layer_history_send(l, "bad group!", "{}", 2, "aaaaaaaa", NULL, NULL) ==
          DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_history_send(l, "g", "{}", 2, "nothex!!", NULL, NULL) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_history_send(l, "g", "[]", 2, "aaaaaaaa", NULL, NULL) == DFWS_LAYER_EINVAL);
    CHECK(dfws_layer_history_read(l, "g", "AAAA", 0, on_read, &got) == DFWS_LAYER_EINVAL);
    for (int i = 0; i < 3; i++)
        CHECK(dfws_layer_history_send(l, "g", "{\"a\":2}", 7, "bbbbbbbb", NULL, NULL) == 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(got.ndelivered == 4 &&
          !strcmp(got.delivered[3], "{\"a\":2,\"topic\":\"g\",\"pos\":\"bbbbbbbb-3\"}"));
    /* the same settings again keep the history */
    CHECK(dfws_layer_history_configure(l, 2, 60, NULL, NULL) == 0);
    CHECK(dfws_layer_history_read(l, "g", "bbbbbbbb", 0, on_read, &got) == 0);
    CHECK(got.calls == 0); /* never from inside the call */
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(got.calls == 1 && got.status == 0 && got.res.seq == 3 && got.res.n == 2);
    dfws_history_result_free(&got.res);
    /* a read still queued when the layer closes is answered */
    CHECK(dfws_layer_history_read(l, "g", "bbbbbbbb", 0, on_read, &got) == 0);
    dfws_layer_close(l, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(got.calls == 2);
    dfws_history_result_free(&got.res);
    CHECK(uv_loop_close(&loop) == 0);
    dfws_layer_config_free(&cfg);
}

int main(void)
{
    test_final_json();
    test_store();
    test_layer();
    return check_summary();
}
