/*
 * test_websocket.c - unit tests for server/websocket.c (sans-I/O RFC 6455).
 *
 * Every frame-layer case feeds the same bytes in every chunking: whole,
 * each split point into two pieces, and one byte at a time, and checks
 * that every run produces the same transcript (callbacks, frames written
 * back, final return code, memory still held).  For inputs larger than
 * 4 KiB the two-piece splits are limited to the first/last 300 bytes,
 * +-3 bytes around each 4 KiB boundary (wslay's input buffer size) and
 * every 997th byte; set DFWS_WS_TEST_FULL=1 to try every split point.
 *
 * Build and run:
 *   gcc -std=gnu11 -Wall -Wextra -Wstrict-prototypes -Werror -g \
 *       -fsanitize=address,undefined -fno-sanitize-recover -Iserver \
 *       server/websocket.c tests/c/test_websocket.c -lwslay -lcrypto -lz \
 *       -o /tmp/test_websocket && /tmp/test_websocket
 */
#include "websocket.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"

/* ------------------------------------------------------------------ */
/* Byte buffers and client frame builder                                */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bb_t;

static void bb_put(bb_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void bb_free(bb_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

enum { NOMASK = 1, LEN16 = 2, LEN64 = 4 }; /* frame() options */

/* Appends a client frame.  rsv is the 3-bit field (4 = RSV1). */
static void frame_x(bb_t *b, int fin, int rsv, int op, const void *payload, size_t n, int opts)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t h[14];
    size_t hl = 0;
    int masked = !(opts & NOMASK);

    h[hl++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | op);
    if (n < 126 && !(opts & (LEN16 | LEN64))) {
        h[hl++] = (uint8_t)((masked ? 0x80 : 0) | n);
    } else if (n <= 0xFFFF && !(opts & LEN64)) {
        h[hl++] = (uint8_t)((masked ? 0x80 : 0) | 126);
        h[hl++] = (uint8_t)(n >> 8);
        h[hl++] = (uint8_t)n;
    } else {
        h[hl++] = (uint8_t)((masked ? 0x80 : 0) | 127);
        for (int i = 0; i < 8; i++)
            h[hl++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(h + hl, key, 4);
        hl += 4;
    }
    bb_put(b, h, hl);
    size_t start = b->len;
    bb_put(b, payload, n);
    if (masked)
        for (size_t i = 0; i < n; i++)
            b->p[start + i] ^= key[i % 4];
}

static void frame(bb_t *b, int fin, int op, const void *payload, size_t n)
{
    frame_x(b, fin, 0, op, payload, n, 0);
}

static void frame_s(bb_t *b, int fin, int op, const char *s)
{
    frame(b, fin, op, s, strlen(s));
}

static void close_frame(bb_t *b, unsigned code, const char *reason)
{
    uint8_t p[130];
    size_t rl = reason ? strlen(reason) : 0;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason ? reason : "", rl);
    frame(b, 1, 8, p, 2 + rl);
}

/* Raw deflate as a permessage-deflate client sends it: no context,
 * Z_SYNC_FLUSH, the 00 00 ff ff tail removed. */
static void raw_deflate(const void *data, size_t n, bb_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, n) + 16;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        abort();
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)n;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_SYNC_FLUSH) != Z_OK || z.avail_in)
        abort();
    size_t len = cap - z.avail_out;
    if (len < 4 || memcmp(buf + len - 4, "\x00\x00\xff\xff", 4))
        abort();
    bb_put(out, buf, len - 4);
    deflateEnd(&z);
    free(buf);
}

/* Inflates a server's compressed payload (appending the tail). */
static int raw_inflate(const uint8_t *p, size_t n, bb_t *out)
{
    z_stream z;
    uint8_t buf[4096];
    int rc = 0;
    bb_t in = {0};
    bb_put(&in, p, n);
    bb_put(&in, "\x00\x00\xff\xff", 4);
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -15) != Z_OK)
        abort();
    z.next_in = in.p;
    z.avail_in = (uInt)in.len;
    do {
        z.next_out = buf;
        z.avail_out = sizeof(buf);
        int zr = inflate(&z, Z_SYNC_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            rc = -1;
            break;
        }
        bb_put(out, buf, sizeof(buf) - z.avail_out);
        if (zr == Z_BUF_ERROR)
            break;
    } while (z.avail_in || z.avail_out == 0);
    inflateEnd(&z);
    bb_free(&in);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Transcript recorder                                                  */

/* Short printable payloads are shown as is, others as length + hash. */
static const char *desc(const void *data, size_t n)
{
    static char bufs[8][96];
    static int k;
    char *d = bufs[k++ % 8];
    const uint8_t *p = data;
    int printable = n <= 40;
    for (size_t i = 0; i < n && printable; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            printable = 0;
    if (printable) {
        snprintf(d, 96, "%zu'%.*s'", n, (int)n, (const char *)p);
    } else {
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < n; i++)
            h = (h ^ p[i]) * 16777619u;
        snprintf(d, 96, "%zu#%08x", n, h);
    }
    return d;
}

typedef struct rec_s {
    dfws_ws_config_t cfg;
    dfws_ws_t ws;
    char log[4096];
    size_t loglen;
    bb_t out;             /* bytes written, not yet decoded */
    int fail_write;       /* write callback fails */
    int close_on_message; /* call dfws_ws_close(1000,"done") on a msg */
    int reply_on_message; /* echo each message back */
    int feed_in_callback; /* try dfws_ws_feed from on_message */
    int pong_later;       /* on_ping keeps the latest payload; no pong */
    uint8_t ping[125];
    size_t ping_len;
    int busy_rc;
    size_t cap_at_close; /* reassembly buffer size when on_close ran */
} rec_t;

static void logf_(rec_t *r, const char *fmt, ...)
{
    va_list ap;
    if (r->loglen)
        r->log[r->loglen++] = ' ';
    va_start(ap, fmt);
    int n = vsnprintf(r->log + r->loglen, sizeof(r->log) - r->loglen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(r->log) - r->loglen) {
        fprintf(stderr, "transcript overflow\n");
        abort();
    }
    r->loglen += (size_t)n;
}

/* Decodes complete server frames in r->out into the transcript, checking
 * they are final, unmasked, with RSV 0 and minimal length encoding. */
