/* Transports: what carries a connection's bytes (plain TCP or UNIX socket,
 * TLS). The connection (conn.c) never touches its socket but through this
 * seam; a transport knows nothing of connections or protocols.
 *
 * Who owns what
 *   - dfws_transport_t is embedded in its user (the connection): one
 *     allocation per connection, as before. It embeds the socket handle `h`,
 *     owned by the transport: only the transport's functions start, stop,
 *     write to and close it.
 *   - `impl` is an implementation's own per-connection state (TLS: the SSL
 *     object and its buffers), allocated in accept() and freed by the
 *     implementation before it calls ev->closed. NULL for plain sockets.
 *   - `ctx` is the listener's shared state (TLS: the SSL_CTX), owned by
 *     whoever set dfws_server_t's transport_ctx; it outlives every
 *     connection.
 *   - `rbuf` is a receive buffer shared by every transport of one loop,
 *     owned by the server (or NULL: the transport allocates). A transport
 *     uses it only inside its read callback, and only while `busy` is 0.
 *
 * Upward, a transport calls only its `ev` table, with `ud` (the connection):
 *   read(ud, data, len)  plaintext bytes, valid during the call only
 *   eof(ud, err)         the peer closed (UV_EOF) or reading failed
 *   written(ud, status)  queued output was handed to the kernel (status 0;
 *                        write_pending is already updated) or failed (< 0:
 *                        the user closes the connection); also reports an
 *                        asynchronous shutdown failure
 *   closed(ud)           close() finished: the handle is closed and `impl`
 *                        freed; the user may free the memory holding `t`
 * No event is delivered from inside a call made by the user (write() never
 * calls written(), close() never calls closed() synchronously).
 *
 * Write accounting: `write_pending` counts bytes accepted by write() and not
 * handed to the kernel yet (the TLS transport counts the plaintext of a
 * write until its last ciphertext byte is handed over); the connection
 * reads it for its high/low-water marks.
 *
 * A wrapping transport (TLS) plugs in with a vtable of its own:
 *   accept     dfws_transport_plain_accept() for the socket, then its own
 *              set-up (t->impl from t->ctx); on failure after the socket
 *              was accepted it returns < 0 with t->open set, and the caller
 *              closes it with close()
 *   read_start uv_read_start() on t->h.stream with its own callbacks; reads
 *              cipher text (into t->rbuf when free), feeds plaintext up
 *              through t->ev->read; the handshake runs inside it, unseen
 *   write      takes plaintext, encrypts, queues cipher text on t->h.stream,
 *              keeps write_pending, reports completion with ev->written
 *   shutdown   sends close_notify, then shuts the socket's write side
 *   close      frees its state once the handle is closed, then ev->closed
 *   is_tls/alpn what the scope and the protocol choice need to know
 * The server picks the vtable per listener (dfws_server_t.transport,
 * .transport_ctx); every connection accepted there gets it.
 */
#ifndef DFWS_TRANSPORT_H
#define DFWS_TRANSPORT_H

#include <stddef.h>
#include <uv.h>

typedef struct dfws_transport_s dfws_transport_t;

typedef struct dfws_readbuf_s {
    char *base;
    size_t len;
    int busy;
} dfws_readbuf_t;

typedef struct dfws_transport_ev_s {
    void (*read)(void *ud, const char *data, size_t len);
    void (*eof)(void *ud, int err);
    void (*written)(void *ud, int status);
    void (*closed)(void *ud);
} dfws_transport_ev_t;

