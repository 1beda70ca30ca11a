#include "ws_conn.h"
#include "conn.h"
#include "context.h"
#include "log.h"
#include "metrics.h"
#include "respond.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLOSE_WAIT_SECONDS 5.0
#define EARLY_LIMIT (64 * 1024)

static dfws_server_t *server_of(dfws_wsconn_t *wc)
{
    return wc->conn->server;
}

static void on_data(dfws_conn_t *c, const char *data, size_t len);

static void tell_app_closed(dfws_wsconn_t *wc, int code)
{
    if (wc->app_told)
        return;
    wc->app_told = 1;
    dfws_server_t *s = server_of(wc);
    s->websockets--;
    if (wc->app && wc->handler->closed)
        wc->handler->closed(wc->handler_ud, wc, code);
}

/* ---- codec callbacks -------------------------------------------------------- */

static int cb_write(void *owner, const uint8_t *data, size_t len)
{
    dfws_wsconn_t *wc = owner;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return dfws_conn_write(wc->conn, &b, 1) ? -1 : 0;
}

static void cb_message(void *owner, int binary, const uint8_t *data, size_t len)
{
    dfws_wsconn_t *wc = owner;
    if (wc->app && !wc->app_told && wc->state == DFWS_WSC_OPEN)
        wc->handler->message(wc->handler_ud, wc, binary, (const char *)data, len);
}

static void tell_control(dfws_wsconn_t *wc)
{
    if (wc->app && !wc->app_told && wc->state == DFWS_WSC_OPEN && wc->handler->control)
        wc->handler->control(wc->handler_ud, wc);
}

static void cb_pong(void *owner, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    dfws_wsconn_t *wc = owner;
    wc->ping_sent_ms = 0;
    tell_control(wc);
}

/* A peer that pings and never reads must not make us queue one pong per
 * ping: answer at once only while nothing is queued, else keep the latest
 * payload (RFC 6455 5.5.3 allows answering only the most recent ping) and
 * send it when the output drains. */
static void cb_ping(void *owner, const uint8_t *data, size_t len)
{
    dfws_wsconn_t *wc = owner;
    tell_control(wc);
    if (wc->ws.state != DFWS_WS_OPEN)
        return; /* the handler closed it */
    if (dfws_conn_write_pending(wc->conn) == 0 && !wc->pong_pending) {
        dfws_ws_pong(&wc->ws, data, len);
        return;
    }
    if (!wc->pong && !(wc->pong = malloc(125)))
        return; /* no memory: this ping goes unanswered, the next may not */
    if (len)
        memcpy(wc->pong, data, len);
    wc->pong_len = (uint8_t)len;
    wc->pong_pending = 1;
}

static void flush_pong(dfws_wsconn_t *wc)
{
    if (!wc->pong_pending)
        return;
    wc->pong_pending = 0;
    dfws_ws_pong(&wc->ws, wc->pong, wc->pong_len);
}

static void cb_close(void *owner, const dfws_ws_close_info_t *info)
{
    dfws_wsconn_t *wc = owner;
    int code = info->origin == DFWS_WS_CLOSE_BY_PEER ? info->code_received : info->code_sent;
    if (info->origin == DFWS_WS_CLOSE_BY_ERROR)
        dfws_log_info("%s:%u: WebSocket protocol error, closing with %u: %s", wc->conn->client_host,
                      wc->conn->client_port, info->code_sent, info->error ? info->error : "");
    wc->state = DFWS_WSC_CLOSED;
    tell_app_closed(wc, code);
    /* RFC 6455: the server closes the TCP connection first. */
    dfws_conn_finish(wc->conn);
}

static void cb_fatal(void *owner, int err, const char *what)
{
    dfws_wsconn_t *wc = owner;
    dfws_log_debug("%s:%u: WebSocket dropped: %s (%s)", wc->conn->client_host,
                   wc->conn->client_port, what, dfws_ws_strerror(err));
    wc->state = DFWS_WSC_CLOSED;
    wc->close_code = 1006;
    dfws_conn_close(wc->conn);
}

