#include "conn.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "static.h"
#include "ws_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void on_timer_cb(uv_timer_t *t);

/* The connection's two handles (transport, timer) count down here. */
static void handle_closed(dfws_conn_t *c)
{
    if (--c->open_handles > 0)
        return;
    dfws_wsconn_free(c);
    dfws_buf_free(&c->in);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

/* ---- transport events (transport.h) ----------------------------------------- */

static void on_tr_read(void *ud, const char *data, size_t len)
{
    dfws_conn_t *c = ud;
    if (dfws_metrics)
        dfws_metrics_add(&dfws_metrics->bytes_in, (uint64_t)len);
    if (c->lingering)
        return; /* draining input before close: discard */
    if (c->upgraded)
        dfws_wsconn_on_data(c, data, len);
    else
        dfws_http1_on_data(c, data, len);
}

static void on_tr_eof(void *ud, int err)
{
    dfws_conn_t *c = ud;
    (void)err;
    if (c->lingering || c->closing)
        dfws_conn_close(c);
    else if (c->upgraded)
        dfws_wsconn_on_eof(c);
    else
        dfws_http1_on_eof(c);
}

static void on_tr_written(void *ud, int status);

static void on_tr_closed(void *ud)
{
    handle_closed(ud);
}

static const dfws_transport_ev_t conn_events = {
    .read = on_tr_read,
    .eof = on_tr_eof,
    .written = on_tr_written,
    .closed = on_tr_closed,
};

void dfws_conn_read_start(dfws_conn_t *c)
{
    if (c->reading || c->closing)
        return;
    if (dfws_transport_read_start(&c->tr) == 0)
        c->reading = 1;
}

void dfws_conn_read_stop(dfws_conn_t *c)
{
    if (!c->reading)
        return;
    dfws_transport_read_stop(&c->tr);
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
    struct sockaddr_storage peer, local;
    if (dfws_transport_addresses(&c->tr, &peer, &local))
        return;
    address_text(&peer, c->client_host, sizeof(c->client_host), &c->client_port);
    address_text(&local, c->server_host, sizeof(c->server_host), &c->server_port);
}

int dfws_conn_accept(dfws_server_t *s)
{
    dfws_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return UV_ENOMEM;
    c->server = s;
    c->tr.vt = s->transport ? s->transport : &dfws_transport_plain;
    c->tr.ev = &conn_events;
    c->tr.ud = c;
    c->tr.ctx = s->transport_ctx;
    c->tr.rbuf = s->read_buf.base ? &s->read_buf : NULL;
    int rc = c->tr.vt->accept(&c->tr, s->loop, &s->listener.stream, s->is_unix);
    if (rc && !c->tr.open) {
        free(c);
        return rc; /* the pending socket is still there */
    }
    c->open_handles = 1;
    if (rc) {
        c->closing = 1;
        dfws_transport_close(&c->tr);
        return 0;
    }
    dfws_conn_start(c);
    return 0;
}

int dfws_conn_open_fd(dfws_conn_t *c, int fd, int is_unix)
{
    c->tr.vt = &dfws_transport_plain;
    c->tr.ev = &conn_events;
    c->tr.ud = c;
    return dfws_transport_plain_open(&c->tr, c->server->loop, fd, is_unix);
}

void dfws_conn_start(dfws_conn_t *c)
{
    dfws_server_t *s = c->server;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
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
    dfws_transport_close(&c->tr);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_tr_written(void *ud, int status)
{
    dfws_conn_t *c = ud;
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
    if (r && r->app_waiting_drain && dfws_conn_write_pending(c) < DFWS_WRITE_LOW) {
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
    if (dfws_metrics) {
        size_t total = 0;
        for (unsigned i = 0; i < nbufs; i++)
            total += bufs[i].len;
        dfws_metrics_add(&dfws_metrics->bytes_out, total);
    }
    int rc = dfws_transport_write(&c->tr, bufs, nbufs);
    if (rc)
        dfws_conn_close(c);
    return rc;
}

void dfws_conn_finish(dfws_conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    c->lingering = 1;
    /* Keep reading (and discarding) until the peer's EOF: closing with unread
     * input would make the kernel send RST, which can destroy the response
     * still in flight to the client. */
    if (dfws_transport_shutdown(&c->tr)) {
        dfws_conn_close(c);
        return;
    }
    dfws_conn_read_start(c);
    dfws_conn_set_timer(c, DFWS_TIMER_LINGER, 2.0);
}
