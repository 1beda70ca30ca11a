/* Unit tests for server/recovery.c: the dfws_recover parameter and its
 * validation as untrusted input (every bound), the recovery_failed
 * message, and whole recoveries on the memory layer's history: replay in
 * order, de-duplication by signal_id, gaps out of history, other epochs,
 * positions from the future, the byte budget, held live deliveries, a
 * window that leaves mid-way. */
#include "history.h"
#include "layer.h"
#include "check.h"
#include "recovery.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int param(const char *target, char **out)
{
    size_t n;
    *out = NULL;
    return dfws_recovery_param(target, strlen(target), out, &n);
}

static void test_param(void)
{
    char *v;
    CHECK(param("/ws/", &v) == 0);
    CHECK(param("/ws/?a=1&b=2", &v) == 0);
    CHECK(param("/ws/?dfws_recoverX=1", &v) == 0);
    CHECK(param("/ws/?xdfws_recover=1", &v) == 0);
    CHECK(param("/ws/?dfws_recover=%7B%22g%22%3A%22a%22%7D", &v) == 1 &&
          !strcmp(v, "{\"g\":\"a\"}"));
    free(v);
    CHECK(param("/ws/?a=1&dfws_recover=x+y&dfws_recover=second", &v) == 1 && !strcmp(v, "x y"));
    free(v);
    CHECK(param("/ws/?dfws_recover=", &v) == 1 && !strcmp(v, ""));
    free(v);
    /* bad percent-encoding, NUL, too long: -1 */
    CHECK(param("/ws/?dfws_recover=%7", &v) == -1);
    CHECK(param("/ws/?dfws_recover=%", &v) == -1);
    CHECK(param("/ws/?dfws_recover=%zz", &v) == -1);
    CHECK(param("/ws/?dfws_recover=a%00b", &v) == -1);
    size_t big = DFWS_RECOVERY_MAX_PARAM + 1;
    char *t = malloc(big + 64);
    strcpy(t, "/ws/?dfws_recover=");
    memset(t + strlen(t), 'a', DFWS_RECOVERY_MAX_PARAM);
    t[18 + DFWS_RECOVERY_MAX_PARAM] = 0;
    CHECK(param(t, &v) == 1 && strlen(v) == DFWS_RECOVERY_MAX_PARAM); /* exactly the bound */
    free(v);
    strcat(t, "a");
    CHECK(param(t, &v) == -1); /* one past */
    free(t);
    /* the bound is on the decoded text: %41 x 8192 is 8192 bytes */
    t = malloc(3 * DFWS_RECOVERY_MAX_PARAM + 64);
    strcpy(t, "/ws/?dfws_recover=");
    for (int i = 0; i < DFWS_RECOVERY_MAX_PARAM; i++)
        strcat(t + 18 + 3 * i, "%41");
    CHECK(param(t, &v) == 1 && strlen(v) == DFWS_RECOVERY_MAX_PARAM);
    free(v);
    free(t);
}

static const char *HELD[] = {"g1", "g2", "g3"};

static int parse(const char *json, dfws_recovery_req_t *req)
{
    return dfws_recovery_parse(json, strlen(json), HELD, 3, req);
}

static int failed_has(const dfws_recovery_req_t *req, const char *g)
{
    for (size_t i = 0; i < req->nfailed; i++)
        if (!strcmp(req->failed[i], g))
            return 1;
    return 0;
}

