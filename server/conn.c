#include "conn.h"
#include "log.h"
#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void on_timer_cb(uv_timer_t *t);

/* The connection's two handles (transport, timer) count down here; the
 * last one frees the protocol's state, then the memory. */
static void handle_closed(dfws_conn_t *c)
{
    assert(c->open_handles > 0);
    if (--c->open_handles > 0)
        return;
    if (c->proto && c->proto->free)
        c->proto->free(c);
    c->dealloc(c);
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
    c->proto->data(c, data, len);
}

static void on_tr_eof(void *ud, int err)
{
    dfws_conn_t *c = ud;
    (void)err;
    if (c->lingering || c->closing)
        dfws_conn_close(c);
    else
        c->proto->eof(c);
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
    if (!c->closing)
        c->proto->drain(c);
}

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
    uint64_t now = uv_now(c->loop);
    c->armed_ms = at;
    uv_timer_start(&c->timer, on_timer_cb, at > now ? at - now : 0, 0);
}

static void on_timer_cb(uv_timer_t *t)
{
    dfws_conn_t *c = t->data;
    uint64_t now = uv_now(c->loop);
    c->armed_ms = 0;
    if (c->timer_kind == DFWS_TIMER_NONE)
        return;
    if (now < c->deadline_ms) {
        arm(c, c->deadline_ms);
        return;
    }
    int kind = c->timer_kind;
    c->timer_kind = DFWS_TIMER_NONE;
    if (kind == DFWS_TIMER_LINGER)
        dfws_conn_close(c);
    else
        c->proto->timer(c, kind);
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
    c->deadline_ms = uv_now(c->loop) + (ms ? ms : 1);
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

static void wire(dfws_conn_t *c, uv_loop_t *loop)
{
    c->loop = loop;
    c->tr.ev = &conn_events;
    c->tr.ud = c;
}

int dfws_conn_accept(dfws_conn_t *c, const dfws_transport_vt_t *vt, void *ctx, dfws_readbuf_t *rbuf,
                     uv_loop_t *loop, uv_stream_t *listener, int is_unix)
{
    wire(c, loop);
    c->tr.vt = vt;
    c->tr.ctx = ctx;
    c->tr.rbuf = rbuf;
    int rc = vt->accept(&c->tr, loop, listener, is_unix);
    if (rc && c->tr.open) {
        /* taken and refused: closes like any connection, never started */
        c->open_handles = 1;
        c->closing = 1;
        dfws_transport_close(&c->tr);
    }
    return rc;
}

int dfws_conn_open_fd(dfws_conn_t *c, uv_loop_t *loop, int fd, int is_unix)
{
    wire(c, loop);
    c->tr.vt = &dfws_transport_plain;
    return dfws_transport_plain_open(&c->tr, loop, fd, is_unix);
}

void dfws_conn_start(dfws_conn_t *c, dfws_conn_list_t *list, const dfws_proto_t *proto)
{
    assert(c->tr.open && !c->closing);
    uv_timer_init(c->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    fill_addresses(c);
    c->list = list;
    c->next = list->head;
    if (list->head)
        list->head->prev = c;
    list->head = c;
    list->n++;
    c->proto = proto;
}

void dfws_conn_set_proto(dfws_conn_t *c, const dfws_proto_t *proto, void *data)
{
    assert(proto && !c->closing);
    c->proto = proto;
    c->proto_data = data;
}

void dfws_conn_close(dfws_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->proto->close(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->list->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->list->n--;
    c->reading = 0;
    dfws_transport_close(&c->tr);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
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
