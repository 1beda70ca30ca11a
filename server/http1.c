#include "http1.h"
#include "context.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "request.h"
#include "respond.h"
#include "static.h"
#include "ws_conn.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A connection while it speaks HTTP/1, and after (the memory stays until
 * the connection is freed; an upgrade only stops using the fields). */
typedef struct h1_s {
    dfws_conn_t conn; /* first: a dfws_conn_t * is an h1_t * */
    llhttp_t parser;
    dfws_buf_t in;           /* received bytes not parsed yet (parser paused) */
    size_t head_bytes;       /* bytes of the current request head before this read, for the limit */
    const char *head_mark;   /* where head bytes start counting in the data being parsed */
    const char *feed_end;    /* end of the data being parsed */
    int error_status;        /* status to answer when the parser stops with an error */
    uint8_t hstate;          /* header parsing: 0 none, 1 in a name, 2 in a value, 3 after a
                             * value's line ended */
    unsigned paused : 1;     /* parser paused after a complete request */
    unsigned processing : 1; /* inside process(): do not re-enter */
    unsigned in_head : 1;    /* between a request's first byte and its headers' end */
    unsigned proxy_pending : 1; /* --proxy-protocol: its header has not been read yet */
} h1_t;

const size_t dfws_http1_conn_size = sizeof(h1_t);

/* request.h's method numbers are llhttp's */
_Static_assert((int)DFWS_METHOD_DELETE == (int)HTTP_DELETE &&
                   (int)DFWS_METHOD_GET == (int)HTTP_GET &&
                   (int)DFWS_METHOD_HEAD == (int)HTTP_HEAD &&
                   (int)DFWS_METHOD_POST == (int)HTTP_POST &&
                   (int)DFWS_METHOD_PUT == (int)HTTP_PUT &&
                   (int)DFWS_METHOD_CONNECT == (int)HTTP_CONNECT &&
                   (int)DFWS_METHOD_OPTIONS == (int)HTTP_OPTIONS,
               "method numbers");

const char *dfws_http_method_name(int method)
{
    /* llhttp_method_name() aborts on a number it does not know */
    switch (method) {
#define DFWS_METHOD_CASE(num, name, string)                                                        \
    case num:                                                                                      \
        return #string;
        HTTP_METHOD_MAP(DFWS_METHOD_CASE)
#undef DFWS_METHOD_CASE
    default:
        return "UNKNOWN";
    }
}

static inline h1_t *H(dfws_conn_t *c)
{
    return DFWS_CONTAINER_OF(c, h1_t, conn);
}

/* Whether HTTP/1 still speaks on the connection (no upgrade took it). */
static inline int speaking(const dfws_conn_t *c)
{
    return c->proto == &dfws_http1_proto;
}

static const dfws_req_ops_t req_ops;
static void on_eof(dfws_conn_t *c);
static void on_timer(dfws_conn_t *c, int kind);
static void process(dfws_conn_t *c);
static void http1_error(dfws_conn_t *c, int status);

/* ---- requests ---------------------------------------------------------- */

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

/* The request leaves the connection (response complete: gone 0; or the
 * client left). */
static void detach(dfws_conn_t *c, int gone)
{
    if (c->req)
        dfws_server_detach(c->req, gone);
}

static void http1_error(dfws_conn_t *c, int status)
{
    /* the method is known once the request line is parsed (metrics) */
    dfws_respond_error(c, status, c->req && !H(c)->in_head);
}

/* ---- parser callbacks ---------------------------------------------------- */

/* The request head counts every byte from the method to the end of the
 * header section, separators and whitespace included: `end` is the end of
 * the span just parsed, in the data llhttp_execute is working on, where
 * counting started at H(c)->head_mark (execute() adds up earlier reads). */
