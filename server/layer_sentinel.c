/*
 * dfws channel layer — Redis Sentinel: finding a shard's master (see
 * layer_sentinel.h).
 *
 * State: at most one query context (the sentinel being asked now) and one
 * subscription context ("+switch-master" on the sentinel that answered
 * last), one timer. The timer is the time limit of the current question
 * while a round of questions runs, else the next round (after a failed
 * round: backoff; after a suspicion right after a round: a short delay, so
 * that every failing connection of a shard does not cost a round each).
 *
 * hiredis contexts are dropped by setting ac->data to NULL before
 * redisAsyncFree(): their callbacks, which hiredis still runs with NULL
 * replies, then see no owner.
 */
#include "layer_sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <jansson.h>

#include "layer_int.h"
#include "redis_conn.h"

#define ASK_TIMEOUT_MS 1000 /* per sentinel: connect, AUTH and the answer */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MIN_ROUND_GAP_MS 200 /* between rounds started by suspicions */
#define HOST_MAX 256

struct dfws_sentinel_s {
    const dfws_layer_t *layer; /* the owner's: its loop and log hook */
    uv_loop_t *loop;
    const dfws_layer_host_t *cfg; /* borrowed: master_name, sentinels, credentials */
    size_t shard;
    dfws_sentinel_changed_cb changed;
    void *ud;

    dfws_layer_host_t master; /* *cfg with host/port of the master; host -> master_host */
    char master_host[HOST_MAX];
    int known;                 /* master holds an address */
    unsigned long rounds_done; /* rounds finished, well or not */

    int querying;     /* a round is running */
    size_t asking;    /* index of the sentinel asked now */
    size_t asked;     /* sentinels asked in this round */
    size_t preferred; /* the last one that answered: asked first */
    redisAsyncContext *query;
    char qerror[200]; /* why the current question failed */
    char error[300];  /* why the last round failed ("" after a good one) */

    redisAsyncContext *sub; /* SUBSCRIBE +switch-master */
    size_t sub_index;

    uv_timer_t timer;
    unsigned backoff_ms;
    int outage;             /* a failed round was logged, none good since */
    uint64_t last_round_ms; /* uv_now() when the last round ended */

    int closing;
    dfws_sentinel_closed_cb closed;
    void *closed_ud;
};

/* ---- configuration ------------------------------------------------------------------ */

static int cfg_err(char *err, size_t errlen, int code, size_t idx, const char *what)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "hosts[%zu]: %s", idx, what);
    return code;
}

static int dup_opt(char **out, json_t *v)
{
    if (!json_is_string(v))
        return 0;
    *out = strdup(json_string_value(v));
    return *out ? 0 : DFWS_LAYER_ENOMEM;
}

int dfws_sentinel_config_parse(dfws_layer_host_t *h, const void *ev, size_t idx, char *err,
                               size_t errlen)
{
    json_t *e = (json_t *)ev, *name = json_object_get(e, "master_name"),
           *list = json_object_get(e, "sentinels");
    json_t *kw = json_object_get(e, "sentinel_kwargs"), *v;
    size_t i, n;

    if (!json_is_string(name) || json_string_length(name) == 0)
        return cfg_err(err, errlen, DFWS_LAYER_EINVAL, idx,
                       "master_name must be a non-empty string");
    if (!json_is_array(list) || (n = json_array_size(list)) == 0)
        return cfg_err(err, errlen, DFWS_LAYER_EINVAL, idx,
                       "sentinels must be a non-empty list of [host, port]");
    if (kw != NULL && !json_is_null(kw) && !json_is_object(kw))
        return cfg_err(err, errlen, DFWS_LAYER_EINVAL, idx, "sentinel_kwargs must be an object");
    if (!(h->master_name = strdup(json_string_value(name))))
        return DFWS_LAYER_ENOMEM;
    if (!(h->sentinels = calloc(n, sizeof(*h->sentinels))))
        return DFWS_LAYER_ENOMEM;
    for (i = 0; i < n; i++) {
        json_t *p = json_array_get(list, i), *sh = json_array_get(p, 0), *sp = json_array_get(p, 1);
        if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_string(sh) ||
            !json_is_integer(sp) || json_integer_value(sp) < 1 || json_integer_value(sp) > 65535)
            return cfg_err(err, errlen, DFWS_LAYER_EINVAL, idx,
                           "each sentinel must be [host, port]");
        if (!(h->sentinels[i].host = strdup(json_string_value(sh))))
            return DFWS_LAYER_ENOMEM;
        h->sentinels[i].port = (int)json_integer_value(sp);
        h->nsentinels = i + 1;
    }
    if (json_is_object(kw) &&
        (dup_opt(&h->sentinel_username, json_object_get(kw, "username")) != 0 ||
         dup_opt(&h->sentinel_password, json_object_get(kw, "password")) != 0))
        return DFWS_LAYER_ENOMEM;
    if (dup_opt(&h->username, json_object_get(e, "username")) != 0 ||
        dup_opt(&h->password, json_object_get(e, "password")) != 0)
        return DFWS_LAYER_ENOMEM;
    if ((v = json_object_get(e, "db")) != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
            return cfg_err(err, errlen, DFWS_LAYER_EINVAL, idx, "db must be a small integer");
        h->db = (int)json_integer_value(v);
    }
    h->port = 0;
    return 0;
}