static void drain_out(rec_t *r)
{
    size_t pos = 0;
    bb_t *o = &r->out;
    static const char *names[16] = {"cont",  "text", "binary", "op3", "op4", "op5", "op6", "op7",
                                    "close", "ping", "pong",   "opB", "opC", "opD", "opE", "opF"};

    while (o->len - pos >= 2) {
        const uint8_t *h = o->p + pos;
        size_t hl = 2;
        uint64_t n = h[1] & 0x7f;
        if (n == 126) {
            if (o->len - pos < 4)
                break;
            n = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
            CHECK(n >= 126);
        } else if (n == 127) {
            if (o->len - pos < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = (n << 8) | h[2 + i];
            hl = 10;
            CHECK(n > 0xFFFF);
        }
        if (o->len - pos < hl + n)
            break;
        /* FIN, RSV 0 (RSV1 only on a compressed data frame) */
        int rsv1 = (h[0] & 0x40) != 0;
        CHECK((h[0] & 0xB0) == 0x80);
        CHECK((h[1] & 0x80) == 0); /* server frames are not masked */
        const uint8_t *p = h + hl;
        int op = h[0] & 0x0f;
        CHECK(!rsv1 || op == 1 || op == 2);
        if (rsv1) {
            bb_t plain = {0};
            CHECK_EQ_INT(raw_inflate(p, (size_t)n, &plain), 0);
            logf_(r, "W:%s+z%zu:%s", names[op], (size_t)n, desc(plain.p, plain.len));
            bb_free(&plain);
        } else if (op == 8) {
            if (n >= 2)
                logf_(r, "W:close:%u", (unsigned)((p[0] << 8) | p[1]));
            else
                logf_(r, "W:close:none%s", n ? "+junk" : "");
        } else {
            logf_(r, "W:%s:%s", names[op], desc(p, (size_t)n));
        }
        pos += hl + (size_t)n;
    }
    if (pos) {
        memmove(o->p, o->p + pos, o->len - pos);
        o->len -= pos;
    }
}

static int cb_write(void *owner, const uint8_t *data, size_t len)
{
    rec_t *r = owner;
    if (r->fail_write)
        return -1;
    bb_put(&r->out, data, len);
    return 0;
}

static void cb_message(void *owner, int binary, const uint8_t *data, size_t len)
{
    rec_t *r = owner;
    drain_out(r);
    logf_(r, "M:%c:%s", binary ? 'B' : 'T', desc(data, len));
    if (r->feed_in_callback)
        r->busy_rc = dfws_ws_feed(&r->ws, data, len);
    if (r->reply_on_message)
        CHECK_EQ_INT(dfws_ws_send(&r->ws, binary, data, len), 0);
    if (r->close_on_message)
        CHECK_EQ_INT(dfws_ws_close(&r->ws, 1000, "done", 4), 0);
}

static void cb_pong(void *owner, const uint8_t *data, size_t len)
{
    rec_t *r = owner;
    drain_out(r);
    logf_(r, "PONG:%s", desc(data, len));
}

static void cb_close(void *owner, const dfws_ws_close_info_t *info)
{
    rec_t *r = owner;
    static const char origin[] = "?pue";
    drain_out(r);
    CHECK((info->origin == DFWS_WS_CLOSE_BY_ERROR) == (info->error != NULL));
    logf_(r, "C:%c:%u:%u", origin[info->origin], info->code_received, info->code_sent);
    r->cap_at_close = r->ws.msg_cap;
    if (info->reason_len)
        logf_(r, "reason:%s", desc(info->reason, info->reason_len));
}

static void cb_fatal(void *owner, int err, const char *what)
{
    rec_t *r = owner;
    CHECK(what != NULL);
    drain_out(r);
    logf_(r, "F:%d", err);
}

/* Installed only by setup_pong_later: the owner answers pings itself. */
static void cb_ping(void *owner, const uint8_t *data, size_t len)
{
    rec_t *r = owner;
    drain_out(r);
    logf_(r, "PING:%s", desc(data, len));
    memcpy(r->ping, data, len);
    r->ping_len = len;
}

typedef void (*setup_fn)(rec_t *r);

static void rec_init(rec_t *r, const dfws_ws_config_t *base)
{
    memset(r, 0, sizeof(*r));
    if (base) {
        r->cfg = *base;
    } else {
        dfws_ws_config_init(&r->cfg);
    }
    r->cfg.cb.write = cb_write;
    r->cfg.cb.on_message = cb_message;
    r->cfg.cb.on_pong = cb_pong;
    r->cfg.cb.on_close = cb_close;
    r->cfg.cb.on_fatal = cb_fatal;
    dfws_ws_init(&r->ws, &r->cfg, r);
}

/* End of a run: final return code and memory still held. */
static void rec_finish(rec_t *r, int rc)
{
    drain_out(r);
    if (r->out.len)
        logf_(r, "W:partial(%zu)", r->out.len);
    logf_(r, "R%d", rc);
    if (r->ws.fc)
        logf_(r, "+fc");
    if (r->ws.msg)
        logf_(r, "+msg");
    if (r->ws.ctl)
        logf_(r, "+ctl");
    if (r->ws.zin)
        logf_(r, "+zin");
    dfws_ws_cleanup(&r->ws);
    CHECK(r->ws.fc == NULL && r->ws.msg == NULL && r->ws.ctl == NULL && r->ws.zin == NULL);
    bb_free(&r->out);
}

/* Feeds `in` cut at the given points (sorted offsets, 0 < cut < n). */
static void feed_cuts(rec_t *r, const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts,
                      int bytewise)
{
    int rc = 0;
    size_t pos = 0;
    if (bytewise) {
        for (size_t i = 0; i < n; i++)
            rc = dfws_ws_feed(&r->ws, in + i, 1);
    } else {
        for (size_t i = 0; i <= ncuts; i++) {
            size_t end = i < ncuts ? cuts[i] : n;
            rc = dfws_ws_feed(&r->ws, in + pos, end - pos);
            pos = end;
        }
    }
    rec_finish(r, rc);
}

static int full_splits(void)
{
    const char *e = getenv("DFWS_WS_TEST_FULL");
    return e && *e && *e != '0';
}

static int want_split(size_t i, size_t n)
{
    if (n <= 4096 || full_splits())
        return 1;
    if (i < 300 || i > n - 300 || i % 997 == 0)
        return 1;
    size_t m = i % 4096;
    return m <= 3 || m >= 4093;
}

/* Runs `in` through every chunking; each transcript must equal expect. */
static void expect_all(const dfws_ws_config_t *cfg, setup_fn setup, const bb_t *in,
                       const char *expect)
{
    rec_t *r = malloc(sizeof(*r));
    int bad = 0;
    if (r == NULL)
        abort();
    /* mode 0: whole; mode 1: two pieces at each split; mode 2: bytewise */
    for (int mode = 0; mode < 3 && !bad; mode++) {
        size_t nsplits = mode == 1 ? (in->len > 1 ? in->len - 1 : 0) : 1;
        for (size_t s = 0; s < nsplits && !bad; s++) {
            size_t cut = s + 1;
            if (mode == 1 && !want_split(cut, in->len))
                continue;
            rec_init(r, cfg);
            if (setup)
                setup(r);
            feed_cuts(r, in->p, in->len, &cut, mode == 1 ? 1 : 0, mode == 2);
            if (strcmp(r->log, expect) != 0) {
                CHECK_FAIL("chunking %s (cut %zu of %zu)\n"
                           "    got      [%s]\n    expected [%s]",
                           mode == 0   ? "whole"
                           : mode == 1 ? "split"
                                       : "bytewise",
                           cut, in->len, r->log, expect);
                bad = 1;
            }
        }
    }
    free(r);
}

static const char *fmt(const char *f, ...)
{
    static char bufs[4][4096];
    static int k;
    char *d = bufs[k++ % 4];
    va_list ap;
    va_start(ap, f);
    vsnprintf(d, 4096, f, ap);
    va_end(ap);
    return d;
}

/* expect_all with the default config and no setup. */
static void expect_frames(const bb_t *in, const char *expect)
{
    expect_all(NULL, NULL, in, expect);
}

/* ------------------------------------------------------------------ */
/* Handshake                                                            */

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static void test_accept_key(void)
{
    char out[DFWS_WS_ACCEPT_LEN + 1];
    /* RFC 6455 section 1.3 */
    CHECK_EQ_INT(dfws_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK_EQ_INT(dfws_ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out), 0);
    CHECK_STR(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    CHECK_EQ_INT(dfws_ws_accept_key("AQIDBAUGBwgJCgsMDQ4PEA==", 24, out), 0);
    CHECK_STR(out, "C/0nmHhBztSRGR1CwL6Tf4ZjwpY=");
    CHECK_EQ_INT(dfws_ws_accept_key(NULL, 0, out), DFWS_WS_E_INVAL);
}

static int check_req(const char *method, const dfws_ws_header_t *h, size_t n)
{
    return dfws_ws_handshake_check(method, strlen(method), h, n, NULL, NULL);
}

static void test_handshake_check(void)
{
    const char *key = NULL;
    size_t klen = 0;
    dfws_ws_header_t ok[] = {
        H("Host", "example.com"),
        H("upgrade", "WebSocket"),
        H("CONNECTION", "keep-alive, Upgrade"),
        H("Sec-WebSocket-Key", "  dGhlIHNhbXBsZSBub25jZQ== "),
        H("sec-websocket-version", "13"),
    };
    CHECK_EQ_INT(dfws_ws_handshake_check("GET", 3, ok, 5, &key, &klen), 0);
    CHECK_EQ_INT(klen, 24);
    CHECK(key && memcmp(key, "dGhlIHNhbXBsZSBub25jZQ==", 24) == 0);

    CHECK_EQ_INT(check_req("POST", ok, 5), DFWS_WS_HS_E_METHOD);
    CHECK_EQ_INT(check_req("get", ok, 5), DFWS_WS_HS_E_METHOD);

    dfws_ws_header_t upgrade_list[] = {
        H("Upgrade", "h2c, websocket"),
        H("Connection", "upgrade"),
        H("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        H("Sec-WebSocket-Version", "13"),
    };
    CHECK_EQ_INT(check_req("GET", upgrade_list, 4), 0);

    dfws_ws_header_t no_upgrade[] = {
        H("Upgrade", "h2c"),
        H("Connection", "upgrade"),
        H("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        H("Sec-WebSocket-Version", "13"),
    };
    CHECK_EQ_INT(check_req("GET", no_upgrade, 4), DFWS_WS_HS_E_UPGRADE);
    CHECK_EQ_INT(check_req("GET", no_upgrade + 1, 3), DFWS_WS_HS_E_UPGRADE);

    /* "upgrades" is not the token "upgrade"; a second Connection header
     * line counts */
    dfws_ws_header_t conn[] = {
        H("Upgrade", "websocket"),
        H("Connection", "keep-alive, upgrades"),
        H("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        H("Sec-WebSocket-Version", "13"),
        H("Connection", "Upgrade"),
    };
    CHECK_EQ_INT(check_req("GET", conn, 4), DFWS_WS_HS_E_CONNECTION);
    CHECK_EQ_INT(check_req("GET", conn, 5), 0);

    dfws_ws_header_t v8[] = {
        H("Upgrade", "websocket"),
        H("Connection", "Upgrade"),
        H("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        H("Sec-WebSocket-Version", "8"),
    };
    CHECK_EQ_INT(check_req("GET", v8, 4), DFWS_WS_HS_E_VERSION);
    CHECK_EQ_INT(check_req("GET", v8, 3), DFWS_WS_HS_E_VERSION); /* missing */
    CHECK_EQ_INT(dfws_ws_handshake_status(DFWS_WS_HS_E_VERSION), 426);
    CHECK_EQ_INT(dfws_ws_handshake_status(DFWS_WS_HS_E_KEY), 400);
    CHECK_EQ_INT(dfws_ws_handshake_status(DFWS_WS_HS_E_METHOD), 400);

    const char *bad_keys[] = {
        "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 chars */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 chars */
        "dGhlIHNhbXBsZSBub25jZQ!=",  /* bad padding */
        "dGhl*HNhbXBsZSBub25jZQ==",  /* bad alphabet */
        "dGhlIHNhbXBsZSBub25jZSBm",  /* 18 bytes, no padding */
        "",
    };
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        dfws_ws_header_t h[] = {
            H("Upgrade", "websocket"),
            H("Connection", "Upgrade"),
            {"Sec-WebSocket-Key", 17, bad_keys[i], strlen(bad_keys[i])},
            H("Sec-WebSocket-Version", "13"),
        };
        CHECK_EQ_INT(check_req("GET", h, 4), DFWS_WS_HS_E_KEY);
    }
    dfws_ws_header_t two_keys[] = {
        H("Upgrade", "websocket"),
        H("Connection", "Upgrade"),
        H("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        H("Sec-WebSocket-Version", "13"),
        H("Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA=="),
    };
    CHECK_EQ_INT(check_req("GET", two_keys, 5), DFWS_WS_HS_E_KEY);
    CHECK_EQ_INT(check_req("GET", two_keys, 2), DFWS_WS_HS_E_VERSION);
    CHECK(strstr(dfws_ws_strerror(DFWS_WS_HS_E_KEY), "Key") != NULL);
}

static void test_parse_protocols(void)
{
    dfws_ws_token_t t[4];
    dfws_ws_header_t h[] = {
        H("Sec-WebSocket-Protocol", " chat, ,superchat ,"),
        H("Host", "x"),
        H("sec-websocket-protocol", "v2.bin.df"),
    };
    CHECK_EQ_INT(dfws_ws_parse_protocols(h, 3, t, 4), 3);
    CHECK(t[0].len == 4 && memcmp(t[0].ptr, "chat", 4) == 0);
    CHECK(t[1].len == 9 && memcmp(t[1].ptr, "superchat", 9) == 0);
    CHECK(t[2].len == 9 && memcmp(t[2].ptr, "v2.bin.df", 9) == 0);
    /* snprintf-like: count all, store max */
    memset(t, 0, sizeof(t));
    CHECK_EQ_INT(dfws_ws_parse_protocols(h, 3, t, 1), 3);
    CHECK(t[0].len == 4 && t[1].ptr == NULL);
    CHECK_EQ_INT(dfws_ws_parse_protocols(h + 1, 1, t, 4), 0);
    dfws_ws_header_t bad[] = {H("Sec-WebSocket-Protocol", "chat, a b")};
    CHECK_EQ_INT(dfws_ws_parse_protocols(bad, 1, t, 4), DFWS_WS_HS_E_PROTOCOL);
    dfws_ws_header_t bad2[] = {H("Sec-WebSocket-Protocol", "x/y")};
    CHECK_EQ_INT(dfws_ws_parse_protocols(bad2, 1, t, 4), DFWS_WS_HS_E_PROTOCOL);
}

static void test_build_response(void)
{
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    char buf[512];
    dfws_ws_header_t extra[] = {H("Server", "dfws"), H("Set-Cookie", "a=b; Path=/")};
    const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                       "Sec-WebSocket-Protocol: chat\r\n"
                       "Server: dfws\r\n"
                       "Set-Cookie: a=b; Path=/\r\n"
                       "\r\n";
    int n = dfws_ws_build_response(key, 24, "chat", 4, extra, 2, NULL, 0);
    CHECK_EQ_INT(n, strlen(want));
    memset(buf, 'x', sizeof(buf));
    CHECK_EQ_INT(dfws_ws_build_response(key, 24, "chat", 4, extra, 2, buf, 10), n);
    CHECK(buf[0] == 'x'); /* too small: nothing written */
    CHECK_EQ_INT(dfws_ws_build_response(key, 24, "chat", 4, extra, 2, buf, sizeof(buf)), n);
    CHECK(n > 0 && memcmp(buf, want, (size_t)n) == 0);

    const char *plain = "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                        "\r\n";
    n = dfws_ws_build_response(key, 24, NULL, 0, NULL, 0, buf, sizeof(buf));
    CHECK_EQ_INT(n, strlen(plain));
    CHECK(n > 0 && memcmp(buf, plain, (size_t)n) == 0);

    dfws_ws_header_t crlf[] = {H("X-A", "a\r\nInjected: 1")};
    CHECK_EQ_INT(dfws_ws_build_response(key, 24, NULL, 0, crlf, 1, buf, sizeof(buf)),
                 DFWS_WS_HS_E_HEADER);
    dfws_ws_header_t badname[] = {H("X A", "1")};
    CHECK_EQ_INT(dfws_ws_build_response(key, 24, NULL, 0, badname, 1, buf, sizeof(buf)),
                 DFWS_WS_HS_E_HEADER);
    CHECK_EQ_INT(dfws_ws_build_response(key, 24, "a b", 3, NULL, 0, buf, sizeof(buf)),
                 DFWS_WS_HS_E_PROTOCOL);
}

/* ------------------------------------------------------------------ */
/* UTF-8 validator (direct)                                             */

static int utf8_ok(const char *s, size_t n)
{
    uint8_t st = 0;
    return dfws_ws_utf8_check(&st, (const uint8_t *)s, n) == 0 && st == 0;
}

static void test_utf8_validator(void)
{
    CHECK(utf8_ok("", 0));
    CHECK(utf8_ok("hello", 5));
    CHECK(utf8_ok("\xC2\x80", 2));          /* U+0080 */
    CHECK(utf8_ok("\xDF\xBF", 2));          /* U+07FF */
    CHECK(utf8_ok("\xE0\xA0\x80", 3));      /* U+0800 */
    CHECK(utf8_ok("\xED\x9F\xBF", 3));      /* U+D7FF */
    CHECK(utf8_ok("\xEE\x80\x80", 3));      /* U+E000 */
    CHECK(utf8_ok("\xEF\xBF\xBF", 3));      /* U+FFFF */
    CHECK(utf8_ok("\xF0\x90\x80\x80", 4));  /* U+10000 */
    CHECK(utf8_ok("\xF4\x8F\xBF\xBF", 4));  /* U+10FFFF */
    CHECK(!utf8_ok("\xC0\x80", 2));         /* overlong NUL */
    CHECK(!utf8_ok("\xC1\xBF", 2));         /* overlong */
    CHECK(!utf8_ok("\xE0\x9F\xBF", 3));     /* overlong 3-byte */
    CHECK(!utf8_ok("\xF0\x8F\xBF\xBF", 4)); /* overlong 4-byte */
    CHECK(!utf8_ok("\xED\xA0\x80", 3));     /* U+D800 surrogate */
    CHECK(!utf8_ok("\xED\xBF\xBF", 3));     /* U+DFFF surrogate */
    CHECK(!utf8_ok("\xF4\x90\x80\x80", 4)); /* U+110000 */
    CHECK(!utf8_ok("\xF5\x80\x80\x80", 4));
    CHECK(!utf8_ok("\xFF", 1));
    CHECK(!utf8_ok("\x80", 1));     /* stray continuation */
    CHECK(!utf8_ok("\xE2\x82", 2)); /* truncated (state != 0) */
    CHECK(!utf8_ok("\xE2\x28\xA1", 3));
    /* incremental, byte by byte */
    const uint8_t euro[] = {0xE2, 0x82, 0xAC};
    uint8_t st = 0;
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(dfws_ws_utf8_check(&st, euro + i, 1), 0);
    CHECK_EQ_INT(st, 0);
}

/* ------------------------------------------------------------------ */
/* Frames: messages                                                     */

static void fill(uint8_t *p, size_t n, int text)
{
    for (size_t i = 0; i < n; i++)
        p[i] = text ? (uint8_t)('a' + i % 26) : (uint8_t)(i * 7 + (i >> 8));
}

static void test_message_lengths(void)
{
    static const size_t lens[] = {0, 1, 125, 126, 65535, 65536};
    uint8_t *payload = malloc(65536);
    if (payload == NULL)
        abort();
    for (int text = 0; text <= 1; text++) {
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            bb_t in = {0};
            size_t n = lens[i];
            fill(payload, n, text);
            frame(&in, 1, text ? 1 : 2, payload, n);
            /* the 7/16/64-bit length forms */
            CHECK_EQ_INT(in.p[1], 0x80 | (n < 126 ? n : n <= 0xFFFF ? 126 : 127));
            expect_frames(&in, fmt("M:%c:%s R0", text ? 'T' : 'B', desc(payload, n)));
            bb_free(&in);
        }
    }
    free(payload);
}

static void test_several_messages_one_buffer(void)
{
    bb_t in = {0};
    frame_s(&in, 1, 1, "one");
    frame(&in, 1, 2, "\x00\x01\x02", 3);
    frame_s(&in, 1, 9, "hb");
    frame_s(&in, 1, 1, "");
    frame_s(&in, 1, 10, "p0ng");
    frame_s(&in, 1, 1, "three");
    expect_frames(&in, fmt("M:T:3'one' M:B:%s W:pong:2'hb' M:T:0'' "
                           "PONG:4'p0ng' M:T:5'three' R0",
                           desc("\x00\x01\x02", 3)));
    bb_free(&in);
}

static void test_fragmentation(void)
{
    bb_t in = {0};
    /* text in 3 fragments with an empty one and pings in between */
    frame_s(&in, 0, 1, "Hel");
    frame_s(&in, 1, 9, "p1");
    frame_s(&in, 0, 0, "");
    frame_s(&in, 1, 10, "unsolicited");
    frame_s(&in, 0, 0, "lo,");
    frame_s(&in, 1, 9, "");
    frame_s(&in, 1, 0, "world");
    /* binary in 2 fragments, then a plain message */
    frame(&in, 0, 2, "\x01\x02", 2);
    frame(&in, 1, 0, "\x03", 1);
    frame_s(&in, 1, 1, "after");
    expect_frames(&in, fmt("W:pong:2'p1' PONG:11'unsolicited' W:pong:0'' "
                           "M:T:11'Hello,world' M:B:%s M:T:5'after' R0",
                           desc("\x01\x02\x03", 3)));
    bb_free(&in);

    /* first fragment empty, then whole rest in one frame */
    bb_t in2 = {0};
    frame_s(&in2, 0, 1, "");
    frame_s(&in2, 1, 0, "xyz");
    expect_frames(&in2, "M:T:3'xyz' R0");
    bb_free(&in2);

    /* large fragmented binary message (crosses wslay's 4 KiB buffer) */
    bb_t in3 = {0};
    uint8_t *big = malloc(10000);
    if (big == NULL)
        abort();
    fill(big, 10000, 0);
    frame(&in3, 0, 2, big, 3000);
    frame(&in3, 0, 0, big + 3000, 5000);
    frame_s(&in3, 1, 9, "mid");
    frame(&in3, 1, 0, big + 8000, 2000);
    expect_frames(&in3, fmt("W:pong:3'mid' M:B:%s R0", desc(big, 10000)));
    free(big);
    bb_free(&in3);
}

static void test_split_multibyte_across_fragments(void)
{
    /* "é€😀" = C3 A9 | E2 82 AC | F0 9F 98 80, cut inside each char */
    static const char all[] = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    bb_t in = {0};
    frame(&in, 0, 1, all, 1);
    frame(&in, 0, 0, all + 1, 2); /* A9 E2 */
    frame(&in, 0, 0, all + 3, 4); /* 82 AC F0 9F */
    frame(&in, 0, 0, all + 7, 1); /* 98 */
    frame(&in, 1, 0, all + 8, 1); /* 80 */
    expect_frames(&in, fmt("M:T:%s R0", desc(all, 9)));
    bb_free(&in);
}

static void test_utf8_invalid_text(void)
{
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"\xC0\x80", 2},         {"a\xC1\xBF", 3},        {"\xE0\x80\x80", 3}, {"\xE0\x9F\xBF", 3},
        {"\xF0\x80\x80\x80", 4}, {"\xF0\x8F\xBF\xBF", 4}, {"\xED\xA0\x80", 3}, {"\xED\xBF\xBF", 3},
        {"\xF4\x90\x80\x80", 4}, {"\xF7\xBF\xBF\xBF", 4}, {"\xFE", 1},         {"ok\x80", 3},
        {"\xE2\x82", 2}, /* truncated at end of message */
        {"\xF0\x9F\x98", 3},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bb_t in = {0};
        frame(&in, 1, 1, bad[i].s, bad[i].n);
        frame_s(&in, 1, 1, "ignored");
        expect_frames(&in, "W:close:1007 C:e:1006:1007 R-4");
        bb_free(&in);
    }
    /* invalid only across fragments: E2 then 'A' */
    bb_t in = {0};
    frame(&in, 0, 1, "x\xE2", 2);
    frame(&in, 1, 0, "A", 1);
    expect_frames(&in, "W:close:1007 C:e:1006:1007 R-4");
    bb_free(&in);
    /* message ending inside a char after several fragments */
    bb_t in2 = {0};
    frame(&in2, 0, 1, "x", 1);
    frame(&in2, 1, 0, "\xF0\x9F", 2);
    expect_frames(&in2, "W:close:1007 C:e:1006:1007 R-4");
    bb_free(&in2);
    /* binary messages are not checked */
    bb_t in3 = {0};
    frame(&in3, 1, 2, "\xC0\x80\xFF", 3);
    expect_frames(&in3, fmt("M:B:%s R0", desc("\xC0\x80\xFF", 3)));
    bb_free(&in3);
    /* invalid in the first fragment: fail before the message completes */
    bb_t in4 = {0};
    frame(&in4, 0, 1, "\xED\xA0\x80", 3);
    expect_frames(&in4, "W:close:1007 C:e:1006:1007 R-4");
    bb_free(&in4);
}

/* ------------------------------------------------------------------ */
/* Protocol errors -> 1002                                              */

static void expect_1002(const bb_t *in)
{
    expect_frames(in, "W:close:1002 C:e:1006:1002 R-4");
}

static void test_protocol_errors(void)
{
    for (int rsv = 1; rsv <= 7; rsv++) {
        bb_t in = {0};
        frame_x(&in, 1, rsv, 1, "a", 1, 0);
        expect_1002(&in);
        bb_free(&in);
    }
    static const int ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        bb_t in = {0};
        frame(&in, 1, ops[i], "", 0);
        expect_1002(&in);
        bb_free(&in);
    }
    /* fragmented control frames */
    for (int op = 8; op <= 10; op++) {
        bb_t in = {0};
        frame(&in, 0, op, "", 0);
        expect_1002(&in);
        bb_free(&in);
    }
    /* control payload > 125 */
    uint8_t big[126];
    memset(big, 'p', sizeof(big));
    for (int op = 8; op <= 10; op++) {
        bb_t in = {0};
        frame(&in, 1, op, big, 126);
        expect_1002(&in);
        bb_free(&in);
    }
    /* continuation without start */
    bb_t c = {0};
    frame_s(&c, 1, 0, "x");
    expect_1002(&c);
    bb_free(&c);
    /* new data frame while fragmenting */
    for (int op = 1; op <= 2; op++) {
        bb_t in = {0};
        frame_s(&in, 0, 1, "a");
        frame_s(&in, 1, op, "b");
        expect_1002(&in);
        bb_free(&in);
    }
    /* non-minimal length encodings */
    bb_t nm = {0};
    frame_x(&nm, 1, 0, 2, "abc", 3, LEN16);
    expect_1002(&nm);
    bb_free(&nm);
    bb_t nm2 = {0};
    frame_x(&nm2, 1, 0, 2, "abc", 3, LEN64);
    expect_1002(&nm2);
    bb_free(&nm2);
    /* a valid message before the error is delivered */
    bb_t v = {0};
    frame_s(&v, 1, 1, "ok");
    frame_x(&v, 1, 4, 2, "", 0, 0);
    frame_s(&v, 1, 1, "never");
    expect_frames(&v, "M:T:2'ok' W:close:1002 C:e:1006:1002 R-4");
    bb_free(&v);
}

static void test_unmasked(void)
{
    static const int ops[] = {1, 2, 9, 10, 8};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        bb_t in = {0};
        frame_x(&in, 1, 0, ops[i], "", 0, NOMASK);
        expect_1002(&in);
        bb_free(&in);
    }
    bb_t in = {0};
    frame_x(&in, 1, 0, 1, "hello", 5, NOMASK);
    expect_1002(&in);
    bb_free(&in);
    /* unmasked continuation of a masked start */
    bb_t in2 = {0};
    frame_s(&in2, 0, 1, "a");
    frame_x(&in2, 1, 0, 0, "b", 1, NOMASK);
    expect_1002(&in2);
    bb_free(&in2);
}

/* ------------------------------------------------------------------ */
/* Close handshake and close codes                                      */

static void test_close_by_peer(void)
{
    bb_t in = {0};
    frame_s(&in, 1, 1, "last");
    close_frame(&in, 1000, "bye");
    frame_s(&in, 1, 1, "after close: ignored");
    frame_x(&in, 1, 7, 15, "", 0, NOMASK); /* garbage: ignored too */
    expect_frames(&in, "M:T:4'last' W:close:1000 C:p:1000:1000 "
                       "reason:3'bye' R-4");
    bb_free(&in);

    /* empty close: echoed empty, reported as 1005 */
    bb_t e = {0};
    frame(&e, 1, 8, "", 0);
    expect_frames(&e, "W:close:none C:p:1005:1005 R-4");
    bb_free(&e);

    /* UTF-8 reason split by chunking; 123-byte reason (max) */
    bb_t u = {0};
    close_frame(&u, 4000, "\xC3\xA9t\xC3\xA9");
    expect_frames(&u,
                  fmt("W:close:4000 C:p:4000:4000 reason:%s R-4", desc("\xC3\xA9t\xC3\xA9", 5)));
    bb_free(&u);
    char r123[124];
    memset(r123, 'r', 123);
    r123[123] = 0;
    bb_t m = {0};
    close_frame(&m, 1001, r123);
    expect_frames(&m, fmt("W:close:1001 C:p:1001:1001 reason:%s R-4", desc(r123, 123)));
    bb_free(&m);

    /* close in the middle of a fragmented message drops it */
    bb_t f = {0};
    frame_s(&f, 0, 1, "part");
    close_frame(&f, 1000, NULL);
    expect_frames(&f, "W:close:1000 C:p:1000:1000 R-4");
    bb_free(&f);
}

static void test_close_codes(void)
{
    static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const unsigned invalid[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                       1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        bb_t in = {0};
        close_frame(&in, valid[i], "x");
        expect_frames(&in,
                      fmt("W:close:%u C:p:%u:%u reason:1'x' R-4", valid[i], valid[i], valid[i]));
        CHECK(dfws_ws_close_code_valid(valid[i]));
        bb_free(&in);
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        bb_t in = {0};
        close_frame(&in, invalid[i], NULL);
        expect_1002(&in);
        CHECK(!dfws_ws_close_code_valid(invalid[i]));
        bb_free(&in);
    }
    /* 1-byte close payload */
    bb_t one = {0};
    frame(&one, 1, 8, "\x03", 1);
    expect_1002(&one);
    bb_free(&one);
    /* invalid UTF-8 reasons */
    static const char *bad_reasons[] = {"\xC0\xAF", "ab\xED\xA0\x80", "\xF4\x90\x80\x80",
                                        "\xE2\x82"};
    for (size_t i = 0; i < 4; i++) {
        bb_t in = {0};
        close_frame(&in, 1000, bad_reasons[i]);
        expect_frames(&in, "W:close:1007 C:e:1006:1007 R-4");
        bb_free(&in);
    }
}

static void setup_close_first(rec_t *r)
{
    CHECK_EQ_INT(dfws_ws_close(&r->ws, 1001, "going away", 10), 0);
    CHECK_EQ_INT(r->ws.state, DFWS_WS_CLOSING);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, (const uint8_t *)"x", 1), DFWS_WS_E_CLOSING);
    CHECK_EQ_INT(dfws_ws_ping(&r->ws, NULL, 0), DFWS_WS_E_CLOSING);
    CHECK_EQ_INT(dfws_ws_close(&r->ws, 1000, NULL, 0), DFWS_WS_E_CLOSING);
}