static void test_parse(void)
{
    dfws_recovery_req_t req;
    CHECK(parse("{\"g1\":\"0011aabb-5\",\"g2\":\"0011aabb-0\",\"other\":\"0011aabb-1\"}", &req) ==
          0);
    CHECK(req.nwants == 2 && req.nfailed == 0 && req.ignored == 1);
    CHECK(req.nwants == 2 && !strcmp(req.wants[0].group, "g1") && req.wants[0].offset == 5 &&
          !strcmp(req.wants[0].epoch, "0011aabb") && req.wants[1].offset == 0);
    dfws_recovery_req_free(&req);
    /* malformed positions: failed, one by one */
    static const char *bad[] = {
        "\"0011AABB-5\"",
        "\"0011aab-5\"",
        "\"0011aabbc-5\"",
        "\"0011aabb5\"",
        "\"0011aabb-\"",
        "\"0011aabb-05\"",
        "\"0011aabb--5\"",
        "\"0011aabb-5x\"",
        "\"0011aabb-9007199254740993\"",
        "\"0011aabb-99999999999999999999\"",
        "5",
        "null",
        "true",
        "[]",
        "{}",
        "\"\"",
        "\"0011aabb-+5\"",
        "\" 0011aabb-5\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"g2\":%s,\"g3\":\"0011aabb-9007199254740992\"}", bad[i]);
        CHECK(parse(json, &req) == 0);
        CHECK(req.nwants == 1 && req.nfailed == 1 && failed_has(&req, "g2"));
        if (req.nfailed != 1)
            fprintf(stderr, "  position %s\n", bad[i]);
        dfws_recovery_req_free(&req);
    }
    /* not an object, not JSON, too deep, duplicate keys: every held group fails */
    static const char *broken[] = {
        "",
        "[]",
        "\"g1\"",
        "{",
        "{\"g1\":\"0011aabb-1\"",
        "{\"g1\":{\"x\":[1]}}",
        "{\"g1\":\"0011aabb-1\",\"g1\":\"0011aabb-2\"}",
        "null",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        CHECK(parse(broken[i], &req) == 0);
        CHECK(req.nwants == 0 && req.nfailed == 3 && failed_has(&req, "g1") &&
              failed_has(&req, "g3"));
        dfws_recovery_req_free(&req);
    }
    /* nesting 2 is allowed: the value is failed, the others stand */
    CHECK(parse("{\"g1\":{\"x\":1},\"g2\":\"0011aabb-1\"}", &req) == 0);
    CHECK(req.nwants == 1 && req.nfailed == 1 && failed_has(&req, "g1"));
    dfws_recovery_req_free(&req);
    /* at most DFWS_RECOVERY_MAX_GROUPS held groups are read; the rest fail */
    enum { N = DFWS_RECOVERY_MAX_GROUPS + 2 };
    char *names[N];
    char *json = malloc(N * 40 + 8), *p = json;
    p += sprintf(p, "{");
    for (int i = 0; i < N; i++) {
        names[i] = malloc(16);
        snprintf(names[i], 16, "t%d", i);
        p += sprintf(p, "%s\"%s\":\"0011aabb-%d\"", i ? "," : "", names[i], i + 1);
    }
    sprintf(p, "}");
    CHECK(dfws_recovery_parse(json, strlen(json), (const char *const *)names, N, &req) == 0);
    CHECK(req.nwants == DFWS_RECOVERY_MAX_GROUPS && req.nfailed == 2);
    dfws_recovery_req_free(&req);
    /* names not held do not count against the bound */
    CHECK(dfws_recovery_parse(json, strlen(json), (const char *const *)names + N - 3, 3, &req) ==
          0);
    CHECK(req.nwants == 3 && req.nfailed == 0 && req.ignored == N - 3);
    dfws_recovery_req_free(&req);
    for (int i = 0; i < N; i++)
        free(names[i]);
    free(json);
}

static void test_failed_message(void)
{
    const char *groups[] = {"a", "b\"c"};
    char *msg;
    size_t len;
    CHECK(dfws_recovery_failed_message(groups, 2, &msg, &len) == 0);
    json_t *j = json_loads(msg, 0, NULL);
    CHECK(j &&
          !strcmp(json_string_value(json_object_get(j, "signal")), DFWS_RECOVERY_FAILED_SIGNAL));
    json_t *topics = json_object_get(json_object_get(j, "opts"), "topics");
    CHECK(json_array_size(topics) == 2 &&
          !strcmp(json_string_value(json_array_get(topics, 1)), "b\"c"));
    const char *id = json_string_value(json_object_get(j, "signal_id"));
    CHECK(id && strlen(id) == 36 && id[14] == '4');
    json_decref(j);
    free(msg);
}

/* ---- whole recoveries on the memory layer ------------------------------------- */

typedef struct win_s {
    char sent[64][512];
    int nsent;
    int done;
    int close_after; /* leave after this many sends (0: never) */
    dfws_recovery_t *rec;
} win_t;

static void on_send(void *ud, const char *msg, size_t len)
{
    win_t *w = ud;
    if (w->nsent < 64 && len < 511) {
        memcpy(w->sent[w->nsent], msg, len);
        w->sent[w->nsent][len] = 0;
    }
    w->nsent++;
    if (w->close_after && w->nsent == w->close_after && w->rec) {
        dfws_recovery_abandon(w->rec);
        w->rec = NULL;
    }
}

static void on_done(void *ud)
{
    win_t *w = ud;
    w->done = 1;
    w->rec = NULL;
}

static dfws_layer_t *L;
static uv_loop_t loop;

/* Sends {"signal":"s","signal_id":"<id>","n":<n>} to group through history. */
static void trigger(const char *group, const char *id, int n)
{
    char m[128];
    snprintf(m, sizeof(m), "{\"signal\":\"s\",\"opts\":{},\"signal_id\":\"%s\",\"n\":%d}", id, n);
    CHECK(dfws_layer_history_send(L, group, m, strlen(m), "0011aabb", NULL, NULL) == 0);
}

/* Whether the replay is over: done, or the handle only filters now (a
 * delivery that was not replayed is then the window's to send: 0). */
