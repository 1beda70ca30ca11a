/* The plain transport: a TCP or UNIX stream socket, bytes as they are.
 *
 * Writes first try the socket directly (uv_try_write) while nothing is
 * queued, and copy only what it did not take into one write request: a
 * response that fits the socket buffer costs no allocation. */
#include "transport.h"

#include <stdlib.h>
#include <string.h>

typedef struct write_req_s {
    uv_write_t req;
    size_t len;
    char data[];
} write_req_t;

#define WRITE_REQ_OF(r) ((write_req_t *)((char *)(r)-offsetof(write_req_t, req)))

void dfws_transport_buf_get(dfws_transport_t *t, uv_buf_t *buf)
{
    dfws_readbuf_t *rb = t->rbuf;
    if (rb && !rb->busy) {
        rb->busy = 1;
        buf->base = rb->base;
        buf->len = rb->len;
        return;
    }
    /* No shared buffer, or a nested read while it is in use (cannot happen
     * on one loop thread; stay safe anyway). */
    buf->base = malloc(16 * 1024);
    buf->len = buf->base ? 16 * 1024 : 0;
}

void dfws_transport_buf_done(dfws_transport_t *t, const uv_buf_t *buf)
{
    dfws_readbuf_t *rb = t->rbuf;
    if (rb && buf->base == rb->base)
        rb->busy = 0;
    else
        free(buf->base);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    dfws_transport_buf_get(h->data, buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    dfws_transport_t *t = stream->data;
    if (nread > 0)
        t->ev->read(t->ud, buf->base, (size_t)nread);
    else if (nread < 0)
        t->ev->eof(t->ud, (int)nread);
    /* `t` is still there: its memory goes only after the close callback */
    dfws_transport_buf_done(t, buf);
}

int dfws_transport_stream_read_start(dfws_transport_t *t, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    if (t->reading || t->closing)
        return 0;
    int rc = uv_read_start(&t->h.stream, alloc_cb, read_cb);
    if (rc == 0)
        t->reading = 1;
    return rc;
}

void dfws_transport_stream_read_stop(dfws_transport_t *t)
{
    if (!t->reading)
        return;
    uv_read_stop(&t->h.stream);
    t->reading = 0;
}

static int plain_read_start(dfws_transport_t *t)
{
    return dfws_transport_stream_read_start(t, on_alloc, on_read);
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = WRITE_REQ_OF(req);
    dfws_transport_t *t = req->handle->data;
    t->write_pending -= w->len;
    free(w);
    t->ev->written(t->ud, status);
}

static int plain_write(dfws_transport_t *t, const uv_buf_t *bufs, unsigned nbufs)
{
    if (t->closing)
        return UV_EPIPE;
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    if (t->write_pending == 0) {
        int n = uv_try_write(&t->h.stream, bufs, nbufs);
        if (n >= 0)
            done = (size_t)n;
        else if (n != UV_EAGAIN)
            return n;
        if (done == total)
            return 0;
    }
    write_req_t *w = malloc(sizeof(*w) + (total - done));
    if (!w)
        return UV_ENOMEM;
    w->len = total - done;
    size_t skip = done, off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t l = bufs[i].len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(w->data + off, bufs[i].base + skip, l - skip);
        off += l - skip;
        skip = 0;
    }
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, &t->h.stream, &b, 1, on_write);
    if (rc) {
        free(w);
        return rc;
    }
    t->write_pending += w->len;
    return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    dfws_transport_t *t = req->data;
    free(req);
    if (status < 0)
        t->ev->written(t->ud, status);
}

static int plain_shutdown(dfws_transport_t *t)
{
    if (t->closing)
        return UV_EPIPE;
    uv_shutdown_t *sreq = malloc(sizeof(*sreq));
    if (!sreq)
        return UV_ENOMEM;
    sreq->data = t;
    int rc = uv_shutdown(sreq, &t->h.stream, on_shutdown);
    if (rc)
        free(sreq);
    return rc;
}

static void on_closed(uv_handle_t *h)
{
    dfws_transport_t *t = h->data;
    t->ev->closed(t->ud);
}

static void plain_close(dfws_transport_t *t)
{
    if (t->closing || !t->open)
        return;
    t->closing = 1;
    t->reading = 0;
    uv_close(&t->h.handle, on_closed);
}

static int plain_is_tls(const dfws_transport_t *t)
{
    (void)t;
    return 0;
}

static const char *plain_alpn(const dfws_transport_t *t)
{
    (void)t;
    return NULL;
}

static int init_handle(dfws_transport_t *t, uv_loop_t *loop, int is_unix)
{
    int rc = is_unix ? uv_pipe_init(loop, &t->h.pipe, 0) : uv_tcp_init(loop, &t->h.tcp);
    if (rc)
        return rc;
    t->h.handle.data = t;
    t->open = 1;
    t->is_unix = is_unix ? 1 : 0;
    if (!t->vt)
        t->vt = &dfws_transport_plain;
    return 0;
}

int dfws_transport_plain_accept(dfws_transport_t *t, uv_loop_t *loop, uv_stream_t *listener,
                                int is_unix)
{
    int rc = init_handle(t, loop, is_unix);
    if (rc)
        return rc;
    if ((rc = uv_accept(listener, &t->h.stream)))
        return rc;
    if (!is_unix)
        uv_tcp_nodelay(&t->h.tcp, 1);
    return 0;
}

int dfws_transport_plain_open(dfws_transport_t *t, uv_loop_t *loop, int fd, int is_unix)
{
    int rc = init_handle(t, loop, is_unix);
    if (rc)
        return rc;
    return is_unix ? uv_pipe_open(&t->h.pipe, fd) : uv_tcp_open(&t->h.tcp, fd);
}

int dfws_transport_addresses(const dfws_transport_t *t, struct sockaddr_storage *peer,
                             struct sockaddr_storage *local)
{
    /* each independently: one that cannot be had is AF_UNSPEC */
    int len = sizeof(*peer);
    peer->ss_family = local->ss_family = AF_UNSPEC;
    if (t->is_unix)
        return UV_EINVAL;
    if (uv_tcp_getpeername(&t->h.tcp, (struct sockaddr *)peer, &len))
        peer->ss_family = AF_UNSPEC;
    len = sizeof(*local);
    if (uv_tcp_getsockname(&t->h.tcp, (struct sockaddr *)local, &len))
        local->ss_family = AF_UNSPEC;
    return 0;
}

const dfws_transport_vt_t dfws_transport_plain = {
    .name = "tcp",
    .accept = dfws_transport_plain_accept,
    .read_start = plain_read_start,
    .read_stop = dfws_transport_stream_read_stop,
    .write = plain_write,
    .shutdown = plain_shutdown,
    .close = plain_close,
    .is_tls = plain_is_tls,
    .alpn = plain_alpn,
};
