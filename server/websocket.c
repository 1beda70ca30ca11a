/*
 * websocket.c - sans-I/O WebSocket protocol (RFC 6455), server side.
 *
 * Layering: wslay's frame API decodes frame headers and unmasks payload
 * chunks (it checks control frame FIN/length and minimal length encoding,
 * nothing else).  The message layer here enforces the rest of RFC 6455 on
 * each frame's first chunk, reassembles fragmented messages, validates
 * UTF-8 incrementally, answers pings and runs the close handshake.  We do
 * not use wslay's event API: it costs 8.8 KB per connection for its whole
 * life and queues a copy of every outgoing message, whereas the frame
 * context (4.3 KB) is only alive here while a frame is in flight.
 *
 * Outgoing frames are encoded here (a 2-10 byte header; server frames are
 * never masked) and written synchronously through cfg->cb.write, so
 * nothing is ever queued inside this module.
 */
#include "websocket.h"

#include <stdlib.h>
#include <string.h>

#include <limits.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>
#include <zlib.h>

/* flags */
#define F_IN_FRAME 0x01u /* a frame's first chunk was seen, not its last */
#define F_IN_FEED 0x02u  /* inside dfws_ws_feed (re-entrance guard) */
#define F_DEFLATED 0x04u /* the message being received is compressed */
#define F_ZEND 0x08u     /* ...and its deflate stream ended (BFINAL) */

#define OP_CONT 0x0u
#define OP_TEXT 0x1u
#define OP_BINARY 0x2u
#define OP_CLOSE 0x8u
#define OP_PING 0x9u
#define OP_PONG 0xAu

#define CTL_MAX 125u
#define REASON_MAX 123u

/* Returned by the chunk handlers: stop processing input. */
#define STOP 1

/* RFC 7692 7.2.1: a message is compressed with Z_SYNC_FLUSH and the
 * trailing empty stored block's 4 bytes are removed; the receiver appends
 * them again before inflating. */
static const uint8_t PMD_TAIL[4] = {0x00, 0x00, 0xff, 0xff};
/* The last few compressed messages are kept (input and output) for the
 * next connections: several broadcasts delivered in one loop turn reach
 * each window in turn (A, B, A, B...), so one entry would never hit.
 * Messages above PMD_REUSE_MAX are compressed per send.  At most
 * PMD_ENTRIES * 2 * PMD_REUSE_MAX bytes per process. */
#define PMD_ENTRIES 8
#define PMD_REUSE_MAX ((size_t)128 * 1024)

/* ------------------------------------------------------------------ */
/* Errors                                                               */

const char *dfws_ws_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case DFWS_WS_E_INVAL:
        return "invalid argument";
    case DFWS_WS_E_NOMEM:
        return "out of memory";
    case DFWS_WS_E_WRITE:
        return "write callback failed";
    case DFWS_WS_E_CLOSED:
        return "websocket closed";
    case DFWS_WS_E_CLOSING:
        return "websocket closing (close frame sent)";
    case DFWS_WS_E_FATAL:
        return "websocket connection dead";
    case DFWS_WS_E_BUSY:
        return "dfws_ws_feed called from a callback";
    case DFWS_WS_HS_E_METHOD:
        return "websocket upgrade: method is not GET";
    case DFWS_WS_HS_E_UPGRADE:
        return "websocket upgrade: missing \"Upgrade: websocket\"";
    case DFWS_WS_HS_E_CONNECTION:
        return "websocket upgrade: \"Connection\" lacks \"upgrade\"";
    case DFWS_WS_HS_E_VERSION:
        return "websocket upgrade: Sec-WebSocket-Version is not 13";
    case DFWS_WS_HS_E_KEY:
        return "websocket upgrade: bad or missing Sec-WebSocket-Key";
    case DFWS_WS_HS_E_PROTOCOL:
        return "websocket upgrade: bad Sec-WebSocket-Protocol token";
    case DFWS_WS_HS_E_HEADER:
        return "websocket upgrade: bad extra response header";
    default:
        return "unknown websocket error";
    }
}

/* ------------------------------------------------------------------ */
/* UTF-8 (Unicode 15, table 3-7: well-formed byte sequences)            */

enum {
    U_ACCEPT = 0,
    U_CONT1, /* 1 more 80..BF */
    U_CONT2, /* 2 more 80..BF */
    U_CONT3, /* 3 more 80..BF */
    U_E0,    /* A0..BF, then 1 more (no overlong 3-byte forms) */
    U_ED,    /* 80..9F, then 1 more (no surrogates D800..DFFF) */
    U_F0,    /* 90..BF, then 2 more (no overlong 4-byte forms) */
    U_F4,    /* 80..8F, then 2 more (nothing above U+10FFFF) */
    U_REJECT
};

static uint8_t utf8_lead(uint8_t c)
{
    if (c < 0x80u)
        return U_ACCEPT;
    if (c >= 0xC2u && c <= 0xDFu)
        return U_CONT1;
    if (c == 0xE0u)
        return U_E0;
    if (c == 0xEDu)
        return U_ED;
    if (c >= 0xE1u && c <= 0xEFu)
        return U_CONT2;
    if (c == 0xF0u)
        return U_F0;
    if (c >= 0xF1u && c <= 0xF3u)
        return U_CONT3;
    if (c == 0xF4u)
        return U_F4;
    return U_REJECT; /* 80..C1 (stray continuation / overlong), F5..FF */
}

int dfws_ws_utf8_check(uint8_t *state, const uint8_t *p, size_t n)
{
    uint8_t s = *state;
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        uint8_t lo = 0x80u, hi = 0xBFu;

        if (s == U_ACCEPT) {
            /* fast path over ASCII runs */
            while (i < n && p[i] < 0x80u)
                i++;
            if (i == n)
                break;
            s = utf8_lead(p[i++]);
            if (s == U_REJECT)
                goto reject;
            continue;
        }
        switch (s) {
        case U_E0:
            lo = 0xA0u;
            break;
        case U_ED:
            hi = 0x9Fu;
            break;
        case U_F0:
            lo = 0x90u;
            break;
        case U_F4:
            hi = 0x8Fu;
            break;
        default:
            break;
        }
        if (c < lo || c > hi)
            goto reject;
        switch (s) {
        case U_CONT1:
            s = U_ACCEPT;
            break;
        case U_CONT2:
        case U_E0:
        case U_ED:
            s = U_CONT1;
            break;
        case U_CONT3:
        case U_F0:
        case U_F4:
            s = U_CONT2;
            break;
        default:
            goto reject;
        }
        i++;
    }
    *state = s;
    return 0;