static void test_close_by_us(void)
{
    /* messages and pings after our close are dropped/unanswered; the
     * peer's close completes the handshake without a second close */
    bb_t in = {0};
    frame_s(&in, 1, 1, "late message");
    frame_s(&in, 0, 2, "late");
    frame_s(&in, 1, 9, "late ping");
    frame_s(&in, 1, 0, "fragment");
    frame_s(&in, 1, 10, "pong");
    close_frame(&in, 1001, "ok");
    frame_s(&in, 1, 1, "ignored");
    expect_all(NULL, setup_close_first, &in,
               "W:close:1001 PONG:4'pong' C:u:1001:1001 reason:2'ok' R-4");
    bb_free(&in);

    /* peer answers with an empty close */
    bb_t e = {0};
    frame(&e, 1, 8, "", 0);
    expect_all(NULL, setup_close_first, &e, "W:close:1001 C:u:1005:1001 R-4");
    bb_free(&e);

    /* protocol error while closing: no second close frame */
    bb_t p = {0};
    frame_x(&p, 1, 2, 1, "", 0, 0);
    expect_all(NULL, setup_close_first, &p, "W:close:1001 C:e:1006:1001 R-4");
    bb_free(&p);

    /* no input yet: still waiting */
    bb_t none = {0};
    frame_s(&none, 1, 9, "");
    expect_all(NULL, setup_close_first, &none, "W:close:1001 R0");
    bb_free(&none);
}

