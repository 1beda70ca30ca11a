/* Unit tests for server/ws_conn.c: the upgrade request and the frames that
 * follow it are fed in every chunking (whole, every split in two, one byte
 * at a time) through a real connection whose socket is one end of a
 * socketpair, as conn.c feeds them: to the protocol speaking on the
 * connection at the time (HTTP/1, then the WebSocket layer after the
 * upgrade). The mock application accepts once the handshake arrives;
 * what the server wrote is read from the other end. */
#include "conn.h"
#include "http1.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "ws_conn.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* ---- the mock application -------------------------------------------------------- */

typedef enum { APP_ACCEPT, APP_REJECT } app_mode_t;

typedef struct {
    app_mode_t mode;
    dfws_wsconn_t *wc; /* while the application holds it */
    int requests, accepted, closed, close_code;
    char msgs[1024]; /* "t:<text>|" or "b:<len>|" per message */
} app_t;

static app_t app;

static int ws_request(void *ud, dfws_wsconn_t *wc)
{
    (void)ud;
    app.requests++;
    app.wc = wc;
    wc->app = &app;
    return 0;
}

static void ws_message(void *ud, dfws_wsconn_t *wc, int binary, const char *data, size_t len)
{
    (void)ud;
    (void)wc;
    size_t used = strlen(app.msgs);
    if (binary)
        snprintf(app.msgs + used, sizeof(app.msgs) - used, "b:%zu|", len);
    else
        snprintf(app.msgs + used, sizeof(app.msgs) - used, "t:%.*s|", (int)len, data);
}

static void ws_closed(void *ud, dfws_wsconn_t *wc, int code)
{
    (void)ud;
    app.closed++;
    app.close_code = code;
    wc->app = NULL;
    app.wc = NULL;
}

static int http_request(void *ud, dfws_req_t *r)
{
    (void)ud;
    (void)r;
    return -1; /* only WebSockets here */
}

static const dfws_app_ops_t ops = {
    .http_request = http_request,
    .ws_request = ws_request,
    .ws_message = ws_message,
    .ws_closed = ws_closed,
};

/* The application's turn, after each chunk: answer a waiting handshake. */
static void drive_app(void)
{
    if (!app.wc || app.accepted || app.wc->state != DFWS_WSC_HANDSHAKE)
        return;
    if (app.mode == APP_ACCEPT) {
        MUST(dfws_wsconn_accept(app.wc, NULL, 0, NULL, 0) == 0);
        app.accepted = 1;
    } else {
        dfws_wsconn_t *wc = app.wc;
        MUST(dfws_wsconn_reject(wc) == 0);
    }
}

/* ---- the rig ----------------------------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    dfws_server_t server;
    dfws_cli_t cli;
    dfws_conn_t *conn;
    int peer;
    unsigned char out[16384];
    size_t out_len;
} rig_t;

static void rig_open(rig_t *t, app_mode_t mode)
{
    int sv[2];
    memset(t, 0, sizeof(*t));
    memset(&app, 0, sizeof(app));
    app.mode = mode;
    MUST(uv_loop_init(&t->loop) == 0);
    char *argv[] = {"dfws-asgi", "x:app", NULL};
    MUST(dfws_cli_parse(&t->cli, 2, argv) == DFWS_CLI_OK);
    t->cli.ws_per_message_deflate = 0;
    t->server.loop = &t->loop;
    t->server.cli = &t->cli;
    t->server.ops = &ops;
    t->server.is_unix = 1;
    dfws_wsconn_config(&t->server);
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    t->peer = sv[1];
    fcntl(t->peer, F_SETFL, O_NONBLOCK);
    dfws_conn_t *c = dfws_http1_conn_new(&t->server);
    MUST(c);
    MUST(dfws_conn_open_fd(c, &t->loop, sv[0], 1) == 0);
    dfws_conn_start(c, &t->server.conns, &dfws_http1_proto);
    dfws_http1_start(c);
    t->conn = c;
}

static void rig_collect(rig_t *t)
{
    uv_run(&t->loop, UV_RUN_NOWAIT);
    ssize_t n;
    while ((n = read(t->peer, t->out + t->out_len, sizeof(t->out) - t->out_len)) > 0)
        t->out_len += (size_t)n;
}

/* Runs the loop until `done` holds or a second passes (the early frames are
 * replayed from a timer of the next loop turn). */
static void rig_settle(rig_t *t, int (*done)(void))
{
    struct timespec ts = {0, 1000000};
    for (int i = 0; i < 1000 && !done(); i++) {
        rig_collect(t);
        nanosleep(&ts, NULL);
    }
    rig_collect(t);
}

static int rig_close(rig_t *t)
{
    if (!t->conn->closing)
        dfws_conn_close(t->conn);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    close(t->peer);
    CHECK_OR_RETURN(-1, t->server.conns.n == 0 && t->server.websockets == 0,
                    "connections %zu, websockets %zu", t->server.conns.n, t->server.websockets);
    CHECK_OR_RETURN(-1, uv_loop_close(&t->loop) == 0, "loop not closed clean");
    return 0;
}

/* Feeds bytes as conn.c's read would: to the protocol now speaking. */
static void feed_one(rig_t *t, const char *data, size_t len)
{
    if (t->conn->closing || t->conn->lingering)
        return;
    t->conn->proto->data(t->conn, data, len);
    drive_app();
}

