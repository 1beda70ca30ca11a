#include "http1.h"
#include "metrics.h"
#include "proxy.h"
#include "log.h"
#include "static.h"
#include "ws_conn.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static llhttp_settings_t parser_settings;
static int parser_settings_ready;

/* ---- requests ---------------------------------------------------------- */

void dfws_req_retain(dfws_req_t *r)
{
    r->refs++;
}

void dfws_req_release(dfws_req_t *r)
{
    if (--r->refs > 0)
        return;
    dfws_buf_free(&r->head);
    dfws_buf_free(&r->body);
    dfws_buf_free(&r->resp_head);
    free(r->hdrs);
    free(r);
}

/* Appends the decimal form of v. */
static int append_uint(dfws_buf_t *b, uint64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return dfws_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

/* Detaches the request from its connection. `gone` says whether the client
 * left before the response completed. Drops the connection's reference. */
static void detach(dfws_conn_t *c, int gone)
{
    dfws_req_t *r = c->req;
    dfws_server_t *s = c->server;
    if (!r)
        return;
    c->req = NULL;
    r->conn = NULL;
    if (!r->response_done)
        r->disconnected = gone;
    if (r->counted) {
        r->counted = 0;
        s->active_requests--;
    }
    if (r->local)
        dfws_static_on_detach(r);
    if (r->app && s->ops->http_detach)
        s->ops->http_detach(s->ops_ud, r);
    dfws_req_release(r);
}

static void write_simple_response(dfws_conn_t *c, int status)
{
    dfws_buf_t b = {0};
    const char *reason = reason_phrase(status);
    const char *name = c->server->cli->server_name;
    dfws_buf_appendf(&b,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\nDate: %s\r\n",
                     status, reason, strlen(reason) + 1, dfws_server_date(c->server));
    if (status == 426) /* RFC 6455 4.2.2: tell the client which version we speak */
        dfws_buf_appendf(&b, "Sec-WebSocket-Version: 13\r\n");
    if (name)
        dfws_buf_appendf(&b, "Server: %s\r\n", name);
    dfws_buf_appendf(&b, "\r\n%s\n", reason);
    if (b.base) {
        uv_buf_t ub = uv_buf_init(b.base, (unsigned)b.len);
        dfws_conn_write(c, &ub, 1);
    }
    dfws_buf_free(&b);
}

void dfws_http1_error(dfws_conn_t *c, int status)
{
    if (c->closing || c->lingering)
        return;
    dfws_req_t *r = c->req;
    int can_answer = !r || !r->response_started;
    if (status >= 500)
        dfws_log_warn("%s:%u: answering %d", c->client_host, c->client_port, status);
    else
        dfws_log_info("%s:%u: bad request, answering %d", c->client_host, c->client_port, status);
    if (dfws_metrics && can_answer) /* before detach: r may be freed there */
        dfws_metrics_request(r && !c->in_head ? r->method : -1, status,
                             r ? uv_hrtime() - r->start_ns : 0); /* method known once parsed */
    detach(c, 1);
    if (!can_answer) {
        dfws_conn_close(c);
        return;
    }
    write_simple_response(c, status);
    dfws_conn_finish(c);
}

/* ---- parser callbacks ---------------------------------------------------- */

static int valid_token(const char *s, size_t n)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && !memchr(extra, ch, sizeof(extra) - 1))
            return 0;
    }
    return 1;
}


/* The request head counts every byte from the method to the end of the
 * header section, separators and whitespace included: `end` is the end of
 * the span just parsed, in the data llhttp_execute is working on, where
 * counting started at c->head_mark (execute() adds up earlier reads). */