static void setup_close_on_message(rec_t *r)
{
    r->close_on_message = 1;
}

static void test_close_from_callback(void)
{
    bb_t in = {0};
    frame_s(&in, 1, 1, "first");
    frame_s(&in, 1, 1, "second");
    close_frame(&in, 1000, NULL);
    expect_all(NULL, setup_close_on_message, &in, "M:T:5'first' W:close:1000 C:u:1000:1000 R-4");
    bb_free(&in);
}

static void setup_echo(rec_t *r)
{
    r->reply_on_message = 1;
}

static void test_echo_from_callback(void)
{
    bb_t in = {0};
    uint8_t big[300];
    fill(big, sizeof(big), 1);
    frame_s(&in, 1, 1, "hi");
    frame(&in, 1, 1, big, sizeof(big));
    expect_all(NULL, setup_echo, &in,
               fmt("M:T:2'hi' W:text:2'hi' M:T:%s W:text:%s R0", desc(big, 300), desc(big, 300)));
    bb_free(&in);
}

/* ------------------------------------------------------------------ */
/* Ping / pong                                                          */

static void test_ping_pong(void)
{
    uint8_t p125[125];
    fill(p125, 125, 0);
    bb_t in = {0};
    frame(&in, 1, 9, p125, 125);
    frame_s(&in, 1, 9, "");
    frame_s(&in, 1, 10, "reply");
    frame(&in, 1, 10, "", 0);
    expect_frames(&in, fmt("W:pong:%s W:pong:0'' PONG:5'reply' PONG:0'' R0", desc(p125, 125)));
    bb_free(&in);
}

