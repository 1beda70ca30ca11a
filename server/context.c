/* The state the protocols of one server share (context.h). */
#include "context.h"
#include "request.h"

#include <assert.h>

#include <stdio.h>
#include <time.h>

void dfws_server_count_request(dfws_server_t *s)
{
    if (++s->requests_total == s->requests_limit && s->on_requests_limit)
        s->on_requests_limit(s);
}

const char *dfws_server_date(dfws_server_t *s)
{
    uint64_t now = uv_now(s->loop);
    if (!s->date[0] || now - s->date_ms >= 1000) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_ms = now;
        int n = snprintf(s->date_header, sizeof(s->date_header), "Date: %s\r\n", s->date);
        s->date_header_len = n > 0 ? (size_t)n : 0;
    }
    return s->date;
}

const char *dfws_server_date_header(dfws_server_t *s, size_t *len)
{
    dfws_server_date(s);
    *len = s->date_header_len;
    return s->date_header;
}

void dfws_server_detach(dfws_req_t *r, int gone)
{
    dfws_server_t *s = r->server;
    dfws_conn_t *c = r->conn;
    assert(c);
    if (c->req == r)
        c->req = NULL;
    r->conn = NULL;
    if (!r->response_done)
        r->disconnected = gone ? 1 : 0;
    if (r->counted) {
        r->counted = 0;
        s->active_requests--;
    }
    if (r->local)
        r->local_ops->detach(r);
    if (r->app && s->ops->http_detach)
        s->ops->http_detach(s->ops_ud, r);
    dfws_req_release(r);
}
