#include "server.h"
#include "conn.h"
#include "http1.h"
#include "log.h"
#include "static.h"
#include "ws_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
    if (s->is_unix ? uv_pipe_init(s->loop, &s->spare.pipe, 0)
                   : uv_tcp_init(s->loop, &s->spare.tcp))
        return; /* cannot happen: neither allocates */
    s->spare.handle.data = s;
    s->spare_busy = 1;
    if (uv_accept(&s->listener.stream, &s->spare.stream) == 0)
        dfws_log_error("connection refused: %s", why);
    uv_close(&s->spare.handle, on_spare_closed);
}

static void accept_one(dfws_server_t *s)
{
    int rc = dfws_conn_accept(s);
    if (rc)
        refuse(s, rc == UV_ENOMEM ? "out of memory" : uv_strerror(rc));
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

int dfws_server_start(dfws_server_t *s, uv_loop_t *loop, const dfws_cli_t *cli, int fd,
                      int is_unix, const dfws_app_ops_t *ops, void *ops_ud)
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
    if (dfws_proxy_allow_parse(&s->proxy_allow, cli->forwarded_allow_ips, err, sizeof(err)))
        return UV_EINVAL; /* the command line was checked */
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
    /* Connections between requests go now; the others close when their
     * response is complete (http1.c checks shutting_down). */
    dfws_conn_t *c = s->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->ws)
            dfws_wsconn_shutdown(c->ws, restart ? 1012 : 1001);
        else if (!c->req && !(restart && c->timer_kind == DFWS_TIMER_HEADER))
            dfws_conn_close(c); /* between two requests (or fresh, when stopping) */
    }
}

void dfws_server_count_request(dfws_server_t *s)
{
    if (++s->requests_total == s->requests_limit && s->on_requests_limit)
        s->on_requests_limit(s);
}

void dfws_server_close(dfws_server_t *s)
{
    s->shutting_down = 1;
    if (s->listening) {
        s->listening = 0;
        uv_close(&s->listener.handle, NULL);
    }
    while (s->conns)
        dfws_conn_close(s->conns);
    dfws_access_log_close(&s->access_log);
    free(s->server_header);
    s->server_header = NULL;
    dfws_static_free(s);
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