static int finished(win_t *w)
{
    return w->done || (w->rec && dfws_recovery_live(w->rec, "{\"signal_id\":\"fresh\"}", 21) == 0);
}

static void start(win_t *w, const char *json)
{
    dfws_recovery_req_t req;
    if (w->rec)
        dfws_recovery_abandon(w->rec); /* the last scenario's filter */
    memset(w, 0, sizeof(*w));
    CHECK(dfws_recovery_parse(json, strlen(json), HELD, 3, &req) == 0);
    w->rec = dfws_recovery_start(L, &req, 1000, on_send, on_done, w);
}

static void settle(void)
{
    for (int i = 0; i < 4; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static int sent_has(const win_t *w, int i, const char *needle)
{
    return i < w->nsent && strstr(w->sent[i], needle) != NULL;
}

static void test_recover(void)
{
    dfws_layer_config_t cfg;
    static win_t w; /* zeroed: no last scenario */
    uv_loop_init(&loop);
    dfws_layer_config_init(&cfg);
    CHECK(dfws_layer_memory_new(&loop, &cfg, &L) == 0);
    CHECK(dfws_layer_history_configure(L, 5, 60, NULL, NULL) == 0);
    trigger("g1", "id1", 1);
    trigger("g1", "id2", 2);
    trigger("g2", "id2", 2); /* one signal to two topics */
    trigger("g2", "id3", 3);
    trigger("g3", "id4", 4);
    settle();

    /* g1 from 0, g2 from 0: id1, id2 (g1), id3 (g2's id2 is a repeat) */
    start(&w, "{\"g1\":\"0011aabb-0\",\"g2\":\"0011aabb-0\"}");
    CHECK(w.rec != NULL && w.nsent == 0); /* reads are answered from the loop */
    settle();
    CHECK(finished(&w) && w.nsent == 3);
    CHECK(sent_has(&w, 0, "\"n\":1,\"topic\":\"g1\",\"pos\":\"0011aabb-1\""));
    CHECK(sent_has(&w, 1, "\"signal_id\":\"id2\"") && sent_has(&w, 1, "\"topic\":\"g1\""));
    CHECK(sent_has(&w, 2, "\"signal_id\":\"id3\""));

    /* nothing missed: nothing sent, no failure */
    start(&w, "{\"g1\":\"0011aabb-2\",\"g3\":\"0011aabb-1\"}");
    settle();
    CHECK(finished(&w) && w.nsent == 0);

    /* future offset, another epoch, a malformed one, a name not held:
     * one recovery_failed listing the three held ones */
    start(&w, "{\"g1\":\"0011aabb-3\",\"g2\":\"ffffffff-1\",\"g3\":\"bad\",\"zz\":\"0011aabb-0\"}");
    settle();
    CHECK(finished(&w) && w.nsent == 1);
    CHECK(sent_has(&w, 0, DFWS_RECOVERY_FAILED_SIGNAL) && sent_has(&w, 0, "\"g1\"") &&
          sent_has(&w, 0, "\"g2\"") && sent_has(&w, 0, "\"g3\"") && !sent_has(&w, 0, "zz"));

    /* only failures: settled at once, no handle */
    start(&w, "{\"g3\":\"bad\"}");
    CHECK(w.rec == NULL && w.nsent == 1 && sent_has(&w, 0, DFWS_RECOVERY_FAILED_SIGNAL));
    start(&w, "{\"zz\":\"0011aabb-0\"}");
    CHECK(w.rec == NULL && w.nsent == 0);

    /* a gap older than the history (size 5): g1 gets 5 more, from 0 the
     * first 2 are gone */
    for (int i = 3; i <= 7; i++)
        trigger("g1", i == 3 ? "x3" : i == 4 ? "x4" : i == 5 ? "x5" : i == 6 ? "x6" : "x7", i);
    settle();
    start(&w, "{\"g1\":\"0011aabb-1\"}");
    settle();
    CHECK(finished(&w) && w.nsent == 1 && sent_has(&w, 0, DFWS_RECOVERY_FAILED_SIGNAL));
    start(&w, "{\"g1\":\"0011aabb-2\"}"); /* exactly the 5 still there */
    settle();
    CHECK(finished(&w) && w.nsent == 5 && sent_has(&w, 0, "0011aabb-3\"") &&
          sent_has(&w, 4, "0011aabb-7\""));

    /* the byte budget (1000): g1's 5 messages fit, g2's 2 more do not */
    start(&w, "{\"g1\":\"0011aabb-2\",\"g3\":\"0011aabb-0\"}");
    settle();
    CHECK(finished(&w) && w.nsent == 6);
    {
        char big[900];
        memset(big, 'x', sizeof(big));
        char m[1000];
        snprintf(m, sizeof(m), "{\"signal\":\"s\",\"signal_id\":\"big\",\"pad\":\"%.*s\"}", 700,
                 big);
        CHECK(dfws_layer_history_send(L, "g3", m, strlen(m), "0011aabb", NULL, NULL) == 0);
        settle();
    }
    start(&w, "{\"g1\":\"0011aabb-2\",\"g3\":\"0011aabb-0\"}");
    settle();
    CHECK(finished(&w) && w.nsent == 6); /* g1's 5, then recovery_failed for g3 */
    CHECK(sent_has(&w, 5, DFWS_RECOVERY_FAILED_SIGNAL) && sent_has(&w, 5, "\"g3\"") &&
          !sent_has(&w, 5, "\"g1\""));

    /* held live deliveries: those replayed already are dropped, the others
     * follow the replay in their order */
    start(&w, "{\"g2\":\"0011aabb-0\"}");
    {
        static const char *live[] = {
            "{\"signal\":\"s\",\"signal_id\":\"id3\",\"topic\":\"g2\",\"pos\":\"0011aabb-2\"}",
            "{\"signal\":\"s\",\"signal_id\":\"id2\",\"topic\":\"g9\",\"pos\":\"0011aabb-9\"}",
            "{\"signal\":\"s\",\"signal_id\":\"id1\",\"topic\":\"g9\",\"pos\":\"0011aabb-9\"}",
            "{\"signal\":\"s\",\"signal_id\":\"new\",\"topic\":\"g2\",\"pos\":\"0011aabb-3\"}",
            "not json",
        };
        for (int i = 0; i < 5; i++)
            dfws_recovery_live(w.rec, live[i], strlen(live[i]));
    }
    settle();
    /* replayed id2, id3; held: id3 (replayed offset), id2 (replayed
     * signal_id) dropped; id1, new, and the text that is no JSON follow */
    CHECK(finished(&w) && w.nsent == 5);
    CHECK(sent_has(&w, 0, "id2") && sent_has(&w, 1, "id3") && sent_has(&w, 2, "id1") &&
          sent_has(&w, 3, "\"new\"") && sent_has(&w, 4, "not json"));
    /* after the replay, for a while: a delivery replayed already (its
     * group_send reached the window after the read) is dropped */
    CHECK(w.rec &&
          dfws_recovery_live(w.rec, "{\"topic\":\"g2\",\"pos\":\"0011aabb-2\",\"signal_id\":\"q\"}",
                             49) == 1);
    CHECK(w.rec && dfws_recovery_live(w.rec, "{\"topic\":\"g7\",\"signal_id\":\"id2\"}", 32) == 1);
    CHECK(w.rec &&
          dfws_recovery_live(w.rec, "{\"topic\":\"g2\",\"pos\":\"0011aabb-3\",\"signal_id\":\"z\"}",
                             49) == 0);

    /* held deliveries over the budget: all dropped, their groups failed */
    start(&w, "{\"g2\":\"0011aabb-2\"}");
    {
        char m[700];
        snprintf(m, sizeof(m),
                 "{\"signal_id\":\"h1\",\"topic\":\"g1\",\"pos\":\"0011aabb-8\",\"p\":\"%0500d\"}",
                 0);
        dfws_recovery_live(w.rec, m, strlen(m));
        snprintf(m, sizeof(m),
                 "{\"signal_id\":\"h2\",\"topic\":\"g3\",\"pos\":\"0011aabb-9\",\"p\":\"%0500d\"}",
                 0);
        dfws_recovery_live(w.rec, m, strlen(m));
        dfws_recovery_live(w.rec, "{\"signal_id\":\"h3\",\"topic\":\"g2\"}", 31);
    }
    settle();
    CHECK(finished(&w) && w.nsent == 1 && sent_has(&w, 0, DFWS_RECOVERY_FAILED_SIGNAL) &&
          sent_has(&w, 0, "\"g1\"") && sent_has(&w, 0, "\"g2\"") && sent_has(&w, 0, "\"g3\""));

    /* the window leaves mid-replay: nothing more is sent, nothing leaks */
    start(&w, "{\"g1\":\"0011aabb-2\"}");
    w.close_after = 2;
    settle();
    CHECK(!w.done && w.nsent == 2);
    /* ...or before the reads come back */
    start(&w, "{\"g1\":\"0011aabb-2\"}");
    dfws_recovery_abandon(w.rec);
    w.rec = NULL;
    settle();
    CHECK(!w.done && w.nsent == 0);
    /* ...or the layer closes under it: the read made is still answered */
    start(&w, "{\"g1\":\"0011aabb-2\"}");
    dfws_layer_close(L, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(finished(&w) && w.nsent == 5);
    dfws_recovery_abandon(w.rec); /* the filter left */
    CHECK(uv_loop_close(&loop) == 0);
    dfws_layer_config_free(&cfg);
}

int main(void)
{
    test_param();
    test_parse();
    test_failed_message();
    test_recover();
    return check_summary();
}
