#include "native.h"
#include "log.h"
#include "map.h"
#include "recovery.h"
#include "signal_call.h"
#include "text.h"

#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define HEARTBEAT "--heartbeat--"
#define SLOW_WINDOW_LIMIT (4 * 1024 * 1024) /* bytes queued to one window */
#define QUOTE_MAX 200                       /* bytes of a client's frame quoted in a log line */
#define NAME_MAX_LOG 100                    /* bytes of a signal name quoted in a log line */

struct dfws_native_s {
    dfws_layer_t *layer;
    char *ws_url;
    size_t ws_url_len;
    int channels_mode;
    int json_in_c;
    json_t *queues; /* signal -> [queue...] (null: dynamic, ask Python) */
    double rate_limit;
    size_t connect_capacity; /* windows waiting for ops->connect's answer, at most */
    size_t connecting;       /* windows waiting for it now */
    const dfws_native_ops_t *ops;
    void *ud;
    dfws_native_stats_t stats;
    dfws_map_t groups;         /* group name -> group_t*: the groups local windows joined */
    size_t recovery_max_bytes; /* WEBSOCKET_RECOVERY_MAX_BYTES (recovery.c) */
};

/* One group (a df_websockets topic) as this process takes part in it: ONE
 * member channel of this process joins the layer's group, however many
 * windows here belong to it, and a message for it is fanned out here to
 * the group's windows. A group_send then names one channel per process
 * instead of one per window (channels_redis builds, and Redis stores, the
 * list), and the wire format is unchanged for every sender. */
typedef struct group_s {
    dfws_native_t *n;
    char *name;
    char *channel;           /* this process's member of the group */
    dfws_window_t **windows; /* local windows in the group (unordered) */
    size_t nwindows, cap;
    int delivering; /* inside fan_out: freeing is deferred */
} group_t;

struct dfws_window_s {
    dfws_native_t *n;
    dfws_wsconn_t *wc; /* NULL once the connection is gone */
    void *app;
    char *channel;    /* set once connected: for messages to this window alone */
    group_t **groups; /* the groups it joined, and its index in each */
    size_t *group_pos;
    size_t ngroups;
    char *wi_mp; /* msgpack of the WindowInfo dict */
    size_t wi_len;
    double tokens; /* rate-limit bucket */
    uint64_t tokens_ms;
    int accepted;   /* counted in stats.windows */
    int connecting; /* counted in n->connecting */
    char *recover;  /* the dfws_recover parameter, until connected (recovery.c) */
    size_t recover_len;
    int recover_bad;      /* present but unreadable: every group fails */
    dfws_recovery_t *rec; /* a recovery under way: live deliveries are held */
};

static const dfws_ws_handler_t native_handler;

int dfws_native_new(dfws_layer_t *layer, const dfws_native_config_t *cfg,
                    const dfws_native_ops_t *ops, void *ud, dfws_native_t **out, const char **err)
{
    dfws_native_t *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->layer = layer;
    n->ws_url = strdup(cfg->ws_url ? cfg->ws_url : "/ws/");
    n->ws_url_len = strlen(n->ws_url);
    n->channels_mode = cfg->channels_mode;
    n->json_in_c = cfg->json_in_c;
    n->rate_limit = cfg->rate_limit;
    n->connect_capacity = cfg->connect_capacity;
    n->recovery_max_bytes = cfg->recovery_max_bytes;
    if (cfg->history_size) {
        int rc = dfws_layer_history_configure(layer, cfg->history_size, cfg->history_ttl,
                                              cfg->history_append_lua, cfg->history_read_lua);
        if (rc) /* windows are served all the same, without recovery */
            dfws_log_warn("native socket: no recovery of missed signals: the channel layer keeps "
                          "no history (%s)",
                          dfws_layer_strerror(rc));
    }
    n->ops = ops;
    n->ud = ud;
    dfws_map_init(&n->groups);
    if (cfg->queues_json) {
        json_error_t jerr;
        n->queues = json_loads(cfg->queues_json, 0, &jerr);
        if (!n->queues || !json_is_object(n->queues)) {
            *err = "the signal -> queues table is not a JSON object";
            dfws_native_free(n);
            return -EINVAL;
        }
    } else {
        n->queues = json_object();
    }
    *out = n;
    return 0;
}