static void setup_pong_later(rec_t *r)
{
    r->cfg.cb.on_ping = cb_ping;
}

/* With on_ping the module writes no pong of its own: the owner decides
 * (ws_conn.c answers only the latest ping while its output is backed up). */
static void test_ping_taken_by_owner(void)
{
    bb_t in = {0};
    frame_s(&in, 1, 9, "one");
    frame_s(&in, 1, 9, "two");
    frame_s(&in, 1, 1, "msg");
    expect_all(NULL, setup_pong_later, &in, "PING:3'one' PING:3'two' M:T:3'msg' R0");
    bb_free(&in);

    /* the owner's answer to the latest ping, then the limits of a pong */
    rec_t *r = malloc(sizeof(*r));
    rec_init(r, NULL);
    setup_pong_later(r);
    frame_s(&in, 1, 9, "latest");
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, in.p, in.len), 0);
    CHECK_EQ_INT(dfws_ws_pong(&r->ws, r->ping, r->ping_len), 0);
    uint8_t big[126] = {0};
    CHECK_EQ_INT(dfws_ws_pong(&r->ws, big, sizeof(big)), DFWS_WS_E_INVAL);
    CHECK_EQ_INT(dfws_ws_close(&r->ws, 1000, NULL, 0), 0);
    CHECK_EQ_INT(dfws_ws_pong(&r->ws, r->ping, r->ping_len), DFWS_WS_E_CLOSING);
    rec_finish(r, 0);
    CHECK_STR(r->log, "PING:6'latest' W:pong:6'latest' W:close:1000 R0");
    free(r);
    bb_free(&in);
}

/* ------------------------------------------------------------------ */
/* Limits -> 1009                                                       */

static void test_limits_exact(void)
{
    dfws_ws_config_t cfg;
    uint8_t buf[300];
    bb_t want = {0};
    fill(buf, sizeof(buf), 1);
    dfws_ws_config_init(&cfg);
    cfg.max_frame_size = 100;
    cfg.max_message_size = 250;

    /* at the limits: delivered */
    bb_t ok = {0};
    frame(&ok, 1, 1, buf, 100);
    frame(&ok, 0, 1, buf, 100);
    frame(&ok, 0, 0, buf, 100);
    frame(&ok, 1, 0, buf, 50);
    bb_put(&want, buf, 100);
    bb_put(&want, buf, 100);
    bb_put(&want, buf, 50);
    expect_all(&cfg, NULL, &ok, fmt("M:T:%s M:T:%s R0", desc(buf, 100), desc(want.p, 250)));
    bb_free(&ok);
    bb_free(&want);

    /* frame over max_frame_size */
    bb_t f = {0};
    frame(&f, 1, 2, buf, 101);
    expect_all(&cfg, NULL, &f, "W:close:1009 C:e:1006:1009 R-4");
    bb_free(&f);
    /* message over max_message_size across fragments */
    bb_t m = {0};
    frame(&m, 0, 2, buf, 100);
    frame(&m, 0, 0, buf, 100);
    frame(&m, 1, 0, buf, 51);
    expect_all(&cfg, NULL, &m, "W:close:1009 C:e:1006:1009 R-4");
    bb_free(&m);
    /* control frames do not count against the limits */
    cfg.max_frame_size = 10;
    cfg.max_message_size = 10;
    bb_t c = {0};
    frame(&c, 1, 9, buf, 125);
    expect_all(&cfg, NULL, &c, fmt("W:pong:%s R0", desc(buf, 125)));
    bb_free(&c);

    /* 0 = unlimited: 70000 bytes in two 35000-byte fragments */
    uint8_t *big = malloc(70000);
    if (big == NULL)
        abort();
    fill(big, 70000, 0);
    cfg.max_frame_size = 0;
    cfg.max_message_size = 0;
    bb_t u = {0};
    frame(&u, 0, 2, big, 35000);
    frame(&u, 1, 0, big + 35000, 35000);
    expect_all(&cfg, NULL, &u, fmt("M:B:%s R0", desc(big, 70000)));
    bb_free(&u);

    /* default 1 MiB: a 1 MiB + 1 frame is refused at its first payload
     * bytes, before anything is buffered */
    dfws_ws_config_init(&cfg);
    bb_t d = {0};
    uint8_t hdr[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0x10, 0, 1, 1, 2, 3, 4, 9, 9};
    bb_put(&d, hdr, sizeof(hdr));
    expect_all(&cfg, NULL, &d, "W:close:1009 C:e:1006:1009 R-4");
    bb_free(&d);
    /* 2^63 - 1 claimed length with default limits */
    bb_t h = {0};
    uint8_t huge[] = {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4, 0};
    bb_put(&h, huge, sizeof(huge));
    expect_all(&cfg, NULL, &h, "W:close:1009 C:e:1006:1009 R-4");
    bb_free(&h);
    /* MSB set in 64-bit length: malformed */
    bb_t msb = {0};
    huge[2] = 0x80;
    bb_put(&msb, huge, sizeof(huge));
    expect_all(&cfg, NULL, &msb, "W:close:1002 C:e:1006:1002 R-4");
    bb_free(&msb);
    free(big);
}

/* ------------------------------------------------------------------ */
/* Memory: buffers only while needed                                    */

static void test_memory_held_only_while_needed(void)
{
    /* partial frame header: wslay context held, no message buffer */
    bb_t h = {0};
    frame_s(&h, 1, 1, "abc");
    h.len = 1;
    expect_frames(&h, "R0 +fc");
    /* message split mid-payload: both held until it completes */
    bb_t p = {0};
    frame_s(&p, 1, 1, "abcdef");
    p.len -= 2;
    expect_frames(&p, "R0 +fc +msg");
    bb_free(&p);
    /* fragmented message with complete frames: only the buffer */
    bb_t f = {0};
    frame_s(&f, 0, 1, "abc");
    expect_frames(&f, "R0 +msg");
    bb_free(&f);
    /* split control frame: 125-byte buffer held only until it completes */
    bb_t c = {0};
    frame_s(&c, 1, 9, "ping!");
    rec_t *r = malloc(sizeof(*r));
    if (r == NULL)
        abort();
    rec_init(r, NULL);
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, c.p, c.len - 2), 0);
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, c.p + c.len - 2, 1), 0);
    CHECK(r->ws.ctl != NULL && r->ws.fc != NULL);
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, c.p + c.len - 1, 1), 0);
    CHECK(r->ws.ctl == NULL && r->ws.fc == NULL && r->ws.msg == NULL);
    rec_finish(r, 0);
    CHECK_STR(r->log, "W:pong:5'ping!' R0");
    free(r);
    bb_free(&c);
    bb_free(&h);

    /* reassembly buffer never grows past the end of the current frame */
    uint8_t big[1000];
    fill(big, sizeof(big), 0);
    bb_t g = {0};
    frame(&g, 1, 2, big, sizeof(big));
    r = malloc(sizeof(*r));
    if (r == NULL)
        abort();
    rec_init(r, NULL);
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, g.p, 9), 0);
    CHECK(r->ws.msg != NULL && r->ws.msg_cap <= 1000);
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, g.p + 9, 500), 0); /* 501 bytes */
    CHECK(r->ws.msg != NULL && r->ws.msg_cap == 512);
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, g.p + 509, 400), 0); /* 901: 1024 -> */
    CHECK(r->ws.msg != NULL && r->ws.msg_cap == 1000);     /* clamped */
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, g.p + 909, g.len - 909), 0);
    CHECK(r->ws.msg == NULL && r->ws.fc == NULL);
    rec_finish(r, 0);
    CHECK_STR(r->log, fmt("M:B:%s R0", desc(big, sizeof(big))));
    free(r);
    bb_free(&g);

    CHECK(sizeof(dfws_ws_t) <= 104); /* 96 before permessage-deflate */
    printf("sizeof(dfws_ws_t) = %zu bytes\n", sizeof(dfws_ws_t));
}

