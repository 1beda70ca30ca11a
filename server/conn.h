/* One client connection.
 *
 * Ownership rule for every struct in server/ that embeds libuv handles: the
 * struct is freed only after the close callback of EVERY embedded handle has
 * run (`open_handles` counts them down). Code never frees a connection
 * directly; it calls dfws_conn_close() and the last close callback frees it.
 *
 * A connection speaks HTTP/1.1 (http1.c) until an upgrade hands it to the
 * WebSocket layer. Its current request, if any, is a separately refcounted
 * dfws_req_t because the application may outlive the connection.
 */
#ifndef DFWS_CONN_H
#define DFWS_CONN_H

#include <arpa/inet.h>
#include <llhttp.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "server.h"
#include "transport.h"

enum { DFWS_TIMER_NONE, DFWS_TIMER_KEEPALIVE, DFWS_TIMER_HEADER, DFWS_TIMER_HTTP,
       DFWS_TIMER_LINGER, DFWS_TIMER_BODY };

typedef struct dfws_hdr_s {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
} dfws_hdr_t;

struct dfws_req_s {
    int refs;               /* one for the connection while attached, one for the app */
    dfws_conn_t *conn;      /* NULL once detached (response complete or client gone) */
    dfws_server_t *server;
    void *app;              /* application layer state; owned by asgi/ */
    void *local;            /* a response server/ writes itself (static.c), or NULL:
                             * its drain and detach go to static.c, not to the app */

    /* request, as received: bytes live in `head`, located by offsets */
    dfws_buf_t head;
    uint32_t method_len;    /* method at offset 0 */
    uint32_t url_off, url_len;
    dfws_hdr_t *hdrs;
    uint32_t nhdrs, hdrs_cap;
    uint8_t http_major, http_minor;
    uint8_t method;         /* llhttp_method_t */

    unsigned keep_alive : 1;        /* connection may be reused after this response */
    unsigned is_head : 1;
    unsigned expect_continue : 1;
    unsigned continue_sent : 1;
    unsigned upgrade : 1;
    unsigned body_done : 1;         /* whole body received (into `body`) */
    unsigned body_delivered : 1;    /* the last http.request message was handed out */
    unsigned response_started : 1;
    unsigned response_done : 1;
    unsigned chunked : 1;           /* response uses chunked transfer coding */
    unsigned resp_has_length : 1;
    unsigned no_body : 1;           /* HEAD, 1xx, 204, 304 */
    unsigned disconnected : 1;      /* the client went away before the response completed */
    unsigned app_waiting_body : 1;  /* asgi waits for body bytes: call ops->http_body */
    unsigned app_waiting_drain : 1; /* asgi waits for the write buffer to drain */
    unsigned head_written : 1;
    unsigned counted : 1;           /* included in server->active_requests */
    unsigned resp_has_server : 1;
    unsigned resp_has_date : 1;
    unsigned app_fast : 1;          /* asgi/: `app` is a Django fast-path job, not an ASGI cycle */

    dfws_buf_t body;                /* received body bytes not yet handed to the app */
    uint64_t body_received;
    int status;
    uint64_t resp_length;           /* Content-Length given by the app */
    uint64_t resp_sent;             /* body bytes sent */
    dfws_buf_t resp_head;           /* response head being built */
    uint64_t start_ns;              /* uv_hrtime() at its first byte (access log duration) */
};

struct dfws_conn_s {
    dfws_transport_t tr;    /* the socket (transport.h): one of the two handles */
    uv_timer_t timer;
    dfws_server_t *server;
    dfws_conn_t *prev, *next;
    llhttp_t parser;
    dfws_req_t *req;        /* request being parsed or answered; NULL between requests */
    dfws_buf_t in;          /* received bytes not parsed yet (parser paused) */
    size_t head_bytes;      /* bytes of the current request head before this read, for the limit */
    const char *head_mark;  /* where head bytes start counting in the data being parsed */
    const char *feed_end;   /* end of the data being parsed */
    int open_handles;
    uint64_t deadline_ms;   /* when the current timer_kind expires (uv_now clock) */
    uint64_t armed_ms;      /* when the uv timer will fire; 0 = not armed */
    uint8_t timer_kind;
    uint8_t hstate;         /* header parsing: 0 none, 1 in a name, 2 in a value, 3 after a
                             * value's line ended */
    int error_status;       /* status to answer when the parser stops with an error */
    unsigned closing : 1;
    unsigned reading : 1;
    unsigned paused : 1;        /* parser paused after a complete request */
    unsigned lingering : 1;     /* response sent, write side shut, draining input */
    unsigned upgraded : 1;      /* handed to the WebSocket layer */
    unsigned processing : 1;    /* inside dfws_http1_process: do not re-enter */
    unsigned in_head : 1;       /* between a request's first byte and its headers' end */
    unsigned proxy_pending : 1; /* --proxy-protocol: its header has not been read yet */
    void *ws;                   /* WebSocket layer state once upgraded */
    char client_host[INET6_ADDRSTRLEN];
    char server_host[INET6_ADDRSTRLEN];
    uint16_t client_port, server_port;
    /* what its last request said through trusted proxy headers (proxy.c) */
    unsigned fwd_client : 1;    /* fwd_host/fwd_port name the client */
    uint8_t fwd_scheme;         /* DFWS_FWD_SCHEME_* */
    uint16_t fwd_port;
    char fwd_host[64];
};

#define DFWS_CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr) - offsetof(type, field)))

/* Accepts a pending connection on the server's listener through the
 * server's transport. 0 (accepted, or taken and being closed), or a
 * negative libuv error when the pending socket could not be taken: the
 * caller must take it some other way (server.c refuses it). */
int dfws_conn_accept(dfws_server_t *s);
/* Starts a connection whose transport `c->tr` is open (accept, tests):
 * timer, addresses, list of the server, HTTP/1, reading. */
void dfws_conn_start(dfws_conn_t *c);
/* Opens `c->tr` on a connected socket fd as a plain transport wired to the
 * connection (unit tests build connections by hand). 0 or a libuv error. */
int dfws_conn_open_fd(dfws_conn_t *c, int fd, int is_unix);
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

/* Output buffer marks: send() waits above HIGH until below LOW. */
#define DFWS_WRITE_HIGH (256 * 1024)
#define DFWS_WRITE_LOW (64 * 1024)
/* Received body bytes buffered before reading stops. */
#define DFWS_BODY_HIGH (256 * 1024)
/* Header fields in one request; more → 431. Like Apache's and gunicorn's
 * default: browsers send about 20, proxies add a few. */
#define DFWS_MAX_HEADERS 100
/* A request body must arrive at this average rate (bytes/s) once
 * --header-timeout seconds of credit are spent: a client trickling its body
 * cannot hold a connection (and the application waiting on it) forever. */
#define DFWS_BODY_MIN_RATE 500

#endif
