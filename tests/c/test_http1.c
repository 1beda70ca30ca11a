/* Unit tests for server/http1.c: requests fed in every chunking (whole, every
 * split in two, one byte at a time) through a real connection whose socket
 * is one end of a socketpair; responses are read from the other end. */
#include "conn.h"
#include "http1.h"
#include "log.h"
#include "request.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"


#define MAX_REQS 8
typedef struct {
    char method[16];
    char url[256];
    char headers[1024]; /* "name=value;" for each header */
    char body[4096];
    size_t body_len;
    int minor, keep_alive, responded;
    dfws_req_t *req;
} seen_t;

static seen_t seen[MAX_REQS];
static int nseen;

static int mock_request(void *ud, dfws_req_t *r)
{
    (void)ud;
    if (nseen >= MAX_REQS)
        return -1;
    seen_t *s = &seen[nseen++];
    memset(s, 0, sizeof(*s));
    snprintf(s->method, sizeof(s->method), "%s", dfws_http_method_name(r->method));
    snprintf(s->url, sizeof(s->url), "%.*s", (int)r->url_len, r->head.base + r->url_off);
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const dfws_hdr_t *h = &r->hdrs[i];
        size_t used = strlen(s->headers);
        snprintf(s->headers + used, sizeof(s->headers) - used, "%.*s=%.*s;", (int)h->name_len,
                 r->head.base + h->name_off, (int)h->value_len, r->head.base + h->value_off);
    }
    s->minor = r->http_minor;
    s->keep_alive = r->keep_alive;
    s->req = r;
    r->app = s;
    dfws_req_retain(r);
    return 0;
}

static void mock_detach(void *ud, dfws_req_t *r)
{
    (void)ud;
    (void)r;
}

static const dfws_app_ops_t ops = {
    .http_request = mock_request,
    .http_detach = mock_detach,
};

/* The application side: take body bytes, answer complete requests in order. */
static void drive_app(void)
{
    for (int i = 0; i < nseen; i++) {
        seen_t *s = &seen[i];
        if (s->responded)
            continue;
        dfws_req_t *r = s->req;
        const char *data;
        size_t len;
        int more;
        dfws_req_body_peek(r, &data, &len, &more);
        if (len && s->body_len + len < sizeof(s->body)) {
            memcpy(s->body + s->body_len, data, len);
            s->body_len += len;
        }
        dfws_req_body_consume(r);
        if (more)
            return;
        const char *err;
        char body[64];
        int bl = snprintf(body, sizeof(body), "ok %d", i);
        s->responded = 1;
        dfws_req_response_start(r, 200, &err);
        dfws_req_response_body(r, body, (size_t)bl, 0, &err);
        r->app = NULL;
        dfws_req_release(r);
    }
}

typedef struct {
    uv_loop_t loop;
    dfws_server_t server;
    dfws_cli_t cli;
    dfws_conn_t *conn;
    int peer;
    char out[16384];
    size_t out_len;
} rig_t;

static void rig_open(rig_t *t, size_t limit_headers, size_t limit_body)
{
    int sv[2];
    memset(t, 0, sizeof(*t));
    MUST(uv_loop_init(&t->loop) == 0);
    dfws_cli_defaults(&t->cli);
    t->cli.limit_request_headers = limit_headers;
    t->cli.limit_request_body = limit_body;
    t->cli.server_name = "test";
    t->server.loop = &t->loop;
    t->server.cli = &t->cli;
    t->server.ops = &ops;
    t->server.is_unix = 1;
    t->server.server_header = strdup("Server: test\r\n");
    t->server.server_header_len = strlen(t->server.server_header);
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    t->peer = sv[1];
    fcntl(t->peer, F_SETFL, O_NONBLOCK);
    dfws_conn_t *c = dfws_http1_conn_new(&t->server);
    MUST(c);
    MUST(dfws_conn_open_fd(c, &t->loop, sv[0], 1) == 0);
    dfws_conn_start(c, &t->server.conns, &dfws_http1_proto);
    dfws_http1_start(c);
    t->conn = c;
    nseen = 0;
}

