/* What every protocol of one server shares: configuration, the
 * application's entry points (dfws_app_ops_t, implemented by asgi/), the
 * counters, the access log, the cached Date header, the WebSocket codec
 * configuration. The protocols (http1.c, ws_conn.c) and the request
 * helpers read and update it; its lifecycle (listen, accept, shutdown,
 * close) is server.h's, which sits above them.
 */
#ifndef DFWS_CONTEXT_H
#define DFWS_CONTEXT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "access_log.h"
#include "cli.h"
#include "conn.h"
#include "proxy.h"
#include "route.h"
#include "transport.h"
#include "websocket.h"

typedef struct dfws_server_s dfws_server_t;
typedef struct dfws_req_s dfws_req_t;
typedef struct dfws_wsconn_s dfws_wsconn_t;

/* Calls from the protocol layer into the application layer. All run on the
 * loop thread, with or without the GIL (asgi/ takes it). */
typedef struct dfws_app_ops_s {
    /* A request's header section is complete: start the application. Returns
     * 0, or -1 when it could not be started (the server answers 500). */
    int (*http_request)(void *ud, dfws_req_t *req);
    /* Body bytes arrived or the body ended; called only while the application
     * waits in receive() (req->app_waiting_body). */
    void (*http_body)(void *ud, dfws_req_t *req);
    /* Outgoing data fell below the low-water mark; called only while the
     * application waits in send() (req->app_waiting_drain). */
    void (*http_drain)(void *ud, dfws_req_t *req);
    /* The request left its connection: response complete or client gone
     * (req->disconnected tells which). The application may still run. */
    void (*http_detach)(void *ud, dfws_req_t *req);
    /* A valid WebSocket upgrade request arrived (ws_conn.h): start the
     * application. Returns 0, or -1 (the server answers 500). */
    int (*ws_request)(void *ud, dfws_wsconn_t *wc);
    /* A complete message arrived (data valid only during the call). */
    void (*ws_message)(void *ud, dfws_wsconn_t *wc, int binary, const char *data, size_t len);
    /* The WebSocket is gone: close handshake done, error or client gone.
     * `code` is the close code to report in websocket.disconnect. After
     * this call the application must not use `wc` (it is freed later). */
    void (*ws_closed)(void *ud, dfws_wsconn_t *wc, int code);
    /* Outgoing data fell below the low-water mark (only while
     * wc->app_waiting_drain). */
    void (*ws_drain)(void *ud, dfws_wsconn_t *wc);
} dfws_app_ops_t;

struct dfws_server_s {
    uv_loop_t *loop;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } listener;
    int is_unix;
    int listening; /* listener open and accepting */
    const dfws_cli_t *cli;
    const dfws_app_ops_t *ops;
    void *ops_ud;
    dfws_conn_list_t conns;       /* open connections (conn.h) */
    size_t active_requests;       /* requests whose response is not complete */
    size_t websockets;            /* open WebSocket connections */
    dfws_ws_config_t ws_config;   /* codec configuration every WebSocket shares (ws_conn.c) */
    dfws_access_log_t access_log; /* lines of every connection (access_log.h) */
    dfws_proxy_conf_t proxy;      /* --proxy-headers and the peers whose headers count (proxy.h) */
    int shutting_down;            /* no keep-alive, close connections when idle */
    uint64_t date_ms;             /* uv_now() when `date` was formatted */
    char date[40];                /* "Sat, 21 Nov 2026 15:51:36 GMT" */
    char date_header[48];         /* "Date: <date>\r\n" */
    size_t date_header_len;
    char *server_header; /* "Server: <name>\r\n", or NULL */
    size_t server_header_len;
    uint64_t requests_total; /* requests whose header section was complete */
    uint64_t requests_limit; /* on_requests_limit when requests_total reaches it; 0 = never */
    void (*on_requests_limit)(dfws_server_t *s);
    struct dfws_static_s *statics; /* static routes (static.c), or NULL */
    dfws_routes_t routes;          /* WebSocket endpoints served in C (route.h) */
    /* How accepted sockets are carried (transport.h): NULL is plain TCP /
     * UNIX; a TLS listener sets its vtable and its shared context (the
     * SSL_CTX, owned by whoever set it) before the first accept. */
    const dfws_transport_vt_t *transport;
    void *transport_ctx;
    /* Receive buffer every connection of this server reads into: reads are
     * parsed before the callback returns, so idle connections hold no
     * receive memory; what must outlive it is copied (conn's `in`). */
    dfws_readbuf_t read_buf;
    char read_mem[64 * 1024];
    /* When no connection can be set up, the pending one is still accepted,
     * into this spare handle, and closed at once: libuv stops watching a
     * listener until uv_accept() takes its pending socket, so returning
     * without it would leave a worker that looks healthy and never accepts
     * again. A failure while the spare is still closing is taken up by its
     * close callback (spare_waiting). */
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } spare;
    unsigned spare_busy : 1;
    unsigned spare_waiting : 1;
};

/* The request leaves its connection (the one place a request is
 * detached): clears c->req when it is this request, marks it disconnected
 * when `gone` (the client left before the response completed), updates the
 * counters, tells the local response (static.c) or the application
 * (ops->http_detach), then drops the protocol's reference. */
void dfws_server_detach(dfws_req_t *r, int gone);
/* Counts one request (http1.c, at the end of its header section). */
void dfws_server_count_request(dfws_server_t *s);
/* The cached HTTP Date header value, refreshed at most once a second. */
const char *dfws_server_date(dfws_server_t *s);
/* The same as a whole header line ("Date: ...\r\n"); *len gets its length. */
const char *dfws_server_date_header(dfws_server_t *s, size_t *len);

#endif
