/*
 * server/native.c without Python: the real server (listener, HTTP/1,
 * WebSocket) on a loopback port of a loop of the test's own, the embedded
 * in-memory channel layer, and the application side played by the test
 * (it answers connects with a WindowInfo and groups, and records the calls
 * handed to it). Clients are plain sockets speaking WebSocket by hand.
 *
 * Covered: connect (accepted, refused), heartbeat, deliveries to one window
 * and to groups (fan-out to the right windows, leaving on disconnect), the
 * signal-call case table (tests/signal_calls.json, argv[1]) in `channels`
 * mode (dispatched to the queues) and handed to the application otherwise,
 * binary and malformed frames (dropped, the window stays), a call split
 * at every byte across TCP writes, the rate limit
 * and a slow reader (both closed with 1008). Every test ends by closing the
 * server and the layer and asserting the loop closed clean.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "cli.h"
#include "layer.h"
#include "check.h"
#include "log.h"
#include "native.h"
#include "server.h"
#include "ws_conn.h"

#define WAIT_S 10.0 /* a loaded machine: generous, only failures wait this long */

static json_t *cases; /* the signal-call table */

/* ---- the environment: loop, layer, server, endpoint, application side ---- */

typedef struct env_s {
    uv_loop_t loop;
    dfws_cli_t cli;
    dfws_server_t server;
    dfws_layer_t *layer;
    dfws_native_t *n;
    int port;
    dfws_window_t *pending[16]; /* connects the application has not answered */
    int npending;
    int closed;          /* ops->closed calls */
    int app_calls;       /* ops->signal calls */
    char app_text[4096]; /* the latest one */
    size_t app_len;
    int layer_closed;
} env_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int app_connect(void *ud, dfws_window_t *w, dfws_req_t *req)
{
    env_t *e = ud;
    (void)req;
    if (e->npending == 16)
        return -1;
    e->pending[e->npending++] = w;
    return 0;
}

static void app_signal(void *ud, dfws_window_t *w, const char *json, size_t len)
{
    env_t *e = ud;
    (void)w;
    e->app_calls++;
    e->app_len = len < sizeof(e->app_text) ? len : sizeof(e->app_text);
    memcpy(e->app_text, json, e->app_len);
}

static void app_closed(void *ud, dfws_window_t *w)
{
    env_t *e = ud;
    for (int i = 0; i < e->npending; i++)
        if (e->pending[i] == w)
            e->pending[i] = e->pending[--e->npending];
    e->closed++;
}

static const dfws_native_ops_t native_ops = {
    .connect = app_connect, .signal = app_signal, .closed = app_closed};

/* The server's application ops: what the route to the endpoint does in
 * dfws-asgi (asgi/native.c), and nothing for anything else. */
static int app_ws_request(void *ud, dfws_wsconn_t *wc)
{
    env_t *e = ud;
    dfws_req_t *r = wc->req;
    if (!dfws_native_matches(e->n, r->head.base + r->url_off, r->url_len))
        return -1;
    return dfws_native_start(e->n, wc);
}

static int app_http_request(void *ud, dfws_req_t *req)
{
    (void)ud, (void)req;
    return -1;
}

static const dfws_app_ops_t app_ops = {.http_request = app_http_request,
                                       .ws_request = app_ws_request};

static void quiet_layer(void *ud, int level, const char *msg)
{
    (void)ud, (void)level, (void)msg;
}

static void env_init(env_t *e, const dfws_native_config_t *nc)
{
    char *argv[] = {"dfws-asgi", "x:app", NULL};
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    dfws_layer_config_t cfg;
    const char *err = NULL;

    memset(e, 0, sizeof(*e));
    if (uv_loop_init(&e->loop) || dfws_cli_parse(&e->cli, 2, argv) != DFWS_CLI_OK)
        abort();
    dfws_layer_config_init(&cfg);
    if (dfws_layer_memory_new(&e->loop, &cfg, &e->layer))
        abort();
    dfws_layer_config_free(&cfg);
    dfws_layer_set_log(e->layer, quiet_layer, NULL);
    if (dfws_native_new(e->layer, nc, &native_ops, e, &e->n, &err))
        abort();
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 16) ||
        getsockname(lfd, (struct sockaddr *)&a, &alen))
        abort();
    e->port = ntohs(a.sin_port);
    if (dfws_server_start(&e->server, &e->loop, &e->cli, lfd, 0, &app_ops, e))
        abort();
}

