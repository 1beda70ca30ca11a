/* The df_websockets signal socket served in C ("native" windows).
 *
 * After one call into the application layer at connect (ops->connect, which
 * runs df_websockets' connect logic in Python off the loop thread and
 * answers with dfws_native_connected / dfws_native_refused), a window lives
 * in C only: heartbeats are echoed, signal calls are parsed with jansson and,
 * in `channels` worker mode, turned into `process.signal` messages sent to
 * the queue channels through the C channel layer; group messages of type
 * `ws_message` become text frames straight from the layer.
 */
#ifndef DFWS_NATIVE_H
#define DFWS_NATIVE_H

#include <stddef.h>

#include "layer.h"
#include "ws_conn.h"

typedef struct dfws_native_s dfws_native_t;
typedef struct dfws_window_s dfws_window_t;

typedef struct dfws_native_ops_s {
    /* A window asks to connect: the application layer must answer later
     * (never from inside this call) with dfws_native_connected() or
     * dfws_native_refused(). Returns 0, or -1 to refuse at once (500). */
    int (*connect)(void *ud, dfws_window_t *w, dfws_req_t *req);
    /* A valid signal call the C side does not dispatch itself (not
     * `channels` mode, dynamic queues, a custom JSON decoder): `json` is the
     * frame as received. */
    void (*signal)(void *ud, dfws_window_t *w, const char *json, size_t len);
    /* The window is gone; `w` must not be used after this call. */
    void (*closed)(void *ud, dfws_window_t *w);
} dfws_native_ops_t;

typedef struct dfws_native_config_s {
    const char *ws_url;      /* WEBSOCKET_URL, e.g. "/ws/" (copied) */
    int channels_mode;       /* dispatch signal calls from C */
    int json_in_c;           /* the default JSON decoder: frames may be parsed in C */
    const char *queues_json; /* {"signal.name": ["queue", ...]} for channels mode */
    double rate_limit;       /* messages per second per window, 0 = none */
    size_t connect_capacity; /* windows waiting for ops->connect at once; more: 503. 0 = none */
    /* Recovery of missed signals (docs/recovery.md). history_size 0: off
     * (the dfws_recover parameter is ignored). Otherwise the layer is
     * configured with dfws_layer_history_configure(history_size,
     * history_ttl, the two Lua texts: df_websockets/history_*.lua). */
    size_t history_size;       /* WEBSOCKET_HISTORY_SIZE */
    unsigned history_ttl;      /* WEBSOCKET_HISTORY_TTL, seconds */
    size_t recovery_max_bytes; /* WEBSOCKET_RECOVERY_MAX_BYTES */
    const char *history_append_lua, *history_read_lua;
} dfws_native_config_t;

/* Creates the endpoint on `layer` (borrowed; must outlive it). Returns 0 or
 * a negative code; *err explains a bad configuration. */
int dfws_native_new(dfws_layer_t *layer, const dfws_native_config_t *cfg,
                    const dfws_native_ops_t *ops, void *ud, dfws_native_t **out, const char **err);
void dfws_native_free(dfws_native_t *n);

/* Whether an upgrade request's target is the endpoint (query string ignored). */
int dfws_native_matches(const dfws_native_t *n, const char *target, size_t len);

/* Takes an upgrade request over (state HANDSHAKE) and calls ops->connect,
 * or answers 503 at once when the channel layer is down (the window could
 * neither join its groups nor receive) or when connect_capacity windows
 * already wait for their answer. Returns 0, or -1 (the caller
 * answers 500). */
int dfws_native_start(dfws_native_t *n, dfws_wsconn_t *wc);

/* The application's answer to ops->connect. `window_info_mp` is the msgpack
 * of WindowInfo.to_dict() (copied), `groups` the group names to join. The
 * window listens on a new channel of its own (messages to it alone), joins
 * its groups (the process takes part in each group once, with one member
 * channel, and fans a group's messages out to its local windows), and is
 * accepted. */
int dfws_native_connected(dfws_window_t *w, const char *window_info_mp, size_t mp_len,
                          const char *const *groups, size_t ngroups);
/* Refuses with `status`: 403 (the application said no: Origin, middleware)
 * or a server error (500, 503 when what the window needs is unavailable). */
void dfws_native_refused(dfws_window_t *w, int status);

/* The msgpack of the window's WindowInfo dict (owned by the window, valid
 * while it is open); NULL before it is connected. */
const char *dfws_native_window_info(const dfws_window_t *w, size_t *len);

/* The channel of the window alone (messages sent to it reach this window
 * only; owned by the window); NULL before it is connected. */
const char *dfws_native_window_channel(const dfws_window_t *w);

/* The application-layer pointer of a window (set/get). */
void dfws_native_set_app(dfws_window_t *w, void *app);
void *dfws_native_get_app(const dfws_window_t *w);

/* Counters, for tests and the benchmark. */
typedef struct dfws_native_stats_s {
    size_t windows; /* accepted and open */
    unsigned long long frames_in, heartbeats, calls_dispatched, calls_to_app, calls_dropped,
        deliveries, deliveries_dropped, rate_limited, connects_refused;
} dfws_native_stats_t;
void dfws_native_get_stats(const dfws_native_t *n, dfws_native_stats_t *st);

#endif