int dfws_sentinel_config_copy(dfws_layer_host_t *dst, const dfws_layer_host_t *src)
{
    size_t i;
    if (src->master_name == NULL)
        return 0;
    if (!(dst->master_name = strdup(src->master_name)) ||
        (src->sentinel_username && !(dst->sentinel_username = strdup(src->sentinel_username))) ||
        (src->sentinel_password && !(dst->sentinel_password = strdup(src->sentinel_password))) ||
        !(dst->sentinels = calloc(src->nsentinels ? src->nsentinels : 1, sizeof(*dst->sentinels))))
        return DFWS_LAYER_ENOMEM;
    for (i = 0; i < src->nsentinels; i++) {
        if (!(dst->sentinels[i].host = strdup(src->sentinels[i].host)))
            return DFWS_LAYER_ENOMEM;
        dst->sentinels[i].port = src->sentinels[i].port;
        dst->nsentinels = i + 1;
    }
    return 0;
}

void dfws_sentinel_config_free(dfws_layer_host_t *h)
{
    size_t i;
    for (i = 0; i < h->nsentinels; i++)
        free(h->sentinels[i].host);
    free(h->sentinels);
    free(h->master_name);
    free(h->sentinel_username);
    free(h->sentinel_password);
    h->sentinels = NULL;
    h->nsentinels = 0;
    h->master_name = h->sentinel_username = h->sentinel_password = NULL;
}

/* ---- replies ------------------------------------------------------------------------ */

static int copy_str(char *out, size_t outlen, const char *s, size_t len)
{
    if (len == 0 || len >= outlen || memchr(s, '\0', len) != NULL)
        return DFWS_LAYER_EINVAL;
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static int parse_port(const char *s, size_t len, int *port)
{
    int v = 0;
    size_t i;
    if (len == 0 || len > 5)
        return DFWS_LAYER_EINVAL;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return DFWS_LAYER_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return DFWS_LAYER_EINVAL;
    *port = v;
    return 0;
}

int dfws_sentinel_parse_master(const redisReply *rep, char *host, size_t hostlen, int *port,
                               char *err, size_t errlen)
{
    const redisReply *h, *p;

    if (rep == NULL) {
        snprintf(err, errlen, "no reply");
        return DFWS_LAYER_EINVAL;
    }
    if (rep->type == REDIS_REPLY_NIL)
        return 1;
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%.*s", (int)(rep->len > 150 ? 150 : rep->len), rep->str);
        return DFWS_LAYER_EINVAL;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        snprintf(err, errlen, "unexpected reply (type %d) to get-master-addr-by-name", rep->type);
        return DFWS_LAYER_EINVAL;
    }
    h = rep->element[0];
    p = rep->element[1];
    if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_STRING ||
        copy_str(host, hostlen, h->str, h->len) != 0 || parse_port(p->str, p->len, port) != 0) {
        snprintf(err, errlen, "malformed address in the reply to get-master-addr-by-name");
        return DFWS_LAYER_EINVAL;
    }
    return 0;
}