static void on_layer_closed(void *ud)
{
    ((env_t *)ud)->layer_closed = 1;
}

/* ---- a WebSocket client by hand ------------------------------------------- */

typedef struct client_s {
    int fd;
    unsigned char *buf;
    size_t len, cap;
    int eof;
} client_t;

static void client_read(client_t *c)
{
    for (;;) {
        if (c->cap - c->len < 65536) {
            c->cap = c->cap ? c->cap * 2 : 262144;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            c->eof = 1;
        return;
    }
}

/* Runs the loop once and lets the clients read. */
static void pump(env_t *e, client_t **cs, int ncs)
{
    uv_run(&e->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < ncs; i++)
        if (cs[i] && cs[i]->fd >= 0 && !cs[i]->eof)
            client_read(cs[i]);
    usleep(500);
}

static void client_write(env_t *e, client_t *c, const void *data, size_t len)
{
    const char *p = data;
    double end = now_s() + WAIT_S;
    while (len > 0 && now_s() < end) {
        ssize_t n = write(c->fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else {
            pump(e, &c, 1);
        }
    }
}

/* One masked frame from the client. */
static void client_frame(env_t *e, client_t *c, int opcode, const void *payload, size_t len)
{
    static const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    unsigned char *f = malloc(len + 14);
    size_t h = 0;
    f[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        f[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(len >> 8);
        f[h++] = (unsigned char)len;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        f[h + i] = ((const unsigned char *)payload)[i] ^ mask[i % 4];
    client_write(e, c, f, h + len);
    free(f);
}

static void client_text(env_t *e, client_t *c, const char *s)
{
    client_frame(e, c, 1, s, strlen(s));
}

/* Opens a connection and sends the upgrade request for path. */
static void client_open(env_t *e, client_t *c, const char *path, int small_rcvbuf)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->port)};
    char req[512];
    memset(c, 0, sizeof(*c));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (small_rcvbuf) {
        int sz = 4096;
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)))
        abort();
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\r\n",
                     path);
    client_write(e, c, req, (size_t)n);
}