static void rig_collect(rig_t *t)
{
    uv_run(&t->loop, UV_RUN_NOWAIT);
    ssize_t n;
    while ((n = read(t->peer, t->out + t->out_len, sizeof(t->out) - 1 - t->out_len)) > 0)
        t->out_len += (size_t)n;
    t->out[t->out_len] = '\0';
}

/* Closes everything and checks the loop ends with no handle left. */
static int rig_close(rig_t *t)
{
    if (!t->conn->closing)
        dfws_conn_close(t->conn);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < nseen; i++)
        if (!seen[i].responded) {
            seen[i].req->app = NULL;
            dfws_req_release(seen[i].req);
        }
    close(t->peer);
    free(t->server.server_header);
    CHECK_OR_RETURN(-1, uv_loop_close(&t->loop) == 0, "loop not closed clean");
    return 0;
}

/* Feeds `in` split at `split` (0 = whole) or byte by byte (split = -1). */
static void feed(rig_t *t, const char *in, size_t len, long split)
{
    if (split == 0) {
        dfws_http1_on_data(t->conn, in, len);
        drive_app();
    } else if (split < 0) {
        for (size_t i = 0; i < len && !t->conn->closing && !t->conn->lingering; i++) {
            dfws_http1_on_data(t->conn, in + i, 1);
            drive_app();
        }
    } else {
        dfws_http1_on_data(t->conn, in, (size_t)split);
        drive_app();
        if (!t->conn->closing && !t->conn->lingering)
            dfws_http1_on_data(t->conn, in + split, len - (size_t)split);
        drive_app();
    }
    rig_collect(t);
}

typedef int (*check_fn)(rig_t *t);

static int run_all_chunkings(const char *name, const char *in, size_t lh, size_t lb, check_fn check)
{
    size_t len = strlen(in);
    for (long split = -1; split < (long)len; split++) {
        rig_t t;
        rig_open(&t, lh, lb);
        feed(&t, in, len, split);
        int rc = check(&t);
        if (rig_close(&t))
            rc = -1;
        if (rc) {
            fprintf(stderr, "  %s failed with split %ld\n", name, split);
            return -1;
        }
    }
    return 0;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- cases ---------------------------------------------------------------- */

static int check_get(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 1, "nseen=%d", nseen);
    CHECK_OR_RETURN(-1, !strcmp(seen[0].method, "GET"), "%s", seen[0].method);
    CHECK_OR_RETURN(-1, !strcmp(seen[0].url, "/a%20b?x=1&y=%C3%A9"), "%s", seen[0].url);
    CHECK_OR_RETURN(-1, !strcmp(seen[0].headers, "Host=example.com;X-Multi=a;X-Multi=b;Empty=;"),
                    "%s", seen[0].headers);
    CHECK_OR_RETURN(-1, seen[0].keep_alive == 1 && seen[0].minor == 1, "ka=%d", seen[0].keep_alive);
    CHECK_OR_RETURN(-1, !strncmp(t->out, "HTTP/1.1 200 OK\r\n", 17), "%s", t->out);
    CHECK_OR_RETURN(-1, strstr(t->out, "Content-Length: 4\r\n") && strstr(t->out, "\r\n\r\nok 0"),
                    "%s", t->out);
    CHECK_OR_RETURN(-1, strstr(t->out, "Server: test\r\n") && strstr(t->out, "Date: "), "%s",
                    t->out);
    return 0;
}

static int check_post(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 1, "nseen=%d", nseen);
    CHECK_OR_RETURN(-1, !strcmp(seen[0].method, "POST"), "%s", seen[0].method);
    CHECK_OR_RETURN(-1, seen[0].body_len == 11 && !memcmp(seen[0].body, "hello world", 11), "%.*s",
                    (int)seen[0].body_len, seen[0].body);
    CHECK_OR_RETURN(-1, count(t->out, "HTTP/1.1 200 OK") == 1, "%s", t->out);
    return 0;
}

static int check_chunked(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 1, "nseen=%d", nseen);
    CHECK_OR_RETURN(-1, seen[0].body_len == 9 && !memcmp(seen[0].body, "Wikipedia", 9), "%.*s",
                    (int)seen[0].body_len, seen[0].body);
    return 0;
}