static int head_check(dfws_conn_t *c, const char *end)
{
    if (c->head_bytes + (size_t)(end - c->head_mark) > c->server->cli->limit_request_headers) {
        c->error_status = 431;
        return -1;
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    dfws_conn_t *c = p->data;
    dfws_req_t *r = calloc(1, sizeof(*r));
    if (!r) {
        c->error_status = 503;
        return -1;
    }
    r->refs = 1;
    r->conn = c;
    r->server = c->server;
    r->start_ns = uv_hrtime();
    c->req = r;
    c->head_bytes = 0;
    c->in_head = 0; /* on_method starts counting at the method's first byte */
    c->hstate = 0;
    if (c->timer_kind != DFWS_TIMER_HEADER)
        dfws_conn_set_timer(c, DFWS_TIMER_HEADER, c->server->cli->header_timeout);
    return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
    dfws_conn_t *c = p->data;
    if (!c->in_head) {
        c->in_head = 1;
        c->head_bytes = 0;
        c->head_mark = at;
    }
    return head_check(c, at + len);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    dfws_conn_t *c = p->data;
    dfws_req_t *r = c->req;
    if (head_check(c, at + len))
        return -1;
    if (r->url_len + len > c->server->cli->limit_request_line) {
        c->error_status = 414;
        return -1;
    }
    if (r->url_len == 0)
        r->url_off = (uint32_t)r->head.len;
    if (dfws_buf_append(&r->head, at, len))
        return -1;
    r->url_len += (uint32_t)len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    dfws_conn_t *c = p->data;
    dfws_req_t *r = c->req;
    if (head_check(c, at + len))
        return -1;
    /* llhttp 8.1 lets a space into a header name when the name arrives split
     * across reads; check the token ourselves so every chunking agrees. */
    if (len && !valid_token(at, len)) {
        c->error_status = 400;
        return -1;
    }
    if (c->hstate != 1) {
        /* Each field costs a slot here and a tuple in the scope, whatever
         * its size: their number is bounded too. */
        if (r->nhdrs >= DFWS_MAX_HEADERS) {
            c->error_status = 431;
            return -1;
        }
        if (r->nhdrs == r->hdrs_cap) {
            uint32_t cap = r->hdrs_cap ? r->hdrs_cap * 2 : 16;
            dfws_hdr_t *h = realloc(r->hdrs, cap * sizeof(*h));
            if (!h)
                return -1;
            r->hdrs = h;
            r->hdrs_cap = cap;
        }
        dfws_hdr_t *h = &r->hdrs[r->nhdrs++];
        h->name_off = (uint32_t)r->head.len;
        h->name_len = 0;
        h->value_off = (uint32_t)r->head.len;
        h->value_len = 0;
        c->hstate = 1;
    }
    if (dfws_buf_append(&r->head, at, len))
        return -1;
    r->hdrs[r->nhdrs - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    dfws_conn_t *c = p->data;
    dfws_req_t *r = c->req;
    if (head_check(c, at + len))
        return -1;
    dfws_hdr_t *h = &r->hdrs[r->nhdrs - 1];
    if (c->hstate == 3 || (c->hstate == 2 && at != c->head_mark)) {
        /* More value after the value's line ended: obs-fold (a line that
         * starts with whitespace). RFC 9112 5.2 lets us refuse it, and
         * proxies may read such a header differently. A value carried
         * over from the previous read goes on at the start of this one
         * (head_mark: the start of the data, as no method came in it). */
        c->error_status = 400;
        return -1;
    }
    if (c->hstate != 2) {
        h->value_off = (uint32_t)r->head.len;
        h->value_len = 0;
        c->hstate = 2;
    }
    if (dfws_buf_append(&r->head, at, len))
        return -1;
    h->value_len += (uint32_t)len;
    /* llhttp ends a value span at the line's end or at the end of the data
     * given to it, where the value may go on in the next read */
    if (at + len < c->feed_end)
        c->hstate = 3;
    return 0;
}

static int header_is(const dfws_req_t *r, const dfws_hdr_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && !strncasecmp(r->head.base + h->name_off, name, n);
}

int dfws_http_list_next(const char *v, size_t len, size_t *pos, const char **elem, size_t *elen)
{
    size_t i = *pos;
    for (;;) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        if (i >= len) {
            *pos = i;
            return 0;
        }
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start) {
            *pos = i;
            *elem = v + start;
            *elen = end - start;
            return 1;
        }
    }
}

