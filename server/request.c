/* Requests: lifetime, the one detach, header lookup and the HTTP syntax
 * every protocol and user shares (request.h). The response itself is the
 * protocol's (r->ops). */
#include "request.h"
#include "conn.h"

#include <stdio.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

dfws_req_t *dfws_req_new(dfws_server_t *s, dfws_conn_t *c, const dfws_req_ops_t *ops)
{
    dfws_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->refs = 1;
    r->conn = c;
    r->server = s;
    r->ops = ops;
    return r;
}

void dfws_req_retain(dfws_req_t *r)
{
    assert(r->refs > 0);
    r->refs++;
}

void dfws_req_release(dfws_req_t *r)
{
    assert(r->refs > 0);
    if (--r->refs > 0)
        return;
    assert(!r->conn); /* the protocol's reference goes with the detach */
    dfws_buf_free(&r->head);
    dfws_buf_free(&r->body);
    dfws_buf_free(&r->resp_head);
    free(r->hdrs);
    free(r);
}

const dfws_hdr_t *dfws_req_header(const dfws_req_t *r, const char *name, size_t nlen)
{
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const dfws_hdr_t *h = &r->hdrs[i];
        if (h->name_len == nlen && !strncasecmp(r->head.base + h->name_off, name, nlen))
            return h;
    }
    return NULL;
}

const char *dfws_req_header_value(const dfws_req_t *r, const char *name, size_t nlen, size_t *vlen)
{
    const dfws_hdr_t *h = dfws_req_header(r, name, nlen);
    if (!h)
        return NULL;
    *vlen = h->value_len;
    return r->head.base + h->value_off;
}

int dfws_req_is_websocket(const dfws_req_t *r)
{
    if (!r->upgrade)
        return 0;
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const dfws_hdr_t *h = &r->hdrs[i];
        if (h->name_len == 7 && !strncasecmp(r->head.base + h->name_off, "upgrade", 7) &&
            dfws_http_list_has(r->head.base + h->value_off, h->value_len, "websocket"))
            return 1;
    }
    return 0;
}

void dfws_req_peer(const dfws_req_t *r, dfws_peer_t *peer)
{
    const dfws_conn_t *c = r->conn;
    assert(c);
    if (c->fwd_client) {
        snprintf(peer->client_host, sizeof(peer->client_host), "%s", c->fwd_host);
        peer->client_port = c->fwd_port;
    } else {
        snprintf(peer->client_host, sizeof(peer->client_host), "%s", c->client_host);
        peer->client_port = c->client_port;
    }
    peer->has_client = c->fwd_client || !c->tr.is_unix;
    snprintf(peer->server_host, sizeof(peer->server_host), "%s", c->server_host);
    peer->server_port = c->server_port;
    peer->scheme = c->fwd_scheme;
    peer->tls = (uint8_t)dfws_transport_is_tls(&c->tr);
}

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
    if (r->conn)
        r->ops->body_consumed(r);
}

/* ---- HTTP syntax ----------------------------------------------------------- */

int dfws_http_token_valid(const char *s, size_t n)
{
    /* RFC 9110 5.6.2 tchar; a table, not isalnum(): no locale may widen it */
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (ch && memchr(extra, ch, sizeof(extra) - 1))))
            return 0;
    }
    return 1;
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

int dfws_http_list_has(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token), pos = 0, n;
    const char *e;
    while (dfws_http_list_next(v, len, &pos, &e, &n))
        if (n == tl && !strncasecmp(e, token, tl))
            return 1;
    return 0;
}

const char *dfws_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}