static int check_pipeline(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 3, "nseen=%d", nseen);
    CHECK_OR_RETURN(
        -1, !strcmp(seen[0].url, "/1") && !strcmp(seen[1].url, "/2") && !strcmp(seen[2].url, "/3"),
        "order");
    CHECK_OR_RETURN(-1, seen[1].body_len == 3 && !memcmp(seen[1].body, "abc", 3), "body");
    const char *a = strstr(t->out, "ok 0"), *b = strstr(t->out, "ok 1"),
               *c = strstr(t->out, "ok 2");
    CHECK_OR_RETURN(-1, a && b && c && a < b && b < c, "%s", t->out);
    return 0;
}

static int check_http10(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 1, "nseen=%d", nseen);
    CHECK_OR_RETURN(-1, seen[0].minor == 0 && seen[0].keep_alive == 0, "minor=%d ka=%d",
                    seen[0].minor, seen[0].keep_alive);
    CHECK_OR_RETURN(-1, strstr(t->out, "Connection: close\r\n"), "%s", t->out);
    CHECK_OR_RETURN(-1, t->conn->lingering || t->conn->closing, "connection kept");
    return 0;
}

static int expect_status(rig_t *t, const char *status_line)
{
    CHECK_OR_RETURN(-1, nseen == 0 || !seen[0].responded || 1, "-");
    CHECK_OR_RETURN(-1, !strncmp(t->out, status_line, strlen(status_line)), "want %s got %s",
                    status_line, t->out);
    CHECK_OR_RETURN(-1, strstr(t->out, "Connection: close\r\n"), "%s", t->out);
    CHECK_OR_RETURN(-1, t->conn->lingering || t->conn->closing, "connection kept after an error");
    return 0;
}

static int check_400(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 0, "a malformed request reached the app");
    return expect_status(t, "HTTP/1.1 400 Bad Request\r\n");
}

static int check_431(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 0, "an oversized header section reached the app");
    return expect_status(t, "HTTP/1.1 431 ");
}

static int check_413(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 0, "an oversized body reached the app");
    return expect_status(t, "HTTP/1.1 413 ");
}

static int check_bad_chunk(rig_t *t)
{
    /* The app saw the request (headers were fine) and the body error closed it. */
    CHECK_OR_RETURN(-1, nseen == 1, "nseen=%d", nseen);
    CHECK_OR_RETURN(-1, !seen[0].responded, "a broken body was answered as complete");
    return expect_status(t, "HTTP/1.1 400 ");
}

static int check_501(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 0, "a body in an unknown coding reached the app");
    return expect_status(t, "HTTP/1.1 501 ");
}

static int check_trimmed(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 1, "nseen=%d", nseen);
    CHECK_OR_RETURN(-1, !strcmp(seen[0].headers, "Host=h;X=b;Y=c d;"), "%s", seen[0].headers);
    return 0;
}

/* An upgrade nobody takes (h2c) or a CONNECT is answered as plain HTTP, and
 * the request after it on the same connection is answered too. */
static int check_after_upgrade(rig_t *t)
{
    CHECK_OR_RETURN(-1, nseen == 2, "nseen=%d out=%s", nseen, t->out);
    CHECK_OR_RETURN(-1, !strcmp(seen[1].url, "/2"), "%s", seen[1].url);
    CHECK_OR_RETURN(-1, strstr(t->out, "ok 0") && strstr(t->out, "ok 1"), "%s", t->out);
    return 0;
}

/* The server code linked into this program calls calloc through here
 * (tests/c/meson.build links it with --wrap=calloc): an allocation of
 * `fail_calloc_size` bytes fails while it is set. */