/* ------------------------------------------------------------------ */
/* Sending                                                              */

static void test_send(void)
{
    rec_t *r = malloc(sizeof(*r));
    uint8_t *payload = malloc(65536);
    static const size_t lens[] = {0, 125, 126, 65535, 65536};
    if (r == NULL || payload == NULL)
        abort();
    rec_init(r, NULL);
    for (size_t i = 0; i < 5; i++) {
        size_t n = lens[i];
        fill(payload, n, 1);
        r->out.len = 0;
        CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, payload, n), 0);
        size_t hl = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
        CHECK_EQ_INT(r->out.len, hl + n);
        CHECK_EQ_INT(r->out.p[0], 0x81);
        CHECK_EQ_INT(r->out.p[1], n < 126 ? n : n <= 0xFFFF ? 126 : 127);
        if (hl == 4)
            CHECK_EQ_INT((r->out.p[2] << 8) | r->out.p[3], n);
        if (hl == 10)
            CHECK(r->out.p[7] == 1 && r->out.p[8] == 0 && r->out.p[9] == 0);
        CHECK(memcmp(r->out.p + hl, payload, n) == 0);
    }
    r->out.len = 0;
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 1, (const uint8_t *)"\x00\xff", 2), 0);
    CHECK(r->out.len == 4 && memcmp(r->out.p, "\x82\x02\x00\xff", 4) == 0);
    r->out.len = 0;
    CHECK_EQ_INT(dfws_ws_ping(&r->ws, (const uint8_t *)"ka", 2), 0);
    CHECK(r->out.len == 4 && memcmp(r->out.p, "\x89\x02ka", 4) == 0);
    CHECK_EQ_INT(dfws_ws_ping(&r->ws, payload, 126), DFWS_WS_E_INVAL);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, NULL, 3), DFWS_WS_E_INVAL);
    /* close: bad codes refused, nothing written */
    r->out.len = 0;
    CHECK_EQ_INT(dfws_ws_close(&r->ws, 1005, NULL, 0), DFWS_WS_E_INVAL);
    CHECK_EQ_INT(dfws_ws_close(&r->ws, 1006, NULL, 0), DFWS_WS_E_INVAL);
    CHECK_EQ_INT(dfws_ws_close(&r->ws, 999, NULL, 0), DFWS_WS_E_INVAL);
    CHECK_EQ_INT(dfws_ws_close(&r->ws, 5000, NULL, 0), DFWS_WS_E_INVAL);
    CHECK_EQ_INT(r->out.len, 0);
    /* reason truncated to 123 bytes without splitting a character:
     * 122 x 'a' + "é" (2 bytes) -> 122 bytes */
    char reason[130];
    memset(reason, 'a', 122);
    memcpy(reason + 122, "\xC3\xA9zz", 4);
    CHECK_EQ_INT(dfws_ws_close(&r->ws, 4001, reason, 126), 0);
    CHECK_EQ_INT(r->out.len, 2 + 2 + 122);
    CHECK(r->out.p[0] == 0x88 && r->out.p[1] == 124);
    CHECK(r->out.p[2] == 0x0F && r->out.p[3] == 0xA1);
    CHECK_EQ_INT(r->ws.state, DFWS_WS_CLOSING);
    CHECK_EQ_INT(r->ws.code_sent, 4001);
    dfws_ws_cleanup(&r->ws);
    bb_free(&r->out);

    /* close without status code */
    rec_init(r, NULL);
    CHECK_EQ_INT(dfws_ws_close(&r->ws, 0, "ignored", 7), 0);
    CHECK(r->out.len == 2 && memcmp(r->out.p, "\x88\x00", 2) == 0);
    dfws_ws_cleanup(&r->ws);
    bb_free(&r->out);
    free(payload);
    free(r);
}

static void setup_fail_write(rec_t *r)
{
    r->fail_write = 1;
}

static void test_write_failure_is_fatal(void)
{
    /* pong write fails during feed */
    bb_t in = {0};
    frame_s(&in, 1, 9, "x");
    frame_s(&in, 1, 1, "not delivered");
    expect_all(NULL, setup_fail_write, &in, fmt("F:%d R%d", DFWS_WS_E_WRITE, DFWS_WS_E_FATAL));
    bb_free(&in);
    /* close echo fails: fatal, no on_close */
    bb_t c = {0};
    close_frame(&c, 1000, NULL);
    expect_all(NULL, setup_fail_write, &c, fmt("F:%d R%d", DFWS_WS_E_WRITE, DFWS_WS_E_FATAL));
    bb_free(&c);
    /* direct send */
    rec_t *r = malloc(sizeof(*r));
    if (r == NULL)
        abort();
    rec_init(r, NULL);
    r->fail_write = 1;
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, (const uint8_t *)"a", 1), DFWS_WS_E_WRITE);
    CHECK_EQ_INT(r->ws.state, DFWS_WS_DEAD);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, (const uint8_t *)"a", 1), DFWS_WS_E_FATAL);
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, (const uint8_t *)"\x81", 1), DFWS_WS_E_FATAL);
    rec_finish(r, 0);
    CHECK_STR(r->log, fmt("F:%d R0", DFWS_WS_E_WRITE));
    free(r);
}

static void setup_reenter(rec_t *r)
{
    r->feed_in_callback = 1;
}

static void test_reentrant_feed_refused(void)
{
    bb_t in = {0};
    frame_s(&in, 1, 1, "a");
    expect_all(NULL, setup_reenter, &in, "M:T:1'a' R0");
    rec_t *r = malloc(sizeof(*r));
    if (r == NULL)
        abort();
    rec_init(r, NULL);
    r->feed_in_callback = 1;
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, in.p, in.len), 0);
    CHECK_EQ_INT(r->busy_rc, DFWS_WS_E_BUSY);
    rec_finish(r, 0);
    free(r);
    bb_free(&in);
}

/* ------------------------------------------------------------------ */
/* permessage-deflate (RFC 7692)                                        */

static dfws_ws_deflate_t *g_deflate; /* level 6, threshold 0, 15 bits */

static void pmd_config(dfws_ws_config_t *cfg)
{
    dfws_ws_config_init(cfg);
    cfg->deflate = g_deflate;
}

static void setup_pmd(rec_t *r)
{
    dfws_ws_pmd_t p = {15, 15, 0, 0};
    dfws_ws_set_pmd(&r->ws, &p);
}

/* Offers in one or two headers -> the response value, "" when declined. */
static void expect_offer(const dfws_ws_deflate_t *d, const char *h1, const char *h2,
                         const char *want)
{
    dfws_ws_header_t hs[3] = {
        H("Host", "x"),
        {"Sec-WebSocket-Extensions", 24, h1, strlen(h1)},
        {"sec-websocket-extensions", 24, h2 ? h2 : "", h2 ? strlen(h2) : 0},
    };
    char resp[DFWS_WS_PMD_RESPONSE_MAX];
    dfws_ws_pmd_t p;
    resp[0] = '\0';
    int rc = dfws_ws_pmd_negotiate(d, hs, h2 ? 3 : 2, &p, resp);
    CHECK_MSG(rc == (*want != '\0') && (!rc || strcmp(resp, want) == 0),
              "offer [%s]%s%s -> %d [%s], expected [%s]", h1, h2 ? " + " : "", h2 ? h2 : "", rc,
              rc ? resp : "", want);
    if (rc)
        CHECK(p.server_bits >= 9 && p.server_bits <= 15 && p.client_bits >= 8 &&
              p.client_bits <= 15);
    else
        CHECK(p.server_bits == 0 && p.client_bits == 0);
}

#define PMD_BASE                                                                                   \
    "permessage-deflate; server_no_context_takeover; "                                             \
    "client_no_context_takeover"