reject:
    *state = U_REJECT;
    return -1;
}

/* ------------------------------------------------------------------ */
/* Handshake helpers                                                    */

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **p, size_t *n)
{
    while (*n && is_ows((*p)[0])) {
        (*p)++;
        (*n)--;
    }
    while (*n && is_ows((*p)[*n - 1]))
        (*n)--;
}

/* RFC 7230 tchar */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)p[i]))
            return 0;
    return 1;
}

/* Calls fn on each trimmed, non-empty element of a comma separated list;
 * stops early when fn returns non-zero and returns that value. */
typedef int (*list_fn)(const char *p, size_t n, void *arg);

static int list_each(const char *v, size_t vlen, list_fn fn, void *arg)
{
    size_t start = 0;
    for (size_t i = 0; i <= vlen; i++) {
        if (i == vlen || v[i] == ',') {
            const char *p = v + start;
            size_t n = i - start;
            int rc;
            trim(&p, &n);
            if (n && (rc = fn(p, n, arg)) != 0)
                return rc;
            start = i + 1;
        }
    }
    return 0;
}

static int match_token(const char *p, size_t n, void *arg)
{
    /* Upgrade elements may be "name/version" (RFC 7230 6.7) */
    const char *want = arg;
    return ieq(p, n, want);
}

