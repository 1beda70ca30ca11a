/* The server: one listening socket, its connections, on a given uv_loop_t
 * (uvloop's own loop: see ../DESIGN.md). Protocol code calls the application
 * through dfws_app_ops_t, which asgi/ implements; server/ never sees Python.
 */
#ifndef DFWS_SERVER_H
#define DFWS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "access_log.h"
#include "cli.h"
#include "proxy.h"
#include "transport.h"

typedef struct dfws_server_s dfws_server_t;
typedef struct dfws_conn_s dfws_conn_t;
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
    int listening;             /* listener open and accepting */
    const dfws_cli_t *cli;
    const dfws_app_ops_t *ops;
    void *ops_ud;
    dfws_conn_t *conns;        /* doubly linked list of open connections */
    size_t nconns;
    size_t active_requests;    /* requests whose response is not complete */
    size_t websockets;         /* open WebSocket connections */
    void *ws_config;           /* dfws_ws_config_t shared by every WebSocket */
    dfws_access_log_t access_log; /* lines of every connection (access_log.h) */
    dfws_proxy_allow_t proxy_allow; /* peers whose proxy headers count (proxy.h) */
    int shutting_down;         /* no keep-alive, close connections when idle */
    uint64_t date_ms;          /* uv_now() when `date` was formatted */
    char date[40];             /* "Sat, 21 Nov 2026 15:51:36 GMT" */
    char date_header[48];      /* "Date: <date>\r\n" */
    size_t date_header_len;
    char *server_header;       /* "Server: <name>\r\n", or NULL */
    size_t server_header_len;
    uint64_t requests_total;   /* requests whose header section was complete */
    uint64_t requests_limit;   /* on_requests_limit when requests_total reaches it; 0 = never */
    void (*on_requests_limit)(dfws_server_t *s);
    struct dfws_static_s *statics; /* static routes (static.c), or NULL */
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

/* Starts serving on the listening socket `fd` (ownership passes to the
 * server). `cli` and `ops` must outlive the server. Returns 0 or a negative
 * libuv error. */
int dfws_server_start(dfws_server_t *s, uv_loop_t *loop, const dfws_cli_t *cli, int fd,
                      int is_unix, const dfws_app_ops_t *ops, void *ops_ud);
/* Stops accepting; closes connections that have no request in progress and
 * makes the others close once their response is complete. WebSockets are
 * closed with 1001 (going away), or with 1012 (service restart) when
 * `restart`: this worker is being replaced and clients should reconnect at
 * once. A restart also keeps connections that were accepted but have not
 * sent a request yet: their client sends its first request on them and
 * would not retry it, as it retries on a reused keep-alive connection. */
void dfws_server_shutdown(dfws_server_t *s, int restart);
/* Counts one request (http1.c, at the end of its header section). */
void dfws_server_count_request(dfws_server_t *s);
/* Closes the listener and every connection. The handles finish closing (and
 * their memory is freed) in the loop's next iteration: the caller runs the
 * loop once more before closing it (dfws.runner does). */
void dfws_server_close(dfws_server_t *s);
/* The cached HTTP Date header value, refreshed at most once a second. */
const char *dfws_server_date(dfws_server_t *s);
/* The same as a whole header line ("Date: ...\r\n"); *len gets its length. */
const char *dfws_server_date_header(dfws_server_t *s, size_t *len);

#endif