static void ops_message(void *ud, dfws_wsconn_t *wc, int binary, const char *data, size_t len);
static void ops_closed(void *ud, dfws_wsconn_t *wc, int code);
static void ops_drain(void *ud, dfws_wsconn_t *wc);
/* The default handler: forwards events to the server's ops (its ud). */
static const dfws_ws_handler_t ops_handler = {
    .message = ops_message,
    .closed = ops_closed,
    .drain = ops_drain,
};
/* permessage-deflate: one compressor, its cache of recent messages and one
 * spare inflater for the whole process, never one per connection
 * (websocket.h); created once, lives as long as the process. */
static dfws_ws_deflate_t *deflate;

void dfws_wsconn_deflate_stats(dfws_ws_deflate_stats_t *st)
{
    dfws_ws_deflate_get_stats(deflate, st);
}

static void ops_message(void *ud, dfws_wsconn_t *wc, int binary, const char *data, size_t len)
{
    dfws_server_t *s = ud;
    s->ops->ws_message(s->ops_ud, wc, binary, data, len);
}

static void ops_closed(void *ud, dfws_wsconn_t *wc, int code)
{
    dfws_server_t *s = ud;
    if (s->ops->ws_closed)
        s->ops->ws_closed(s->ops_ud, wc, code);
}

static void ops_drain(void *ud, dfws_wsconn_t *wc)
{
    dfws_server_t *s = ud;
    if (s->ops->ws_drain)
        s->ops->ws_drain(s->ops_ud, wc);
}

void dfws_wsconn_set_handler(dfws_wsconn_t *wc, const dfws_ws_handler_t *h, void *ud)
{
    wc->handler = h;
    wc->handler_ud = ud;
}

void dfws_wsconn_config(dfws_server_t *s)
{
    dfws_ws_config_t *cfg = &s->ws_config;
    dfws_ws_config_init(cfg);
    cfg->cb.write = cb_write;
    cfg->cb.on_message = cb_message;
    cfg->cb.on_pong = cb_pong;
    cfg->cb.on_ping = cb_ping;
    cfg->cb.on_close = cb_close;
    cfg->cb.on_fatal = cb_fatal;
    cfg->max_message_size = s->cli->ws_max_message_size;
    cfg->max_frame_size = s->cli->ws_max_frame_size;
    if (!deflate && s->cli->ws_per_message_deflate) {
        deflate = dfws_ws_deflate_new(s->cli->ws_deflate_level, s->cli->ws_deflate_threshold, 15);
        if (!deflate)
            dfws_log_warn("permessage-deflate unavailable (out of memory): WebSockets go "
                          "uncompressed");
    }
    cfg->deflate = s->cli->ws_per_message_deflate ? deflate : NULL;
}

/* ---- timers ------------------------------------------------------------------ */

static void arm_timer(dfws_wsconn_t *wc)
{
    const dfws_cli_t *cli = server_of(wc)->cli;
    dfws_conn_t *c = wc->conn;
    uint64_t now = uv_now(c->loop);
    double next = 0;
    if (wc->state == DFWS_WSC_HANDSHAKE) {
        next = cli->websocket_connect_timeout;
    } else if (wc->state == DFWS_WSC_CLOSING) {
        next = CLOSE_WAIT_SECONDS;
    } else if (wc->state == DFWS_WSC_OPEN && wc->early_pending) {
        next = 0.001; /* the next loop turn replays the early frames */
    } else if (wc->state == DFWS_WSC_OPEN) {
        if (wc->ping_sent_ms)
            next = cli->ping_timeout - (double)(now - wc->ping_sent_ms) / 1000.0;
        else if (cli->ping_interval > 0)
            next = cli->ping_interval - (double)(now - wc->last_in_ms) / 1000.0;
        if (cli->websocket_timeout > 0) {
            double left = cli->websocket_timeout - (double)(now - wc->opened_ms) / 1000.0;
            if (next <= 0 || left < next)
                next = left;
        }
        if (next <= 0 && (wc->ping_sent_ms || cli->ping_interval > 0 || cli->websocket_timeout > 0))
            next = 0.001;
    }
    dfws_conn_set_timer(c, DFWS_TIMER_HTTP, next);
}

/* Feeds the frames that came before the accept, and what arrived after it
 * before this turn, in order. Runs from the connection's timer, so the code
 * that accepted is never re-entered by the handler's callbacks. */