static void client_close(client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* Waits for the response's status line and header section; returns the
 * status (0: none in time) and drops the header section from the buffer. */
static int client_status(env_t *e, client_t *c)
{
    double end = now_s() + WAIT_S;
    for (;;) {
        unsigned char *hend = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (hend) {
            int status = 0;
            sscanf((const char *)c->buf, "HTTP/1.1 %d", &status);
            size_t used = (size_t)(hend + 4 - c->buf);
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            return status;
        }
        if (c->eof || now_s() > end)
            return 0;
        pump(e, &c, 1);
    }
}

typedef struct frame_s {
    int opcode; /* -1: none */
    unsigned char *data;
    size_t len;
} frame_t;

/* Takes the next complete server frame out of c's buffer. */
static int take_frame(client_t *c, frame_t *f)
{
    if (c->len < 2)
        return 0;
    size_t plen = c->buf[1] & 0x7f, h = 2;
    if (plen == 126) {
        if (c->len < 4)
            return 0;
        plen = (size_t)c->buf[2] << 8 | c->buf[3];
        h = 4;
    } else if (plen == 127) {
        if (c->len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | c->buf[2 + i];
        h = 10;
    }
    if (c->len < h + plen)
        return 0;
    f->opcode = c->buf[0] & 0x0f;
    f->data = malloc(plen + 1);
    memcpy(f->data, c->buf + h, plen);
    f->data[plen] = '\0';
    f->len = plen;
    memmove(c->buf, c->buf + h + plen, c->len - h - plen);
    c->len -= h + plen;
    return 1;
}

/* The next frame within `timeout` s (opcode -1 if none). */
static frame_t next_frame(env_t *e, client_t *c, double timeout)
{
    frame_t f = {-1, NULL, 0};
    double end = now_s() + timeout;
    while (!take_frame(c, &f) && !c->eof && now_s() < end)
        pump(e, &c, 1);
    return f;
}

/* Whether the next frame is a text frame holding exactly `text`. */
static int expect_text(env_t *e, client_t *c, const char *text)
{
    frame_t f = next_frame(e, c, WAIT_S);
    int ok = f.opcode == 1 && f.len == strlen(text) && memcmp(f.data, text, f.len) == 0;
    if (!ok)
        fprintf(stderr, "  expected text \"%s\", got opcode %d \"%.80s\"\n", text, f.opcode,
                f.data ? (char *)f.data : "");
    free(f.data);
    return ok;
}

/* A heartbeat round trip: also proves nothing else came before it. */
static int heartbeat(env_t *e, client_t *c)
{
    client_text(e, c, "--heartbeat--");
    return expect_text(e, c, "--heartbeat--");
}

/* The close code of the next frame (after skipping text frames), or -1. */
static int close_code(env_t *e, client_t *c, int *texts_skipped)
{
    *texts_skipped = 0;
    for (;;) {
        frame_t f = next_frame(e, c, WAIT_S);
        if (f.opcode == 1) {
            ++*texts_skipped;
            free(f.data);
            continue;
        }
        int code = f.opcode == 8 && f.len >= 2 ? f.data[0] << 8 | f.data[1] : -1;
        free(f.data);
        return code;
    }
}

/* Connects a window on /ws/, answered with groups; the window (NULL on
 * failure). */
static dfws_window_t *open_window_x(env_t *e, client_t *c, const char *const *groups,
                                    size_t ngroups, int small_rcvbuf)
{
    static const char wi[] = "\x81\xa3key\xa1k"; /* {"key": "k"} */
    double end = now_s() + WAIT_S;
    client_open(e, c, "/ws/?v=1", small_rcvbuf);
    while (e->npending == 0 && now_s() < end)
        pump(e, &c, 1);
    if (e->npending != 1)
        return NULL;
    dfws_window_t *w = e->pending[--e->npending];
    if (dfws_native_connected(w, wi, sizeof(wi) - 1, groups, ngroups))
        return NULL;
    if (client_status(e, c) != 101)
        return NULL;
    size_t len;
    const char *mp = dfws_native_window_info(w, &len);
    if (len != sizeof(wi) - 1 || memcmp(mp, wi, len))
        return NULL;
    return w;
}

static dfws_window_t *open_window(env_t *e, client_t *c, const char *const *groups, size_t ngroups)
{
    return open_window_x(e, c, groups, ngroups, 0);
}

/* Closes the clients, then the server, the endpoint and the layer; asserts
 * the loop closed clean. */
static void env_fini(env_t *e, client_t **cs, int ncs, int windows_open)
{
    for (int i = 0; i < ncs; i++)
        client_close(cs[i]);
    double end = now_s() + WAIT_S;
    while (e->closed < windows_open && now_s() < end)
        pump(e, NULL, 0);
    CHECK(e->closed == windows_open);
    dfws_native_stats_t st;
    dfws_native_get_stats(e->n, &st);
    CHECK(st.windows == 0);
    dfws_server_close(&e->server);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    dfws_native_free(e->n);
    dfws_layer_close(e->layer, on_layer_closed, e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    CHECK(e->layer_closed);
    CHECK(uv_loop_close(&e->loop) == 0);
}

static void pack_ws_message(msgpack_sbuffer *sb, const char *text)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "type", 4);
    msgpack_pack_str(&pk, 10);
    msgpack_pack_str_body(&pk, "ws_message", 10);
    msgpack_pack_str(&pk, 7);
    msgpack_pack_str_body(&pk, "message", 7);
    msgpack_pack_str(&pk, strlen(text));
    msgpack_pack_str_body(&pk, text, strlen(text));
}

static int group_send(env_t *e, const char *group, const char *text)
{
    msgpack_sbuffer sb;
    pack_ws_message(&sb, text);
    int rc = dfws_layer_group_send(e->layer, group, sb.data, sb.size, NULL, NULL);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_connect_heartbeat_refuse(void)
{
    env_t e;
    client_t a, b;
    client_t *cs[] = {&a, &b};
    dfws_native_config_t nc = {.ws_url = "/ws/", .json_in_c = 1};
    env_init(&e, &nc);

    dfws_window_t *w = open_window(&e, &a, NULL, 0);
    CHECK(w != NULL);
    CHECK(w && dfws_native_window_channel(w) != NULL);
    for (int i = 0; i < 3; i++)
        CHECK(heartbeat(&e, &a));
    dfws_native_stats_t st;
    dfws_native_get_stats(e.n, &st);
    CHECK(st.windows == 1 && st.heartbeats == 3);

    /* the application refuses: 403, and no window is counted */
    client_open(&e, &b, "/ws/", 0);
    double end = now_s() + WAIT_S;
    while (e.npending == 0 && now_s() < end)
        pump(&e, cs, 2);
    CHECK(e.npending == 1);
    if (e.npending == 1)
        dfws_native_refused(e.pending[--e.npending], 403);
    CHECK(client_status(&e, &b) == 403);
    dfws_native_get_stats(e.n, &st);
    CHECK(st.windows == 1);
    /* the refused window is gone once its connection is */
    client_close(&b);
    end = now_s() + WAIT_S;
    while (e.closed < 1 && now_s() < end)
        pump(&e, cs, 2);
    CHECK(e.closed == 1);
    e.closed = 0;
    env_fini(&e, cs, 2, 1);
}

static void test_deliveries(void)
{
    env_t e;
    client_t a, b, c;
    client_t *cs[] = {&a, &b, &c};
    dfws_native_config_t nc = {.ws_url = "/ws/", .json_in_c = 1};
    const char *ga[] = {"g1", "g2"}, *gb[] = {"g1", "g1"}, *gc[] = {"g2", "bad group name!"};
    env_init(&e, &nc);
    dfws_window_t *wa = open_window(&e, &a, ga, 2);
    dfws_window_t *wb = open_window(&e, &b, gb, 2); /* listed twice: joined once */
    dfws_window_t *wc = open_window(&e, &c, gc, 2); /* an invalid name is skipped */
    CHECK(wa && wb && wc);
    if (!wa || !wb || !wc) {
        env_fini(&e, cs, 3, 3);
        return;
    }

    /* to one window's own channel */
    msgpack_sbuffer sb;
    pack_ws_message(&sb, "{\"signal\": \"solo\"}");
    CHECK(dfws_layer_send(e.layer, dfws_native_window_channel(wb), sb.data, sb.size, NULL, NULL) ==
          0);
    msgpack_sbuffer_destroy(&sb);
    CHECK(expect_text(&e, &b, "{\"signal\": \"solo\"}"));

    /* to groups: each member once, nobody else */
    CHECK(group_send(&e, "g1", "one") == 0);
    CHECK(expect_text(&e, &a, "one"));
    CHECK(expect_text(&e, &b, "one"));
    CHECK(group_send(&e, "g2", "two") == 0);
    CHECK(expect_text(&e, &a, "two"));
    CHECK(expect_text(&e, &c, "two"));
    CHECK(heartbeat(&e, &a) && heartbeat(&e, &b) && heartbeat(&e, &c));

    /* a message that is not a ws_message is dropped, the window stays */
    static const char not_ws[] = "\x81\xa4type\xa5other";
    CHECK(dfws_layer_group_send(e.layer, "g1", not_ws, sizeof(not_ws) - 1, NULL, NULL) == 0);
    CHECK(heartbeat(&e, &a) && heartbeat(&e, &b));

    /* b leaves: g1 goes on with a alone */
    client_close(&b);
    double end = now_s() + WAIT_S;
    while (e.closed < 1 && now_s() < end)
        pump(&e, cs, 3);
    CHECK(e.closed == 1);
    CHECK(group_send(&e, "g1", "three") == 0);
    CHECK(expect_text(&e, &a, "three"));
    CHECK(heartbeat(&e, &c));
    dfws_native_stats_t st;
    dfws_native_get_stats(e.n, &st);
    CHECK(st.windows == 2);
    CHECK(st.deliveries == 6);
    CHECK(st.deliveries_dropped == 2);
    env_fini(&e, cs, 3, 3);
}

/* What q1 received in channels mode. */
typedef struct queue_rec_s {
    int count;
    char signal[128];
    json_t *opts; /* the opts, decoded back to JSON */
    int wi_ok;
} queue_rec_t;

/* msgpack -> JSON, by hand: msgpack-c's unpacker stops at 32 levels and a
 * call may nest 64. *p advances; NULL on anything unexpected. */
static json_t *mp_to_json(const unsigned char **p, const unsigned char *end, int depth)
{
    if (*p >= end || depth > 70)
        return NULL;
    unsigned c = *(*p)++;
    size_t n = 0;
    uint64_t u = 0;
    int kind; /* 's' str, 'a' array, 'm' map */
#define NEED(k)                                                                                    \
    if ((size_t)(end - *p) < (size_t)(k))                                                          \
    return NULL
#define BE(k)                                                                                      \
    do {                                                                                           \
        NEED(k);                                                                                   \
        u = 0;                                                                                     \
        for (int i_ = 0; i_ < (k); i_++)                                                           \
            u = u << 8 | *(*p)++;                                                                  \
    } while (0)
    if (c <= 0x7f)
        return json_integer((json_int_t)c);
    if (c >= 0xe0)
        return json_integer((json_int_t)(int8_t)c);
    if (c == 0xc0)
        return json_null();
    if (c == 0xc2 || c == 0xc3)
        return json_boolean(c == 0xc3);
    if (c >= 0xa0 && c <= 0xbf)
        kind = 's', n = c & 0x1f;
    else if (c >= 0x90 && c <= 0x9f)
        kind = 'a', n = c & 0x0f;
    else if (c >= 0x80 && c <= 0x8f)
        kind = 'm', n = c & 0x0f;
    else
        switch (c) {
        case 0xcc:
            BE(1);
            return json_integer((json_int_t)u);
        case 0xcd:
            BE(2);
            return json_integer((json_int_t)u);
        case 0xce:
            BE(4);
            return json_integer((json_int_t)u);
        case 0xcf:
            BE(8);
            return json_integer((json_int_t)u);
        case 0xd0:
            BE(1);
            return json_integer((int8_t)u);
        case 0xd1:
            BE(2);
            return json_integer((int16_t)u);
        case 0xd2:
            BE(4);
            return json_integer((int32_t)u);
        case 0xd3:
            BE(8);
            return json_integer((json_int_t)(int64_t)u);
        case 0xcb: {
            BE(8);
            double d;
            memcpy(&d, &u, 8);
            return json_real(d);
        }
        case 0xd9:
            BE(1);
            kind = 's';
            n = u;
            break;
        case 0xda:
            BE(2);
            kind = 's';
            n = u;
            break;
        case 0xdb:
            BE(4);
            kind = 's';
            n = u;
            break;
        case 0xdc:
            BE(2);
            kind = 'a';
            n = u;
            break;
        case 0xdd:
            BE(4);
            kind = 'a';
            n = u;
            break;
        case 0xde:
            BE(2);
            kind = 'm';
            n = u;
            break;
        case 0xdf:
            BE(4);
            kind = 'm';
            n = u;
            break;
        default:
            return NULL;
        }
    if (kind == 's') {
        NEED(n);
        json_t *s = json_stringn((const char *)*p, n);
        *p += n;
        return s;
    }
    json_t *r = kind == 'a' ? json_array() : json_object();
    for (size_t i = 0; i < n; i++) {
        if (kind == 'a') {
            json_t *v = mp_to_json(p, end, depth + 1);
            if (!v || json_array_append_new(r, v)) {
                json_decref(r);
                return NULL;
            }
        } else {
            json_t *k = mp_to_json(p, end, depth + 1),
                   *v = k ? mp_to_json(p, end, depth + 1) : NULL;
            if (!v || !json_is_string(k) ||
                json_object_setn_new(r, json_string_value(k), json_string_length(k), v)) {
                json_decref(k);
                json_decref(v);
                json_decref(r);
                return NULL;
            }
            json_decref(k);
        }
    }
    return r;
#undef NEED
#undef BE
}

static void on_queue(void *ud, const char *channel, const char *mp, size_t len)
{
    queue_rec_t *q = ud;
    const unsigned char *p = (const unsigned char *)mp;
    (void)channel;
    q->count++;
    json_t *msg = mp_to_json(&p, p + len, 0);
    json_t *args = json_object_get(msg, "args");
    q->signal[0] = '\0';
    q->wi_ok = 0;
    json_decref(q->opts);
    q->opts = NULL;
    if (p == (const unsigned char *)mp + len && json_is_string(json_object_get(msg, "type")) &&
        !strcmp(json_string_value(json_object_get(msg, "type")), "process.signal") &&
        json_array_size(args) == 7) {
        snprintf(q->signal, sizeof(q->signal), "%s", json_string_value(json_array_get(args, 0)));
        q->opts = json_incref(json_array_get(args, 2));
        json_t *wi = json_pack("{ss}", "key", "k");
        q->wi_ok = json_equal(json_array_get(args, 1), wi) &&
                   json_is_true(json_array_get(args, 3)) &&
                   json_array_size(json_array_get(args, 4)) == 0 &&
                   json_is_true(json_array_get(args, 5)) &&
                   !strcmp(json_string_value(json_array_get(args, 6)) ?: "", "q1");
        json_decref(wi);
    }
    json_decref(msg);
}

static int celery_options(json_t *accepted)
{
    return !json_is_null(json_object_get(accepted, "eta")) ||
           !json_is_null(json_object_get(accepted, "expires")) ||
           !json_is_null(json_object_get(accepted, "countdown"));
}

/* The case table through a real connection: in channels mode an accepted
 * call (without Celery options) reaches its queue as process.signal with
 * the same name and opts; in Python mode it is handed over verbatim; a
 * refused one goes nowhere; the window stays throughout. */
static void run_table(int channels_mode)
{
    env_t e;
    client_t a;
    client_t *cs[] = {&a};
    queue_rec_t q = {0};
    json_t *queues = json_object(), *c;
    size_t i;
    json_array_foreach(cases, i, c)
    {
        json_t *acc = json_object_get(c, "accepted");
        if (acc) {
            json_t *sig = json_object_get(acc, "signal");
            json_object_setn_new(queues, json_string_value(sig), json_string_length(sig),
                                 json_pack("[s]", "q1"));
        }
    }
    char *qj = json_dumps(queues, 0);
    json_decref(queues);
    dfws_native_config_t nc = {.ws_url = "/ws/",
                               .json_in_c = 1,
                               .channels_mode = channels_mode,
                               .queues_json = channels_mode ? qj : NULL};
    env_init(&e, &nc);
    free(qj);
    CHECK(dfws_layer_listen(e.layer, "q1", on_queue, &q) == 0);
    dfws_window_t *w = open_window(&e, &a, NULL, 0);
    CHECK(w != NULL);
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *text = json_object_get(c, "text"), *acc = json_object_get(c, "accepted");
        int before_q = q.count, before_app = e.app_calls;
        client_frame(&e, &a, 1, json_string_value(text), json_string_length(text));
        int ok = heartbeat(&e, &a);
        double end = now_s() + WAIT_S;
        int want_q = channels_mode && acc && !celery_options(acc);
        int want_app = !channels_mode && acc;
        while (want_q && q.count == before_q && now_s() < end)
            pump(&e, cs, 1);
        /* let anything unexpected arrive too */
        for (int k = 0; k < 5; k++)
            pump(&e, cs, 1);
        ok = ok && q.count == before_q + want_q && e.app_calls == before_app + want_app;
        if (ok && want_q)
            ok = !strcmp(q.signal, json_string_value(json_object_get(acc, "signal"))) &&
                 json_equal(q.opts, json_object_get(acc, "opts")) && q.wi_ok;
        if (ok && want_app)
            ok = e.app_len == json_string_length(text) &&
                 !memcmp(e.app_text, json_string_value(text), e.app_len);
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  case \"%s\" (%s mode)\n", name,
                    channels_mode ? "channels" : "python");
    }
    /* a binary frame is dropped too */
    client_frame(&e, &a, 2, "{\"signal\": \"a.b\", \"opts\": {}}", 29);
    CHECK(heartbeat(&e, &a));
    dfws_native_stats_t st;
    dfws_native_get_stats(e.n, &st);
    CHECK(st.windows == 1);
    CHECK(channels_mode ? st.calls_dispatched == (unsigned long long)q.count
                        : st.calls_to_app == (unsigned long long)e.app_calls);
    CHECK(q.count + e.app_calls > 5);
    json_decref(q.opts);
    env_fini(&e, cs, 1, 1);
}