static void group_free(group_t *g);

static void free_group_cb(void *ctx, const char *key, size_t klen, void *value)
{
    (void)ctx, (void)key, (void)klen;
    group_free(value);
}

void dfws_native_free(dfws_native_t *n)
{
    if (!n)
        return;
    dfws_map_foreach(&n->groups, free_group_cb, NULL);
    dfws_map_free(&n->groups);
    json_decref(n->queues);
    free(n->ws_url);
    free(n);
}

int dfws_native_matches(const dfws_native_t *n, const char *target, size_t len)
{
    const char *q = memchr(target, '?', len);
    size_t path_len = q ? (size_t)(q - target) : len;
    return path_len == n->ws_url_len && !memcmp(target, n->ws_url, path_len);
}

void dfws_native_set_app(dfws_window_t *w, void *app)
{
    w->app = app;
}

void *dfws_native_get_app(const dfws_window_t *w)
{
    return w->app;
}

const char *dfws_native_window_info(const dfws_window_t *w, size_t *len)
{
    *len = w->wi_len;
    return w->wi_mp;
}

const char *dfws_native_window_channel(const dfws_window_t *w)
{
    return w->channel;
}

void dfws_native_get_stats(const dfws_native_t *n, dfws_native_stats_t *st)
{
    *st = n->stats;
}

int dfws_native_start(dfws_native_t *n, dfws_wsconn_t *wc)
{
    char why[512];
    dfws_window_t *w;
    if (dfws_layer_state(n->layer, why, sizeof(why)) == DFWS_LAYER_DOWN) {
        dfws_log_warn("%s:%u: native window refused (503): channel layer unavailable: %s",
                      wc->conn->client_host, wc->conn->client_port, why);
        dfws_wsconn_reject_status(wc, 503);
        return 0;
    }
    if (n->connect_capacity && n->connecting >= n->connect_capacity) {
        /* Each connect waits for a Python thread; beyond the capacity a
         * window would wait with everyone else's, so it is told at once to
         * come back later (the browser client retries with a backoff). */
        n->stats.connects_refused++;
        dfws_log_warn("%s:%u: native window refused (503): %zu windows are already connecting "
                      "(--websocket-connect-capacity)",
                      wc->conn->client_host, wc->conn->client_port, n->connecting);
        dfws_wsconn_reject_status(wc, 503);
        return 0;
    }
    w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    w->n = n;
    w->wc = wc;
    w->tokens = n->rate_limit * 2;
    dfws_wsconn_set_handler(wc, &native_handler, n);
    wc->app = w;
    w->connecting = 1;
    n->connecting++;
    if (dfws_layer_history_size(n->layer)) {
        dfws_req_t *r = wc->req;
        int rc = dfws_recovery_param(r->head.base + r->url_off, r->url_len, &w->recover,
                                     &w->recover_len);
        w->recover_bad = rc == -1;
    }
    if (n->ops->connect(n->ud, w, wc->req)) {
        n->connecting--;
        wc->app = NULL;
        free(w);
        return -1;
    }
    return 0;
}

/* The application answered the connect (or the window left first). */
static void connect_done(dfws_window_t *w)
{
    if (w->connecting) {
        w->connecting = 0;
        w->n->connecting--;
    }
}

static void window_free(dfws_window_t *w)
{
    free(w->groups);
    free(w->group_pos);
    free(w->channel);
    free(w->wi_mp);
    free(w->recover);
    free(w);
}

/* ---- deliveries: layer -> browser, no Python -------------------------------- */

/* The text of a ws_message (mp: a channel-layer message), or NULL when it is
 * not one we can send (logged once, with `who`, counted dropped `n_drop`). */
