/* The TLS transport: the plain socket underneath (dfws_transport_plain's
 * accept), the sans-I/O engine of tls.c on top. The connection above sees
 * plaintext only; the handshake runs inside the read callback, unseen.
 *
 * Reading: ciphertext lands in the server's shared receive buffer, is
 * copied into the engine, and the plaintext comes back into that same
 * buffer, one ev->read per decrypted piece. Everything one socket read
 * made decryptable is delivered even if the connection stops reading
 * half-way, as the plain transport hands over its whole read in one call:
 * the overshoot is bounded the same way (one read), and no plaintext is
 * ever left inside the engine, so read_start needs no socket event to
 * resume and delivers nothing from inside the user's call.
 *
 * Writing: plaintext is encrypted into the engine's output buffer; the
 * socket gets it straight from there (uv_try_write), and what it does not
 * take at once stays in that buffer, taken out of the engine without a copy
 * for one uv_write. write_pending counts the plaintext the connection wrote
 * (its high/low-water marks are about what the application sent), held
 * until the last byte of its ciphertext is handed to the kernel.
 *
 * impl is the engine (dfws_tls_t), ctx the listener's dfws_tls_ctx_t. */
#include "tls.h"
#include "log.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>

typedef struct tls_write_s {
    uv_write_t req;
    size_t plain; /* its share of write_pending */
    void *owner;  /* the ciphertext buffer (dfws_tls_out_release), or NULL */
} tls_write_t;

#define TLS_WRITE_OF(r) ((tls_write_t *)((char *)(r)-offsetof(tls_write_t, req)))

static void on_write(uv_write_t *req, int status)
{
    tls_write_t *w = TLS_WRITE_OF(req);
    dfws_transport_t *t = req->handle->data;
    t->write_pending -= w->plain;
    dfws_tls_out_release(w->owner);
    free(w);
    t->ev->written(t->ud, status);
}

/* Sends the ciphertext the engine has for the peer, `plain` bytes of the
 * connection's in it. 0 or a negative libuv error. */
static int flush(dfws_transport_t *t, size_t plain)
{
    const char *data;
    size_t len = dfws_tls_out(t->impl, &data), done = 0;
    if (!len)
        return 0;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(&t->h.stream, &b, 1); /* UV_EAGAIN while writes are queued */
    if (n >= 0)
        done = (size_t)n;
    else if (n != UV_EAGAIN)
        return n;
    if (done == len) {
        dfws_tls_out_clear(t->impl);
        return 0;
    }
    tls_write_t *w = malloc(sizeof(*w));
    char *owned;
    size_t owned_len;
    void *owner = w ? dfws_tls_out_take(t->impl, &owned, &owned_len) : NULL;
    if (!owner) {
        free(w);
        return UV_ENOMEM;
    }
    w->plain = plain;
    w->owner = owner;
    b = uv_buf_init(owned + done, (unsigned)(owned_len - done));
    int rc = uv_write(&w->req, &t->h.stream, &b, 1, on_write);
    if (rc) {
        dfws_tls_out_release(owner);
        free(w);
        return rc;
    }
    t->write_pending += plain;
    return 0;
}