static int header_has_token(const dfws_ws_header_t *h, size_t nh, const char *name,
                            const char *token)
{
    for (size_t i = 0; i < nh; i++)
        if (ieq(h[i].name, h[i].name_len, name) &&
            list_each(h[i].value, h[i].value_len, match_token, (void *)token))
            return 1;
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* base64 of 16 bytes = 22 significant characters + "==". */
static int key_valid(const char *k, size_t n)
{
    if (n != 24 || k[22] != '=' || k[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (b64_value((unsigned char)k[i]) < 0)
            return 0;
    return 1;
}

int dfws_ws_handshake_check(const char *method, size_t method_len, const dfws_ws_header_t *headers,
                            size_t nheaders, const char **key, size_t *key_len)
{
    const char *k = NULL;
    size_t klen = 0;
    int nkeys = 0, version_ok = 0, version_bad = 0;

    if (method_len != 3 || memcmp(method, "GET", 3) != 0)
        return DFWS_WS_HS_E_METHOD;
    if (!header_has_token(headers, nheaders, "upgrade", "websocket"))
        return DFWS_WS_HS_E_UPGRADE;
    if (!header_has_token(headers, nheaders, "connection", "upgrade"))
        return DFWS_WS_HS_E_CONNECTION;
    for (size_t i = 0; i < nheaders; i++) {
        const dfws_ws_header_t *h = &headers[i];
        const char *v = h->value;
        size_t vlen = h->value_len;
        trim(&v, &vlen);
        if (ieq(h->name, h->name_len, "sec-websocket-version")) {
            if (vlen == 2 && memcmp(v, "13", 2) == 0)
                version_ok = 1;
            else
                version_bad = 1;
        } else if (ieq(h->name, h->name_len, "sec-websocket-key")) {
            nkeys++;
            k = v;
            klen = vlen;
        }
    }
    if (!version_ok || version_bad)
        return DFWS_WS_HS_E_VERSION;
    if (nkeys != 1 || !key_valid(k, klen))
        return DFWS_WS_HS_E_KEY;
    if (key)
        *key = k;
    if (key_len)
        *key_len = klen;
    return 0;
}

int dfws_ws_handshake_status(int err)
{
    return err == DFWS_WS_HS_E_VERSION ? 426 : 400;
}

int dfws_ws_accept_key(const char *key, size_t key_len, char out[DFWS_WS_ACCEPT_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx;
    int ok;

    if (key == NULL || key_len == 0)
        return DFWS_WS_E_INVAL;
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return DFWS_WS_E_NOMEM;
    ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, key, key_len) == 1 &&
         EVP_DigestUpdate(ctx, WS_GUID, sizeof(WS_GUID) - 1) == 1 &&
         EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return DFWS_WS_E_INVAL;
    /* 20 bytes -> 28 base64 characters + NUL */
    if (EVP_EncodeBlock((unsigned char *)out, md, 20) != DFWS_WS_ACCEPT_LEN)
        return DFWS_WS_E_INVAL;
    return 0;
}

struct proto_acc {
    dfws_ws_token_t *out;
    size_t max;
    size_t count;
};

static int collect_proto(const char *p, size_t n, void *arg)
{
    struct proto_acc *acc = arg;
    if (!is_token(p, n))
        return DFWS_WS_HS_E_PROTOCOL;
    if (acc->count < acc->max) {
        acc->out[acc->count].ptr = p;
        acc->out[acc->count].len = n;
    }
    acc->count++;
    return 0;
}

int dfws_ws_parse_protocols(const dfws_ws_header_t *headers, size_t nheaders, dfws_ws_token_t *out,
                            size_t max)
{
    struct proto_acc acc = {out, max, 0};
    for (size_t i = 0; i < nheaders; i++) {
        if (!ieq(headers[i].name, headers[i].name_len, "sec-websocket-protocol"))
            continue;
        int rc = list_each(headers[i].value, headers[i].value_len, collect_proto, &acc);
        if (rc < 0)
            return rc;
    }
    return acc.count > (size_t)INT32_MAX ? DFWS_WS_HS_E_PROTOCOL : (int)acc.count;
}

/* Appends n bytes at *pos if they fit; always advances *pos. */
static void put(char *buf, size_t cap, size_t *pos, const char *s, size_t n)
{
    if (*pos + n <= cap)
        memcpy(buf + *pos, s, n);
    *pos += n;
}

#define PUTS(s) put(buf, cap, &pos, (s), sizeof(s) - 1)

int dfws_ws_build_response(const char *key, size_t key_len, const char *subprotocol,
                           size_t subprotocol_len, const dfws_ws_header_t *extra, size_t nextra,
                           char *buf, size_t cap)
{
    char accept[DFWS_WS_ACCEPT_LEN + 1];
    size_t pos = 0;
    int rc;

    if (subprotocol && !is_token(subprotocol, subprotocol_len))
        return DFWS_WS_HS_E_PROTOCOL;
    for (size_t i = 0; i < nextra; i++) {
        if (!is_token(extra[i].name, extra[i].name_len))
            return DFWS_WS_HS_E_HEADER;
        for (size_t j = 0; j < extra[i].value_len; j++) {
            char c = extra[i].value[j];
            if (c == '\r' || c == '\n' || c == '\0')
                return DFWS_WS_HS_E_HEADER;
        }
    }
    if ((rc = dfws_ws_accept_key(key, key_len, accept)) != 0)
        return rc;
    if (buf == NULL)
        cap = 0;

    PUTS("HTTP/1.1 101 Switching Protocols\r\n"
         "Upgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Accept: ");
    put(buf, cap, &pos, accept, DFWS_WS_ACCEPT_LEN);
    PUTS("\r\n");
    if (subprotocol) {
        PUTS("Sec-WebSocket-Protocol: ");
        put(buf, cap, &pos, subprotocol, subprotocol_len);
        PUTS("\r\n");
    }
    for (size_t i = 0; i < nextra; i++) {
        put(buf, cap, &pos, extra[i].name, extra[i].name_len);
        PUTS(": ");
        put(buf, cap, &pos, extra[i].value, extra[i].value_len);
        PUTS("\r\n");
    }
    PUTS("\r\n");
    if (pos > (size_t)INT32_MAX)
        return DFWS_WS_HS_E_HEADER;
    return (int)pos;
}

/* ------------------------------------------------------------------ */
/* permessage-deflate: shared state and negotiation (RFC 7692)          */

struct dfws_ws_deflate_s {
    int level;
    int window_bits; /* the most we compress with */
    size_t threshold;
    z_stream zs; /* the one deflate stream (zs_bits != 0) */
    int zs_bits;
    z_stream *spare; /* an idle inflater, reset, or NULL */
    /* messages compressed lately, keyed by window bits, length, CRC-32
     * and confirmed byte for byte */
    struct pmd_entry_s {
        uint8_t *data; /* input (in_len bytes), then output */
        size_t in_len, out_len;
        unsigned long long used; /* `clock` at the last hit: LRU */
        uint32_t crc;
        uint8_t bits;  /* 0: empty */
        uint8_t plain; /* compressing did not make it smaller */
    } cache[PMD_ENTRIES];
    unsigned long long clock;
    dfws_ws_deflate_stats_t stats;
};

dfws_ws_deflate_t *dfws_ws_deflate_new(int level, size_t threshold, int window_bits)
{
    dfws_ws_deflate_t *d;
    if (level < 1 || level > 9 || window_bits < 9 || window_bits > 15)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->level = level;
    d->threshold = threshold;
    d->window_bits = window_bits;
    return d;
}

void dfws_ws_deflate_free(dfws_ws_deflate_t *d)
{
    if (d == NULL)
        return;
    if (d->zs_bits)
        deflateEnd(&d->zs);
    if (d->spare) {
        inflateEnd(d->spare);
        free(d->spare);
    }
    for (int i = 0; i < PMD_ENTRIES; i++)
        free(d->cache[i].data);
    free(d);
}

void dfws_ws_deflate_get_stats(const dfws_ws_deflate_t *d, dfws_ws_deflate_stats_t *st)
{
    if (d)
        *st = d->stats;
    else
        memset(st, 0, sizeof(*st));
}

/* Compresses one message with `bits` window bits, without context
 * (the stream is reset first).  Returns 1 with *out and *outn set (the frame
 * payload: owned by d's cache, or by *tmp which the caller frees after
 * writing), 0 when the message is better sent as it is, or a negative code
 * (send it as it is too). */
static int pmd_compress(dfws_ws_deflate_t *d, int bits, const uint8_t *p, size_t n,
                        const uint8_t **out, size_t *outn, uint8_t **tmp)
{
    struct pmd_entry_s *e = NULL;
    size_t cap, len;
    uint8_t *block;
    uint32_t crc = 0;
    int keep = n <= PMD_REUSE_MAX;

    *tmp = NULL;
    if (n > UINT_MAX / 2)
        return 0;
    d->clock++;
    if (keep) {
        /* the same message to the next connection: the same bytes */
        crc = (uint32_t)crc32(0, p, (uInt)n);
        for (int i = 0; i < PMD_ENTRIES; i++) {
            struct pmd_entry_s *c = &d->cache[i];
            if (c->bits == bits && c->in_len == n && c->crc == crc && memcmp(c->data, p, n) == 0) {
                c->used = d->clock;
                d->stats.reused++;
                if (c->plain)
                    return 0;
                *out = c->data + n;
                *outn = c->out_len;
                return 1;
            }
        }
    }
    if (d->zs_bits != bits) {
        if (d->zs_bits)
            deflateEnd(&d->zs);
        d->zs_bits = 0;
        memset(&d->zs, 0, sizeof(d->zs));
        if (deflateInit2(&d->zs, d->level, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return DFWS_WS_E_NOMEM;
        d->zs_bits = bits;
    } else if (deflateReset(&d->zs) != Z_OK) {
        return DFWS_WS_E_INVAL;
    }
    /* Z_SYNC_FLUSH adds at most an empty stored block (5 bytes) and a
     * partial byte to what deflateBound allows for Z_FINISH */
    cap = deflateBound(&d->zs, (uLong)n) + 16;
    /* kept: one block holds the input, then the output */
    block = malloc((keep ? n : 0) + cap);
    if (block == NULL)
        return DFWS_WS_E_NOMEM;
    d->zs.next_in = (Bytef *)(uintptr_t)p;
    d->zs.avail_in = (uInt)n;
    d->zs.next_out = block + (keep ? n : 0);
    d->zs.avail_out = (uInt)cap;
    if (deflate(&d->zs, Z_SYNC_FLUSH) != Z_OK || d->zs.avail_in != 0 || d->zs.avail_out == 0)
        goto bad;
    len = cap - d->zs.avail_out;
    if (len < 4 || memcmp(block + (keep ? n : 0) + len - 4, PMD_TAIL, 4) != 0)
        goto bad;
    len -= 4;
    d->stats.compressed++;
    d->stats.bytes_in += n;
    d->stats.bytes_out += len < n ? len : n;
    if (len >= n) /* no gain: the peer would only spend time inflating it */
        d->stats.not_smaller++;
    if (!keep) {
        if (len >= n) {
            free(block);
            return 0;
        }
        *tmp = block;
        *out = block;
        *outn = len;
        return 1;
    }
    /* into the empty or least recently used entry */
    for (int i = 0; i < PMD_ENTRIES; i++)
        if (e == NULL || d->cache[i].bits == 0 || d->cache[i].used < e->used) {
            e = &d->cache[i];
            if (e->bits == 0)
                break;
        }
    free(e->data);
    memcpy(block, p, n);
    e->data = block;
    e->in_len = n;
    e->out_len = len;
    e->crc = crc;
    e->bits = (uint8_t)bits;
    e->plain = len >= n;
    e->used = d->clock;
    if (e->plain)
        return 0;
    *out = block + n;
    *outn = len;
    return 1;
bad:
    free(block);
    return DFWS_WS_E_INVAL;
}

/* One parsed permessage-deflate offer: -1 = parameter absent,
 * 0 = present without a value (client_max_window_bits), else its value. */
typedef struct pmd_offer_s {
    int server_nct, client_nct;
    int server_bits, client_bits;
} pmd_offer_t;

static size_t skip_ows(const char *p, size_t i, size_t n)
{
    while (i < n && is_ows(p[i]))
        i++;
    return i;
}

static size_t scan_token(const char *p, size_t i, size_t n)
{
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    return i;
}

/* "8".."15", no leading zero (RFC 7692 7.1.2). */
static int window_bits_value(const char *v, size_t n)
{
    int bits;
    if (n == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (n != 2 || v[0] != '1' || v[1] < '0' || v[1] > '5')
        return -1;
    bits = 10 + (v[1] - '0');
    return bits;
}

/* Parses one extension element (between commas).  Returns 1 for a valid
 * permessage-deflate offer (filled into *o), 0 otherwise (another
 * extension, or a malformed or unacceptable element). */
static int pmd_parse_offer(const char *p, size_t n, pmd_offer_t *o)
{
    size_t i = skip_ows(p, 0, n), j;

    o->server_nct = o->client_nct = -1;
    o->server_bits = o->client_bits = -1;
    j = scan_token(p, i, n);
    if (!ieq(p + i, j - i, "permessage-deflate"))
        return 0;
    i = skip_ows(p, j, n);
    while (i < n) {
        const char *name, *val = NULL;
        size_t nlen, vlen = 0;
        char unq[8];
        int *slot, bits;

        if (p[i] != ';')
            return 0;
        i = skip_ows(p, i + 1, n);
        j = scan_token(p, i, n);
        if (j == i)
            return 0;
        name = p + i;
        nlen = j - i;
        i = skip_ows(p, j, n);
        if (i < n && p[i] == '=') {
            i = skip_ows(p, i + 1, n);
            if (i < n && p[i] == '"') {
                /* quoted-string; after unescaping it must be a token
                 * (RFC 6455 9.1): our values are 1-2 digits */
                i++;
                while (i < n && p[i] != '"') {
                    if (p[i] == '\\' && ++i == n)
                        return 0;
                    if (vlen == sizeof(unq))
                        return 0;
                    unq[vlen++] = p[i++];
                }
                if (i == n)
                    return 0;
                i++;
                val = unq;
            } else {
                j = scan_token(p, i, n);
                val = p + i;
                vlen = j - i;
                i = j;
            }
            if (vlen == 0)
                return 0;
            i = skip_ows(p, i, n);
        }
        if (ieq(name, nlen, "server_no_context_takeover"))
            slot = &o->server_nct;
        else if (ieq(name, nlen, "client_no_context_takeover"))
            slot = &o->client_nct;
        else if (ieq(name, nlen, "server_max_window_bits"))
            slot = &o->server_bits;
        else if (ieq(name, nlen, "client_max_window_bits"))
            slot = &o->client_bits;
        else
            return 0; /* unknown parameter: decline this offer */
        if (*slot != -1)
            return 0; /* each parameter at most once */
        if (slot == &o->server_nct || slot == &o->client_nct) {
            if (val)
                return 0;
            *slot = 1;
            continue;
        }
        if (val == NULL) {
            if (slot == &o->server_bits)
                return 0; /* server_max_window_bits needs a value */
            *slot = 0;
            continue;
        }
        if ((bits = window_bits_value(val, vlen)) < 0)
            return 0;
        *slot = bits;
    }
    return 1;
}

int dfws_ws_pmd_response(const dfws_ws_pmd_t *pmd, char *buf, size_t cap)
{
    int n;
    if (pmd->server_bits < 9 || pmd->server_bits > 15 || pmd->client_bits < 8 ||
        pmd->client_bits > 15)
        return DFWS_WS_E_INVAL;
    /* "%.0d" prints nothing for 0: the window bits only when named */
    n = snprintf(buf, cap,
                 "permessage-deflate; server_no_context_takeover; "
                 "client_no_context_takeover%s%.0d%s%.0d",
                 pmd->say_server_bits ? "; server_max_window_bits=" : "",
                 pmd->say_server_bits ? pmd->server_bits : 0,
                 pmd->say_client_bits ? "; client_max_window_bits=" : "",
                 pmd->say_client_bits ? pmd->client_bits : 0);
    if (n < 0 || (size_t)n >= cap)
        return DFWS_WS_E_INVAL;
    return n;
}

int dfws_ws_pmd_negotiate(const dfws_ws_deflate_t *d, const dfws_ws_header_t *headers,
                          size_t nheaders, dfws_ws_pmd_t *pmd, char resp[DFWS_WS_PMD_RESPONSE_MAX])
{
    memset(pmd, 0, sizeof(*pmd));
    if (d == NULL)
        return 0;
    for (size_t h = 0; h < nheaders; h++) {
        const char *v = headers[h].value;
        size_t vlen = headers[h].value_len, start = 0;
        int quoted = 0;

        if (!ieq(headers[h].name, headers[h].name_len, "sec-websocket-extensions"))
            continue;
        for (size_t i = 0; i <= vlen; i++) {
            pmd_offer_t o;
            int sbits, cbits;

            if (i < vlen) {
                /* commas inside a quoted-string do not split */
                if (quoted && v[i] == '\\') {
                    i++; /* the escaped character is skipped too */
                    continue;
                }
                if (v[i] == '"')
                    quoted = !quoted;
                if (quoted || v[i] != ',')
                    continue;
            }
            if (!pmd_parse_offer(v + start, i - start, &o)) {
                start = i + 1;
                quoted = 0;
                continue;
            }
            start = i + 1;
            /* Our window: what we are configured with, within the
             * client's limit.  zlib has no 256-byte raw window, so a
             * limit of 8 cannot be honoured: decline that offer. */
            sbits = d->window_bits;
            if (o.server_bits > 0 && o.server_bits < sbits)
                sbits = o.server_bits;
            if (sbits < 9)
                continue;
            /* The client's window: a smaller one may be asked for only
             * when the client offered client_max_window_bits. */
            cbits = 15;
            if (o.client_bits >= 0) {
                cbits = d->window_bits;
                if (o.client_bits > 0 && o.client_bits < cbits)
                    cbits = o.client_bits;
            }
            pmd->server_bits = (uint8_t)sbits;
            pmd->client_bits = (uint8_t)cbits;
            pmd->say_server_bits = sbits < 15 || o.server_bits > 0;
            pmd->say_client_bits = cbits < 15;
            dfws_ws_pmd_response(pmd, resp, DFWS_WS_PMD_RESPONSE_MAX);
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Connection                                                           */

void dfws_ws_config_init(dfws_ws_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_message_size = DFWS_WS_DEFAULT_MAX_SIZE;
    cfg->max_frame_size = DFWS_WS_DEFAULT_MAX_SIZE;
}

void dfws_ws_init(dfws_ws_t *ws, const dfws_ws_config_t *cfg, void *owner)
{
    memset(ws, 0, sizeof(*ws));
    ws->cfg = cfg;
    ws->owner = owner;
    ws->state = DFWS_WS_OPEN;
}

static void free_frame_ctx(dfws_ws_t *ws)
{
    if (ws->fc) {
        wslay_frame_context_free(ws->fc);
        ws->fc = NULL;
    }
    ws->buffered = 0;
    ws->flags &= (uint8_t)~F_IN_FRAME;
    ws->frame_left = 0;
}

/* The inflater of a compressed message: the config's spare if it has one
 * (reset to this connection's window), else a new one. */
static int zin_acquire(dfws_ws_t *ws)
{
    dfws_ws_deflate_t *d = ws->cfg->deflate;
    int bits = ws->pmd_client_bits ? ws->pmd_client_bits : 15;
    z_stream *z = d->spare;

    if (z) {
        d->spare = NULL;
        if (inflateReset2(z, -bits) != Z_OK) {
            inflateEnd(z);
            free(z);
            z = NULL;
        }
    }
    if (z == NULL) {
        z = calloc(1, sizeof(*z));
        if (z == NULL)
            return -1;
        if (inflateInit2(z, -bits) != Z_OK) {
            free(z);
            return -1;
        }
    }
    ws->zin = z;
    return 0;
}

/* The message ended (or the connection did): keep one inflater as the
 * config's spare, free the others. */
static void zin_release(dfws_ws_t *ws)
{
    z_stream *z = ws->zin;
    dfws_ws_deflate_t *d = ws->cfg->deflate;

    if (z == NULL)
        return;
    ws->zin = NULL;
    if (d && d->spare == NULL && inflateReset(z) == Z_OK) {
        d->spare = z;
        return;
    }
    inflateEnd(z);
    free(z);
}

static void free_msg(dfws_ws_t *ws)
{
    zin_release(ws);
    ws->flags &= (uint8_t) ~(F_DEFLATED | F_ZEND);
    free(ws->msg);
    ws->msg = NULL;
    ws->msg_len = 0;
    ws->msg_cap = 0;
    ws->msg_op = 0;
    ws->utf8 = U_ACCEPT;
}

static void free_ctl(dfws_ws_t *ws)
{
    free(ws->ctl);
    ws->ctl = NULL;
    ws->ctl_len = 0;
}

void dfws_ws_cleanup(dfws_ws_t *ws)
{
    free_frame_ctx(ws);
    free_msg(ws);
    free_ctl(ws);
}

int dfws_ws_close_code_valid(unsigned code)
{
    if (code >= 1000 && code <= 1003)
        return 1;
    if (code >= 1007 && code <= 1014) /* 1012-1014: IANA registered */
        return 1;
    return code >= 3000 && code <= 4999;
}

/* The connection is dead: tell the owner once. */
static int fatal(dfws_ws_t *ws, int err, const char *what)
{
    if (ws->state != DFWS_WS_DEAD) {
        ws->state = DFWS_WS_DEAD;
        ws->cfg->cb.on_fatal(ws->owner, err, what);
    }
    return err;
}

static int out(dfws_ws_t *ws, const uint8_t *p, size_t n)
{
    if (ws->cfg->cb.write(ws->owner, p, n) != 0)
        return fatal(ws, DFWS_WS_E_WRITE, "websocket: write failed");
    return 0;
}

void dfws_ws_set_pmd(dfws_ws_t *ws, const dfws_ws_pmd_t *pmd)
{
    if (ws->cfg->deflate == NULL || pmd->server_bits < 9)
        return;
    ws->pmd_server_bits = pmd->server_bits;
    ws->pmd_client_bits = pmd->client_bits ? pmd->client_bits : 15;
}

/* `opcode` may carry RSV1 (0x40: a compressed message). */
static size_t encode_header(uint8_t *h, unsigned opcode, uint64_t len)
{
    h[0] = (uint8_t)(0x80u | opcode); /* FIN, never masked */
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFFu) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

static int write_frame(dfws_ws_t *ws, unsigned opcode, const uint8_t *p, size_t n)
{
    uint8_t buf[10 + CTL_MAX];
    size_t hl = encode_header(buf, opcode, n);
    int rc;

    if (n <= CTL_MAX) { /* small: one write */
        if (n)
            memcpy(buf + hl, p, n);
        return out(ws, buf, hl + n);
    }
    if ((rc = out(ws, buf, hl)) != 0)
        return rc;
    return out(ws, p, n);
}

static int write_close(dfws_ws_t *ws, uint16_t code, const char *reason, size_t rlen)
{
    uint8_t p[2 + REASON_MAX];
    if (code == 0 || code == 1005) {
        ws->code_sent = 1005;
        return write_frame(ws, OP_CLOSE, NULL, 0);
    }
    if (rlen > REASON_MAX)
        rlen = REASON_MAX;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (rlen)
        memcpy(p + 2, reason, rlen);
    ws->code_sent = code;
    return write_frame(ws, OP_CLOSE, p, 2 + rlen);
}

static int check_can_send(const dfws_ws_t *ws)
{
    switch (ws->state) {
    case DFWS_WS_OPEN:
        return 0;
    case DFWS_WS_CLOSING:
        return DFWS_WS_E_CLOSING;
    case DFWS_WS_CLOSED:
        return DFWS_WS_E_CLOSED;
    default:
        return DFWS_WS_E_FATAL;
    }
}

#define RSV1 0x40u /* in a frame's first byte */

int dfws_ws_send(dfws_ws_t *ws, int binary, const uint8_t *data, size_t len)
{
    dfws_ws_deflate_t *d = ws->cfg->deflate;
    unsigned op = binary ? OP_BINARY : OP_TEXT;
    int rc = check_can_send(ws);
    if (rc)
        return rc;
    if (len && data == NULL)
        return DFWS_WS_E_INVAL;
    if (ws->pmd_server_bits && d && len && len >= d->threshold) {
        const uint8_t *z;
        size_t zn;
        uint8_t *tmp;
        if (pmd_compress(d, ws->pmd_server_bits, data, len, &z, &zn, &tmp) == 1) {
            rc = write_frame(ws, op | RSV1, z, zn);
            free(tmp);
            return rc;
        }
        /* not smaller, or zlib failed: the message goes as it is */
    }
    return write_frame(ws, op, data, len);
}

static int send_control(dfws_ws_t *ws, unsigned op, const uint8_t *data, size_t len)
{
    int rc = check_can_send(ws);
    if (rc)
        return rc;
    if (len > CTL_MAX || (len && data == NULL))
        return DFWS_WS_E_INVAL;
    return write_frame(ws, op, data, len);
}

int dfws_ws_ping(dfws_ws_t *ws, const uint8_t *data, size_t len)
{
    return send_control(ws, OP_PING, data, len);
}

int dfws_ws_pong(dfws_ws_t *ws, const uint8_t *data, size_t len)
{
    return send_control(ws, OP_PONG, data, len);
}

int dfws_ws_close(dfws_ws_t *ws, uint16_t code, const char *reason, size_t reason_len)
{
    int rc = check_can_send(ws);
    if (rc)
        return rc;
    if (code != 0 && !dfws_ws_close_code_valid(code))
        return DFWS_WS_E_INVAL;
    if (reason == NULL || code == 0)
        reason_len = 0;
    if (reason_len > REASON_MAX) {
        /* cut before a continuation byte so the reason stays UTF-8 */
        reason_len = REASON_MAX;
        while (reason_len && ((unsigned char)reason[reason_len] & 0xC0u) == 0x80u)
            reason_len--;
    }
    if ((rc = write_close(ws, code, reason, reason_len)) != 0)
        return rc;
    ws->state = DFWS_WS_CLOSING;
    return 0;
}

/* Fail the WebSocket connection (RFC 6455 7.1.7): send a close frame with
 * `code` (unless we already sent one) and report; no reply is awaited. */
static int fail(dfws_ws_t *ws, uint16_t code, const char *why)
{
    dfws_ws_close_info_t info;

    if (ws->state == DFWS_WS_OPEN) {
        if (write_close(ws, code, why, strlen(why)) != 0)
            return STOP;
    } else if (ws->state != DFWS_WS_CLOSING) {
        return STOP;
    }
    ws->state = DFWS_WS_CLOSED;
    memset(&info, 0, sizeof(info));
    info.origin = DFWS_WS_CLOSE_BY_ERROR;
    info.code_received = 1006;
    info.code_sent = ws->code_sent;
    info.error = why;
    ws->cfg->cb.on_close(ws->owner, &info);
    return STOP;
}

static int handle_close(dfws_ws_t *ws, const uint8_t *p, size_t n)
{
    dfws_ws_close_info_t info;
    uint16_t code = 1005;
    uint8_t u = U_ACCEPT;

    if (n == 1)
        return fail(ws, 1002, "close frame with a 1-byte payload");
    if (n >= 2) {
        code = (uint16_t)((p[0] << 8) | p[1]);
        if (!dfws_ws_close_code_valid(code))
            return fail(ws, 1002, "invalid close code");
        if (dfws_ws_utf8_check(&u, p + 2, n - 2) != 0 || u != U_ACCEPT)
            return fail(ws, 1007, "close reason is not valid UTF-8");
    }
    memset(&info, 0, sizeof(info));
    if (ws->state == DFWS_WS_OPEN) {
        /* echo the peer's status code (RFC 6455 5.5.1) */
        if (write_close(ws, n >= 2 ? code : 0, NULL, 0) != 0)
            return STOP;
        info.origin = DFWS_WS_CLOSE_BY_PEER;
    } else {
        info.origin = DFWS_WS_CLOSE_BY_US;
    }
    ws->state = DFWS_WS_CLOSED;
    info.code_received = code;
    info.code_sent = ws->code_sent;
    info.reason = n > 2 ? (const char *)p + 2 : NULL;
    info.reason_len = n > 2 ? n - 2 : 0;
    ws->cfg->cb.on_close(ws->owner, &info);
    return STOP;
}

static int handle_control(dfws_ws_t *ws, unsigned op, const uint8_t *p, size_t n)
{
    switch (op) {
    case OP_PING:
        if (ws->state != DFWS_WS_OPEN)
            break;
        if (ws->cfg->cb.on_ping)
            ws->cfg->cb.on_ping(ws->owner, p, n);
        else if (write_frame(ws, OP_PONG, p, n) != 0)
            return STOP;
        break;
    case OP_PONG:
        if (ws->cfg->cb.on_pong)
            ws->cfg->cb.on_pong(ws->owner, p, n);
        break;
    default:
        return handle_close(ws, p, n);
    }
    return ws->state >= DFWS_WS_CLOSED ? STOP : 0;
}

/* Called on each frame's first chunk, before any payload is used. */
static int check_frame_start(dfws_ws_t *ws, const struct wslay_frame_iocb *io)
{
    const dfws_ws_config_t *cfg = ws->cfg;
    unsigned op = io->opcode;

    int deflated;

    if (io->rsv & (WSLAY_RSV2_BIT | WSLAY_RSV3_BIT))
        return fail(ws, 1002, "reserved bits RSV2/RSV3 set");
    if ((io->rsv & WSLAY_RSV1_BIT) && !ws->pmd_server_bits)
        return fail(ws, 1002, "reserved bits set (no extension negotiated)");
    if (!(op <= OP_BINARY || (op >= OP_CLOSE && op <= OP_PONG)))
        return fail(ws, 1002, "reserved opcode");
    /* RFC 7692 6.1: RSV1 marks a compressed message on its first frame
     * only; never on a continuation or a control frame. */
    if ((io->rsv & WSLAY_RSV1_BIT) && op >= OP_CLOSE)
        return fail(ws, 1002, "RSV1 set on a control frame");
    if ((io->rsv & WSLAY_RSV1_BIT) && op == OP_CONT)
        return fail(ws, 1002, "RSV1 set on a continuation frame");
    if (!io->mask)
        return fail(ws, 1002, "client frame not masked");
    if (op >= OP_CLOSE) {
        /* wslay checks these too; keep the rule visible here */
        if (!io->fin || io->payload_length > CTL_MAX)
            return fail(ws, 1002, "fragmented or oversized control frame");
        return 0;
    }
    if (op == OP_CONT && ws->msg_op == 0)
        return fail(ws, 1002, "continuation frame without a message");
    if (op != OP_CONT && ws->msg_op != 0)
        return fail(ws, 1002, "new message inside a fragmented message");
    deflated = op == OP_CONT ? (ws->flags & F_DEFLATED) != 0 : (io->rsv & WSLAY_RSV1_BIT) != 0;
    if (cfg->max_frame_size && io->payload_length > cfg->max_frame_size)
        return fail(ws, 1009, "frame too big");
    /* a compressed message's limit is checked on its inflated size, as
     * it grows (inflate_chunk) */
    if (!deflated && cfg->max_message_size &&
        io->payload_length > cfg->max_message_size - ws->msg_len)
        return fail(ws, 1009, "message too big");
    if (op != OP_CONT) {
        ws->msg_op = (uint8_t)op;
        ws->msg_len = 0;
        ws->utf8 = U_ACCEPT;
        if (deflated) {
            if (zin_acquire(ws) != 0) {
                fatal(ws, DFWS_WS_E_NOMEM, "websocket: out of memory");
                return STOP;
            }
            ws->flags |= F_DEFLATED;
            cfg->deflate->stats.inflated++;
        }
    }
    return 0;
}

static int grow_msg(dfws_ws_t *ws, size_t add)
{
    size_t need = ws->msg_len + add, cap;
    uint8_t *p;

    if (need <= ws->msg_cap)
        return 0;
    /* Geometric growth, never past the end of the current frame. */
    cap = ws->msg_cap ? ws->msg_cap * 2 : 256;
    if (cap < need)
        cap = need;
    if (cap - ws->msg_len > ws->frame_left + add)
        cap = ws->msg_len + (size_t)ws->frame_left + add;
    p = realloc(ws->msg, cap);
    if (p == NULL)
        return fatal(ws, DFWS_WS_E_NOMEM, "websocket: out of memory");
    ws->msg = p;
    ws->msg_cap = cap;
    return 0;
}

static int deliver(dfws_ws_t *ws, unsigned op, const uint8_t *p, size_t n)
{
    if (ws->state == DFWS_WS_OPEN)
        ws->cfg->cb.on_message(ws->owner, op == OP_BINARY, p, n);
    return ws->state >= DFWS_WS_CLOSED ? STOP : 0;
}

/* Inflates n bytes of a compressed message into ws->msg.  The output
 * never grows past max_message_size + 1 bytes: a message over the limit
 * fails with 1009 after at most that much work, whatever its compressed
 * size.  Text is checked for UTF-8 as it comes out. */
static int inflate_chunk(dfws_ws_t *ws, const uint8_t *in, size_t n)
{
    z_stream *z = ws->zin;
    size_t limit = ws->cfg->max_message_size;

    if (n == 0 || (ws->flags & F_ZEND))
        return 0; /* after a BFINAL block, the rest is ignored (7.2.2) */
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)n; /* n <= wslay's 4 KiB buffer, or 4 */
    for (;;) {
        size_t room, made;
        int zr;

        if (ws->msg_len == ws->msg_cap) {
            size_t cap = ws->msg_cap ? ws->msg_cap * 2 : 1024;
            uint8_t *p;
            if (limit && cap > limit + 1)
                cap = limit + 1;
            p = realloc(ws->msg, cap);
            if (p == NULL) {
                fatal(ws, DFWS_WS_E_NOMEM, "websocket: out of memory");
                return STOP;
            }
            ws->msg = p;
            ws->msg_cap = cap;
        }
        room = ws->msg_cap - ws->msg_len;
        if (room > UINT_MAX)
            room = UINT_MAX;
        z->next_out = ws->msg + ws->msg_len;
        z->avail_out = (uInt)room;
        zr = inflate(z, Z_SYNC_FLUSH);
        made = room - z->avail_out;
        if (made) {
            if (ws->msg_op == OP_TEXT &&
                dfws_ws_utf8_check(&ws->utf8, ws->msg + ws->msg_len, made) != 0)
                return fail(ws, 1007, "text message is not valid UTF-8");
            ws->msg_len += made;
            if (limit && ws->msg_len > limit)
                return fail(ws, 1009, "message too big (once inflated)");
        }
        if (zr == Z_STREAM_END) {
            ws->flags |= F_ZEND;
            return 0;
        }
        if (zr == Z_MEM_ERROR) {
            fatal(ws, DFWS_WS_E_NOMEM, "websocket: out of memory");
            return STOP;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return fail(ws, 1007, "invalid compressed data");
        if (z->avail_out != 0)
            return 0; /* all input used, all output out */
        /* output buffer full: grow it and go on */
    }
}

static int on_deflated_chunk(dfws_ws_t *ws, const struct wslay_frame_iocb *io, int last)
{
    unsigned op = ws->msg_op;
    uint8_t *msg;
    size_t len;
    int rc;

    if (inflate_chunk(ws, io->data, io->data_length) != 0)
        return STOP;
    if (!(last && io->fin))
        return 0;
    if (inflate_chunk(ws, PMD_TAIL, sizeof(PMD_TAIL)) != 0)
        return STOP;
    if (op == OP_TEXT && ws->utf8 != U_ACCEPT)
        return fail(ws, 1007, "text message ends inside a UTF-8 sequence");
    /* free the buffer and the inflater whatever the callback does */
    msg = ws->msg;
    len = ws->msg_len;
    ws->msg = NULL;
    free_msg(ws);
    rc = deliver(ws, op, msg ? msg : (const uint8_t *)"", len);
    free(msg);
    return rc;
}

static int on_data_chunk(dfws_ws_t *ws, const struct wslay_frame_iocb *io, int first, int last)
{
    unsigned op = ws->msg_op;
    int rc;

    if (ws->flags & F_DEFLATED)
        return on_deflated_chunk(ws, io, last);

    if (op == OP_TEXT && io->data_length &&
        dfws_ws_utf8_check(&ws->utf8, io->data, io->data_length) != 0)
        return fail(ws, 1007, "text message is not valid UTF-8");
    if (last && io->fin && op == OP_TEXT && ws->utf8 != U_ACCEPT)
        return fail(ws, 1007, "text message ends inside a UTF-8 sequence");

    if (first && last && io->fin && ws->msg == NULL) {
        /* whole message in one chunk: deliver from wslay's buffer */
        ws->msg_op = 0;
        return deliver(ws, op, io->data, io->data_length);
    }
    if (io->data_length) {
        if (grow_msg(ws, io->data_length) != 0)
            return STOP;
        memcpy(ws->msg + ws->msg_len, io->data, io->data_length);
        ws->msg_len += io->data_length;
    }
    if (last && io->fin) {
        /* free the buffer whatever the callback does */
        uint8_t *msg = ws->msg;
        size_t len = ws->msg_len;
        ws->msg = NULL;
        free_msg(ws);
        rc = deliver(ws, op, msg, len);
        free(msg);
        return rc;
    }
    return 0;
}

static int on_control_chunk(dfws_ws_t *ws, const struct wslay_frame_iocb *io, int first, int last)
{
    int rc;

    if (first && last)
        return handle_control(ws, io->opcode, io->data, io->data_length);
    if (ws->ctl == NULL) {
        ws->ctl = malloc(CTL_MAX);
        if (ws->ctl == NULL) {
            fatal(ws, DFWS_WS_E_NOMEM, "websocket: out of memory");
            return STOP;
        }
        ws->ctl_len = 0;
    }
    /* wslay guarantees payload_length <= 125 for control frames */
    memcpy(ws->ctl + ws->ctl_len, io->data, io->data_length);
    ws->ctl_len = (uint8_t)(ws->ctl_len + io->data_length);
    if (!last)
        return 0;
    rc = handle_control(ws, ws->frame_op, ws->ctl, ws->ctl_len);
    free_ctl(ws);
    return rc;
}

static size_t header_len(const struct wslay_frame_iocb *io)
{
    size_t n = 2 + (io->mask ? 4 : 0);
    if (io->payload_length >= 0x10000u)
        n += 8;
    else if (io->payload_length >= 126)
        n += 2;
    return n;
}

static int on_chunk(dfws_ws_t *ws, const struct wslay_frame_iocb *io)
{
    int first = !(ws->flags & F_IN_FRAME), last, rc;

    if (first) {
        /* wslay rejects non-minimal length forms, so the header length
         * follows from the payload length */
        ws->buffered -= (uint32_t)header_len(io);
        if ((rc = check_frame_start(ws, io)) != 0)
            return rc;
        ws->frame_op = io->opcode;
        ws->frame_left = io->payload_length;
        ws->flags |= F_IN_FRAME;
    }
    ws->buffered -= (uint32_t)io->data_length;
    ws->frame_left -= io->data_length;
    last = ws->frame_left == 0;
    if (last)
        ws->flags &= (uint8_t)~F_IN_FRAME;
    if (io->opcode >= OP_CLOSE)
        return on_control_chunk(ws, io, first, last);
    return on_data_chunk(ws, io, first, last);
}

/* wslay asks for input: hand it what is left of the fed bytes. */
static ssize_t on_wslay_recv(uint8_t *buf, size_t len, int flags, void *user_data)
{
    dfws_ws_t *ws = user_data;
    size_t n = len < ws->in_len ? len : ws->in_len;

    (void)flags;
    if (n == 0)
        return -1; /* wslay reports WSLAY_ERR_WANT_READ */
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    ws->buffered += (uint32_t)n;
    return (ssize_t)n;
}

static ssize_t on_wslay_send(const uint8_t *data, size_t len, int flags, void *user_data)
{
    /* never used: outgoing frames are encoded by write_frame() */
    (void)data;
    (void)len;
    (void)flags;
    (void)user_data;
    return -1;
}

static int feed_result(const dfws_ws_t *ws)
{
    switch (ws->state) {
    case DFWS_WS_OPEN:
    case DFWS_WS_CLOSING:
        return 0;
    case DFWS_WS_CLOSED:
        return DFWS_WS_E_CLOSED;
    default:
        return DFWS_WS_E_FATAL;
    }
}

int dfws_ws_feed(dfws_ws_t *ws, const uint8_t *data, size_t len)
{
    static const struct wslay_frame_callbacks wcb = {on_wslay_send, on_wslay_recv, NULL};

    if (ws->flags & F_IN_FEED)
        return DFWS_WS_E_BUSY;
    if (ws->state >= DFWS_WS_CLOSED || len == 0)
        return feed_result(ws);
    if (ws->fc == NULL) {
        if (wslay_frame_context_init(&ws->fc, &wcb, ws) != 0) {
            ws->fc = NULL;
            return fatal(ws, DFWS_WS_E_NOMEM, "websocket: out of memory");
        }
        ws->buffered = 0;
    }
    ws->flags |= F_IN_FEED;
    ws->in = data;
    ws->in_len = len;
    for (;;) {
        struct wslay_frame_iocb io;
        ssize_t r = wslay_frame_recv(ws->fc, &io);
        if (r == WSLAY_ERR_WANT_READ)
            break;
        if (r < 0) {
            fail(ws, 1002, r == WSLAY_ERR_PROTO ? "malformed frame header" : "frame decoder error");
            break;
        }
        if (on_chunk(ws, &io) != 0)
            break;
    }
    ws->in = NULL;
    ws->in_len = 0;
    ws->flags &= (uint8_t)~F_IN_FEED;

    if (ws->state >= DFWS_WS_CLOSED) {
        dfws_ws_cleanup(ws);
    } else if (!(ws->flags & F_IN_FRAME) && ws->buffered == 0) {
        /* between frames with nothing buffered in wslay: drop its
         * 4 KB context until the next bytes arrive */
        free_frame_ctx(ws);
    }
    return feed_result(ws);
}
