#include "server.h"
#include "conn.h"
#include "http1.h"
#include "log.h"
#include "static.h"
#include "ws_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void accept_one(dfws_server_t *s);

static void on_spare_closed(uv_handle_t *h)
{
    dfws_server_t *s = h->data;
    s->spare_busy = 0;
    if (s->spare_waiting) {
        s->spare_waiting = 0;
        if (s->listening)
            accept_one(s);
    }
}

static void refuse(dfws_server_t *s, const char *why)
{
    if (s->spare_busy) {
        s->spare_waiting = 1;
        return;
    }
    if (s->is_unix ? uv_pipe_init(s->loop, &s->spare.pipe, 0) : uv_tcp_init(s->loop, &s->spare.tcp))
        return; /* cannot happen: neither allocates */
    s->spare.handle.data = s;
    s->spare_busy = 1;
    if (uv_accept(&s->listener.stream, &s->spare.stream) == 0)
        dfws_log_error("connection refused: %s", why);
    uv_close(&s->spare.handle, on_spare_closed);
}

/* A new connection speaks HTTP/1 first; its memory is HTTP/1's. */
static void accept_one(dfws_server_t *s)
{
    dfws_conn_t *c = dfws_http1_conn_new(s);
    if (!c) {
        refuse(s, "out of memory");
        return;
    }
    int rc = dfws_conn_accept(c, s->transport ? s->transport : &dfws_transport_plain,
                              s->transport_ctx, &s->read_buf, s->loop, &s->listener.stream,
                              s->is_unix);
    if (rc) {
        if (!c->tr.open) {
            c->dealloc(c);
            refuse(s, uv_strerror(rc));
        }
        return; /* else taken, and closing */
    }
    dfws_conn_start(c, &s->conns, &dfws_http1_proto);
    dfws_http1_start(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    dfws_server_t *s = listener->data;
    if (status < 0) {
        dfws_log_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    if (!s->listening)
        return;
    accept_one(s);
}

int dfws_server_start(dfws_server_t *s, uv_loop_t *loop, const dfws_cli_t *cli, int fd, int is_unix,
                      const dfws_app_ops_t *ops, void *ops_ud)
{
    int rc;
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->cli = cli;
    s->ops = ops;
    s->ops_ud = ops_ud;
    s->is_unix = is_unix;
    s->read_buf.base = s->read_mem;
    s->read_buf.len = sizeof(s->read_mem);
    char err[128];
    if (dfws_proxy_allow_parse(&s->proxy.allow, cli->forwarded_allow_ips, err, sizeof(err)))
        return UV_EINVAL; /* the command line was checked */
    s->proxy.headers = cli->proxy_headers;
    s->proxy.host_header = cli->proxy_headers_host;
    s->proxy.port_header = cli->proxy_headers_port;
    rc = dfws_access_log_init(&s->access_log, loop, cli->access_log_format);
    if (rc)
        return rc;
    rc = is_unix ? uv_pipe_init(loop, &s->listener.pipe, 0) : uv_tcp_init(loop, &s->listener.tcp);
    if (rc)
        return rc;
    s->listener.handle.data = s;
    rc = is_unix ? uv_pipe_open(&s->listener.pipe, fd) : uv_tcp_open(&s->listener.tcp, fd);
    if (rc == 0)
        rc = uv_listen(&s->listener.stream, cli->backlog, on_connection);
    if (rc) {
        uv_close(&s->listener.handle, NULL);
        dfws_access_log_close(&s->access_log);
        return rc;
    }
    s->listening = 1;
    if (cli->server_name) {
        size_t n = strlen(cli->server_name) + 12;
        if ((s->server_header = malloc(n)))
            s->server_header_len = (size_t)snprintf(s->server_header, n, "Server: %s\r\n",
                                                    cli->server_name);
    }
    dfws_wsconn_config(s);
    return 0;
}

void dfws_server_shutdown(dfws_server_t *s, int restart)
{
    s->shutting_down = 1;
    if (s->listening) {
        s->listening = 0;
        uv_close(&s->listener.handle, NULL);
    }
    /* Each protocol decides: HTTP/1 closes connections between requests
     * now and the others once their response is complete (it checks
     * shutting_down); WebSockets are told 1001 or 1012. */
    dfws_conn_t *c = s->conns.head, *next;
    for (; c; c = next) {
        next = c->next;
        c->proto->shutdown(c, restart);
    }
}

void dfws_server_close(dfws_server_t *s)
{
    s->shutting_down = 1;
    if (s->listening) {
        s->listening = 0;
        uv_close(&s->listener.handle, NULL);
    }
    while (s->conns.head)
        dfws_conn_close(s->conns.head);
    dfws_access_log_close(&s->access_log);
    free(s->server_header);
    s->server_header = NULL;
    dfws_static_free(s);
}