static const char *ws_message_text(dfws_native_t *n, const char *who, const char *mp, size_t len,
                                   size_t *mlen, size_t n_drop)
{
    const char *type, *msg;
    size_t tlen;
    if (dfws_layer_msg_peek(mp, len, &type, &tlen, &msg, mlen) || tlen != 10 ||
        memcmp(type, "ws_message", 10) || !msg) {
        n->stats.deliveries_dropped += n_drop;
        dfws_log_warn("native %s: dropped a message that is not a ws_message with a string "
                      "message",
                      who);
        return NULL;
    }
    uint8_t utf8 = 0;
    if (dfws_ws_utf8_check(&utf8, (const uint8_t *)msg, *mlen) || utf8) {
        /* A text frame must be UTF-8 (RFC 6455 8.1): sent as it is, the
         * browser would close the socket with 1007. df_websockets messages
         * are JSON text, so it is no message of ours: dropped. */
        n->stats.deliveries_dropped += n_drop;
        dfws_log_warn("native %s: dropped a ws_message whose text is not valid UTF-8", who);
        return NULL;
    }
    return msg;
}

static void send_now(dfws_window_t *w, const char *msg, size_t mlen);

static void send_text(dfws_window_t *w, const char *msg, size_t mlen)
{
    if (w->rec && dfws_recovery_live(w->rec, msg, mlen))
        return; /* held until the replay is sent, or replayed already */
    send_now(w, msg, mlen);
}

static void send_now(dfws_window_t *w, const char *msg, size_t mlen)
{
    dfws_native_t *n = w->n;
    if (!w->wc) {
        n->stats.deliveries_dropped++;
        return;
    }
    if (dfws_wsconn_write_pending(w->wc) > SLOW_WINDOW_LIMIT) {
        /* A reader this slow would make the server hold its messages forever. */
        n->stats.deliveries_dropped++;
        dfws_log_warn("native window %s reads too slowly; closing it", w->channel);
        dfws_wsconn_close(w->wc, 1008, "too slow", 8);
        return;
    }
    if (dfws_wsconn_send(w->wc, 0, msg, mlen) == 0)
        n->stats.deliveries++;
    else
        n->stats.deliveries_dropped++;
}

/* A message sent to one window's own channel. */
static void on_deliver(void *ud, const char *channel, const char *mp, size_t len)
{
    dfws_window_t *w = ud;
    size_t mlen;
    const char *msg = ws_message_text(w->n, channel, mp, len, &mlen, 1);
    if (msg)
        send_text(w, msg, mlen);
}

/* A message for a group: checked once, then written to each local window of
 * the group. Windows leave by swapping the last one into their place, so
 * the loop runs from the end: a window closed while it is sent to (a slow
 * reader) is replaced by one that was already served. */
static void on_group_deliver(void *ud, const char *channel, const char *mp, size_t len)
{
    group_t *g = ud;
    size_t mlen;
    (void)channel;
    const char *msg = ws_message_text(g->n, g->name, mp, len, &mlen, g->nwindows);
    if (!msg)
        return;
    g->delivering = 1;
    for (size_t i = g->nwindows; i-- > 0;)
        if (i < g->nwindows)
            send_text(g->windows[i], msg, mlen);
    g->delivering = 0;
    if (!g->nwindows)
        group_free(g); /* every window left while it was being served */
}

static void group_free(group_t *g)
{
    free(g->windows);
    free(g->channel);
    free(g->name);
    free(g);
}

/* The window joins group `name`: this process's member joins the layer's
 * group with the first local window. 0, or -1 (out of memory, layer). */
static int group_join(dfws_window_t *w, const char *name)
{
    dfws_native_t *n = w->n;
    size_t nlen = strlen(name);
    group_t *g = dfws_map_get(&n->groups, name, nlen);
    for (size_t i = 0; g && i < w->ngroups; i++)
        if (w->groups[i] == g)
            return 0; /* listed twice */
    if (!g) {
        char channel[DFWS_LAYER_CHANNEL_BUF];
        if (!(g = calloc(1, sizeof(*g))))
            return -1;
        g->n = n;
        g->name = strdup(name);
        if (!g->name || dfws_layer_new_channel(n->layer, channel, sizeof(channel)) ||
            !(g->channel = strdup(channel)) || dfws_map_put(&n->groups, name, nlen, g)) {
            group_free(g);
            return -1;
        }
        if (dfws_layer_listen(n->layer, g->channel, on_group_deliver, g)) {
            dfws_map_del(&n->groups, name, nlen);
            group_free(g);
            return -1;
        }
        dfws_layer_group_add(n->layer, g->name, g->channel);
    }
    if (g->nwindows == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        dfws_window_t **ws = realloc(g->windows, cap * sizeof(*ws));
        if (!ws)
            return -1;
        g->windows = ws;
        g->cap = cap;
    }
    w->groups[w->ngroups] = g;
    w->group_pos[w->ngroups] = g->nwindows;
    g->windows[g->nwindows++] = w;
    w->ngroups++;
    return 0;
}