int dfws_sentinel_parse_switch(const char *msg, size_t len, const char *name, char *host,
                               size_t hostlen, int *port)
{
    /* five space-separated words */
    const char *w[5];
    size_t wl[5];
    size_t i = 0, n = 0;

    while (i < len && n < 5) {
        size_t start;
        while (i < len && msg[i] == ' ')
            i++;
        if (i == len)
            break;
        start = i;
        while (i < len && msg[i] != ' ')
            i++;
        w[n] = msg + start;
        wl[n] = i - start;
        n++;
    }
    while (i < len && msg[i] == ' ')
        i++;
    if (n != 5 || i != len)
        return DFWS_LAYER_EINVAL;
    {
        int oldport;
        if (parse_port(w[2], wl[2], &oldport) != 0 || parse_port(w[4], wl[4], port) != 0)
            return DFWS_LAYER_EINVAL;
    }
    if (strlen(name) != wl[0] || memcmp(name, w[0], wl[0]) != 0)
        return 1;
    if (copy_str(host, hostlen, w[3], wl[3]) != 0)
        return DFWS_LAYER_EINVAL;
    return 0;
}

int dfws_sentinel_parse_role(const redisReply *rep, char *role, size_t rolelen)
{
    const redisReply *r0;
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
        return DFWS_LAYER_EINVAL;
    r0 = rep->element[0];
    if (r0->type != REDIS_REPLY_STRING && r0->type != REDIS_REPLY_STATUS)
        return DFWS_LAYER_EINVAL;
    if (copy_str(role, rolelen, r0->str, r0->len) != 0)
        return DFWS_LAYER_EINVAL;
    return strcmp(role, "master") == 0 ? 1 : 0;
}

int dfws_sentinel_is_readonly(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR && rep->len >= 8 &&
           memcmp(rep->str, "READONLY", 8) == 0;
}

/* ---- talking to sentinels ------------------------------------------------------------- */

static void ask(dfws_sentinel_t *s);
static void start_round(dfws_sentinel_t *s);
static void on_timer(uv_timer_t *t);

/* The sentinel i as a host record (borrowed strings). */
static void sentinel_host(const dfws_sentinel_t *s, size_t i, dfws_layer_host_t *h)
{
    memset(h, 0, sizeof(*h));
    h->host = s->cfg->sentinels[i].host;
    h->port = s->cfg->sentinels[i].port;
    h->username = s->cfg->sentinel_username;
    h->password = s->cfg->sentinel_password;
}

static const char *sentinel_desc(const dfws_sentinel_t *s, size_t i, char *buf, size_t n)
{
    dfws_layer_host_t h;
    sentinel_host(s, i, &h);
    return dfws_redis_host_desc(&h, buf, n);
}

static void drop_ctx(redisAsyncContext **acp)
{
    redisAsyncContext *ac = *acp;
    *acp = NULL;
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

/* The AUTH reply of a sentinel context: an error ends that context. */
static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    dfws_sentinel_t *s = ac->data;
    redisReply *rep = reply;
    if (s == NULL || rep == NULL || rep->type != REDIS_REPLY_ERROR)
        return;
    if (ac == s->query)
        snprintf(s->qerror, sizeof(s->qerror), "%s failed: %.120s", (const char *)priv, rep->str);
    else
        dfws_layer__log(s->layer, DFWS_LOG_WARNING,
                        "redis sentinel: %s failed on the +switch-master subscription: %.120s",
                        (const char *)priv, rep->str);
    redisAsyncFree(ac); /* deferred until we return; the NULL replies that follow see it */
}

static void set_master(dfws_sentinel_t *s, const char *host, int port, const char *how)
{
    char old[HOST_MAX + 16];
    int was_known = s->known;

    if (s->known && s->master.port == port && strcmp(s->master_host, host) == 0)
        return;
    snprintf(old, sizeof(old), "%s:%d", s->master_host, s->master.port);
    snprintf(s->master_host, sizeof(s->master_host), "%s", host);
    s->master.port = port;
    s->known = 1;
    if (was_known)
        dfws_layer__log(s->layer, DFWS_LOG_WARNING,
                        "redis sentinel: master '%s' (shard %zu) switched from %s to %s:%d (%s)",
                        s->cfg->master_name, s->shard, old, host, port, how);
    else
        dfws_layer__log(s->layer, DFWS_LOG_INFO,
                        "redis sentinel: master '%s' (shard %zu) is %s:%d (%s)",
                        s->cfg->master_name, s->shard, host, port, how);
    s->changed(s->ud, s->shard);
}