static void replay_early(dfws_wsconn_t *wc)
{
    dfws_buf_t early = wc->early;
    memset(&wc->early, 0, sizeof(wc->early));
    wc->early_pending = 0;
    if (early.len)
        on_data(wc->conn, early.base, early.len);
    dfws_buf_free(&early);
}

static void on_timer(dfws_conn_t *c, int kind)
{
    dfws_wsconn_t *wc = c->proto_data;
    const dfws_cli_t *cli = c->server->cli;
    uint64_t now = uv_now(c->loop);
    (void)kind; /* one timer: arm_timer() knows what it waits for */
    switch (wc->state) {
    case DFWS_WSC_HANDSHAKE:
        dfws_log_info("%s:%u: application did not accept the WebSocket in %.1f s", c->client_host,
                      c->client_port, cli->websocket_connect_timeout);
        wc->close_code = 1006;
        dfws_conn_close(c);
        return;
    case DFWS_WSC_CLOSING:
        wc->close_code = wc->close_code ? wc->close_code : 1006;
        dfws_conn_close(c);
        return;
    case DFWS_WSC_OPEN:
        if (wc->early_pending) {
            replay_early(wc);
            arm_timer(wc);
            return;
        }
        if (cli->websocket_timeout > 0 &&
            (double)(now - wc->opened_ms) >= cli->websocket_timeout * 1000.0) {
            dfws_wsconn_close(wc, 1000, "websocket_timeout", 17);
            return;
        }
        if (wc->ping_sent_ms && (double)(now - wc->ping_sent_ms) >= cli->ping_timeout * 1000.0) {
            dfws_log_info("%s:%u: no pong in %.1f s, dropping the WebSocket", c->client_host,
                          c->client_port, cli->ping_timeout);
            wc->close_code = 1006;
            dfws_conn_close(c);
            return;
        }
        if (!wc->ping_sent_ms && cli->ping_interval > 0 &&
            (double)(now - wc->last_in_ms) >= cli->ping_interval * 1000.0) {
            if (dfws_ws_ping(&wc->ws, NULL, 0) == 0)
                wc->ping_sent_ms = now ? now : 1;
        }
        arm_timer(wc);
        return;
    default:
        return;
    }
}

/* ---- handshake ------------------------------------------------------------------ */

dfws_ws_header_t *dfws_wsconn_headers(const dfws_req_t *r, dfws_ws_header_t *stack, size_t n)
{
    dfws_ws_header_t *hs = r->nhdrs <= n ? stack : malloc(r->nhdrs * sizeof(*hs));
    if (!hs)
        return NULL;
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        hs[i].name = r->head.base + r->hdrs[i].name_off;
        hs[i].name_len = r->hdrs[i].name_len;
        hs[i].value = r->head.base + r->hdrs[i].value_off;
        hs[i].value_len = r->hdrs[i].value_len;
    }
    return hs;
}