/* The window leaves group g; the process leaves the layer's group with the
 * last local window. */
static void group_leave(dfws_window_t *w, size_t k)
{
    group_t *g = w->groups[k];
    dfws_native_t *n = w->n;
    size_t pos = w->group_pos[k], last = g->nwindows - 1;
    if (pos != last) {
        dfws_window_t *moved = g->windows[last];
        g->windows[pos] = moved;
        for (size_t j = 0; j < moved->ngroups; j++)
            if (moved->groups[j] == g)
                moved->group_pos[j] = pos;
    }
    g->nwindows--;
    if (g->nwindows)
        return;
    dfws_layer_group_discard(n->layer, g->name, g->channel);
    dfws_layer_unlisten(n->layer, g->channel);
    dfws_map_del(&n->groups, g->name, strlen(g->name));
    if (!g->delivering)
        group_free(g);
}

/* ---- recovery of missed signals (recovery.c) ------------------------------- */

static void on_recovery_send(void *ud, const char *msg, size_t len)
{
    send_now(ud, msg, len);
}

static void on_recovery_done(void *ud)
{
    dfws_window_t *w = ud;
    w->rec = NULL;
}

/* The window asked for what it missed: its held groups are the ones it
 * joined (from its key's server-side record), never the names it sent. */
static void recovery_begin(dfws_window_t *w)
{
    dfws_recovery_req_t req;
    const char **held = calloc(w->ngroups ? w->ngroups : 1, sizeof(*held));
    if (!held)
        return;
    for (size_t i = 0; i < w->ngroups; i++)
        held[i] = w->groups[i]->name;
    int rc = w->recover_bad
                 ? dfws_recovery_parse("", 0, held, w->ngroups, &req)
                 : dfws_recovery_parse(w->recover, w->recover_len, held, w->ngroups, &req);
    free(held);
    free(w->recover);
    w->recover = NULL;
    if (rc)
        return;
    if (req.ignored)
        dfws_log_debug("native window %s: recovery request names %zu groups it does not hold; "
                       "ignored",
                       w->channel, req.ignored);
    w->rec = dfws_recovery_start(w->n->layer, &req, w->n->recovery_max_bytes, on_recovery_send,
                                 on_recovery_done, w);
}

int dfws_native_connected(dfws_window_t *w, const char *wi_mp, size_t mp_len,
                          const char *const *groups, size_t ngroups)
{
    dfws_native_t *n = w->n;
    char channel[DFWS_LAYER_CHANNEL_BUF];
    connect_done(w);
    if (!w->wc)
        return -1;
    if (dfws_layer_new_channel(n->layer, channel, sizeof(channel)))
        goto refuse;
    w->channel = strdup(channel);
    w->wi_mp = malloc(mp_len ? mp_len : 1);
    w->groups = calloc(ngroups ? ngroups : 1, sizeof(*w->groups));
    w->group_pos = calloc(ngroups ? ngroups : 1, sizeof(*w->group_pos));
    if (!w->channel || !w->wi_mp || !w->groups || !w->group_pos)
        goto refuse;
    memcpy(w->wi_mp, wi_mp, mp_len);
    w->wi_len = mp_len;
    if (dfws_layer_listen(n->layer, w->channel, on_deliver, w))
        goto refuse;
    for (size_t i = 0; i < ngroups; i++) {
        if (!dfws_layer_valid_group_name(groups[i])) {
            dfws_log_warn("native window: invalid group name %.100s skipped", groups[i]);
            continue;
        }
        if (group_join(w, groups[i]))
            goto refuse;
    }
    if (dfws_wsconn_accept(w->wc, NULL, 0, NULL, 0))
        return -1;
    w->accepted = 1;
    n->stats.windows++;
    if (w->recover || w->recover_bad)
        recovery_begin(w);
    return 0;
refuse:
    dfws_log_error("native window: out of memory or channel layer error at connect");
    dfws_native_refused(w, 500);
    return -1;
}