static void test_pmd_negotiation(void)
{
    const dfws_ws_deflate_t *d = g_deflate;
    /* what browsers send (Chromium, Firefox) */
    expect_offer(d, "permessage-deflate; client_max_window_bits", NULL, PMD_BASE);
    expect_offer(d, "permessage-deflate", NULL, PMD_BASE);
    /* Python websockets' default offer */
    expect_offer(d,
                 "permessage-deflate; server_max_window_bits=12; "
                 "client_max_window_bits=12",
                 NULL, PMD_BASE "; server_max_window_bits=12; client_max_window_bits=12");
    expect_offer(d,
                 "permessage-deflate; server_no_context_takeover; "
                 "client_no_context_takeover",
                 NULL, PMD_BASE);
    expect_offer(d, "permessage-deflate;server_max_window_bits=9", NULL,
                 PMD_BASE "; server_max_window_bits=9");
    expect_offer(d, "permessage-deflate ; client_max_window_bits = \"10\"", NULL,
                 PMD_BASE "; client_max_window_bits=10");
    expect_offer(d, "PerMessage-Deflate; SERVER_MAX_WINDOW_BITS=15", NULL,
                 PMD_BASE "; server_max_window_bits=15");
    /* declined: cannot be honoured (zlib has no 256-byte raw window) */
    expect_offer(d, "permessage-deflate; server_max_window_bits=8", NULL, "");
    /* declined: invalid offers */
    static const char *bad[] = {
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits=",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate;",
        "permessage-deflate;;",
        "permessage-deflate x",
        "permessage-deflate; =1",
        "x-webkit-deflate-frame",
        "permessage-deflatex",
        "",
        ",,,",
        "\"permessage-deflate\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_offer(d, bad[i], NULL, "");
    /* the first acceptable offer wins; the others are skipped */
    expect_offer(d,
                 "permessage-deflate; server_max_window_bits=8, "
                 "permessage-deflate; server_max_window_bits=10",
                 NULL, PMD_BASE "; server_max_window_bits=10");
    expect_offer(d, "permessage-deflate; foo, permessage-deflate", NULL, PMD_BASE);
    expect_offer(d,
                 "x-foo; a=\"b,permessage-deflate\", permessage-deflate; "
                 "client_max_window_bits=11",
                 NULL, PMD_BASE "; client_max_window_bits=11");
    expect_offer(d, " , permessage-deflate , ", NULL, PMD_BASE);
    expect_offer(d, "x-foo", "permessage-deflate", PMD_BASE);
    expect_offer(d, "permessage-deflate; x",
                 "permessage-deflate; "
                 "server_max_window_bits=13",
                 PMD_BASE "; server_max_window_bits=13");
    /* no extension configured: nothing is accepted */
    expect_offer(NULL, "permessage-deflate", NULL, "");

    /* a server configured with a smaller window says so; it asks the
     * client for one only if the client offered client_max_window_bits */
    dfws_ws_deflate_t *d12 = dfws_ws_deflate_new(6, 0, 12);
    CHECK(d12 != NULL);
    expect_offer(d12, "permessage-deflate", NULL, PMD_BASE "; server_max_window_bits=12");
    expect_offer(d12, "permessage-deflate; client_max_window_bits", NULL,
                 PMD_BASE "; server_max_window_bits=12; client_max_window_bits=12");
    expect_offer(d12,
                 "permessage-deflate; server_max_window_bits=14; "
                 "client_max_window_bits=9",
                 NULL, PMD_BASE "; server_max_window_bits=12; client_max_window_bits=9");
    dfws_ws_deflate_free(d12);
    CHECK(dfws_ws_deflate_new(0, 0, 15) == NULL);
    CHECK(dfws_ws_deflate_new(6, 0, 8) == NULL);
}

/* A client frame whose payload is given as bytes (already compressed). */
static void zframe(bb_t *b, int fin, int rsv1, int op, const char *hex_bytes, size_t n)
{
    frame_x(b, fin, rsv1 ? 4 : 0, op, hex_bytes, n, 0);
}

static void test_pmd_rfc7692_examples(void)
{
    dfws_ws_config_t cfg;
    pmd_config(&cfg);
    /* 7.2.3.1: "Hello" in one compressed frame */
    bb_t a = {0};
    zframe(&a, 1, 1, 1, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    expect_all(&cfg, setup_pmd, &a, "M:T:5'Hello' R0");
    /* ... and fragmented: RSV1 on the first frame only */
    bb_t b = {0};
    zframe(&b, 0, 1, 1, "\xf2\x48\xcd", 3);
    zframe(&b, 1, 0, 0, "\xc9\xc9\x07\x00", 4);
    expect_all(&cfg, setup_pmd, &b, "M:T:5'Hello' R0");
    /* 7.2.3.2: the second message of a shared LZ77 window refers back to
     * the first; with no context takeover agreed, it cannot inflate */
    bb_t c = {0};
    zframe(&c, 1, 1, 1, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    zframe(&c, 1, 1, 1, "\xf2\x00\x11\x00\x00", 5);
    expect_all(&cfg, setup_pmd, &c, "M:T:5'Hello' W:close:1007 C:e:1006:1007 R-4");
    /* 7.2.3.3: a stored (uncompressed) block */
    bb_t e = {0};
    zframe(&e, 1, 1, 1, "\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00", 11);
    expect_all(&cfg, setup_pmd, &e, "M:T:5'Hello' R0");
    /* 7.2.3.4: two DEFLATE blocks in one message */
    bb_t f = {0};
    zframe(&f, 1, 1, 1, "\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00", 13);
    expect_all(&cfg, setup_pmd, &f, "M:T:5'Hello' R0");
    /* 7.2.3.5: a block with BFINAL set (the appended tail is ignored) */
    bb_t g = {0};
    zframe(&g, 1, 1, 1, "\xf3\x48\xcd\xc9\xc9\x07\x00\x00", 8);
    zframe(&g, 1, 1, 2, "\xf3\x48\xcd\xc9\xc9\x07\x00\x00", 8);
    expect_all(&cfg, setup_pmd, &g, "M:T:5'Hello' M:B:5'Hello' R0");
    /* compressed and plain messages mix; an empty compressed message */
    bb_t h = {0};
    zframe(&h, 1, 1, 1, "\x00", 1);
    frame_s(&h, 1, 1, "plain");
    zframe(&h, 1, 1, 1, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    expect_all(&cfg, setup_pmd, &h, "M:T:0'' M:T:5'plain' M:T:5'Hello' R0");
    bb_free(&a);
    bb_free(&b);
    bb_free(&c);
    bb_free(&e);
    bb_free(&f);
    bb_free(&g);
    bb_free(&h);
}

static void test_pmd_fragmented_and_large(void)
{
    dfws_ws_config_t cfg;
    pmd_config(&cfg);
    /* 20000 bytes of text compressed, cut into 7 frames with pings
     * between them; fed in every chunking */
    static uint8_t text[20000];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (uint8_t)('a' + (i * 7 + i / 13) % 26);
    bb_t z = {0}, in = {0};
    raw_deflate(text, sizeof(text), &z);
    size_t step = z.len / 7 + 1;
    for (size_t off = 0; off < z.len; off += step) {
        size_t n = z.len - off < step ? z.len - off : step;
        frame_x(&in, off + n == z.len, off == 0 ? 4 : 0, off == 0 ? 1 : 0, z.p + off, n, 0);
        if (off == 0)
            frame_s(&in, 1, 9, "p");
    }
    expect_all(&cfg, setup_pmd, &in, fmt("W:pong:1'p' M:T:%s R0", desc(text, sizeof(text))));
    /* the message split across feeds holds the inflater; a complete one
     * gives it back */
    bb_t part = {0};
    bb_put(&part, in.p, in.len - 3);
    expect_all(&cfg, setup_pmd, &part, "W:pong:1'p' R0 +fc +msg +zin");
    bb_free(&z);
    bb_free(&in);
    bb_free(&part);

    /* binary data that does not compress */
    static uint8_t noise[3000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(noise); i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (uint8_t)(x >> 16);
    }
    bb_t nz = {0}, nin = {0};
    raw_deflate(noise, sizeof(noise), &nz);
    frame_x(&nin, 1, 4, 2, nz.p, nz.len, 0);
    expect_all(&cfg, setup_pmd, &nin, fmt("M:B:%s R0", desc(noise, sizeof(noise))));
    bb_free(&nz);
    bb_free(&nin);
}

static void test_pmd_errors(void)
{
    dfws_ws_config_t cfg;
    pmd_config(&cfg);
    /* RSV1 on a continuation frame */
    bb_t a = {0};
    frame_s(&a, 0, 1, "Hel");
    zframe(&a, 1, 1, 0, "lo", 2);
    expect_all(&cfg, setup_pmd, &a, "W:close:1002 C:e:1006:1002 R-4");
    bb_t a2 = {0};
    zframe(&a2, 0, 1, 1, "\xf2\x48\xcd", 3);
    zframe(&a2, 1, 1, 0, "\xc9\xc9\x07\x00", 4);
    expect_all(&cfg, setup_pmd, &a2, "W:close:1002 C:e:1006:1002 R-4");
    /* RSV1 on control frames */
    for (int op = 8; op <= 10; op++) {
        bb_t c = {0};
        frame_x(&c, 1, 4, op, "", 0, 0);
        expect_all(&cfg, setup_pmd, &c, "W:close:1002 C:e:1006:1002 R-4");
        bb_free(&c);
    }
    /* RSV2, RSV3 stay reserved */
    for (int rsv = 1; rsv <= 3; rsv++) {
        bb_t c = {0};
        frame_x(&c, 1, rsv | 4, 1, "\x00", 1, 0);
        expect_all(&cfg, setup_pmd, &c, "W:close:1002 C:e:1006:1002 R-4");
        bb_free(&c);
    }
    /* RSV1 on a connection that did not negotiate the extension (the
     * config has it, this connection does not) */
    bb_t n = {0};
    zframe(&n, 1, 1, 1, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    expect_all(&cfg, NULL, &n, "W:close:1002 C:e:1006:1002 R-4");
    /* not DEFLATE data: 1007 */
    bb_t g = {0};
    zframe(&g, 1, 1, 2, "\xff\xff\xff\xff", 4);
    expect_all(&cfg, setup_pmd, &g, "W:close:1007 C:e:1006:1007 R-4");
    /* the inflated text is checked for UTF-8: bad bytes, and a message
     * that ends inside a character */
    bb_t z1 = {0}, u = {0};
    raw_deflate("ok \xed\xa0\x80 surrogate", 15, &z1);
    frame_x(&u, 1, 4, 1, z1.p, z1.len, 0);
    expect_all(&cfg, setup_pmd, &u, "W:close:1007 C:e:1006:1007 R-4");
    bb_t z2 = {0}, u2 = {0};
    raw_deflate("cut \xe2\x82", 6, &z2);
    frame_x(&u2, 1, 4, 1, z2.p, z2.len, 0);
    expect_all(&cfg, setup_pmd, &u2, "W:close:1007 C:e:1006:1007 R-4");
    /* the same bytes as binary are fine */
    bb_t u3 = {0};
    frame_x(&u3, 1, 4, 2, z2.p, z2.len, 0);
    expect_all(&cfg, setup_pmd, &u3, fmt("M:B:%s R0", desc("cut \xe2\x82", 6)));
    bb_free(&a);
    bb_free(&a2);
    bb_free(&n);
    bb_free(&g);
    bb_free(&z1);
    bb_free(&u);
    bb_free(&z2);
    bb_free(&u2);
    bb_free(&u3);
}

/* A decompression bomb: the limit applies to the inflated size, and no
 * more than limit + 1 bytes are ever produced. */
static void test_pmd_bomb(void)
{
    dfws_ws_config_t cfg;
    pmd_config(&cfg);
    cfg.max_message_size = 1 << 20;
    size_t big = (size_t)16 << 20;
    uint8_t *zeros = calloc(1, big);
    if (zeros == NULL)
        abort();
    bb_t z = {0}, in = {0};
    raw_deflate(zeros, big, &z); /* 16 MiB -> about 16 KiB */
    CHECK(z.len < 20000);
    frame_x(&in, 1, 4, 2, z.p, z.len, 0);
    expect_all(&cfg, setup_pmd, &in, "W:close:1009 C:e:1006:1009 R-4");
    rec_t *r = malloc(sizeof(*r));
    if (r == NULL)
        abort();
    rec_init(r, &cfg);
    setup_pmd(r);
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, in.p, in.len), DFWS_WS_E_CLOSED);
    CHECK(r->cap_at_close <= cfg.max_message_size + 1);
    rec_finish(r, 0);
    free(r);
    /* spread over many frames, too */
    bb_t many = {0};
    size_t step = 1000;
    for (size_t off = 0; off < z.len; off += step) {
        size_t n = z.len - off < step ? z.len - off : step;
        frame_x(&many, off + n == z.len, off == 0 ? 4 : 0, off == 0 ? 2 : 0, z.p + off, n, 0);
    }
    rec_t *r2 = malloc(sizeof(*r2));
    if (r2 == NULL)
        abort();
    rec_init(r2, &cfg);
    setup_pmd(r2);
    CHECK_EQ_INT(dfws_ws_feed(&r2->ws, many.p, many.len), DFWS_WS_E_CLOSED);
    CHECK(r2->cap_at_close <= cfg.max_message_size + 1);
    rec_finish(r2, 0);
    CHECK_STR(r2->log, "W:close:1009 C:e:1006:1009 R0");
    free(r2);
    bb_free(&many);

    /* exactly at the limit: delivered; one byte more: 1009 */
    cfg.max_message_size = 5000;
    cfg.max_frame_size = 64; /* the compressed frames are small */
    bb_t zok = {0}, ok = {0}, zover = {0}, over = {0};
    raw_deflate(zeros, 5000, &zok);
    frame_x(&ok, 1, 4, 2, zok.p, zok.len, 0);
    expect_all(&cfg, setup_pmd, &ok, fmt("M:B:%s R0", desc(zeros, 5000)));
    raw_deflate(zeros, 5001, &zover);
    frame_x(&over, 1, 4, 2, zover.p, zover.len, 0);
    expect_all(&cfg, setup_pmd, &over, "W:close:1009 C:e:1006:1009 R-4");
    /* max_frame_size applies to the compressed frame as received */
    cfg.max_frame_size = 8;
    expect_all(&cfg, setup_pmd, &ok, "W:close:1009 C:e:1006:1009 R-4");
    bb_free(&zok);
    bb_free(&ok);
    bb_free(&zover);
    bb_free(&over);
    bb_free(&z);
    bb_free(&in);
    free(zeros);
}

static void test_pmd_send(void)
{
    dfws_ws_config_t cfg;
    dfws_ws_deflate_stats_t st0, st;
    pmd_config(&cfg);
    rec_t *r = malloc(sizeof(*r));
    if (r == NULL)
        abort();

    /* RFC 7692 7.2.3.1's "Hello" takes 7 bytes compressed: not smaller,
     * so it goes as it is; ten of them shrink */
    rec_init(r, &cfg);
    setup_pmd(r);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, (const uint8_t *)"Hello", 5), 0);
    CHECK(r->out.len == 7 && !memcmp(r->out.p, "\x81\x05Hello", 7));
    const char *h10 = "HelloHelloHelloHelloHelloHelloHelloHelloHelloHello";
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, (const uint8_t *)h10, 50), 0);
    CHECK(r->out.len > 9 && r->out.p[7] == 0xc1 && r->out.p[8] < 50);
    rec_finish(r, 0);
    CHECK_STR(r->log, fmt("W:text:5'Hello' W:text+z10:%s R0", desc(h10, 50)));

    /* no extension on this connection: plain */
    rec_init(r, &cfg);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, (const uint8_t *)"Hello", 5), 0);
    rec_finish(r, 0);
    CHECK_STR(r->log, "W:text:5'Hello' R0");

    /* below the threshold, or not smaller once compressed: plain */
    dfws_ws_deflate_t *d = dfws_ws_deflate_new(1, 100, 15);
    cfg.deflate = d;
    static uint8_t noise[1000], text[1000];
    uint32_t x = 99;
    for (size_t i = 0; i < sizeof(noise); i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (uint8_t)(x >> 16);
        text[i] = (uint8_t)('a' + i % 3);
    }
    rec_init(r, &cfg);
    setup_pmd(r);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 1, text, 99), 0);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 1, noise, sizeof(noise)), 0);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 1, text, 100), 0);
    rec_finish(r, 0);
    CHECK_STR(r->log, fmt("W:binary:%s W:binary:%s W:binary+z8:%s R0", desc(text, 99),
                          desc(noise, sizeof(noise)), desc(text, 100)));

    /* a broadcast: the same message to many connections is compressed
     * once and the same bytes go to each */
    dfws_ws_deflate_get_stats(d, &st0);
    bb_t first = {0};
    for (int i = 0; i < 5; i++) {
        rec_init(r, &cfg);
        setup_pmd(r);
        CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, text, sizeof(text)), 0);
        if (i == 0)
            bb_put(&first, r->out.p, r->out.len);
        else
            CHECK(r->out.len == first.len && !memcmp(r->out.p, first.p, first.len));
        rec_finish(r, 0);
    }
    dfws_ws_deflate_get_stats(d, &st);
    CHECK_EQ_INT(st.compressed - st0.compressed, 1);
    CHECK_EQ_INT(st.reused - st0.reused, 4);
    /* several broadcasts delivered in turn (A, B, C to each window) are
     * each compressed once too */
    dfws_ws_deflate_get_stats(d, &st0);
    static uint8_t msgs[3][400];
    for (int m = 0; m < 3; m++)
        for (size_t i = 0; i < sizeof(msgs[m]); i++)
            msgs[m][i] = (uint8_t)('a' + (i % (5 + m)));
    for (int i = 0; i < 4; i++) {
        rec_init(r, &cfg);
        setup_pmd(r);
        for (int m = 0; m < 3; m++)
            CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, msgs[m], sizeof(msgs[m])), 0);
        rec_finish(r, 0);
        for (int m = 0; m < 3; m++)
            CHECK(strstr(r->log, fmt(":%s", desc(msgs[m], sizeof(msgs[m])))) != NULL);
        CHECK(!strstr(r->log, "W:text:"));
    }
    dfws_ws_deflate_get_stats(d, &st);
    CHECK_EQ_INT(st.compressed - st0.compressed, 3);
    CHECK_EQ_INT(st.reused - st0.reused, 9);
    dfws_ws_deflate_get_stats(d, &st0);
    /* another window size is another compression */
    rec_init(r, &cfg);
    dfws_ws_pmd_t p10 = {10, 15, 1, 0};
    dfws_ws_set_pmd(&r->ws, &p10);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, text, sizeof(text)), 0);
    rec_finish(r, 0);
    CHECK(strstr(r->log, "W:text+z") && strstr(r->log, desc(text, sizeof(text))));
    dfws_ws_deflate_get_stats(d, &st);
    CHECK_EQ_INT(st.compressed - st0.compressed, 1);
    /* a different message of the same length is compressed anew */
    text[500] = 'z';
    rec_init(r, &cfg);
    setup_pmd(r);
    CHECK_EQ_INT(dfws_ws_send(&r->ws, 0, text, sizeof(text)), 0);
    rec_finish(r, 0);
    CHECK(strstr(r->log, desc(text, sizeof(text))) != NULL);
    dfws_ws_deflate_get_stats(d, &st);
    CHECK_EQ_INT(st.compressed - st0.compressed, 2);
    bb_free(&first);

    /* echo through the codec: what we send, a client inflates */
    cfg.deflate = g_deflate;
    bb_t in = {0}, z = {0};
    raw_deflate(text, sizeof(text), &z);
    frame_x(&in, 1, 4, 1, z.p, z.len, 0);
    dfws_ws_config_t ecfg = cfg;
    ecfg.deflate = g_deflate;
    rec_init(r, &ecfg);
    setup_pmd(r);
    r->reply_on_message = 1;
    CHECK_EQ_INT(dfws_ws_feed(&r->ws, in.p, in.len), 0);
    rec_finish(r, 0);
    CHECK(strstr(r->log, "W:text+z") != NULL);
    bb_free(&in);
    bb_free(&z);
    free(r);
    dfws_ws_deflate_free(d);
}

