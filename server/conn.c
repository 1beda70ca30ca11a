#include "conn.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "static.h"
#include "tls.h"
#include "ws_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void on_timer_cb(uv_timer_t *t);

/* One read buffer for the whole loop: reads are parsed before the callback
 * returns, so idle connections hold no receive memory. What must outlive the
 * callback is copied into the connection's `in` buffer. */
static char read_buf[64 * 1024];
static int read_buf_busy;

typedef struct write_req_s {
    uv_write_t req;
    size_t len;         /* bytes it accounts for in write_pending: what the protocol
                         * wrote (plaintext on a TLS connection) */
    void *tls_buf;      /* ciphertext owned by tls.c (dfws_tls_out_take), or NULL: data[] */
    char data[];
} write_req_t;

static int tls_send(dfws_conn_t *c, size_t plain);

static void on_handle_closed(uv_handle_t *h)
{
    dfws_conn_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    dfws_wsconn_free(c);
    dfws_buf_free(&c->in);
    dfws_tls_free(c->tls);
    free(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    if (read_buf_busy) {
        /* A nested read on another connection while the shared buffer is in
         * use cannot happen on one loop thread; stay safe anyway. */
        buf->base = malloc(16 * 1024);
        buf->len = buf->base ? 16 * 1024 : 0;
        return;
    }
    read_buf_busy = 1;
    buf->base = read_buf;
    buf->len = sizeof(read_buf);
}

static void deliver(dfws_conn_t *c, const char *data, size_t len)
{
    if (c->lingering)
        ; /* draining input before close: discard */
    else if (c->upgraded)
        dfws_wsconn_on_data(c, data, len);
    else
        dfws_http1_on_data(c, data, len);
}

static void deliver_eof(dfws_conn_t *c)
{
    if (c->lingering || c->closing)
        dfws_conn_close(c);
    else if (c->upgraded)
        dfws_wsconn_on_eof(c);
    else
        dfws_http1_on_eof(c);
}

/* Ciphertext arrived on a TLS connection: decrypt all of it and hand the
 * plaintext up, reusing the read buffer (its ciphertext was copied into the
 * engine). Everything decryptable is delivered even when the protocol
 * stops reading half-way, as a plain read hands over its whole chunk: no
 * plaintext stays inside the engine, so resuming needs no socket event. */
static void tls_on_read(dfws_conn_t *c, char *buf, size_t cap, size_t n)
{
    dfws_tls_t *t = c->tls;
    if (c->lingering)
        return; /* close_notify is sent; what follows is discarded */
    if (dfws_tls_feed(t, buf, n)) {
        dfws_conn_close(c);
        return;
    }
    while (!c->closing) {
        int was_established = dfws_tls_established(t);
        long got = dfws_tls_read(t, buf, cap);
        if (tls_send(c, 0)) /* handshake messages, tickets, alerts */
            return;
        if (!was_established && dfws_tls_established(t)) {
            size_t alen;
            const char *alpn = dfws_tls_alpn(t, &alen);
            dfws_log_debug("%s:%u: TLS established (%s, ALPN %.*s)", c->client_host,
                           c->client_port, dfws_tls_version(t), (int)alen, alen ? alpn : "none");
        }
        if (got > 0) {
            deliver(c, buf, (size_t)got);
            continue;
        }
        if (got == DFWS_TLS_EOF) {
            deliver_eof(c);
        } else if (got == DFWS_TLS_ERROR) {
            dfws_log_debug("%s:%u: TLS %s failed: %s", c->client_host, c->client_port,
                           dfws_tls_established(t) ? "record" : "handshake", dfws_tls_error(t));
            dfws_conn_close(c);
        }
        return;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    dfws_conn_t *c = stream->data;
    if (nread > 0) {
        if (dfws_metrics)
            dfws_metrics_add(&dfws_metrics->bytes_in, (uint64_t)nread);
        if (c->tls)
            tls_on_read(c, buf->base, buf->len, (size_t)nread);
        else
            deliver(c, buf->base, (size_t)nread);
    } else if (nread < 0) {
        deliver_eof(c);
    }
    if (buf->base == read_buf)
        read_buf_busy = 0;
    else
        free(buf->base);
}

void dfws_conn_read_start(dfws_conn_t *c)
{
    if (c->reading || c->closing)
        return;
    if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
        c->reading = 1;
}

void dfws_conn_read_stop(dfws_conn_t *c)
{
    if (!c->reading)
        return;
    uv_read_stop(&c->h.stream);
    c->reading = 0;
}

/* One uv timer per connection serves every timeout (header, keep-alive,
 * HTTP, WebSocket). Changing the timeout does not touch libuv's timer heap
 * unless the new deadline is earlier than the armed one: a request usually
 * moves it later, and the timer re-arms itself when it fires early. That
 * keeps timer work off the per-request path. */
static void arm(dfws_conn_t *c, uint64_t at)
{
    uint64_t now = uv_now(c->server->loop);
    c->armed_ms = at;
    uv_timer_start(&c->timer, on_timer_cb, at > now ? at - now : 0, 0);
}

static void on_timer_cb(uv_timer_t *t)
{
    dfws_conn_t *c = t->data;
    uint64_t now = uv_now(c->server->loop);
    c->armed_ms = 0;
    if (c->timer_kind == DFWS_TIMER_NONE)
        return;
    if (now < c->deadline_ms) {
        arm(c, c->deadline_ms);
        return;
    }
    int kind = c->timer_kind;
    c->timer_kind = DFWS_TIMER_NONE;
    if (kind == DFWS_TIMER_LINGER) {
        dfws_conn_close(c);
        return;
    }
    if (c->upgraded)
        dfws_wsconn_on_timer(c);
    else
        dfws_http1_on_timer(c, kind);
}

void dfws_conn_set_timer(dfws_conn_t *c, int kind, double seconds)
{
    if (c->closing)
        return;
    if (kind == DFWS_TIMER_NONE || seconds <= 0) {
        c->timer_kind = DFWS_TIMER_NONE;
        return;
    }
    uint64_t ms = (uint64_t)(seconds * 1000.0);
    c->timer_kind = (uint8_t)kind;
    c->deadline_ms = uv_now(c->server->loop) + (ms ? ms : 1);
    if (!c->armed_ms || c->deadline_ms < c->armed_ms)
        arm(c, c->deadline_ms);
}

/* host text and port of an IPv4/IPv6 address (left untouched otherwise) */
static void address_text(const struct sockaddr_storage *ss, char *host, size_t hostlen,
                         uint16_t *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, host, hostlen);
        *port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, host, hostlen);
        *port = ntohs(a->sin6_port);
    }
}