void dfws_native_refused(dfws_window_t *w, int status)
{
    connect_done(w);
    if (w->wc)
        dfws_wsconn_reject_status(w->wc, status);
}

/* ---- frames in: browser -> server ---------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void pack_json(msgpack_packer *pk, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *item;
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach(v, key, item)
        {
            pack_str(pk, key, strlen(key));
            pack_json(pk, item);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, item) pack_json(pk, item);
        break;
    }
    case JSON_STRING:
        pack_str(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        break;
    }
}

/* `process.signal` for one queue: what df_websockets' call_task sends in
 * `channels` mode, with from_client true and to_server true. */
static int dispatch_to_queue(dfws_window_t *w, const char *signal, json_t *opts, const char *queue)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "type", 4);
    pack_str(&pk, "process.signal", 14);
    pack_str(&pk, "args", 4);
    msgpack_pack_array(&pk, 7);
    pack_str(&pk, signal, strlen(signal));
    msgpack_sbuffer_write(&sb, w->wi_mp, w->wi_len); /* already msgpack */
    pack_json(&pk, opts);
    msgpack_pack_true(&pk);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_true(&pk);
    pack_str(&pk, queue, strlen(queue));
    int rc = dfws_layer_send(w->n->layer, queue, sb.data, sb.size, NULL, NULL);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void on_signal_frame(dfws_window_t *w, const char *data, size_t len)
{
    dfws_native_t *n = w->n;
    dfws_signal_call_t call;
    char why[JSON_ERROR_TEXT_LENGTH];
    char qf[DFWS_LOG_QUOTE_SIZE(QUOTE_MAX)], qe[DFWS_LOG_QUOTE_SIZE(JSON_ERROR_TEXT_LENGTH)];
    int rc = dfws_signal_call_parse(&call, data, len, why, sizeof(why));
    switch (rc) {
    case DFWS_SIGNAL_CALL_OK:
        break;
    case DFWS_SIGNAL_CALL_NOT_A_CALL:
        dfws_log_debug("native window: frame without signal ignored");
        n->stats.calls_dropped++;
        return;
    case DFWS_SIGNAL_CALL_INVALID_JSON:
        /* jansson's error text quotes the offending token */
        dfws_log_warn("native window: invalid JSON frame ignored (%s): %s",
                      dfws_log_quote(qe, sizeof(qe), why, strlen(why), JSON_ERROR_TEXT_LENGTH),
                      dfws_log_quote(qf, sizeof(qf), data, len, QUOTE_MAX));
        n->stats.calls_dropped++;
        return;
    default:
        dfws_log_warn("native window: invalid signal call ignored (%s): %s", why,
                      dfws_log_quote(qf, sizeof(qf), data, len, QUOTE_MAX));
        n->stats.calls_dropped++;
        return;
    }
    const char *name = call.name;
    char qn[DFWS_LOG_QUOTE_SIZE(NAME_MAX_LOG)];
    dfws_log_quote(qn, sizeof(qn), name, call.name_len, NAME_MAX_LOG);
    if (!n->channels_mode) {
        n->stats.calls_to_app++;
        n->ops->signal(n->ud, w, data, len);
        dfws_signal_call_free(&call);
        return;
    }
    json_t *queues = json_object_get(n->queues, name);
    if (!queues) {
        dfws_log_warn("native window: unknown signal %s ignored", qn);
        goto drop;
    }
    if (!json_is_array(queues)) {
        /* a connection with a callable queue: Python picks it */
        n->stats.calls_to_app++;
        n->ops->signal(n->ud, w, data, len);
        dfws_signal_call_free(&call);
        return;
    }
    if (call.eta || call.expires || call.countdown) {
        dfws_log_warn("native window: eta, countdown or expires need Celery; %s ignored", qn);
        goto drop;
    }
    size_t i;
    json_t *q;
    json_array_foreach(queues, i, q)
    {
        if (!json_is_string(q))
            continue;
        rc = dispatch_to_queue(w, name, call.opts, json_string_value(q));
        if (rc)
            dfws_log_warn("native window: %s to queue %s not sent: %s", qn, json_string_value(q),
                          dfws_layer_strerror(rc));
    }
    dfws_signal_call_free(&call);
    n->stats.calls_dispatched++;
    return;
drop:
    dfws_signal_call_free(&call);
    n->stats.calls_dropped++;
}