static size_t fail_calloc_size;
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
    if (fail_calloc_size && size == fail_calloc_size)
        return NULL;
    return __real_calloc(n, size);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_port(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    MUST(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Issue #10, item 5: a connection that cannot be allocated is accepted and
 * closed, and the listener goes on accepting. Before, libuv stopped
 * watching the listener for good after one failed calloc. */
static int check_accept_after_failed_alloc(void)
{
    uv_loop_t loop;
    dfws_server_t server;
    dfws_cli_t cli;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    char out[4096];
    size_t out_len = 0;
    int refused = 0, rc = 0;

    MUST(uv_loop_init(&loop) == 0);
    dfws_cli_defaults(&cli);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    MUST(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 16) == 0);
    MUST(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
    MUST(dfws_server_start(&server, &loop, &cli, lfd, 0, &ops, NULL) == 0);
    nseen = 0;

    fail_calloc_size = dfws_http1_conn_size;
    int first = connect_port(ntohs(a.sin_port));
    for (double end = now_s() + 5; !refused && now_s() < end;) {
        uv_run(&loop, UV_RUN_NOWAIT);
        char b;
        ssize_t n = read(first, &b, 1);
        refused = n == 0 || (n < 0 && errno == ECONNRESET);
        usleep(1000);
    }
    fail_calloc_size = 0;
    close(first);
    if (!refused) {
        fprintf(stderr, "the connection that could not be allocated was left pending\n");
        rc = -1;
    }

    int second = connect_port(ntohs(a.sin_port));
    static const char req[] = "GET /after HTTP/1.1\r\nHost: h\r\n\r\n";
    MUST(write(second, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1);
    for (double end = now_s() + 5; !strstr(out, "ok 0") && now_s() < end;) {
        uv_run(&loop, UV_RUN_NOWAIT);
        drive_app();
        ssize_t n = read(second, out + out_len, sizeof(out) - 1 - out_len);
        if (n > 0)
            out_len += (size_t)n;
        out[out_len] = '\0';
        usleep(1000);
    }
    close(second);
    if (!strstr(out, "HTTP/1.1 200 OK") || !strstr(out, "ok 0")) {
        fprintf(stderr, "the next connection was not served: %s\n", out);
        rc = -1;
    }
    dfws_server_close(&server);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < nseen; i++)
        if (!seen[i].responded) {
            seen[i].req->app = NULL;
            dfws_req_release(seen[i].req);
        }
    CHECK_OR_RETURN(-1, uv_loop_close(&loop) == 0, "loop not closed clean");
    return rc;
}

/* One case: `in` through run_all_chunkings. */
#define RUN_CHUNKED(name, in, lh, lb, fn)                                                          \
    do {                                                                                           \
        check_begin(name);                                                                         \
        CHECK(run_all_chunkings(name, in, lh, lb, fn) == 0);                                       \
        check_end();                                                                               \
    } while (0)

int main(void)
{
    dfws_log_set_level(DFWS_LOG_ERROR + 1);
    RUN_CHUNKED(
        "get with repeated and empty headers",
        "GET /a%20b?x=1&y=%C3%A9 HTTP/1.1\r\nHost: example.com\r\nX-Multi: a\r\nX-Multi: b\r\n"
        "Empty:\r\n\r\n",
        65536, 0, check_get);
    RUN_CHUNKED("post with content-length",
                "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world", 65536, 0,
                check_post);
    RUN_CHUNKED(
        "chunked body",
        "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n"
        "0\r\n\r\n",
        65536, 0, check_chunked);
    RUN_CHUNKED(
        "three pipelined requests",
        "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"
        "abcGET /3 HTTP/1.1\r\nHost: h\r\n\r\n",
        65536, 0, check_pipeline);
    RUN_CHUNKED("http/1.0 closes", "GET / HTTP/1.0\r\n\r\n", 65536, 0, check_http10);
    RUN_CHUNKED("malformed request line", "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 65536, 0,
                check_400);
    RUN_CHUNKED("malformed header", "GET / HTTP/1.1\r\nHo st: h\r\n\r\n", 65536, 0, check_400);
    RUN_CHUNKED(
        "header section over the limit",
        "GET / HTTP/1.1\r\nHost: h\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
        64, 0, check_431);
    RUN_CHUNKED("content-length over the body limit",
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", 65536, 10, check_413);
    RUN_CHUNKED(
        "invalid chunk size",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        65536, 0, check_bad_chunk);
    /* what lenient llhttp let through (issue #10, item 3) */
    RUN_CHUNKED("CR not followed by LF ends no header section",
                "GET / HTTP/1.1\r\nHost: h\r\n\rXGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n", 65536,
                0, check_400);
    RUN_CHUNKED(
        "chunk data not followed by CRLF",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
        65536, 0, check_bad_chunk);
    RUN_CHUNKED(
        "obs-fold in transfer-encoding",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n3\r\nabc\r\n"
        "0\r\n\r\n",
        65536, 0, check_400);
    RUN_CHUNKED("obs-fold in any header", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 65536,
                0, check_400);
    RUN_CHUNKED(
        "transfer-encoding in http/1.0",
        "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        "0\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n",
        65536, 0, check_400);
    RUN_CHUNKED("empty header name", "GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", 65536, 0,
                check_400);
    RUN_CHUNKED("tab after the method", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 65536, 0, check_400);
    RUN_CHUNKED("tab in the target", "GET /\tx HTTP/1.1\r\nHost: h\r\n\r\n", 65536, 0, check_400);
    RUN_CHUNKED("http/0.9 request line", "GET /\r\n\r\n", 65536, 0, check_400);
    RUN_CHUNKED("http/2.0 request line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 65536, 0, check_400);
    RUN_CHUNKED("transfer-encoding gzip",
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc", 65536, 0,
                check_501);
    RUN_CHUNKED("transfer-encoding gzip, chunked",
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                65536, 0, check_501);
    RUN_CHUNKED(
        "transfer-encoding chunked twice",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
        "\r\n0\r\n\r\n",
        65536, 0, check_400);
    RUN_CHUNKED("http/1.1 without host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 65536, 0, check_400);
    RUN_CHUNKED("two host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 65536, 0,
                check_400);
    RUN_CHUNKED("http/1.0 with two host headers", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
                65536, 0, check_400);
    RUN_CHUNKED("non-ascii path", "GET /\xc3\xa4\xc3\xb6 HTTP/1.1\r\nHost: h\r\n\r\n", 65536, 0,
                check_400);
    RUN_CHUNKED("non-ascii query", "GET /?q=\xc3\xa4 HTTP/1.1\r\nHost: h\r\n\r\n", 65536, 0,
                check_400);
    RUN_CHUNKED("trailing whitespace off header values",
                "GET / HTTP/1.1\r\nHost: h  \r\nX: b \t\r\nY:  c d \r\n\r\n", 65536, 0,
                check_trimmed);
    /* item 4: every byte of the head counts, and the number of fields */
    RUN_CHUNKED(
        "empty headers count their separators",
        "GET / HTTP/1.1\r\nHost: h\r\nA:\r\nB:\r\nC:\r\nD:\r\nE:\r\nF:\r\nG:\r\nH:\r\nI:\r\nJ:\r\n"
        "K:\r\nL:\r\nM:\r\nN:\r\nO:\r\nP:\r\nQ:\r\nR:\r\nS:\r\nT:\r\n\r\n",
        100, 0, check_431);
    RUN_CHUNKED(
        "whitespace before values counts",
        "GET / HTTP/1.1\r\nHost: h\r\nX:                                                           "
        "                                                   v\r\n\r\n",
        100, 0, check_431);
    {
        static char many[4096];
        size_t n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: h\r\n");
        for (int i = 0; i < DFWS_MAX_HEADERS; i++)
            n += (size_t)snprintf(many + n, sizeof(many) - n, "%c:\r\n", 'a' + i % 26);
        snprintf(many + n, sizeof(many) - n, "\r\n");
        RUN_CHUNKED("more header fields than DFWS_MAX_HEADERS", many, 65536, 0, check_431);
    }
    /* item 6 */
    RUN_CHUNKED(
        "request after an upgrade nobody takes",
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
        65536, 0, check_after_upgrade);
    RUN_CHUNKED("request after a CONNECT",
                "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
                65536, 0, check_after_upgrade);
    check_begin("accept after a failed allocation");
    CHECK(check_accept_after_failed_alloc() == 0);
    check_end();
    return check_summary();
}
