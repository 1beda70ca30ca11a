/* One client connection: its transport (the socket), its timer, the write
 * accounting, the addresses, and the protocol now speaking on it.
 *
 * Ownership rule for every struct in server/ that embeds libuv handles: the
 * struct is freed only after the close callback of EVERY embedded handle has
 * run (`open_handles` counts them down). Code never frees a connection
 * directly; it calls dfws_conn_close() and the last close callback frees it
 * (through `dealloc`, set by whoever allocated it: HTTP/1 embeds the
 * connection in its own state).
 *
 * The protocol (dfws_proto_t) gets the connection's events: HTTP/1
 * (http1.c) first, then, after an upgrade, the WebSocket layer (ws_conn.c),
 * which swaps itself in with dfws_conn_set_proto() -- as uvicorn swaps the
 * asyncio protocol of a transport. The connection calls nothing else above
 * it: this file includes no protocol header.
 */
#ifndef DFWS_CONN_H
#define DFWS_CONN_H

#include <arpa/inet.h>
#include <stdint.h>
#include <uv.h>

#include "transport.h"

typedef struct dfws_conn_s dfws_conn_t;
typedef struct dfws_server_s dfws_server_t;
typedef struct dfws_req_s dfws_req_t;

/* Timer kinds: what the one timer of a connection waits for. LINGER is the
 * connection's own (dfws_conn_finish); the others are the protocol's. */
enum {
    DFWS_TIMER_NONE,
    DFWS_TIMER_KEEPALIVE,
    DFWS_TIMER_HEADER,
    DFWS_TIMER_HTTP,
    DFWS_TIMER_LINGER,
    DFWS_TIMER_BODY
};

/* The protocol speaking on a connection. Each is called by conn.c only. */
typedef struct dfws_proto_s {
    const char *name;
    /* Bytes received (valid during the call only). */
    void (*data)(dfws_conn_t *c, const char *data, size_t len);
    /* The peer closed its side, or reading failed. */
    void (*eof)(dfws_conn_t *c);
    /* The timer of `kind` (set with dfws_conn_set_timer) fired. */
    void (*timer)(dfws_conn_t *c, int kind);
    /* Written data went out (dfws_conn_write_pending may be low now). */
    void (*drain)(dfws_conn_t *c);
    /* dfws_conn_close() started: let go of the request, tell the
     * application. The handles are not closed yet. */
    void (*close)(dfws_conn_t *c);
    /* The server stops (dfws_server_shutdown): close when idle, or go away
     * politely; `restart` as there. */
    void (*shutdown)(dfws_conn_t *c, int restart);
    /* Every handle is closed: free the protocol's state (may be NULL). */
    void (*free)(dfws_conn_t *c);
} dfws_proto_t;

/* The connections of one server, for shutdown and counting. */
typedef struct dfws_conn_list_s {
    dfws_conn_t *head;
    size_t n;
} dfws_conn_list_t;

struct dfws_conn_s {
    dfws_transport_t tr; /* the socket (transport.h): one of the two handles */
    uv_timer_t timer;
    uv_loop_t *loop;
    dfws_server_t *server; /* the protocols' shared state (context.h); opaque here */
    dfws_conn_list_t *list;
    dfws_conn_t *prev, *next;
    const dfws_proto_t *proto;
    void *proto_data;                /* the protocol's own state (WebSocket: dfws_wsconn_t) */
    void (*dealloc)(dfws_conn_t *c); /* frees the memory holding the connection */
    dfws_req_t *req;                 /* request being received or answered; NULL between requests */
    int open_handles;
    uint64_t deadline_ms; /* when the current timer_kind expires (uv_now clock) */
    uint64_t armed_ms;    /* when the uv timer will fire; 0 = not armed */
    uint8_t timer_kind;
    unsigned closing : 1;
    unsigned reading : 1;
    unsigned lingering : 1; /* response sent, write side shut, draining input */
    char client_host[INET6_ADDRSTRLEN];
    char server_host[INET6_ADDRSTRLEN];
    uint16_t client_port, server_port;
    /* what its last request said through trusted proxy headers (proxy.c) */
    unsigned fwd_client : 1; /* fwd_host/fwd_port name the client */
    uint8_t fwd_scheme;      /* DFWS_FWD_SCHEME_* */
    uint16_t fwd_port;
    char fwd_host[64];
};

#define DFWS_CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

/* Sets up a connection in `c` (zeroed memory of the protocol's making):
 * `c->tr` gets the listener's pending socket through `vt` (transport.h).
 * 0; or a negative libuv error, and then when c->tr.open is 0 nothing was
 * taken (the caller frees `c`, the pending socket still waits), else the
 * connection is closing and `dealloc` will free it. */
int dfws_conn_accept(dfws_conn_t *c, const dfws_transport_vt_t *vt, void *ctx, dfws_readbuf_t *rbuf,
                     uv_loop_t *loop, uv_stream_t *listener, int is_unix);
/* Opens `c->tr` on a connected socket fd as a plain transport (unit tests
 * build connections this way). 0 or a libuv error. */
int dfws_conn_open_fd(dfws_conn_t *c, uv_loop_t *loop, int fd, int is_unix);
/* Starts a connection whose transport is open: its timer, its addresses,
 * its place in `list`, and `proto` speaking on it (proto_data NULL). */
void dfws_conn_start(dfws_conn_t *c, dfws_conn_list_t *list, const dfws_proto_t *proto);
/* Hands the connection to another protocol (an upgrade). */
void dfws_conn_set_proto(dfws_conn_t *c, const dfws_proto_t *proto, void *data);
/* Starts closing; the connection is freed once its handles are closed. Any
 * attached request is detached as disconnected. Safe to call twice. */
void dfws_conn_close(dfws_conn_t *c);
/* Writes bytes, copying what the socket does not take at once. 0 or a
 * negative libuv error (the connection is then being closed). */
int dfws_conn_write(dfws_conn_t *c, const uv_buf_t *bufs, unsigned nbufs);
/* Shuts the write side once queued data is out and closes after the peer's
 * EOF or a short delay: the way to end a response with Connection: close. */
void dfws_conn_finish(dfws_conn_t *c);
void dfws_conn_set_timer(dfws_conn_t *c, int kind, double seconds);
void dfws_conn_read_start(dfws_conn_t *c);
void dfws_conn_read_stop(dfws_conn_t *c);
/* Bytes written and not handed to the kernel yet (the transport's count). */
static inline size_t dfws_conn_write_pending(const dfws_conn_t *c)
{
    return c->tr.write_pending;
}

#endif