static void on_switch(redisAsyncContext *ac, void *reply, void *priv)
{
    dfws_sentinel_t *s = ac->data;
    redisReply *rep = reply, *payload;
    char host[HOST_MAX], how[HOST_MAX + 64], sd[300];
    int port;
    (void)priv;

    if (s == NULL)
        return; /* dropped by us */
    if (rep == NULL) {
        /* the sentinel went away (hiredis frees the context): subscribe
         * again elsewhere with the next round */
        if (ac == s->sub) {
            s->sub = NULL;
            if (!s->closing)
                dfws_sentinel_suspect(s);
        }
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") != 0)
        return; /* the subscribe confirmation */
    payload = rep->element[2];
    if (payload->type != REDIS_REPLY_STRING)
        return;
    if (dfws_sentinel_parse_switch(payload->str, payload->len, s->cfg->master_name, host,
                                   sizeof(host), &port) != 0)
        return;
    snprintf(how, sizeof(how), "+switch-master from sentinel %s",
             sentinel_desc(s, s->sub_index, sd, sizeof(sd)));
    set_master(s, host, port, how);
}

static void subscribe(dfws_sentinel_t *s, size_t i)
{
    static const dfws_redis_callbacks_t cbs = {NULL, NULL, on_setup};
    dfws_layer_host_t h;
    char why[200];
    redisAsyncContext *ac;

    sentinel_host(s, i, &h);
    ac = dfws_redis_open(&h, s->layer, s, &cbs, NULL, why, sizeof(why));
    if (ac == NULL)
        return; /* the next round tries again */
    if (redisAsyncCommand(ac, on_switch, NULL, "SUBSCRIBE +switch-master") != REDIS_OK) {
        ac->data = NULL;
        redisAsyncFree(ac);
        return;
    }
    s->sub = ac;
    s->sub_index = i;
}

static void round_end(dfws_sentinel_t *s)
{
    s->querying = 0;
    s->rounds_done++;
    uv_timer_stop(&s->timer);
    uv_update_time(s->loop);
    s->last_round_ms = uv_now(s->loop);
}

static void round_failed(dfws_sentinel_t *s)
{
    int first = s->rounds_done == 0;
    round_end(s);
    if (!s->outage) {
        s->outage = 1;
        dfws_layer__log(
            s->layer, DFWS_LOG_WARNING,
            "redis sentinel: no sentinel gave the master '%s' (shard %zu): %s; asking again",
            s->cfg->master_name, s->shard, s->error);
    }
    uv_timer_start(&s->timer, on_timer, s->backoff_ms, 0);
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    if (first && !s->known)
        s->changed(s->ud, s->shard); /* connections waiting quietly now go down with the reason */
}

static void next_sentinel(dfws_sentinel_t *s)
{
    char sd[300];
    snprintf(s->error, sizeof(s->error), "sentinel %s: %s",
             sentinel_desc(s, s->asking, sd, sizeof(sd)), s->qerror);
    s->asked++;
    s->asking = (s->asking + 1) % s->cfg->nsentinels;
    ask(s);
}

static void on_master_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    dfws_sentinel_t *s = ac->data;
    char host[HOST_MAX], how[HOST_MAX + 64], sd[300];
    int port, rc;
    (void)priv;

    if (s == NULL || ac != s->query)
        return; /* dropped by us */
    if (reply == NULL) {
        /* hiredis is freeing the context: connect failed, connection lost,
         * or AUTH refused (on_setup) */
        s->query = NULL;
        if (s->qerror[0] == '\0')
            snprintf(s->qerror, sizeof(s->qerror), "%s",
                     ac->errstr[0] ? ac->errstr : "connection lost");
        if (!s->closing)
            next_sentinel(s);
        return;
    }
    rc = dfws_sentinel_parse_master(reply, host, sizeof(host), &port, s->qerror, sizeof(s->qerror));
    drop_ctx(&s->query); /* deferred by hiredis until we return */
    if (rc == 1)
        snprintf(s->qerror, sizeof(s->qerror), "does not know master '%s'", s->cfg->master_name);
    if (rc != 0) {
        next_sentinel(s);
        return;
    }
    s->preferred = s->asking;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->error[0] = '\0';
    round_end(s);
    if (s->outage) {
        s->outage = 0;
        dfws_layer__log(s->layer, DFWS_LOG_WARNING,
                        "redis sentinel: master '%s' (shard %zu) known again", s->cfg->master_name,
                        s->shard);
    }
    if (s->sub == NULL)
        subscribe(s, s->asking);
    snprintf(how, sizeof(how), "told by sentinel %s", sentinel_desc(s, s->asking, sd, sizeof(sd)));
    set_master(s, host, port, how);
}

