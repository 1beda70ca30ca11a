#include "respond.h"
#include "context.h"
#include "log.h"
#include "metrics.h"
#include "request.h"

#include <string.h>

static void write_simple_response(dfws_conn_t *c, int status)
{
    dfws_buf_t b = {0};
    const char *reason = dfws_http_reason(status);
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

void dfws_respond_error(dfws_conn_t *c, int status, int method_known)
{
    if (c->closing || c->lingering)
        return;
    dfws_req_t *r = c->req;
    int can_answer = !r || !r->response_started;
    if (status >= 500)
        dfws_log_warn("%s:%u: answering %d", c->client_host, c->client_port, status);
    else
        dfws_log_info("%s:%u: bad request, answering %d", c->client_host, c->client_port, status);
    if (dfws_metrics && can_answer) /* before the detach: r may be freed there */
        dfws_metrics_request(r && method_known ? r->method : -1, status,
                             r ? uv_hrtime() - r->start_ns : 0);
    if (r)
        dfws_server_detach(r, 1);
    if (!can_answer) {
        dfws_conn_close(c);
        return;
    }
    write_simple_response(c, status);
    dfws_conn_finish(c);
}

void dfws_respond_log(dfws_conn_t *c, const char *action, const char *target, size_t tlen,
                      int status, int64_t size)
{
    dfws_access_entry_t e = {action, target, tlen, status, size, c->req};
    dfws_access_log_add(&c->server->access_log, c, &e);
}