static void log_failure(dfws_transport_t *t, const char *what)
{
    if (!dfws_log_enabled(DFWS_LOG_DEBUG))
        return;
    struct sockaddr_storage peer, local;
    char host[64] = "unix socket";
    int port = 0;
    if (!dfws_transport_addresses(t, &peer, &local)) {
        if (peer.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&peer, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
        } else if (peer.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&peer, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
        }
    }
    dfws_log_debug("%s:%d: TLS %s failed: %s", host, port, what, dfws_tls_error(t->impl));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    dfws_transport_buf_get(h->data, buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    dfws_transport_t *t = stream->data;
    dfws_tls_t *e = t->impl;
    if (nread < 0) {
        t->ev->eof(t->ud, (int)nread);
    } else if (nread > 0 && dfws_tls_shutdown_sent(e)) {
        /* close_notify is sent: the connection only drains until EOF, and
         * discards; no need to decrypt */
    } else if (nread > 0 && dfws_tls_feed(e, buf->base, (size_t)nread)) {
        t->ev->eof(t->ud, UV_ENOMEM);
    } else if (nread > 0) {
        while (!t->closing) {
            long got = dfws_tls_read(e, buf->base, buf->len);
            int rc = flush(t, 0); /* handshake messages, tickets, alerts */
            if (rc < 0) {
                t->ev->eof(t->ud, rc);
                break;
            }
            if (got > 0) {
                t->ev->read(t->ud, buf->base, (size_t)got);
                continue;
            }
            if (got == DFWS_TLS_EOF) {
                t->ev->eof(t->ud, UV_EOF); /* close_notify */
            } else if (got == DFWS_TLS_ERROR) {
                log_failure(t, dfws_tls_established(e) ? "record" : "handshake");
                t->ev->eof(t->ud, UV_EPROTO);
            }
            break;
        }
    }
    dfws_transport_buf_done(t, buf);
}

static int tls_accept(dfws_transport_t *t, uv_loop_t *loop, uv_stream_t *listener, int is_unix)
{
    int rc = dfws_transport_plain_accept(t, loop, listener, is_unix);
    if (rc)
        return rc;
    t->vt = &dfws_transport_tls; /* the plain accept may have set its own */
    t->impl = dfws_tls_new(t->ctx);
    return t->impl ? 0 : UV_ENOMEM;
}

static int tls_read_start(dfws_transport_t *t)
{
    return dfws_transport_stream_read_start(t, on_alloc, on_read);
}

static int tls_write(dfws_transport_t *t, const uv_buf_t *bufs, unsigned nbufs)
{
    if (t->closing)
        return UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    if (dfws_tls_write(t->impl, bufs, nbufs)) {
        log_failure(t, "write");
        return UV_EPROTO;
    }
    return flush(t, total);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    dfws_transport_t *t = req->data;
    free(req);
    if (status < 0)
        t->ev->written(t->ud, status);
}

static int tls_shutdown(dfws_transport_t *t)
{
    if (t->closing)
        return UV_EPIPE;
    dfws_tls_shutdown(t->impl); /* close_notify goes out before the FIN */
    int rc = flush(t, 0);
    if (rc)
        return rc;
    uv_shutdown_t *sreq = malloc(sizeof(*sreq));
    if (!sreq)
        return UV_ENOMEM;
    sreq->data = t;
    rc = uv_shutdown(sreq, &t->h.stream, on_shutdown);
    if (rc)
        free(sreq);
    return rc;
}

static void on_closed(uv_handle_t *h)
{
    dfws_transport_t *t = h->data;
    dfws_tls_free(t->impl);
    t->impl = NULL;
    t->ev->closed(t->ud);
}

static void tls_close(dfws_transport_t *t)
{
    if (t->closing || !t->open)
        return;
    t->closing = 1;
    t->reading = 0;
    if (t->impl && !dfws_tls_shutdown_sent(t->impl) && !t->h.stream.write_queue_size) {
        /* best effort, never queued: the peer learns the close was ours */
        const char *data;
        dfws_tls_shutdown(t->impl);
        size_t len = dfws_tls_out(t->impl, &data);
        if (len) {
            uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
            (void)uv_try_write(&t->h.stream, &b, 1);
        }
    }
    uv_close(&t->h.handle, on_closed);
}

static int tls_is_tls(const dfws_transport_t *t)
{
    (void)t;
    return 1;
}

static const char *tls_alpn(const dfws_transport_t *t)
{
    size_t len = 0;
    const char *p = t->impl ? dfws_tls_alpn(t->impl, &len) : "";
    return len == 8 && !memcmp(p, "http/1.1", 8) ? "http/1.1" : NULL; /* the only one offered */
}

const dfws_transport_vt_t dfws_transport_tls = {
    .name = "tls",
    .accept = tls_accept,
    .read_start = tls_read_start,
    .read_stop = dfws_transport_stream_read_stop,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .is_tls = tls_is_tls,
    .alpn = tls_alpn,
};