int dfws_wsconn_start(dfws_conn_t *c, dfws_req_t *r)
{
    dfws_server_t *s = c->server;
    const dfws_proto_t *prev = c->proto;
    assert(c->req == r && !c->proto_data);
    dfws_ws_header_t stack[32];
    dfws_ws_header_t *hs = dfws_wsconn_headers(r, stack, 32);
    if (!hs)
        return 503;
    const char *method = dfws_http_method_name(r->method);
    const char *key;
    size_t klen;
    int rc = dfws_ws_handshake_check(method, strlen(method), hs, r->nhdrs, &key, &klen);
    /* An offer we cannot honour, or a malformed one, leaves the extension
     * out of the response; it never fails the handshake. */
    dfws_ws_pmd_t pmd;
    char ext[DFWS_WS_PMD_RESPONSE_MAX];
    const dfws_ws_config_t *wcfg = &s->ws_config;
    if (rc || !dfws_ws_pmd_negotiate(wcfg->deflate, hs, r->nhdrs, &pmd, ext))
        memset(&pmd, 0, sizeof(pmd));
    /* the key is a slice of the request buffer, not NUL-terminated */
    char *key_copy = rc || klen > 64 ? NULL : malloc(klen + 1);
    if (key_copy) {
        memcpy(key_copy, key, klen);
        key_copy[klen] = '\0';
    }
    if (hs != stack)
        free(hs);
    if (rc) {
        dfws_log_info("%s:%u: bad WebSocket handshake: %s", c->client_host, c->client_port,
                      dfws_ws_strerror(rc));
        return dfws_ws_handshake_status(rc);
    }
    dfws_wsconn_t *wc = key_copy ? calloc(1, sizeof(*wc)) : NULL;
    if (!wc) {
        int status = key_copy ? 503 : 400; /* no memory, or a key too long to be one */
        free(key_copy);
        return status;
    }
    dfws_ws_init(&wc->ws, &s->ws_config, wc);
    wc->conn = c;
    wc->req = r;
    dfws_req_retain(r); /* ours until the handshake is answered (drop_req) */
    wc->hs_key = key_copy;
    wc->handler = &ops_handler;
    wc->handler_ud = s;
    wc->hs_key_len = (uint16_t)klen;
    wc->pmd = pmd;
    wc->state = DFWS_WSC_HANDSHAKE;
    dfws_conn_set_proto(c, &dfws_wsconn_proto, wc);
    s->websockets++;
    r->keep_alive = 0; /* a denial response ends the connection */
    if (s->access_log.on) {
        const char *target = r->head.base + r->url_off;
        wc->log_path = malloc(r->url_len + 1);
        if (wc->log_path) {
            memcpy(wc->log_path, target, r->url_len);
            wc->log_path[r->url_len] = '\0';
        }
        dfws_respond_log(c, "WSCONNECTING", target, r->url_len, -1, -1);
    }
    /* an endpoint served in C (route.h), else the application */
    const dfws_ws_route_t *rt = dfws_route_ws_find(&s->routes, r->head.base + r->url_off,
                                                   r->url_len);
    if (rt ? rt->start(rt->ud, wc) : s->ops->ws_request(s->ops_ud, wc)) {
        dfws_conn_set_proto(c, prev, NULL);
        s->websockets--;
        dfws_req_release(r);
        free(key_copy);
        free(wc->log_path);
        free(wc);
        return 500;
    }
    arm_timer(wc);
    return 0;
}

/* Lets go of the upgrade request (the reference taken at start). */
static void drop_req(dfws_wsconn_t *wc)
{
    dfws_req_t *r = wc->req;
    if (r) {
        wc->req = NULL;
        dfws_req_release(r);
    }
}

/* The 101 went out: the request leaves the connection, which is now a
 * WebSocket, then we drop our own reference. */
static void detach_request(dfws_wsconn_t *wc, int status)
{
    dfws_conn_t *c = wc->conn;
    dfws_req_t *r = wc->req;
    if (!r)
        return;
    if (r->conn) {
        assert(c->req == r);
        if (!r->response_done) {
            r->response_started = r->response_done = 1;
            r->status = status;
        }
        dfws_server_detach(r, 0);
    }
    drop_req(wc);
}

