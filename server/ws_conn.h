/* A connection after a WebSocket upgrade: the sans-I/O codec (websocket.c)
 * on one side, the application layer (ASGI, or the native df_websockets
 * endpoint) on the other, through dfws_app_ops_t's ws_* calls.
 *
 * Life: created by dfws_wsconn_start() when a valid upgrade request's header
 * section is complete (state HANDSHAKE, the request still attached so the
 * app can build its scope); the application answers with
 * dfws_wsconn_accept() (101, state OPEN), dfws_wsconn_reject() (403) or a
 * denial response through the request's dfws_req_response_* calls. It is
 * its connection's protocol (dfws_wsconn_proto, the connection's
 * proto_data) and is freed with it; ops->ws_closed tells the application
 * when to let go of it.
 */
#ifndef DFWS_WS_CONN_H
#define DFWS_WS_CONN_H

#include "conn.h"
#include "context.h"
#include "request.h"
#include "websocket.h"

typedef struct dfws_wsconn_s dfws_wsconn_t;

enum { DFWS_WSC_HANDSHAKE, DFWS_WSC_OPEN, DFWS_WSC_CLOSING, DFWS_WSC_CLOSED };

/* Who handles a WebSocket's events: the ASGI application (the server's
 * ops, the default) or the native df_websockets endpoint (native.c), which
 * takes a connection over with dfws_wsconn_set_handler(). */
typedef struct dfws_ws_handler_s {
    void (*message)(void *ud, dfws_wsconn_t *wc, int binary, const char *data, size_t len);
    void (*closed)(void *ud, dfws_wsconn_t *wc, int code);
    void (*drain)(void *ud, dfws_wsconn_t *wc);
    /* Optional: a ping or pong frame arrived (for rate limits); the
     * handler may close the WebSocket from here. */
    void (*control)(void *ud, dfws_wsconn_t *wc);
} dfws_ws_handler_t;

struct dfws_wsconn_s {
    dfws_ws_t ws; /* codec state */
    dfws_conn_t *conn;
    dfws_req_t *req; /* the upgrade request while in HANDSHAKE, else NULL */
    void *app;       /* handler's state (owned there) */
    const dfws_ws_handler_t *handler;
    void *handler_ud;
    char *hs_key;          /* Sec-WebSocket-Key until the 101 is sent */
    dfws_buf_t early;      /* frames that came with the upgrade request, fed after the 101
                               from the next loop turn (early_pending), never from inside
                               dfws_wsconn_accept(): its caller must not be re-entered */
    uint8_t *pong;         /* the latest unanswered ping's payload while output is backed
                               up (pong_pending); one at most, whatever the peer sends */
    char *log_path;        /* request target, kept only for the access log */
    uint64_t opened_ms;    /* uv_now() at accept */
    uint64_t last_in_ms;   /* uv_now() of the last byte received */
    uint64_t ping_sent_ms; /* 0 when no ping is outstanding */
    uint8_t state;
    unsigned app_waiting_drain : 1;
    unsigned reading_paused : 1; /* the application asked to stop reading */
    unsigned app_told : 1;       /* ops->ws_closed was called */
    unsigned early_pending : 1;  /* accepted, `early` not replayed yet */
    unsigned out_paused : 1;     /* reading stopped: output above DFWS_WRITE_HIGH */
    unsigned pong_pending : 1;   /* `pong` holds a pong to send once output drains */
    uint8_t pong_len;
    uint16_t close_code; /* code to report to the application */
    uint16_t hs_key_len;
    dfws_ws_pmd_t pmd; /* permessage-deflate agreed at the handshake (zero: none),
                                    switched on in the codec once the 101 is out */
};

/* Builds the codec configuration every WebSocket of `s` shares
 * (s->ws_config). */
void dfws_wsconn_config(dfws_server_t *s);
/* permessage-deflate counters of this process (zeros when it is off).
 * Written on the loop thread only; a read from another thread may be a
 * message behind. */
void dfws_wsconn_deflate_stats(dfws_ws_deflate_stats_t *st);

/* The protocol table of an upgraded connection (conn.h). */
extern const dfws_proto_t dfws_wsconn_proto;

/* Called by http1.c for an upgrade request `r` on `c`: validates the
 * handshake, creates the WebSocket state, makes it the connection's
 * protocol (dfws_conn_set_proto) and starts the application. Returns 0 when
 * the connection is now the WebSocket layer's (bytes after the request head
 * go to its data call, kept until the handshake is answered), or the HTTP
 * status HTTP/1 must answer (400, 426, 500, 503). */
int dfws_wsconn_start(dfws_conn_t *c, dfws_req_t *r);

/* A request's headers as the codec takes them (dfws_ws_header_t, r->nhdrs
 * of them, pointing into the request): in `stack` when `n` are enough, else
 * in a malloc'd array the caller frees (hs != stack). NULL: no memory. */
dfws_ws_header_t *dfws_wsconn_headers(const dfws_req_t *r, dfws_ws_header_t *stack, size_t n);

/* Routes the connection's events to `h` (called by the handler's owner
 * while the connection is in HANDSHAKE). */
void dfws_wsconn_set_handler(dfws_wsconn_t *wc, const dfws_ws_handler_t *h, void *ud);

/* Application side. Each returns 0 or a negative code (the connection is
 * closing or closed: the call did nothing). None of them calls back into
 * the handler for incoming data: frames that arrived before the accept are
 * fed from the next loop turn. */
int dfws_wsconn_accept(dfws_wsconn_t *wc, const char *subprotocol, size_t sublen,
                       const dfws_ws_header_t *headers, size_t nheaders);
/* Refuses the handshake with 403 (what daphne answers a refused
 * WebSocket), or with `status` (an HTTP error status, e.g. 503). */
int dfws_wsconn_reject(dfws_wsconn_t *wc);
int dfws_wsconn_reject_status(dfws_wsconn_t *wc, int status);
int dfws_wsconn_send(dfws_wsconn_t *wc, int binary, const char *data, size_t len);
int dfws_wsconn_close(dfws_wsconn_t *wc, int code, const char *reason, size_t len);
/* Bytes waiting to be written. */
size_t dfws_wsconn_write_pending(const dfws_wsconn_t *wc);
/* Flow control of incoming messages (the application's queue is full). */
void dfws_wsconn_pause_reading(dfws_wsconn_t *wc, int paused);
/* Graceful shutdown: close with `code`, 1001 (going away) or 1012 (service
 * restart: this worker is replaced). */
void dfws_wsconn_shutdown(dfws_wsconn_t *wc, int code);

#endif