/* Ask sentinel s->asking, or end the round when every one was asked. */
static void ask(dfws_sentinel_t *s)
{
    static const dfws_redis_callbacks_t cbs = {NULL, NULL, on_setup};
    dfws_layer_host_t h;
    redisAsyncContext *ac;

    while (s->asked < s->cfg->nsentinels) {
        s->qerror[0] = '\0';
        sentinel_host(s, s->asking, &h);
        ac = dfws_redis_open(&h, s->layer, s, &cbs, NULL, s->qerror, sizeof(s->qerror));
        if (ac != NULL) {
            const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", s->cfg->master_name};
            size_t lens[3] = {8, 23, strlen(s->cfg->master_name)};
            s->query = ac;
            if (redisAsyncCommandArgv(ac, on_master_reply, NULL, 3, argv, lens) == REDIS_OK) {
                uv_timer_start(&s->timer, on_timer, ASK_TIMEOUT_MS, 0);
                return;
            }
            drop_ctx(&s->query);
            snprintf(s->qerror, sizeof(s->qerror), "cannot send the question");
        }
        {
            char sd[300];
            snprintf(s->error, sizeof(s->error), "sentinel %s: %s",
                     sentinel_desc(s, s->asking, sd, sizeof(sd)), s->qerror);
        }
        s->asked++;
        s->asking = (s->asking + 1) % s->cfg->nsentinels;
    }
    round_failed(s);
}

static void start_round(dfws_sentinel_t *s)
{
    s->querying = 1;
    s->asked = 0;
    s->asking = s->preferred;
    ask(s);
}

static void on_timer(uv_timer_t *t)
{
    dfws_sentinel_t *s = t->data;
    if (s->closing)
        return;
    if (s->querying) {
        drop_ctx(&s->query);
        snprintf(s->qerror, sizeof(s->qerror), "no answer within %d ms", ASK_TIMEOUT_MS);
        next_sentinel(s);
        return;
    }
    start_round(s);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

dfws_sentinel_t *dfws_sentinel_new(const dfws_layer_t *layer, const dfws_layer_host_t *cfg,
                                   size_t shard, dfws_sentinel_changed_cb changed, void *ud)
{
    uv_loop_t *loop = layer->loop;
    dfws_sentinel_t *s;
    if (cfg->master_name == NULL || cfg->nsentinels == 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->layer = layer;
    s->loop = loop;
    s->cfg = cfg;
    s->shard = shard;
    s->changed = changed;
    s->ud = ud;
    s->master = *cfg;
    s->master.host = s->master_host;
    s->master.unix_path = NULL;
    s->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    /* the first round starts from the loop: the owner's connections exist by then */
    uv_timer_start(&s->timer, on_timer, 0, 0);
    return s;
}

const dfws_layer_host_t *dfws_sentinel_master(const dfws_sentinel_t *s, char *why, size_t whylen)
{
    if (s->known)
        return &s->master;
    if (s->rounds_done == 0)
        snprintf(why, whylen, "%s", "");
    else
        snprintf(why, whylen, "master '%s' unknown: %s", s->cfg->master_name, s->error);
    return NULL;
}

void dfws_sentinel_suspect(dfws_sentinel_t *s)
{
    uint64_t now, due;
    if (s->closing || s->querying || uv_is_active((uv_handle_t *)&s->timer))
        return; /* a round runs or is due */
    uv_update_time(s->loop);
    now = uv_now(s->loop);
    due = s->last_round_ms + MIN_ROUND_GAP_MS;
    if (s->rounds_done > 0 && now < due)
        uv_timer_start(&s->timer, on_timer, due - now, 0);
    else
        start_round(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    dfws_sentinel_t *s = h->data;
    if (s->closed)
        s->closed(s->closed_ud);
    free(s);
}

void dfws_sentinel_close(dfws_sentinel_t *s, dfws_sentinel_closed_cb closed, void *ud)
{
    s->closing = 1;
    s->closed = closed;
    s->closed_ud = ud;
    drop_ctx(&s->query);
    drop_ctx(&s->sub);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