typedef struct dfws_transport_vt_s {
    const char *name; /* "tcp", "tls": for logs */
    /* Takes the listener's pending socket into `t` (t->ev, ud, rbuf and ctx
     * are set by the caller). 0, or a negative libuv error: with t->open 0
     * nothing was taken (the pending socket is still waiting) and nothing
     * is to be closed; with t->open 1 the caller must close(). */
    int (*accept)(dfws_transport_t *t, uv_loop_t *loop, uv_stream_t *listener, int is_unix);
    /* Starts or stops delivering ev->read / ev->eof. 0 or a negative error. */
    int (*read_start)(dfws_transport_t *t);
    void (*read_stop)(dfws_transport_t *t);
    /* Writes plaintext, taking a copy of what cannot go out at once: the
     * buffers may be reused when it returns. 0, or a negative libuv error
     * (nothing more can be written; the caller closes). */
    int (*write)(dfws_transport_t *t, const uv_buf_t *bufs, unsigned nbufs);
    /* Shuts the write side once queued data is out. 0 or a negative error
     * (synchronous failure); a later failure comes as ev->written(< 0). */
    int (*shutdown)(dfws_transport_t *t);
    /* Closes; ev->closed follows from the loop. Once only. */
    void (*close)(dfws_transport_t *t);
    /* 1 when the bytes are encrypted (the scope's scheme: https, wss). */
    int (*is_tls)(const dfws_transport_t *t);
    /* The protocol agreed by ALPN ("http/1.1", "h2"), or NULL. */
    const char *(*alpn)(const dfws_transport_t *t);
} dfws_transport_vt_t;

struct dfws_transport_s {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h; /* h.handle.data == t */
    const dfws_transport_vt_t *vt;
    const dfws_transport_ev_t *ev;
    void *ud;             /* the user's, passed to every ev call */
    void *ctx;            /* listener's shared state (see above) */
    void *impl;           /* implementation's per-connection state */
    dfws_readbuf_t *rbuf; /* shared receive buffer, or NULL */
    size_t write_pending; /* bytes queued, not handed to the kernel */
    unsigned open : 1;    /* `h` initialised: close() is due */
    unsigned is_unix : 1;
    unsigned reading : 1;
    unsigned closing : 1;
};

/* Plain TCP and UNIX sockets (transport_tcp.c). */
extern const dfws_transport_vt_t dfws_transport_plain;

/* The plain transport's steps, for wrapping transports to reuse on their
 * socket (`h`): accept, and the receive buffer choice of a read callback. */
int dfws_transport_plain_accept(dfws_transport_t *t, uv_loop_t *loop, uv_stream_t *listener,
                                int is_unix);
/* Adopts an open socket fd (tests, inherited connections) as a plain
 * transport. 0 or a negative libuv error (t->open tells whether to close). */
int dfws_transport_plain_open(dfws_transport_t *t, uv_loop_t *loop, int fd, int is_unix);
/* A buffer for uv_read_start's alloc callback: the shared one when free,
 * else a malloc'd one; dfws_transport_buf_done gives it back. */
void dfws_transport_buf_get(dfws_transport_t *t, uv_buf_t *buf);
/* Reading on the transport's stream handle with the implementation's own
 * callbacks (plain and TLS share the bookkeeping: reading, closing). */
int dfws_transport_stream_read_start(dfws_transport_t *t, uv_alloc_cb alloc_cb, uv_read_cb read_cb);
void dfws_transport_stream_read_stop(dfws_transport_t *t);
void dfws_transport_buf_done(dfws_transport_t *t, const uv_buf_t *buf);
/* Local and peer addresses of a TCP transport (0 or a negative error). */
int dfws_transport_addresses(const dfws_transport_t *t, struct sockaddr_storage *peer,
                             struct sockaddr_storage *local);

static inline int dfws_transport_read_start(dfws_transport_t *t)
{
    return t->vt->read_start(t);
}
static inline void dfws_transport_read_stop(dfws_transport_t *t)
{
    t->vt->read_stop(t);
}
static inline int dfws_transport_write(dfws_transport_t *t, const uv_buf_t *bufs, unsigned n)
{
    return t->vt->write(t, bufs, n);
}
static inline int dfws_transport_shutdown(dfws_transport_t *t)
{
    return t->vt->shutdown(t);
}
static inline void dfws_transport_close(dfws_transport_t *t)
{
    t->vt->close(t);
}
static inline int dfws_transport_is_tls(const dfws_transport_t *t)
{
    return t->vt->is_tls(t);
}
static inline const char *dfws_transport_alpn(const dfws_transport_t *t)
{
    return t->vt->alpn(t);
}

#endif