static int head_check(dfws_conn_t *c, const char *end)
{
    if (H(c)->head_bytes + (size_t)(end - H(c)->head_mark) >
        c->server->cli->limit_request_headers) {
        H(c)->error_status = 431;
        return -1;
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    dfws_conn_t *c = p->data;
    assert(speaking(c) && !c->req);
    dfws_req_t *r = dfws_req_new(c->server, c, &req_ops);
    if (!r) {
        H(c)->error_status = 503;
        return -1;
    }
    r->start_ns = uv_hrtime();
    c->req = r;
    H(c)->head_bytes = 0;
    H(c)->in_head = 0; /* on_method starts counting at the method's first byte */
    H(c)->hstate = 0;
    if (c->timer_kind != DFWS_TIMER_HEADER)
        dfws_conn_set_timer(c, DFWS_TIMER_HEADER, c->server->cli->header_timeout);
    return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
    dfws_conn_t *c = p->data;
    if (!H(c)->in_head) {
        H(c)->in_head = 1;
        H(c)->head_bytes = 0;
        H(c)->head_mark = at;
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
        H(c)->error_status = 414;
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
    if (len && !dfws_http_token_valid(at, len)) {
        H(c)->error_status = 400;
        return -1;
    }
    if (H(c)->hstate != 1) {
        /* Each field costs a slot here and a tuple in the scope, whatever
         * its size: their number is bounded too. */
        if (r->nhdrs >= DFWS_MAX_HEADERS) {
            H(c)->error_status = 431;
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
        H(c)->hstate = 1;
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
    if (H(c)->hstate == 3 || (H(c)->hstate == 2 && at != H(c)->head_mark)) {
        /* More value after the value's line ended: obs-fold (a line that
         * starts with whitespace). RFC 9112 5.2 lets us refuse it, and
         * proxies may read such a header differently. A value carried
         * over from the previous read goes on at the start of this one
         * (head_mark: the start of the data, as no method came in it). */
        H(c)->error_status = 400;
        return -1;
    }
    if (H(c)->hstate != 2) {
        h->value_off = (uint32_t)r->head.len;
        h->value_len = 0;
        H(c)->hstate = 2;
    }
    if (dfws_buf_append(&r->head, at, len))
        return -1;
    h->value_len += (uint32_t)len;
    /* llhttp ends a value span at the line's end or at the end of the data
     * given to it, where the value may go on in the next read */
    if (at + len < H(c)->feed_end)
        H(c)->hstate = 3;
    return 0;
}

static int header_is(const dfws_req_t *r, const dfws_hdr_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && !strncasecmp(r->head.base + h->name_off, name, n);
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

    H(c)->in_head = 0;
    r->method = p->method; /* known from here on, refused or not (metrics) */
    if ((status = head_error(r, p))) {
        H(c)->error_status = status;
        return -1;
    }
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->method = p->method;
    r->keep_alive = llhttp_should_keep_alive(p) ? 1 : 0;
    r->is_head = p->method == HTTP_HEAD;
    r->upgrade = p->upgrade ? 1 : 0;
    size_t el;
    const char *ev = dfws_req_header_value(r, "expect", 6, &el);
    if (ev && el == 12 && !strncasecmp(ev, "100-continue", 12))
        r->expect_continue = 1;
    if (s->cli->limit_request_body && (p->flags & F_CONTENT_LENGTH) &&
        p->content_length > s->cli->limit_request_body) {
        H(c)->error_status = 413;
        return -1;
    }
    if (!(p->flags & (F_CONTENT_LENGTH | F_CHUNKED)) ||
        ((p->flags & F_CONTENT_LENGTH) && p->content_length == 0))
        r->body_done = 1; /* no body: on_message_complete follows at once */
    dfws_proxy_resolve(c, r,
                       &s->proxy); /* the client a trusted proxy names, for the scope and the log */
    arm_request_timer(c, r);
    s->active_requests++;
    r->counted = 1;
    dfws_server_count_request(s);

    if (dfws_req_is_websocket(r) && s->ops->ws_request) {
        /* The WebSocket layer takes the connection over (it swaps itself
         * in as its protocol) and gets the bytes after the request head
         * once the parser stops at the upgrade point (HPE_PAUSED_UPGRADE). */
        if ((status = dfws_wsconn_start(c, r))) {
            H(c)->error_status = status;
            return -1;
        }
        return 0;
    }
    /* Static routes are answered here and never reach the application; a
     * response completed at once leaves the parser running on, unless the
     * connection is ending. */
    if (dfws_static_try(c, r))
        return c->closing || c->lingering ? HPE_PAUSED : 0;
    if (s->ops->http_request(s->ops_ud, r)) {
        H(c)->error_status = 500;
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
    if (c->server->cli->limit_request_body &&
        r->body_received > c->server->cli->limit_request_body) {
        H(c)->error_status = 413;
        return -1;
    }
    if (dfws_buf_append(&r->body, at, len)) {
        H(c)->error_status = 503;
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
    return c->req && speaking(c) ? HPE_PAUSED : 0;
}

/* Constant: llhttp calls these for every connection (the parser's `data`
 * is the connection). */
static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void dealloc(dfws_conn_t *c)
{
    dfws_buf_free(&H(c)->in);
    free(H(c));
}

dfws_conn_t *dfws_http1_conn_new(dfws_server_t *s)
{
    h1_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->conn.server = s;
    h->conn.dealloc = dealloc;
    return &h->conn;
}

void dfws_http1_start(dfws_conn_t *c)
{
    llhttp_init(&H(c)->parser, HTTP_REQUEST, &parser_settings);
    H(c)->parser.data = c;
    H(c)->proxy_pending = c->server->cli->proxy_protocol ? 1 : 0;
    dfws_conn_set_timer(c, DFWS_TIMER_HEADER, c->server->cli->header_timeout);
    dfws_conn_read_start(c);
}

int dfws_http1_paused(const dfws_conn_t *c)
{
    return H((dfws_conn_t *)c)->paused;
}

/* ---- feeding the parser ------------------------------------------------- */

static void keep_rest(dfws_conn_t *c, const char *rest, size_t len)
{
    if (len && dfws_buf_append(&H(c)->in, rest, len))
        dfws_conn_close(c);
}

static void execute(dfws_conn_t *c, const char *data, size_t len)
{
    H(c)->head_mark = data;
    H(c)->feed_end = data + len;
    llhttp_errno_t err = llhttp_execute(&H(c)->parser, data, len);
    if (c->closing)
        return;
    const char *pos = err == HPE_OK ? NULL : llhttp_get_error_pos(&H(c)->parser);
    size_t used = pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
    if (H(c)->in_head && (err == HPE_OK || err == HPE_PAUSED)) {
        /* a head spread over several reads: what this one brought counts,
         * whitespace llhttp skipped without a callback included */
        H(c)->head_bytes += (size_t)(data + used - H(c)->head_mark);
        if (H(c)->head_bytes > c->server->cli->limit_request_headers) {
            http1_error(c, 431);
            return;
        }
    }
    if (err == HPE_OK)
        return;
    if (err == HPE_PAUSED) {
        H(c)->paused = 1;
        keep_rest(c, data + used, len - used);
        return;
    }
    if (err == HPE_PAUSED_UPGRADE) {
        if (!speaking(c)) {
            /* ws_request accepted the upgrade: the bytes after the request
             * head belong to the WebSocket layer, now the connection's. */
            if (len > used)
                c->proto->data(c, data + used, len - used);
            return;
        }
        /* An upgrade nobody handles (h2c, ...) or a CONNECT is served as
         * plain HTTP, and so is what follows it on the connection. llhttp
         * stops here once the request is complete: when its response is
         * complete too, go on with the next request at once. */
        llhttp_resume_after_upgrade(&H(c)->parser);
        keep_rest(c, data + used, len - used);
        if (c->req)
            H(c)->paused = 1; /* complete() resumes */
        else if (!H(c)->processing)
            process(c);
        return;
    }
    int status = H(c)->error_status ? H(c)->error_status : 400;
    if (!H(c)->error_status)
        dfws_log_debug("%s:%u: HTTP parse error: %s (%s)", c->client_host, c->client_port,
                       llhttp_errno_name(err), llhttp_get_error_reason(&H(c)->parser));
    http1_error(c, status);
}

static void process(dfws_conn_t *c)
{
    if (H(c)->processing)
        return;
    H(c)->processing = 1;
    while (!c->closing && !H(c)->paused && speaking(c) && !c->lingering && H(c)->in.len) {
        dfws_buf_t chunk = H(c)->in;
        memset(&H(c)->in, 0, sizeof(H(c)->in));
        execute(c, chunk.base, chunk.len);
        dfws_buf_free(&chunk);
    }
    H(c)->processing = 0;
    if (!c->closing && !H(c)->paused && speaking(c) &&
        !(c->req && c->req->body.len >= DFWS_BODY_HIGH))
        dfws_conn_read_start(c);
}

void dfws_http1_on_data(dfws_conn_t *c, const char *data, size_t len)
{
    if (H(c)->proxy_pending) { /* the balancer's PROXY header comes before any HTTP */
        keep_rest(c, data, len);
        int rc = c->closing ? -1 : dfws_proxy_protocol_take(c, &H(c)->in, &c->server->proxy.allow);
        if (rc < 0)
            dfws_conn_close(c);
        if (rc <= 0)
            return;
        H(c)->proxy_pending = 0;
        process(c);
        return;
    }
    if (H(c)->paused || H(c)->in.len || H(c)->processing) {
        keep_rest(c, data, len);
        /* A client pipelining far ahead of us waits in the kernel. */
        if (H(c)->in.len > 1024 * 1024)
            dfws_conn_read_stop(c);
        return;
    }
    execute(c, data, len);
}

static void on_eof(dfws_conn_t *c)
{
    /* A client that half-closes after its request still gets the response
     * only while the app has it in hand; like daphne and uvicorn we treat EOF
     * as the client leaving. */
    dfws_conn_close(c);
}

static void on_timer(dfws_conn_t *c, int kind)
{
    switch (kind) {
    case DFWS_TIMER_KEEPALIVE:
        dfws_conn_close(c);
        break;
    case DFWS_TIMER_HEADER:
        if (c->req && !c->req->response_started) {
            dfws_log_info("%s:%u: header section not complete in %.1f s", c->client_host,
                          c->client_port, c->server->cli->header_timeout);
            http1_error(c, 408);
        } else {
            dfws_conn_close(c);
        }
        break;
    case DFWS_TIMER_BODY:
        if (!c->req)
            break;
        if ((!c->reading && !H(c)->paused) || (c->req->expect_continue && !c->req->continue_sent)) {
            /* backpressure, or a client waiting for "100 Continue": the
             * application is not reading, the client is not to blame */
            dfws_conn_set_timer(c, DFWS_TIMER_BODY, c->server->cli->header_timeout);
            break;
        }
        dfws_log_info("%s:%u: request body stalled (%" PRIu64 " bytes received)", c->client_host,
                      c->client_port, c->req->body_received);
        http1_error(c, 408);
        break;
    case DFWS_TIMER_HTTP:
        if (c->req && !c->req->response_started) {
            dfws_log_warn("%s:%u: application did not respond in %.1f s", c->client_host,
                          c->client_port, c->server->cli->http_timeout);
            http1_error(c, 503);
        }
        break;
    default:
        break;
    }
}

/* ---- body and response, driven by the application ------------------------ */

/* The application took the buffered body: read on (request.c emptied it). */
static void body_consumed(dfws_req_t *r)
{
    dfws_conn_t *c = r->conn;
    if (!c->reading && !H(c)->paused && !c->closing)
        dfws_conn_read_start(c);
}

static void send_continue(dfws_req_t *r)
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

static size_t write_pending(const dfws_req_t *r)
{
    return dfws_conn_write_pending(r->conn);
}

static int response_start(dfws_req_t *r, int status, const char **err)
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
    const char *reason = dfws_http_reason(status);
    dfws_buf_reset(h);
    if (dfws_buf_append(h, "HTTP/1.1 ", 9) || append_uint(h, (uint64_t)status) ||
        dfws_buf_append(h, " ", 1) || dfws_buf_append(h, reason, strlen(reason)) ||
        dfws_buf_append(h, "\r\n", 2))
        return -ENOMEM;
    if (r->conn->timer_kind == DFWS_TIMER_HTTP)
        dfws_conn_set_timer(r->conn, DFWS_TIMER_NONE, 0);
    return 0;
}

static int response_header(dfws_req_t *r, const char *name, size_t nlen, const char *value,
                           size_t vlen, const char **err)
{
    if (!dfws_http_token_valid(name, nlen)) {
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
        if (dfws_http_list_has(value, vlen, "close"))
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

/* The response is complete: keep the connection for the next request or
 * close it, then go on with pipelined input. */
static void complete(dfws_req_t *r)
{
    dfws_conn_t *c = r->conn;
    assert(c && c->req == r && !r->response_done); /* HTTP/1, or a refused upgrade */
    dfws_server_t *s = c->server;
    r->response_done = 1;
    if (dfws_metrics)
        dfws_metrics_request(r->method, r->status, uv_hrtime() - r->start_ns);
    if (s->access_log.on) {
        dfws_access_entry_t e = {llhttp_method_name(r->method),
                                 r->head.base + r->url_off,
                                 r->url_len,
                                 r->status,
                                 (int64_t)r->resp_sent,
                                 r};
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
    if (H(c)->paused) {
        H(c)->paused = 0;
        llhttp_resume(&H(c)->parser);
    }
    process(c);
}

static int response_body(dfws_req_t *r, const char *data, size_t len, int more, const char **err)
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

static void response_cancel(dfws_req_t *r)
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

static void abort_response(dfws_req_t *r, int status)
{
    dfws_conn_t *c = r->conn;
    const char *err;
    if (!c || r->response_done)
        return;
    /* a head refused before it was written leaves nothing on the wire */
    response_cancel(r);
    if (r->response_started) {
        /* A partial response cannot be ended cleanly: the client must see
         * the connection drop rather than a short body taken as complete. */
        detach(c, 1);
        dfws_conn_close(c);
        return;
    }
    const char *reason = dfws_http_reason(status);
    char body[64];
    int bl = snprintf(body, sizeof(body), "%s\n", reason);
    response_start(r, status, &err);
    response_header(r, "Content-Type", 12, "text/plain; charset=utf-8", 25, &err);
    response_body(r, body, (size_t)bl, 0, &err);
}

static const dfws_req_ops_t req_ops = {
    .response_start = response_start,
    .response_header = response_header,
    .response_body = response_body,
    .response_cancel = response_cancel,
    .abort = abort_response,
    .body_consumed = body_consumed,
    .send_continue = send_continue,
    .write_pending = write_pending,
};

/* ---- the connection's events (conn.h) ------------------------------------- */

static void on_drain(dfws_conn_t *c)
{
    dfws_req_t *r = c->req;
    if (r && r->app_waiting_drain && dfws_conn_write_pending(c) < DFWS_WRITE_LOW) {
        r->app_waiting_drain = 0;
        if (r->local)
            r->local_ops->drain(r);
        else
            c->server->ops->http_drain(c->server->ops_ud, r);
    }
}

static void on_close(dfws_conn_t *c)
{
    detach(c, 1);
}

static void on_shutdown(dfws_conn_t *c, int restart)
{
    /* between two requests (or fresh, when stopping): now; the others once
     * their response is complete (complete() checks shutting_down) */
    if (!c->req && !(restart && c->timer_kind == DFWS_TIMER_HEADER))
        dfws_conn_close(c);
}

const dfws_proto_t dfws_http1_proto = {
    .name = "http/1.1",
    .data = dfws_http1_on_data,
    .eof = on_eof,
    .timer = on_timer,
    .drain = on_drain,
    .close = on_close,
    .shutdown = on_shutdown,
    .free = NULL, /* dealloc frees HTTP/1's state with the connection */
};