static void feed(rig_t *t, const char *in, size_t len, long split)
{
    if (split == 0) {
        feed_one(t, in, len);
    } else if (split < 0) {
        for (size_t i = 0; i < len; i++)
            feed_one(t, in + i, 1);
    } else {
        feed_one(t, in, (size_t)split);
        feed_one(t, in + split, len - (size_t)split);
    }
}

/* ---- client frames ----------------------------------------------------------------- */

static size_t frame(char *out, int opcode, const char *payload, size_t len)
{
    static const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    size_t n = 0;
    out[n++] = (char)(0x80 | opcode);
    out[n++] = (char)(0x80 | len); /* len < 126 here */
    memcpy(out + n, key, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        out[n++] = (char)(payload[i] ^ key[i % 4]);
    return n;
}

static const char upgrade[] =
    "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

/* upgrade request + text "hello" + ping "p" + binary 3 bytes + close 1000 */
static size_t session(char *buf)
{
    size_t n = 0;
    memcpy(buf, upgrade, sizeof(upgrade) - 1);
    n += sizeof(upgrade) - 1;
    n += frame(buf + n, 0x1, "hello", 5);
    n += frame(buf + n, 0x9, "p", 1);
    n += frame(buf + n, 0x2, "\x00\x01\x02", 3);
    n += frame(buf + n, 0x8, "\x03\xe8", 2);
    return n;
}

static const unsigned char *find(const rig_t *t, const void *needle, size_t nlen)
{
    for (size_t i = 0; i + nlen <= t->out_len; i++)
        if (!memcmp(t->out + i, needle, nlen))
            return t->out + i;
    return NULL;
}

static int session_done(void)
{
    return app.closed > 0;
}

static int check_session(rig_t *t)
{
    CHECK_OR_RETURN(-1, app.requests == 1, "requests %d", app.requests);
    CHECK_OR_RETURN(-1, !strcmp(app.msgs, "t:hello|b:3|"), "messages %s", app.msgs);
    CHECK_OR_RETURN(-1, app.closed == 1 && app.close_code == 1000, "closed %d code %d", app.closed,
                    app.close_code);
    const unsigned char *hs = find(t, "HTTP/1.1 101 Switching Protocols\r\n", 34);
    CHECK_OR_RETURN(-1, hs == t->out, "no 101 first: %.*s", (int)t->out_len, t->out);
    CHECK_OR_RETURN(-1, find(t, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", 51),
                    "accept key");
    static const unsigned char pong[] = {0x8a, 0x01, 'p'}, close_frame[] = {0x88, 0x02, 0x03, 0xe8};
    const unsigned char *po = find(t, pong, sizeof(pong)), *cl = find(t, close_frame, 4);
    CHECK_OR_RETURN(-1, po && cl && po < cl, "pong then close expected");
    CHECK_OR_RETURN(-1, t->conn->lingering || t->conn->closing,
                    "the server closes the TCP connection first");
    CHECK_OR_RETURN(-1, t->server.active_requests == 0, "the upgrade request still counted");
    return 0;
}

static int check_reject(rig_t *t)
{
    CHECK_OR_RETURN(-1, app.requests == 1 && app.closed == 1 && app.close_code == 1006,
                    "requests %d closed %d", app.requests, app.closed);
    CHECK_OR_RETURN(-1, t->out_len > 26 && !memcmp(t->out, "HTTP/1.1 403 Forbidden\r\n", 24),
                    "%.*s", (int)t->out_len, t->out);
    CHECK_OR_RETURN(-1, !strcmp(app.msgs, ""),
                    "a message of a refused WebSocket reached the app: %s", app.msgs);
    CHECK_OR_RETURN(-1, t->conn->lingering || t->conn->closing, "connection kept after a refusal");
    return 0;
}

static int check_bad_handshake(rig_t *t)
{
    CHECK_OR_RETURN(-1, app.requests == 0, "a bad handshake reached the app");
    CHECK_OR_RETURN(-1, t->out_len > 26 && !memcmp(t->out, "HTTP/1.1 400 Bad Request\r\n", 26),
                    "%.*s", (int)t->out_len, t->out);
    return 0;
}

static int closed_or_answered(void)
{
    return app.closed > 0 || app.requests == 0;
}

typedef int (*check_fn)(rig_t *t);

static int run_all_chunkings(const char *in, size_t len, app_mode_t mode, check_fn check,
                             int (*done)(void))
{
    for (long split = -1; split < (long)len; split++) {
        rig_t t;
        rig_open(&t, mode);
        feed(&t, in, len, split);
        rig_settle(&t, done);
        int rc = check(&t);
        if (rig_close(&t))
            rc = -1;
        if (rc) {
            fprintf(stderr, "  failed with split %ld\n", split);
            return -1;
        }
    }
    return 0;
}

static void report(const char *name, int rc)
{
    if (rc == 0) {
        check_pass();
        printf("ok   %s\n", name);
    } else {
        check_state.failed++;
        printf("FAIL %s\n", name);
    }
}

int main(void)
{
    char buf[1024];
    dfws_log_set_level(DFWS_LOG_ERROR + 1);

    size_t n = session(buf);
    report("upgrade, text, ping, binary, close (frames behind the request)",
           run_all_chunkings(buf, n, APP_ACCEPT, check_session, session_done));
    report("refused handshake: 403, no message reaches the app",
           run_all_chunkings(buf, n, APP_REJECT, check_reject, closed_or_answered));
    static const char bad[] = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    report("handshake without a key: 400",
           run_all_chunkings(bad, sizeof(bad) - 1, APP_ACCEPT, check_bad_handshake,
                             closed_or_answered));
    return check_summary();
}