int dfws_wsconn_accept(dfws_wsconn_t *wc, const char *subprotocol, size_t sublen,
                       const dfws_ws_header_t *headers, size_t nheaders)
{
    dfws_conn_t *c = wc->conn;
    if (wc->state != DFWS_WSC_HANDSHAKE || c->closing)
        return DFWS_WS_E_CLOSED;
    /* The extension's answer goes first, then the application's headers;
     * an application that names the extension itself has the last word
     * (the extension is then not switched on). */
    char ext[DFWS_WS_PMD_RESPONSE_MAX];
    dfws_ws_header_t stack[9], *all = stack;
    size_t nall = nheaders;
    int pmd = wc->pmd.server_bits != 0;
    for (size_t i = 0; i < nheaders && pmd; i++)
        if (headers[i].name_len == 24 &&
            !strncasecmp(headers[i].name, "sec-websocket-extensions", 24))
            pmd = 0;
    if (pmd && dfws_ws_pmd_response(&wc->pmd, ext, sizeof(ext)) > 0) {
        nall = nheaders + 1;
        if (nall > sizeof(stack) / sizeof(stack[0]) && !(all = malloc(nall * sizeof(*all))))
            return DFWS_WS_E_NOMEM;
        all[0] = (dfws_ws_header_t){"Sec-WebSocket-Extensions", 24, ext, strlen(ext)};
        if (nheaders)
            memcpy(all + 1, headers, nheaders * sizeof(*headers));
    } else {
        pmd = 0;
        all = (dfws_ws_header_t *)headers;
    }
    int n = dfws_ws_build_response(wc->hs_key, wc->hs_key_len, subprotocol, sublen, all, nall, NULL,
                                   0);
    char *buf = n < 0 ? NULL : malloc((size_t)n);
    if (buf)
        dfws_ws_build_response(wc->hs_key, wc->hs_key_len, subprotocol, sublen, all, nall, buf,
                               (size_t)n);
    if (all != stack && all != headers)
        free(all);
    if (n < 0)
        return n;
    if (!buf)
        return DFWS_WS_E_NOMEM;
    free(wc->hs_key);
    wc->hs_key = NULL;
    uv_buf_t b = uv_buf_init(buf, (unsigned)n);
    int rc = dfws_conn_write(c, &b, 1);
    free(buf);
    if (rc)
        return DFWS_WS_E_CLOSED;
    detach_request(wc, 101);
    if (pmd) {
        dfws_ws_set_pmd(&wc->ws, &wc->pmd);
        dfws_log_debug("%s:%u: WebSocket with permessage-deflate (window bits %u/%u)",
                       c->client_host, c->client_port, wc->pmd.server_bits, wc->pmd.client_bits);
    }
    if (wc->log_path)
        dfws_respond_log(c, "WSCONNECT", wc->log_path, strlen(wc->log_path), -1, -1);
    assert(!wc->req && !c->req); /* the 101 detached the upgrade request */
    wc->state = DFWS_WSC_OPEN;
    if (dfws_metrics)
        dfws_metrics_add(&dfws_metrics->websockets_opened, 1);
    wc->opened_ms = wc->last_in_ms = uv_now(c->loop);
    wc->early_pending = wc->early.len != 0;
    arm_timer(wc);
    return 0;
}

int dfws_wsconn_reject(dfws_wsconn_t *wc)
{
    return dfws_wsconn_reject_status(wc, 403);
}

int dfws_wsconn_reject_status(dfws_wsconn_t *wc, int status)
{
    dfws_conn_t *c = wc->conn;
    if (wc->state != DFWS_WSC_HANDSHAKE || c->closing)
        return DFWS_WS_E_CLOSED;
    wc->state = DFWS_WSC_CLOSED;
    wc->close_code = 1006;
    tell_app_closed(wc, 1006);
    drop_req(wc);
    if (wc->log_path) {
        dfws_respond_log(c, "WSREJECT", wc->log_path, strlen(wc->log_path), -1, -1);
        free(wc->log_path);
        wc->log_path = NULL;
    }
    dfws_respond_error(c, status, 1);
    return 0;
}

int dfws_wsconn_send(dfws_wsconn_t *wc, int binary, const char *data, size_t len)
{
    if (wc->state != DFWS_WSC_OPEN || wc->conn->closing)
        return DFWS_WS_E_CLOSED;
    return dfws_ws_send(&wc->ws, binary, (const uint8_t *)data, len);
}

int dfws_wsconn_close(dfws_wsconn_t *wc, int code, const char *reason, size_t len)
{
    if (wc->state == DFWS_WSC_HANDSHAKE)
        return dfws_wsconn_reject(wc);
    if (wc->state != DFWS_WSC_OPEN || wc->conn->closing)
        return DFWS_WS_E_CLOSED;
    int rc = dfws_ws_close(&wc->ws, (uint16_t)code, reason, len);
    if (rc == DFWS_WS_E_INVAL)
        return rc;
    wc->close_code = (uint16_t)(code ? code : 1005);
    if (wc->state == DFWS_WSC_OPEN) {
        wc->state = DFWS_WSC_CLOSING;
        arm_timer(wc);
    }
    return 0;
}

size_t dfws_wsconn_write_pending(const dfws_wsconn_t *wc)
{
    return dfws_conn_write_pending(wc->conn);
}

/* Reading runs unless the application paused it or our output is backed
 * up: each frame read may make us write (pongs, echoes, close frames). */
static void update_reading(dfws_wsconn_t *wc)
{
    dfws_conn_t *c = wc->conn;
    if (c->closing || c->lingering)
        return;
    if (wc->reading_paused || wc->out_paused)
        dfws_conn_read_stop(c);
    else
        dfws_conn_read_start(c);
}