static int value_has_token(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token), pos = 0, n;
    const char *e;
    while (dfws_http_list_next(v, len, &pos, &e, &n))
        if (n == tl && !strncasecmp(e, token, tl))
            return 1;
    return 0;
}

int dfws_req_is_websocket(const dfws_req_t *r)
{
    if (!r->upgrade)
        return 0;
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const dfws_hdr_t *h = &r->hdrs[i];
        if (header_is(r, h, "upgrade") &&
            value_has_token(r->head.base + h->value_off, h->value_len, "websocket"))
            return 1;
    }
    return 0;
}

/* What strict llhttp still lets through, checked once the head is whole so
 * that every chunking agrees. Also trims trailing whitespace off the values
 * (RFC 9110 5.5: it is not part of the value). Returns 0 or the status to
 * answer. */
static int head_error(dfws_req_t *r, const llhttp_t *p)
{
    unsigned hosts = 0, chunked = 0, other_codings = 0;
    if (p->http_major != 1 || p->http_minor > 1)
        return 400; /* "GET /" (HTTP/0.9), "HTTP/2.0" request lines */
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        dfws_hdr_t *h = &r->hdrs[i];
        const char *v = r->head.base + h->value_off;
        if (h->name_len == 0)
            return 400; /* ": value" */
        while (h->value_len && (v[h->value_len - 1] == ' ' || v[h->value_len - 1] == '\t'))
            h->value_len--;
        if (header_is(r, h, "host")) {
            hosts++;
        } else if (header_is(r, h, "transfer-encoding")) {
            /* a list: count its codings, empty elements aside */
            size_t pos = 0, n;
            const char *e;
            while (dfws_http_list_next(v, h->value_len, &pos, &e, &n)) {
                if (n == 7 && !strncasecmp(e, "chunked", 7))
                    chunked++;
                else
                    other_codings++;
            }
        }
    }
    /* RFC 9112 3.2: exactly one Host in HTTP/1.1, never two */
    if (hosts > 1 || (hosts == 0 && p->http_minor == 1))
        return 400;
    if (p->flags & F_TRANSFER_ENCODING) {
        /* RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has
         * faulty framing (a proxy may not have understood it) */
        if (p->http_minor == 0)
            return 400;
        if (other_codings)
            return 501; /* we decode no coding but a lone chunked */
        if (chunked != 1)
            return 400;
    }
    return 0;
}

/* While a request body arrives the connection's timer watches the client
 * (BODY), then the application (HTTP) until its response starts. */
static void arm_request_timer(dfws_conn_t *c, const dfws_req_t *r)
{
    const dfws_cli_t *cli = c->server->cli;
    if (!r->body_done && cli->header_timeout > 0)
        dfws_conn_set_timer(c, DFWS_TIMER_BODY, cli->header_timeout);
    else if (!r->response_started && cli->http_timeout > 0)
        dfws_conn_set_timer(c, DFWS_TIMER_HTTP, cli->http_timeout);
    else
        dfws_conn_set_timer(c, DFWS_TIMER_NONE, 0);
}