static void fill_addresses(dfws_conn_t *c)
{
    struct sockaddr_storage ss;
    int len;

    if (c->server->is_unix)
        return;
    len = sizeof(ss);
    if (!uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len))
        address_text(&ss, c->client_host, sizeof(c->client_host), &c->client_port);
    len = sizeof(ss);
    if (!uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len))
        address_text(&ss, c->server_host, sizeof(c->server_host), &c->server_port);
}

/* When no connection can be set up, the pending one is still accepted, into
 * this spare handle, and closed at once: libuv stops watching a listener
 * until uv_accept() takes its pending socket, so returning without it would
 * leave a worker that looks healthy and never accepts again. One listener
 * per process, one spare; a failure while the spare is still closing is
 * taken up by its close callback. */
static union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_stream_t stream;
    uv_handle_t handle;
} spare;
static int spare_busy;
static dfws_server_t *spare_waiting; /* a listener whose pending socket waits for the spare */

static void on_spare_closed(uv_handle_t *h)
{
    (void)h;
    spare_busy = 0;
    dfws_server_t *s = spare_waiting;
    spare_waiting = NULL;
    if (s && s->listening)
        dfws_conn_accept(s);
}

static void refuse(dfws_server_t *s, const char *why)
{
    if (spare_busy) {
        spare_waiting = s;
        return;
    }
    if (s->is_unix ? uv_pipe_init(s->loop, &spare.pipe, 0) : uv_tcp_init(s->loop, &spare.tcp))
        return; /* cannot happen: neither allocates */
    spare_busy = 1;
    if (uv_accept(&s->listener.stream, &spare.stream) == 0)
        dfws_log_error("connection refused: %s", why);
    uv_close(&spare.handle, on_spare_closed);
}

void dfws_conn_accept(dfws_server_t *s)
{
    dfws_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        refuse(s, "out of memory");
        return;
    }
    c->server = s;
    int rc = s->is_unix ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp);
    if (rc) {
        free(c);
        refuse(s, uv_strerror(rc));
        return;
    }
    c->h.handle.data = c;
    c->open_handles = 1;
    if (uv_accept(&s->listener.stream, &c->h.stream)) {
        c->closing = 1;
        uv_close(&c->h.handle, on_handle_closed);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    if (s->tls && !(c->tls = dfws_tls_new(s->tls))) {
        dfws_log_error("connection refused: out of memory");
        c->closing = 1;
        uv_close(&c->h.handle, on_handle_closed);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        return;
    }
    if (!s->is_unix)
        uv_tcp_nodelay(&c->h.tcp, 1);
    fill_addresses(c);

    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;

    dfws_http1_init(c);
    dfws_conn_set_timer(c, DFWS_TIMER_HEADER, s->cli->header_timeout);
    dfws_conn_read_start(c);
}