void dfws_wsconn_pause_reading(dfws_wsconn_t *wc, int paused)
{
    wc->reading_paused = paused ? 1 : 0;
    update_reading(wc);
}

void dfws_wsconn_shutdown(dfws_wsconn_t *wc, int code)
{
    static const char restart[] = "service restart", stop[] = "server shutting down";
    if (wc->state == DFWS_WSC_OPEN && code == 1012)
        dfws_wsconn_close(wc, code, restart, sizeof(restart) - 1);
    else if (wc->state == DFWS_WSC_OPEN)
        dfws_wsconn_close(wc, 1001, stop, sizeof(stop) - 1);
    else if (wc->state == DFWS_WSC_HANDSHAKE)
        dfws_wsconn_reject(wc);
}

/* ---- connection events ---------------------------------------------------------- */

static void on_data(dfws_conn_t *c, const char *data, size_t len)
{
    dfws_wsconn_t *wc = c->proto_data;
    assert(wc && wc->conn == c);
    if (wc->state == DFWS_WSC_HANDSHAKE || wc->early_pending) {
        /* A client may send its first frames right behind the upgrade
         * request: keep them (bounded) until the application accepts and
         * the next loop turn replays them. */
        if (wc->early.len + len > EARLY_LIMIT || dfws_buf_append(&wc->early, data, len)) {
            dfws_log_info("%s:%u: more than %d bytes before the WebSocket handshake was answered",
                          c->client_host, c->client_port, EARLY_LIMIT);
            wc->close_code = 1006;
            dfws_conn_close(c);
        }
        return;
    }
    if (wc->state == DFWS_WSC_CLOSED)
        return;
    wc->last_in_ms = uv_now(c->loop);
    int rc = dfws_ws_feed(&wc->ws, (const uint8_t *)data, len);
    if (rc == DFWS_WS_E_FATAL && !c->closing) {
        dfws_conn_close(c);
        return;
    }
    if (dfws_conn_write_pending(c) > DFWS_WRITE_HIGH && !wc->out_paused) {
        wc->out_paused = 1;
        update_reading(wc);
    }
}

static void on_eof(dfws_conn_t *c)
{
    dfws_wsconn_t *wc = c->proto_data;
    if (!wc->close_code)
        wc->close_code = 1006;
    dfws_conn_close(c);
}

static void on_drain(dfws_conn_t *c)
{
    dfws_wsconn_t *wc = c->proto_data;
    if (dfws_conn_write_pending(c) >= DFWS_WRITE_LOW)
        return;
    flush_pong(wc);
    if (c->closing)
        return;
    if (wc->out_paused) {
        wc->out_paused = 0;
        update_reading(wc);
    }
    if (wc->app_waiting_drain) {
        wc->app_waiting_drain = 0;
        if (wc->handler->drain)
            wc->handler->drain(wc->handler_ud, wc);
    }
}

static void on_close(dfws_conn_t *c)
{
    dfws_wsconn_t *wc = c->proto_data;
    drop_req(wc);
    if (wc->log_path && wc->opened_ms)
        dfws_respond_log(c, "WSDISCONNECT", wc->log_path, strlen(wc->log_path), -1, -1);
    wc->state = DFWS_WSC_CLOSED;
    tell_app_closed(wc, wc->close_code ? wc->close_code : 1006);
    /* the upgrade request, when the handshake was never answered */
    if (c->req)
        dfws_server_detach(c->req, 1);
}

static void on_shutdown(dfws_conn_t *c, int restart)
{
    dfws_wsconn_shutdown(c->proto_data, restart ? 1012 : 1001);
}

static void on_free(dfws_conn_t *c)
{
    dfws_wsconn_t *wc = c->proto_data;
    assert(wc && wc->app_told); /* the application was told before the memory goes */
    c->proto_data = NULL;
    drop_req(wc);
    dfws_ws_cleanup(&wc->ws);
    dfws_buf_free(&wc->early);
    free(wc->pong);
    free(wc->log_path);
    free(wc->hs_key);
    free(wc);
}

const dfws_proto_t dfws_wsconn_proto = {
    .name = "websocket",
    .data = on_data,
    .eof = on_eof,
    .timer = on_timer,
    .drain = on_drain,
    .close = on_close,
    .shutdown = on_shutdown,
    .free = on_free,
};