static void test_table_channels_mode(void)
{
    run_table(1);
}

static void test_table_python_mode(void)
{
    run_table(0);
}

/* A call reaches the endpoint whatever the TCP segments: the frame written
 * in two parts at every split point, then one byte at a time. */
static void test_call_in_every_chunking(void)
{
    env_t e;
    client_t a;
    client_t *cs[] = {&a};
    queue_rec_t q = {0};
    static const char call[] = "{\"signal\": \"sig.a\", \"opts\": {\"v\": [1, \"\\u00e9\"]}}";
    dfws_native_config_t nc = {.ws_url = "/ws/",
                               .json_in_c = 1,
                               .channels_mode = 1,
                               .queues_json = "{\"sig.a\": [\"q1\"]}"};
    env_init(&e, &nc);
    CHECK(dfws_layer_listen(e.layer, "q1", on_queue, &q) == 0);
    CHECK(open_window(&e, &a, NULL, 0) != NULL);
    /* the frame as the client sends it: built once, written in pieces */
    unsigned char frame[256];
    static const unsigned char mask[4] = {1, 2, 3, 4};
    size_t len = sizeof(call) - 1, n = 0;
    frame[n++] = 0x81;
    frame[n++] = (unsigned char)(0x80 | len);
    memcpy(frame + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        frame[n++] = (unsigned char)call[i] ^ mask[i % 4];
    json_t *want = json_pack("{s[is]}", "v", 1, "\xc3\xa9");
    int all_ok = 1;
    for (size_t cut = 1; cut <= n; cut++) {
        int before = q.count;
        if (cut < n) {
            client_write(&e, &a, frame, cut);
            for (int k = 0; k < 3; k++)
                pump(&e, cs, 1);
            client_write(&e, &a, frame + cut, n - cut);
        } else {
            for (size_t i = 0; i < n; i++) {
                client_write(&e, &a, frame + i, 1);
                pump(&e, cs, 1);
            }
        }
        double end = now_s() + WAIT_S;
        while (q.count == before && now_s() < end)
            pump(&e, cs, 1);
        int ok = q.count == before + 1 && !strcmp(q.signal, "sig.a") && json_equal(q.opts, want);
        if (!ok)
            fprintf(stderr, "  call cut at byte %zu of %zu not dispatched as sent\n", cut, n);
        all_ok &= ok;
    }
    CHECK(all_ok);
    CHECK(heartbeat(&e, &a));
    json_decref(want);
    json_decref(q.opts);
    env_fini(&e, cs, 1, 1);
}

static void test_rate_limit(void)
{
    env_t e;
    client_t a;
    client_t *cs[] = {&a};
    dfws_native_config_t nc = {.ws_url = "/ws/", .json_in_c = 1, .rate_limit = 5};
    env_init(&e, &nc);
    CHECK(open_window(&e, &a, NULL, 0) != NULL);
    /* a burst of twice the rate passes; the next one closes the window */
    for (int i = 0; i < 30; i++)
        client_text(&e, &a, "--heartbeat--");
    int echoed;
    CHECK(close_code(&e, &a, &echoed) == 1008);
    CHECK(echoed >= 10 && echoed < 30); /* the burst (10), or a token more on a slow machine */
    dfws_native_stats_t st;
    dfws_native_get_stats(e.n, &st);
    CHECK(st.rate_limited == 1);
    env_fini(&e, cs, 1, 1);
}

static void test_slow_reader(void)
{
    enum { MESSAGES = 256 };
    env_t e;
    client_t a, b;
    client_t *cs[] = {&a, &b};
    const char *g[] = {"room"};
    dfws_native_config_t nc = {.ws_url = "/ws/", .json_in_c = 1};
    env_init(&e, &nc);
    dfws_window_t *wa = open_window_x(&e, &a, g, 1, 1); /* reads nothing for a while */
    dfws_window_t *wb = open_window(&e, &b, g, 1);      /* reads everything */
    CHECK(wa && wb);
    char *big = malloc(65537);
    memset(big, 'x', 65536);
    big[65536] = '\0';
    /* 16 MiB to each: a's socket buffers fill (a few MiB at most), then
     * 4 MiB wait for it in the server, which gives up on it */
    int got_b = 0;
    for (int i = 0; i < MESSAGES; i++) {
        CHECK(group_send(&e, "room", big) == 0);
        for (int k = 0; k < 3; k++) {
            uv_run(&e.loop, UV_RUN_NOWAIT);
            client_read(&b);
            frame_t f;
            while (take_frame(&b, &f)) {
                got_b += f.opcode == 1 && f.len == 65536;
                free(f.data);
            }
        }
    }
    double end = now_s() + WAIT_S;
    while (got_b < MESSAGES && now_s() < end) {
        pump(&e, cs, 0);
        client_read(&b);
        frame_t f;
        while (take_frame(&b, &f)) {
            got_b += f.opcode == 1 && f.len == 65536;
            free(f.data);
        }
    }
    CHECK(got_b == MESSAGES); /* the fast reader lost nothing */
    int texts;
    CHECK(close_code(&e, &a, &texts) == 1008);
    CHECK(texts > 0 && texts < MESSAGES);
    CHECK(heartbeat(&e, &b));
    dfws_native_stats_t st;
    dfws_native_get_stats(e.n, &st);
    CHECK(st.deliveries_dropped >= 1);
    free(big);
    env_fini(&e, cs, 2, 2);
}

int main(int argc, char **argv)
{
    json_error_t jerr;
    json_t *doc;

    if (argc < 2) {
        fprintf(stderr, "usage: test_native tests/signal_calls.json\n");
        return 2;
    }
    if (!(doc = json_load_file(argv[1], 0, &jerr))) {
        fprintf(stderr, "%s:%d: %s\n", argv[1], jerr.line, jerr.text);
        return 2;
    }
    cases = json_object_get(doc, "cases");
    dfws_log_set_level(DFWS_LOG_ERROR + 1);
    test_connect_heartbeat_refuse();
    test_deliveries();
    test_table_channels_mode();
    test_table_python_mode();
    test_call_in_every_chunking();
    test_rate_limit();
    test_slow_reader();
    json_decref(doc);
    return check_summary();
}
