/* A request, as the application layer (asgi/, static.c, native.c) sees it,
 * whatever protocol carries it: method, target, headers, version, client
 * and server addresses, body, and a response to give. HTTP/1 (http1.c)
 * fills it and implements its response calls (dfws_req_ops_t); another
 * protocol could implement the same table.
 *
 * Lifetime: a request is refcounted because the application may outlive
 * its connection. The protocol holds one reference while it is attached
 * (r->conn set); dfws_req_detach() lets go of it when the response is
 * complete or the client left. Each user that keeps it takes its own.
 */
#ifndef DFWS_REQUEST_H
#define DFWS_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct dfws_server_s dfws_server_t;
typedef struct dfws_conn_s dfws_conn_t;
typedef struct dfws_req_s dfws_req_t;

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

/* Method numbers: dfws's own, equal to llhttp's (http1.c checks it at
 * compile time), so a parsed method needs no mapping. */
enum {
    DFWS_METHOD_DELETE = 0,
    DFWS_METHOD_GET = 1,
    DFWS_METHOD_HEAD = 2,
    DFWS_METHOD_POST = 3,
    DFWS_METHOD_PUT = 4,
    DFWS_METHOD_CONNECT = 5,
    DFWS_METHOD_OPTIONS = 6,
};
/* The name of a method number ("GET"), "UNKNOWN" for none dfws knows. */
const char *dfws_http_method_name(int method);

typedef struct dfws_hdr_s {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
} dfws_hdr_t;

/* The protocol's side of a request's response (see the dfws_req_* calls
 * below for what each does). */
typedef struct dfws_req_ops_s {
    int (*response_start)(dfws_req_t *r, int status, const char **err);
    int (*response_header)(dfws_req_t *r, const char *name, size_t nlen, const char *value,
                           size_t vlen, const char **err);
    int (*response_body)(dfws_req_t *r, const char *data, size_t len, int more, const char **err);
    void (*response_cancel)(dfws_req_t *r);
    void (*abort)(dfws_req_t *r, int status);
    void (*body_consumed)(dfws_req_t *r);
    void (*send_continue)(dfws_req_t *r);
    size_t (*write_pending)(const dfws_req_t *r);
} dfws_req_ops_t;

/* A response server/ writes itself (static.c): where its drain and detach
 * events go instead of the application's. */
typedef struct dfws_req_local_ops_s {
    void (*drain)(dfws_req_t *r);
    void (*detach)(dfws_req_t *r);
} dfws_req_local_ops_t;

/* The addresses of a request's connection, copied: a scope can then be
 * built after the connection is gone, or on another thread. */
typedef struct dfws_peer_s {
    char client_host[64]; /* the socket's peer, or the client a trusted proxy named */
    char server_host[46]; /* INET6_ADDRSTRLEN */
    uint16_t client_port, server_port;
    uint8_t has_client; /* 0: a UNIX socket with no proxy naming a client (None) */
    uint8_t scheme;     /* DFWS_FWD_SCHEME_*: what a trusted proxy said */
    uint8_t tls;        /* the connection is TLS: https/wss unless a proxy said */
} dfws_peer_t;

struct dfws_req_s {
    int refs;          /* one for the connection while attached, one for the app */
    dfws_conn_t *conn; /* NULL once detached (response complete or client gone) */
    dfws_server_t *server;
    const dfws_req_ops_t *ops; /* the protocol carrying it */
    void *app;                 /* application layer state; owned by asgi/ */
    void *local;               /* a response server/ writes itself (static.c), or NULL:
                             * its drain and detach go to local_ops, not to the app */
    const dfws_req_local_ops_t *local_ops;

    /* request, as received: bytes live in `head`, located by offsets */
    dfws_buf_t head;
    uint32_t method_len; /* method at offset 0 */
    uint32_t url_off, url_len;
    dfws_hdr_t *hdrs;
    uint32_t nhdrs, hdrs_cap;
    uint8_t http_major, http_minor;
    uint8_t method; /* DFWS_METHOD_*, or another number of the same numbering */

    unsigned keep_alive : 1; /* connection may be reused after this response */
    unsigned is_head : 1;
    unsigned expect_continue : 1;
    unsigned continue_sent : 1;
    unsigned upgrade : 1;
    unsigned body_done : 1;      /* whole body received (into `body`) */
    unsigned body_delivered : 1; /* the last http.request message was handed out */
    unsigned response_started : 1;
    unsigned response_done : 1;
    unsigned chunked : 1; /* response uses chunked transfer coding */
    unsigned resp_has_length : 1;
    unsigned no_body : 1;           /* HEAD, 1xx, 204, 304 */
    unsigned disconnected : 1;      /* the client went away before the response completed */
    unsigned app_waiting_body : 1;  /* asgi waits for body bytes: call ops->http_body */
    unsigned app_waiting_drain : 1; /* asgi waits for the write buffer to drain */
    unsigned head_written : 1;
    unsigned counted : 1; /* included in server->active_requests */
    unsigned resp_has_server : 1;
    unsigned resp_has_date : 1;
    unsigned app_fast : 1; /* asgi/: `app` is a Django fast-path job, not an ASGI cycle */