void dfws_conn_close(dfws_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    dfws_server_t *s = c->server;
    if (c->ws) /* upgraded, or between the upgrade request and the take-over */
        dfws_wsconn_on_close(c);
    if (c->req) {
        dfws_req_t *r = c->req;
        c->req = NULL;
        if (!r->response_done)
            r->disconnected = 1;
        if (r->counted) {
            r->counted = 0;
            s->active_requests--;
        }
        r->conn = NULL;
        if (r->local)
            dfws_static_on_detach(r);
        if (s->ops->http_detach && r->app)
            s->ops->http_detach(s->ops_ud, r);
        dfws_req_release(r);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    c->reading = 0;
    if (c->tls && !c->lingering) {
        /* best effort, never queued: the peer learns the close was ours */
        const char *data;
        dfws_tls_shutdown(c->tls);
        size_t len = dfws_tls_out(c->tls, &data);
        if (len && !c->h.stream.write_queue_size) {
            uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
            (void)uv_try_write(&c->h.stream, &b, 1);
        }
    }
    uv_close(&c->h.handle, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = DFWS_CONTAINER_OF(req, write_req_t, req);
    dfws_conn_t *c = req->handle->data;
    c->write_pending -= w->len;
    if (w->tls_buf)
        dfws_tls_out_release(w->tls_buf);
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED)
            dfws_log_debug("write to %s failed: %s", c->client_host, uv_strerror(status));
        dfws_conn_close(c);
        return;
    }
    if (c->closing)
        return;
    if (c->upgraded) {
        dfws_wsconn_on_drain(c);
        return;
    }
    dfws_req_t *r = c->req;
    if (r && r->app_waiting_drain && c->write_pending < DFWS_WRITE_LOW) {
        r->app_waiting_drain = 0;
        if (r->local)
            dfws_static_on_drain(r);
        else
            c->server->ops->http_drain(c->server->ops_ud, r);
    }
}

int dfws_conn_write(dfws_conn_t *c, const uv_buf_t *bufs, unsigned nbufs)
{
    if (c->closing)
        return UV_EPIPE;
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    if (dfws_metrics)
        dfws_metrics_add(&dfws_metrics->bytes_out, total);
    if (c->tls) {
        if (dfws_tls_write(c->tls, bufs, nbufs)) {
            dfws_log_debug("%s:%u: TLS write failed: %s", c->client_host, c->client_port,
                           dfws_tls_error(c->tls));
            dfws_conn_close(c);
            return UV_EPROTO;
        }
        return tls_send(c, total);
    }
    if (c->write_pending == 0) {
        int n = uv_try_write(&c->h.stream, bufs, nbufs);
        if (n >= 0)
            done = (size_t)n;
        else if (n != UV_EAGAIN) {
            dfws_conn_close(c);
            return n;
        }
        if (done == total)
            return 0;
    }
    write_req_t *w = malloc(sizeof(*w) + (total - done));
    if (!w) {
        dfws_conn_close(c);
        return UV_ENOMEM;
    }
    w->len = total - done;
    w->tls_buf = NULL;
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
    int rc = uv_write(&w->req, &c->h.stream, &b, 1, on_write);
    if (rc) {
        free(w);
        dfws_conn_close(c);
        return rc;
    }
    c->write_pending += w->len;
    return 0;
}

/* Sends the ciphertext the TLS engine has for the peer: what the socket
 * takes at once goes from the engine's buffer, the rest is queued in that
 * same buffer, taken from the engine (no copy). `plain` is the plaintext
 * it carries, counted in write_pending until its last byte is written.
 * 0, or a negative libuv error (the connection is then being closed). */
static int tls_send(dfws_conn_t *c, size_t plain)
{
    const char *data;
    size_t len = dfws_tls_out(c->tls, &data), done = 0;
    if (!len)
        return 0;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(&c->h.stream, &b, 1); /* UV_EAGAIN while writes are queued */
    if (n >= 0)
        done = (size_t)n;
    else if (n != UV_EAGAIN) {
        dfws_conn_close(c);
        return n;
    }
    if (done == len) {
        dfws_tls_out_clear(c->tls);
        return 0;
    }
    write_req_t *w = malloc(sizeof(*w));
    char *owned;
    size_t owned_len;
    void *tok = w ? dfws_tls_out_take(c->tls, &owned, &owned_len) : NULL;
    if (!tok) {
        free(w);
        dfws_conn_close(c);
        return UV_ENOMEM;
    }
    w->len = plain;
    w->tls_buf = tok;
    b = uv_buf_init(owned + done, (unsigned)(owned_len - done));
    int rc = uv_write(&w->req, &c->h.stream, &b, 1, on_write);
    if (rc) {
        dfws_tls_out_release(tok);
        free(w);
        dfws_conn_close(c);
        return rc;
    }
    c->write_pending += w->len;
    return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    dfws_conn_t *c = req->data;
    free(req);
    if (status < 0)
        dfws_conn_close(c);
}

void dfws_conn_finish(dfws_conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->tls) {
        dfws_tls_shutdown(c->tls); /* close_notify goes before the FIN */
        if (tls_send(c, 0))
            return;
    }
    c->lingering = 1;
    /* Keep reading (and discarding) until the peer's EOF: closing with unread
     * input would make the kernel send RST, which can destroy the response
     * still in flight to the client. */
    uv_shutdown_t *sreq = malloc(sizeof(*sreq));
    if (!sreq || uv_shutdown(sreq, &c->h.stream, on_shutdown)) {
        free(sreq);
        dfws_conn_close(c);
        return;
    }
    sreq->data = c;
    dfws_conn_read_start(c);
    dfws_conn_set_timer(c, DFWS_TIMER_LINGER, 2.0);
}
