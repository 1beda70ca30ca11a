/* libFuzzer driver for the HTTP/1 layer (server/http1.c): arbitrary bytes
 * from a client on a real connection (one end of a socketpair), fed in two
 * pieces; requests that parse get an answer as an application would give
 * one. Nothing may crash, leak or read out of bounds. */
#include "conn.h"
#include "http1.h"
#include "log.h"
#include "request.h"
#include "server.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static dfws_req_t *pending[64];
static int npending;

static int on_request(void *ud, dfws_req_t *r)
{
    (void)ud;
    if (npending == 64)
        return -1;
    dfws_req_retain(r);
    r->app = r;
    pending[npending++] = r;
    return 0;
}

static void on_detach(void *ud, dfws_req_t *r)
{
    (void)ud;
    (void)r;
}

static const dfws_app_ops_t ops = {.http_request = on_request, .http_detach = on_detach};

static void answer_all(void)
{
    for (int i = 0; i < npending; i++) {
        dfws_req_t *r = pending[i];
        const char *data, *err;
        size_t len;
        int more;
        dfws_req_body_peek(r, &data, &len, &more);
        dfws_req_body_consume(r);
        if (!r->response_started) {
            dfws_req_response_start(r, 200, &err);
            dfws_req_response_header(r, "X-Len", 5, "1", 1, &err);
        }
        dfws_req_response_body(r, "ok", 2, more, &err);
    }
}

static void release_all(void)
{
    for (int i = 0; i < npending; i++) {
        pending[i]->app = NULL;
        dfws_req_release(pending[i]);
    }
    npending = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dfws_cli_t cli;
    static int ready;
    uv_loop_t loop;
    dfws_server_t server;
    int sv[2];
    if (!ready) {
        dfws_cli_defaults(&cli);
        cli.limit_request_headers = 4096;
        cli.limit_request_body = 1 << 16;
        dfws_log_set_level(DFWS_LOG_ERROR + 1);
        ready = 1;
    }
    if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 0;
    uv_loop_init(&loop);
    memset(&server, 0, sizeof(server));
    server.loop = &loop;
    server.cli = &cli;
    server.ops = &ops;
    server.is_unix = 1;
    dfws_conn_t *c = dfws_http1_conn_new(&server);
    if (!c || dfws_conn_open_fd(c, &loop, sv[0], 1))
        abort(); /* the set-up, not the input: nothing to fuzz without it */
    dfws_conn_start(c, &server.conns, &dfws_http1_proto);
    dfws_http1_start(c);

    size_t split = data[0] % size;
    data++;
    size--;
    if (split > size)
        split = size;
    dfws_http1_on_data(c, (const char *)data, split);
    answer_all();
    if (!c->closing && !c->lingering)
        dfws_http1_on_data(c, (const char *)data + split, size - split);
    answer_all();
    dfws_conn_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    release_all();
    uv_loop_close(&loop);
    close(sv[1]);
    return 0;
}