int main(void)
{
    g_deflate = dfws_ws_deflate_new(6, 0, 15);
    RUN(test_accept_key);
    RUN(test_handshake_check);
    RUN(test_parse_protocols);
    RUN(test_build_response);
    RUN(test_utf8_validator);
    RUN(test_message_lengths);
    RUN(test_several_messages_one_buffer);
    RUN(test_fragmentation);
    RUN(test_split_multibyte_across_fragments);
    RUN(test_utf8_invalid_text);
    RUN(test_protocol_errors);
    RUN(test_unmasked);
    RUN(test_close_by_peer);
    RUN(test_close_codes);
    RUN(test_close_by_us);
    RUN(test_close_from_callback);
    RUN(test_echo_from_callback);
    RUN(test_ping_pong);
    RUN(test_ping_taken_by_owner);
    RUN(test_limits_exact);
    RUN(test_memory_held_only_while_needed);
    RUN(test_send);
    RUN(test_write_failure_is_fatal);
    RUN(test_reentrant_feed_refused);
    RUN(test_pmd_negotiation);
    RUN(test_pmd_rfc7692_examples);
    RUN(test_pmd_fragmented_and_large);
    RUN(test_pmd_errors);
    RUN(test_pmd_bomb);
    RUN(test_pmd_send);
    dfws_ws_deflate_free(g_deflate);
    return check_summary();
}