static int rate_limited(dfws_window_t *w)
{
    dfws_native_t *n = w->n;
    if (n->rate_limit <= 0)
        return 0;
    uint64_t now = uv_now(w->wc->conn->server->loop);
    double burst = n->rate_limit * 2;
    if (w->tokens_ms)
        w->tokens += (double)(now - w->tokens_ms) * n->rate_limit / 1000.0;
    w->tokens_ms = now;
    if (w->tokens > burst)
        w->tokens = burst;
    if (w->tokens < 1.0)
        return 1;
    w->tokens -= 1.0;
    return 0;
}

/* Counts one frame from the window against the rate limit; closes the
 * window with 1008 and returns 1 when it is over. */
static int over_rate_limit(dfws_native_t *n, dfws_wsconn_t *wc)
{
    dfws_window_t *w = wc->app;
    n->stats.frames_in++;
    if (!rate_limited(w))
        return 0;
    n->stats.rate_limited++;
    dfws_log_warn("native window %s: more than %.0f messages/s; closing it",
                  w->channel ? w->channel : "?", n->rate_limit);
    dfws_wsconn_close(wc, 1008, "rate limit exceeded", 19);
    return 1;
}

/* Pings and pongs count too: a flood of control frames costs us as much as
 * one of messages. */
static void on_control(void *ud, dfws_wsconn_t *wc)
{
    over_rate_limit(ud, wc);
}

static void on_message(void *ud, dfws_wsconn_t *wc, int binary, const char *data, size_t len)
{
    dfws_native_t *n = ud;
    dfws_window_t *w = wc->app;
    if (over_rate_limit(n, wc))
        return;
    if (binary) {
        dfws_log_warn("native window %s: binary frame ignored", w->channel ? w->channel : "?");
        n->stats.calls_dropped++;
        return;
    }
    if (len == sizeof(HEARTBEAT) - 1 && !memcmp(data, HEARTBEAT, len)) {
        n->stats.heartbeats++;
        dfws_wsconn_send(wc, 0, data, len);
        return;
    }
    /* Also refused before Python sees it (df_websockets/signal_call.py
     * checks the same); parsing in C checks it again. */
    if (dfws_json_too_deep(data, len, DFWS_SIGNAL_CALL_MAX_DEPTH)) {
        char qf[DFWS_LOG_QUOTE_SIZE(QUOTE_MAX)];
        dfws_log_warn("native window: invalid signal call ignored (nested deeper than %d "
                      "levels): %s",
                      DFWS_SIGNAL_CALL_MAX_DEPTH,
                      dfws_log_quote(qf, sizeof(qf), data, len, QUOTE_MAX));
        n->stats.calls_dropped++;
        return;
    }
    if (!n->json_in_c) {
        n->stats.calls_to_app++;
        n->ops->signal(n->ud, w, data, len);
        return;
    }
    on_signal_frame(w, data, len);
}

static void on_closed(void *ud, dfws_wsconn_t *wc, int code)
{
    (void)code;
    dfws_native_t *n = ud;
    dfws_window_t *w = wc->app;
    wc->app = NULL;
    if (!w)
        return;
    w->wc = NULL;
    connect_done(w);
    if (w->rec) {
        dfws_recovery_abandon(w->rec);
        w->rec = NULL;
    }
    if (w->channel) {
        dfws_layer_unlisten(n->layer, w->channel);
        while (w->ngroups)
            group_leave(w, --w->ngroups);
    }
    if (w->accepted)
        n->stats.windows--;
    n->ops->closed(n->ud, w);
    window_free(w);
}

static const dfws_ws_handler_t native_handler = {
    .message = on_message,
    .closed = on_closed,
    .drain = NULL,
    .control = on_control,
};