    dfws_buf_t body; /* received body bytes not yet handed to the app */
    uint64_t body_received;
    int status;
    uint64_t resp_length; /* Content-Length given by the app */
    uint64_t resp_sent;   /* body bytes sent */
    dfws_buf_t resp_head; /* response head being built */
    uint64_t start_ns;    /* uv_hrtime() at its first byte (access log duration) */
};

/* A new request of `s` on `c`, with the protocol's reference (refs 1).
 * NULL when out of memory. */
dfws_req_t *dfws_req_new(dfws_server_t *s, dfws_conn_t *c, const dfws_req_ops_t *ops);
/* Takes a reference for the caller; dfws_req_release drops it. */
void dfws_req_retain(dfws_req_t *r);
/* Drops a reference; the last one frees the request. */
void dfws_req_release(dfws_req_t *r);
/* (Detaching a request is the server's: dfws_server_detach, context.h.) */
/* Whether the request is still on its connection. */
static inline int dfws_req_attached(const dfws_req_t *r)
{
    return r->conn != NULL;
}

static inline const char *dfws_req_base(const dfws_req_t *r)
{
    return r->head.base;
}
/* The first header named `name` (any case), or NULL. */
const dfws_hdr_t *dfws_req_header(const dfws_req_t *r, const char *name, size_t nlen);
/* The same, as a pointer to its value (*vlen its length), or NULL. */
const char *dfws_req_header_value(const dfws_req_t *r, const char *name, size_t nlen, size_t *vlen);
/* Whether the request asks for a WebSocket upgrade. */
int dfws_req_is_websocket(const dfws_req_t *r);
/* The addresses the application reports (those a trusted proxy named, else
 * the socket's); the request must be attached. */
void dfws_req_peer(const dfws_req_t *r, dfws_peer_t *peer);

/* Hands out the buffered body: copies nothing, the caller must consume
 * `*len` bytes with dfws_req_body_consume before anything else runs.
 * *more is 0 when these bytes end the body. */
void dfws_req_body_peek(dfws_req_t *r, const char **data, size_t *len, int *more);
void dfws_req_body_consume(dfws_req_t *r);
/* Sends "100 Continue" if the client asked for it and it is still useful. */
static inline void dfws_req_continue(dfws_req_t *r)
{
    if (r->conn)
        r->ops->send_continue(r);
}

/* Response. Each returns 0, -EINVAL for a bad value (the message explains,
 * via `*err`), or -EPIPE when the request is detached (ignored by callers). */
static inline int dfws_req_response_start(dfws_req_t *r, int status, const char **err)
{
    return r->ops->response_start(r, status, err);
}
static inline int dfws_req_response_header(dfws_req_t *r, const char *name, size_t nlen,
                                           const char *value, size_t vlen, const char **err)
{
    return r->ops->response_header(r, name, nlen, value, vlen, err);
}
static inline int dfws_req_response_body(dfws_req_t *r, const char *data, size_t len, int more,
                                         const char **err)
{
    return r->ops->response_body(r, data, len, more, err);
}
/* Forgets a response whose head was not written yet (a header the
 * application gave was refused): it may start again, or be aborted with a
 * clean error response. No-op once the head is out. */
static inline void dfws_req_response_cancel(dfws_req_t *r)
{
    r->ops->response_cancel(r);
}
/* The application finished without completing the response: answer
 * `status` when nothing was sent yet, else close the connection. */
static inline void dfws_req_abort(dfws_req_t *r, int status)
{
    r->ops->abort(r, status);
}
/* Bytes waiting to be written on the request's connection (0 if detached). */
static inline size_t dfws_req_write_pending(const dfws_req_t *r)
{
    return r->conn ? r->ops->write_pending(r) : 0;
}

/* ---- HTTP syntax shared by every protocol and user ---------------------- */

/* Whether s[0..n) is an RFC 9110 token (header names): ASCII only, the same
 * in every locale. */
int dfws_http_token_valid(const char *s, size_t n);
/* Iterates the elements of a comma-separated header value (RFC 9110 5.6.1),
 * skipping empty elements and the whitespace around each. *pos starts at 0;
 * returns 1 with the next element in *elem / *elen, 0 at the end. */
int dfws_http_list_next(const char *v, size_t len, size_t *pos, const char **elem, size_t *elen);
/* Whether the list `v` holds `token` (any case). */
int dfws_http_list_has(const char *v, size_t len, const char *token);
/* Reason phrase of a status ("Not Found"; "Unknown" for others). */
const char *dfws_http_reason(int status);

#endif