static int on_headers_complete(llhttp_t *p)
{
    dfws_conn_t *c = p->data;
    dfws_req_t *r = c->req;
    dfws_server_t *s = c->server;
    int status;

    c->in_head = 0;
    r->method = p->method; /* known from here on, refused or not (metrics) */
    if ((status = head_error(r, p))) {
        c->error_status = status;
        return -1;
    }
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->method = p->method;
    r->keep_alive = llhttp_should_keep_alive(p) ? 1 : 0;
    r->is_head = p->method == HTTP_HEAD;
    r->upgrade = p->upgrade ? 1 : 0;
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const dfws_hdr_t *h = &r->hdrs[i];
        if (header_is(r, h, "expect") && h->value_len == 12 &&
            !strncasecmp(r->head.base + h->value_off, "100-continue", 12))
            r->expect_continue = 1;
    }
    if (s->cli->limit_request_body && (p->flags & F_CONTENT_LENGTH) &&
        p->content_length > s->cli->limit_request_body) {
        c->error_status = 413;
        return -1;
    }
    if (!(p->flags & (F_CONTENT_LENGTH | F_CHUNKED)) || ((p->flags & F_CONTENT_LENGTH) && p->content_length == 0))
        r->body_done = 1; /* no body: on_message_complete follows at once */
    dfws_proxy_resolve(c, r); /* the client a trusted proxy names, for the scope and the log */
    arm_request_timer(c, r);
    s->active_requests++;
    r->counted = 1;
    dfws_server_count_request(s);

    if (dfws_req_is_websocket(r) && s->ops->ws_request) {
        /* The WebSocket glue takes the connection over once the parser stops
         * at the upgrade point (HPE_PAUSED_UPGRADE). */
        return dfws_wsconn_start(c, r) ? -1 : 0;
    }
    /* Static routes are answered here and never reach the application; a
     * response completed at once leaves the parser running on, unless the
     * connection is ending. */
    if (dfws_static_try(c, r))
        return c->closing || c->lingering ? HPE_PAUSED : 0;
    if (s->ops->http_request(s->ops_ud, r)) {
        c->error_status = 500;
        return -1;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    dfws_conn_t *c = p->data;
    dfws_req_t *r = c->req;
    if (!r)
        return 0; /* the response is already complete: discard the rest */
    r->body_received += len;
    if (c->server->cli->limit_request_body && r->body_received > c->server->cli->limit_request_body) {
        c->error_status = 413;
        return -1;
    }
    if (dfws_buf_append(&r->body, at, len)) {
        c->error_status = 503;
        return -1;
    }
    if (c->timer_kind == DFWS_TIMER_BODY) {
        /* Credit for the bytes received at DFWS_BODY_MIN_RATE, never more
         * than --header-timeout ahead: a trickle runs out of time. */
        uint64_t now = uv_now(c->server->loop);
        uint64_t cap = now + (uint64_t)(c->server->cli->header_timeout * 1000.0);
        uint64_t d = c->deadline_ms + (uint64_t)len * 1000 / DFWS_BODY_MIN_RATE;
        if (d > cap)
            d = cap;
        if (d > c->deadline_ms)
            dfws_conn_set_timer(c, DFWS_TIMER_BODY, (double)(d - now) / 1000.0);
    }
    if (r->body.len >= DFWS_BODY_HIGH)
        dfws_conn_read_stop(c); /* backpressure: resumes when the app consumes */
    if (r->app_waiting_body) {
        r->app_waiting_body = 0;
        c->server->ops->http_body(c->server->ops_ud, r);
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    dfws_conn_t *c = p->data;
    dfws_req_t *r = c->req;
    if (!r)
        return 0;
    r->body_done = 1;
    if (c->timer_kind == DFWS_TIMER_BODY)
        arm_request_timer(c, r);
    if (r->app_waiting_body) {
        r->app_waiting_body = 0;
        c->server->ops->http_body(c->server->ops_ud, r);
    }
    /* Hold pipelined requests until this response is complete; an accepted
     * upgrade lets llhttp stop at the upgrade point instead. */
    return c->req && !c->ws ? HPE_PAUSED : 0;
}

void dfws_http1_init(dfws_conn_t *c)
{
    if (!parser_settings_ready) {
        llhttp_settings_init(&parser_settings);
        parser_settings.on_message_begin = on_message_begin;
        parser_settings.on_method = on_method;
        parser_settings.on_url = on_url;
        parser_settings.on_header_field = on_header_field;
        parser_settings.on_header_value = on_header_value;
        parser_settings.on_headers_complete = on_headers_complete;
        parser_settings.on_body = on_body;
        parser_settings.on_message_complete = on_message_complete;
        parser_settings_ready = 1;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    c->proxy_pending = c->server->cli->proxy_protocol ? 1 : 0;
}

/* ---- feeding the parser ------------------------------------------------- */

static void keep_rest(dfws_conn_t *c, const char *rest, size_t len)
{
    if (len && dfws_buf_append(&c->in, rest, len))
        dfws_conn_close(c);
}

static void execute(dfws_conn_t *c, const char *data, size_t len)
{
    c->head_mark = data;
    c->feed_end = data + len;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    if (c->closing)
        return;
    const char *pos = err == HPE_OK ? NULL : llhttp_get_error_pos(&c->parser);
    size_t used = pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
    if (c->in_head && (err == HPE_OK || err == HPE_PAUSED)) {
        /* a head spread over several reads: what this one brought counts,
         * whitespace llhttp skipped without a callback included */
        c->head_bytes += (size_t)(data + used - c->head_mark);
        if (c->head_bytes > c->server->cli->limit_request_headers) {
            dfws_http1_error(c, 431);
            return;
        }
    }
    if (err == HPE_OK)
        return;
    if (err == HPE_PAUSED) {
        c->paused = 1;
        keep_rest(c, data + used, len - used);
        return;
    }
    if (err == HPE_PAUSED_UPGRADE) {
        if (c->ws) {
            /* ws_request accepted the upgrade: the bytes after the request
             * head belong to the WebSocket layer. */
            dfws_wsconn_take_over(c, data + used, len - used);
            return;
        }
        /* An upgrade nobody handles (h2c, ...) or a CONNECT is served as
         * plain HTTP, and so is what follows it on the connection. llhttp
         * stops here once the request is complete: when its response is
         * complete too, go on with the next request at once. */
        llhttp_resume_after_upgrade(&c->parser);
        keep_rest(c, data + used, len - used);
        if (c->req)
            c->paused = 1; /* complete() resumes */
        else if (!c->processing)
            dfws_http1_process(c);
        return;
    }
    int status = c->error_status ? c->error_status : 400;
    if (!c->error_status)
        dfws_log_debug("%s:%u: HTTP parse error: %s (%s)", c->client_host, c->client_port,
                       llhttp_errno_name(err), llhttp_get_error_reason(&c->parser));
    dfws_http1_error(c, status);
}

void dfws_http1_process(dfws_conn_t *c)
{
    if (c->processing)
        return;
    c->processing = 1;
    while (!c->closing && !c->paused && !c->upgraded && !c->lingering && c->in.len) {
        dfws_buf_t chunk = c->in;
        memset(&c->in, 0, sizeof(c->in));
        execute(c, chunk.base, chunk.len);
        dfws_buf_free(&chunk);
    }
    c->processing = 0;
    if (!c->closing && !c->paused && !c->upgraded && !(c->req && c->req->body.len >= DFWS_BODY_HIGH))
        dfws_conn_read_start(c);
}

void dfws_http1_on_data(dfws_conn_t *c, const char *data, size_t len)
{
    if (c->proxy_pending) { /* the balancer's PROXY header comes before any HTTP */
        keep_rest(c, data, len);
        int rc = c->closing ? -1 : dfws_proxy_protocol_take(c);
        if (rc < 0)
            dfws_conn_close(c);
        if (rc <= 0)
            return;
        c->proxy_pending = 0;
        dfws_http1_process(c);
        return;
    }
    if (c->paused || c->in.len || c->processing) {
        keep_rest(c, data, len);
        /* A client pipelining far ahead of us waits in the kernel. */
        if (c->in.len > 1024 * 1024)
            dfws_conn_read_stop(c);
        return;
    }
    execute(c, data, len);
}

void dfws_http1_on_eof(dfws_conn_t *c)
{
    /* A client that half-closes after its request still gets the response
     * only while the app has it in hand; like daphne and uvicorn we treat EOF
     * as the client leaving. */
    dfws_conn_close(c);
}

void dfws_http1_on_timer(dfws_conn_t *c, int kind)
{
    switch (kind) {
    case DFWS_TIMER_KEEPALIVE:
        dfws_conn_close(c);
        break;
    case DFWS_TIMER_HEADER:
        if (c->req && !c->req->response_started) {
            dfws_log_info("%s:%u: header section not complete in %.1f s", c->client_host,
                          c->client_port, c->server->cli->header_timeout);
            dfws_http1_error(c, 408);
        } else {
            dfws_conn_close(c);
        }
        break;
    case DFWS_TIMER_BODY:
        if (!c->req)
            break;
        if ((!c->reading && !c->paused) ||
            (c->req->expect_continue && !c->req->continue_sent)) {
            /* backpressure, or a client waiting for "100 Continue": the
             * application is not reading, the client is not to blame */
            dfws_conn_set_timer(c, DFWS_TIMER_BODY, c->server->cli->header_timeout);
            break;
        }
        dfws_log_info("%s:%u: request body stalled (%" PRIu64 " bytes received)", c->client_host,
                      c->client_port, c->req->body_received);
        dfws_http1_error(c, 408);
        break;
    case DFWS_TIMER_HTTP:
        if (c->req && !c->req->response_started) {
            dfws_log_warn("%s:%u: application did not respond in %.1f s", c->client_host,
                          c->client_port, c->server->cli->http_timeout);
            dfws_http1_error(c, 503);
        }
        break;
    default:
        break;
    }
}

/* ---- body and response, driven by the application ------------------------ */

void dfws_req_body_peek(dfws_req_t *r, const char **data, size_t *len, int *more)
{
    *data = r->body.base;
    *len = r->body.len;
    *more = !r->body_done;
}

void dfws_req_body_consume(dfws_req_t *r)
{
    if (r->body_done)
        r->body_delivered = 1;
    r->body.len = 0;
    if (r->body.cap > DFWS_BODY_HIGH * 2)
        dfws_buf_free(&r->body);
    dfws_conn_t *c = r->conn;
    if (c && !c->reading && !c->paused && !c->closing)
        dfws_conn_read_start(c);
}

void dfws_req_continue(dfws_req_t *r)
{
    if (!r->conn || !r->expect_continue || r->continue_sent || r->response_started || r->body_done)
        return;
    r->continue_sent = 1;
    if (r->conn->timer_kind == DFWS_TIMER_BODY) /* the body starts now */
        dfws_conn_set_timer(r->conn, DFWS_TIMER_BODY, r->conn->server->cli->header_timeout);
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
    dfws_conn_write(r->conn, &b, 1);
}

size_t dfws_req_write_pending(const dfws_req_t *r)
{
    return r->conn ? dfws_conn_write_pending(r->conn) : 0;
}

int dfws_req_response_start(dfws_req_t *r, int status, const char **err)
{
    if (r->disconnected)
        return -EPIPE; /* the client left: nothing to check, nothing to send */
    if (r->response_started) {
        *err = "http.response.start sent twice";
        return -EINVAL;
    }
    if (status < 100 || status > 599) {
        *err = "invalid HTTP status (not in 200..599)";
        return -EINVAL;
    }
    if (status < 200) {
        /* the client would take the next response as this request's */
        *err = "a 1xx status cannot be the response to a request";
        return -EINVAL;
    }
    if (!r->conn)
        return -EPIPE;
    r->response_started = 1;
    r->status = status;
    r->no_body = r->is_head || status < 200 || status == 204 || status == 304;
    dfws_buf_t *h = &r->resp_head;
    const char *reason = reason_phrase(status);
    dfws_buf_reset(h);
    if (dfws_buf_append(h, "HTTP/1.1 ", 9) || append_uint(h, (uint64_t)status) ||
        dfws_buf_append(h, " ", 1) || dfws_buf_append(h, reason, strlen(reason)) ||
        dfws_buf_append(h, "\r\n", 2))
        return -ENOMEM;
    if (r->conn->timer_kind == DFWS_TIMER_HTTP)
        dfws_conn_set_timer(r->conn, DFWS_TIMER_NONE, 0);
    return 0;
}

int dfws_req_response_header(dfws_req_t *r, const char *name, size_t nlen, const char *value,
                             size_t vlen, const char **err)
{
    if (!valid_token(name, nlen)) {
        *err = "invalid header name";
        return -EINVAL;
    }
    for (size_t i = 0; i < vlen; i++) {
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0') {
            *err = "invalid character in header value";
            return -EINVAL;
        }
    }
    if (nlen == 14 && !strncasecmp(name, "content-length", 14)) {
        char tmp[24];
        char *end;
        if (vlen == 0 || vlen >= sizeof(tmp)) {
            *err = "invalid content-length";
            return -EINVAL;
        }
        memcpy(tmp, value, vlen);
        tmp[vlen] = '\0';
        errno = 0;
        unsigned long long v = strtoull(tmp, &end, 10);
        if (errno || *end || !isdigit((unsigned char)tmp[0])) {
            *err = "invalid content-length";
            return -EINVAL;
        }
        if (r->resp_has_length) {
            if (v != r->resp_length) {
                *err = "conflicting content-length headers";
                return -EINVAL;
            }
            return 0; /* the same value twice is sent once */
        }
        r->resp_has_length = 1;
        r->resp_length = v;
    } else if (nlen == 17 && !strncasecmp(name, "transfer-encoding", 17)) {
        return 0; /* framing is ours to choose */
    } else if (nlen == 10 && !strncasecmp(name, "connection", 10)) {
        if (value_has_token(value, vlen, "close"))
            r->keep_alive = 0;
        return 0; /* we write our own Connection header */
    } else if (nlen == 6 && !strncasecmp(name, "server", 6)) {
        r->resp_has_server = 1;
    } else if (nlen == 4 && !strncasecmp(name, "date", 4)) {
        r->resp_has_date = 1;
    }
    if (dfws_buf_reserve(&r->resp_head, nlen + vlen + 4))
        return -ENOMEM;
    dfws_buf_append(&r->resp_head, name, nlen);
    dfws_buf_append(&r->resp_head, ": ", 2);
    dfws_buf_append(&r->resp_head, value, vlen);
    dfws_buf_append(&r->resp_head, "\r\n", 2);
    return 0;
}

void dfws_http1_access_log(dfws_conn_t *c, const char *action, const char *target, size_t tlen,
                           int status, int64_t size)
{
    dfws_access_entry_t e = {action, target, tlen, status, size, c->req};
    dfws_access_log_add(&c->server->access_log, c, &e);
}

/* The response is complete: keep the connection for the next request or
 * close it, then go on with pipelined input. */
static void complete(dfws_req_t *r)
{
    dfws_conn_t *c = r->conn;
    dfws_server_t *s = c->server;
    r->response_done = 1;
    if (dfws_metrics)
        dfws_metrics_request(r->method, r->status, uv_hrtime() - r->start_ns);
    if (s->access_log.on) {
        dfws_access_entry_t e = {llhttp_method_name(r->method), r->head.base + r->url_off,
                                 r->url_len, r->status, (int64_t)r->resp_sent, r};
        dfws_access_log_add(&s->access_log, c, &e);
    }
    int reuse = r->keep_alive && !s->shutting_down && r->body_done &&
                !(r->resp_has_length && r->resp_sent < r->resp_length && !r->no_body);
    detach(c, 0);
    if (c->closing)
        return;
    if (!reuse) {
        dfws_conn_finish(c);
        return;
    }
    dfws_conn_set_timer(c, DFWS_TIMER_KEEPALIVE, s->cli->keep_alive_timeout);
    if (c->paused) {
        c->paused = 0;
        llhttp_resume(&c->parser);
    }
    dfws_http1_process(c);
}

int dfws_req_response_body(dfws_req_t *r, const char *data, size_t len, int more, const char **err)
{
    if (r->disconnected)
        return -EPIPE;
    if (!r->response_started) {
        *err = "http.response.body sent before http.response.start";
        return -EINVAL;
    }
    if (r->response_done) {
        *err = "http.response.body sent after the response was complete";
        return -EINVAL;
    }
    dfws_conn_t *c = r->conn;
    if (!c)
        return -EPIPE;
    dfws_server_t *s = c->server;
    uv_buf_t bufs[4];
    unsigned n = 0;
    char chunk_line[24];

    if (!r->head_written) {
        dfws_buf_t *h = &r->resp_head;
        if (!r->resp_has_length && !(r->no_body && !r->is_head)) {
            if (!more) {
                dfws_buf_append(h, "Content-Length: ", 16);
                append_uint(h, len);
                dfws_buf_append(h, "\r\n", 2);
                r->resp_has_length = 1;
                r->resp_length = len;
            } else if (r->http_major == 1 && r->http_minor >= 1) {
                dfws_buf_append(h, "Transfer-Encoding: chunked\r\n", 28);
                r->chunked = !r->no_body;
            } else {
                r->keep_alive = 0; /* HTTP/1.0: the end of the body is the close */
            }
        }
        if (!r->resp_has_date) {
            size_t dl;
            const char *d = dfws_server_date_header(s, &dl);
            dfws_buf_append(h, d, dl);
        }
        if (!r->resp_has_server && s->server_header)
            dfws_buf_append(h, s->server_header, s->server_header_len);
        if (!r->keep_alive || s->shutting_down || !r->body_done) {
            /* A body the app did not wait for is not drained: we close. */
            if (!r->body_done)
                r->keep_alive = 0;
            dfws_buf_append(h, "Connection: close\r\n", 19);
        } else if (r->http_major == 1 && r->http_minor == 0) {
            dfws_buf_append(h, "Connection: keep-alive\r\n", 24);
        }
        if (dfws_buf_append(h, "\r\n", 2))
            return -ENOMEM;
        bufs[n++] = uv_buf_init(h->base, (unsigned)h->len);
        r->head_written = 1;
    }
    if (!r->no_body && len) {
        if (r->resp_has_length && r->resp_sent + len > r->resp_length) {
            dfws_log_warn("application sent more than its Content-Length; truncating");
            len = (size_t)(r->resp_length - r->resp_sent);
        }
        if (r->chunked && len) {
            int l = snprintf(chunk_line, sizeof(chunk_line), "%zx\r\n", len);
            bufs[n++] = uv_buf_init(chunk_line, (unsigned)l);
        }
        if (len)
            bufs[n++] = uv_buf_init((char *)data, (unsigned)len);
        if (r->chunked && len)
            bufs[n++] = uv_buf_init("\r\n", 2);
        r->resp_sent += len;
    }
    if (n && dfws_conn_write(c, bufs, n))
        return -EPIPE;
    if (r->chunked && !more) {
        uv_buf_t end = uv_buf_init("0\r\n\r\n", 5);
        if (dfws_conn_write(c, &end, 1))
            return -EPIPE;
    }
    if (r->head_written && r->resp_head.cap > 4096)
        dfws_buf_free(&r->resp_head);
    if (!more)
        complete(r);
    return 0;
}

void dfws_req_response_cancel(dfws_req_t *r)
{
    if (!r->response_started || r->head_written)
        return;
    r->response_started = 0;
    r->resp_has_length = r->resp_has_server = r->resp_has_date = 0;
    r->no_body = r->chunked = 0;
    r->resp_length = 0;
    r->status = 0;
    dfws_buf_reset(&r->resp_head);
    /* response_start stopped the HTTP timer: the application is again
     * expected to answer in time */
    if (r->conn && r->conn->timer_kind == DFWS_TIMER_NONE)
        arm_request_timer(r->conn, r);
}

void dfws_req_abort(dfws_req_t *r, int status)
{
    dfws_conn_t *c = r->conn;
    const char *err;
    if (!c || r->response_done)
        return;
    /* a head refused before it was written leaves nothing on the wire */
    dfws_req_response_cancel(r);
    if (r->response_started) {
        /* A partial response cannot be ended cleanly: the client must see
         * the connection drop rather than a short body taken as complete. */
        detach(c, 1);
        dfws_conn_close(c);
        return;
    }
    const char *reason = reason_phrase(status);
    char body[64];
    int bl = snprintf(body, sizeof(body), "%s\n", reason);
    dfws_req_response_start(r, status, &err);
    dfws_req_response_header(r, "Content-Type", 12, "text/plain; charset=utf-8", 25, &err);
    dfws_req_response_body(r, body, (size_t)bl, 0, &err);
}
