/*
 * dfws channel layer — code shared by both backends: names, hashing,
 * configuration, msgpack surgery on "__asgi_channel__", the local listener
 * registry and the deferred-completion queue.
 */
#include "layer_int.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "fernet.h"

static const char ASGI_CHANNEL_KEY[] = "__asgi_channel__";
#define ASGI_CHANNEL_KEY_LEN (sizeof(ASGI_CHANNEL_KEY) - 1)

const char *dfws_layer_strerror(int code)
{
    switch (code) {
    case DFWS_LAYER_OK: return "ok";
    case DFWS_LAYER_EINVAL: return "invalid argument";
    case DFWS_LAYER_EFULL: return "channel full";
    case DFWS_LAYER_EIO: return "redis unavailable or command failed";
    case DFWS_LAYER_ENOMEM: return "out of memory";
    case DFWS_LAYER_ECLOSED: return "channel layer closed";
    case DFWS_LAYER_EEXIST: return "channel already has a listener";
    case DFWS_LAYER_ENOENT: return "no listener for channel";
    case DFWS_LAYER_EUNSUPPORTED: return "unsupported channel layer configuration";
    default: return "unknown error";
    }
}

/* ---- logging ----------------------------------------------------------- */

static dfws_layer_log_fn log_fn;
static void *log_ud;

void dfws_layer_set_log(dfws_layer_log_fn fn, void *ud)
{
    log_fn = fn;
    log_ud = ud;
}

void dfws_layer__log(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (log_fn == NULL && level < DFWS_LOG_INFO)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (log_fn != NULL)
        log_fn(log_ud, level, line);
    else
        fprintf(stderr, "dfws.layer: %s\n", line);
}

/* ---- names and hashing -------------------------------------------------- */

static int name_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.';
}

int dfws_layer_valid_channel_name(const char *name)
{
    size_t i, n;
    if (name == NULL)
        return 0;
    n = strlen(name);
    if (n == 0 || n >= DFWS_LAYER_NAME_MAX)
        return 0;
    for (i = 0; i < n && name[i] != '!'; i++)
        if (!name_char((unsigned char)name[i]))
            return 0;
    if (i == 0)
        return 0;
    if (i < n)
        for (i++; i < n; i++)
            if (!name_char((unsigned char)name[i]))
                return 0;
    return 1;
}

int dfws_layer_valid_group_name(const char *name)
{
    size_t i, n;
    if (name == NULL)
        return 0;
    n = strlen(name);
    if (n == 0 || n >= DFWS_LAYER_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!name_char((unsigned char)name[i]))
            return 0;
    return 1;
}

size_t dfws_layer_non_local_len(const char *name)
{
    const char *bang = strchr(name, '!');
    return bang ? (size_t)(bang - name) + 1 : strlen(name);
}

uint32_t dfws_layer_crc32(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < len; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

size_t dfws_layer_shard(const char *s, size_t len, size_t nshards)
{
    if (nshards <= 1)
        return 0;
    /* Python: int(bigval / (4096 / float(n))); exact for n < 4096 as integer
     * arithmetic floor(bigval * n / 4096). */
    return (size_t)(dfws_layer_crc32(s, len) & 0xFFF) * nshards / 4096;
}

/* ---- random ------------------------------------------------------------- */

int dfws_layer__secure_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return DFWS_LAYER_EIO;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static uint64_t rng_state[2];

void dfws_layer__fast_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (rng_state[0] == 0 && rng_state[1] == 0)
        if (dfws_layer__secure_random(rng_state, sizeof(rng_state)) != 0)
            rng_state[0] = (uint64_t)time(NULL) | 1;
    while (n > 0) {
        /* xorshift128+ */
        uint64_t s1 = rng_state[0], s0 = rng_state[1], r;
        size_t k;
        rng_state[0] = s0;
        s1 ^= s1 << 23;
        rng_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        r = rng_state[1] + s0;
        for (k = 0; k < 8 && n > 0; k++, n--) {
            *p++ = (unsigned char)r;
            r >>= 8;
        }
    }
}

double dfws_layer__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hex32(char *out, const unsigned char *b16)
{
    static const char hx[] = "0123456789abcdef";
    int i;
    for (i = 0; i < 16; i++) {
        out[2 * i] = hx[b16[i] >> 4];
        out[2 * i + 1] = hx[b16[i] & 15];
    }
    out[32] = '\0';
}

int dfws_layer__uuid4_hex(char out[33])
{
    unsigned char b[16];
    if (dfws_layer__secure_random(b, sizeof(b)) != 0)
        return DFWS_LAYER_EIO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    hex32(out, b);
    return 0;
}

/* ---- msgpack ------------------------------------------------------------ */

static uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Header of the object at p: *hdr header bytes, *payload raw bytes that
 * follow (str/bin/ext), *children nested objects (array: n, map: 2n). */
static int mp_head(const unsigned char *p, size_t len, size_t *hdr, size_t *payload,
                   uint64_t *children)
{
    unsigned char c;
    if (len < 1)
        return DFWS_LAYER_EINVAL;
    c = p[0];
    *payload = 0;
    *children = 0;
    *hdr = 1;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
        return 0;
    if (c >= 0x80 && c <= 0x8f) {
        *children = 2u * (c & 0x0f);
        return 0;
    }
    if (c >= 0x90 && c <= 0x9f) {
        *children = c & 0x0f;
        return 0;
    }
    if (c >= 0xa0 && c <= 0xbf) {
        *payload = c & 0x1f;
        return 0;
    }
    switch (c) {
    case 0xcc: case 0xd0: *hdr = 2; return 0;
    case 0xcd: case 0xd1: *hdr = 3; return 0;
    case 0xca: case 0xce: case 0xd2: *hdr = 5; return 0;
    case 0xcb: case 0xcf: case 0xd3: *hdr = 9; return 0;
    case 0xd4: *hdr = 2; *payload = 1; return 0;
    case 0xd5: *hdr = 2; *payload = 2; return 0;
    case 0xd6: *hdr = 2; *payload = 4; return 0;
    case 0xd7: *hdr = 2; *payload = 8; return 0;
    case 0xd8: *hdr = 2; *payload = 16; return 0;
    case 0xc4: case 0xd9:
        if (len < 2) return DFWS_LAYER_EINVAL;
        *hdr = 2; *payload = p[1]; return 0;
    case 0xc5: case 0xda:
        if (len < 3) return DFWS_LAYER_EINVAL;
        *hdr = 3; *payload = be16(p + 1); return 0;
    case 0xc6: case 0xdb:
        if (len < 5) return DFWS_LAYER_EINVAL;
        *hdr = 5; *payload = be32(p + 1); return 0;
    case 0xc7:
        if (len < 2) return DFWS_LAYER_EINVAL;
        *hdr = 3; *payload = p[1]; return 0;
    case 0xc8:
        if (len < 3) return DFWS_LAYER_EINVAL;
        *hdr = 4; *payload = be16(p + 1); return 0;
    case 0xc9:
        if (len < 5) return DFWS_LAYER_EINVAL;
        *hdr = 6; *payload = be32(p + 1); return 0;
    case 0xdc:
        if (len < 3) return DFWS_LAYER_EINVAL;
        *hdr = 3; *children = be16(p + 1); return 0;
    case 0xdd:
        if (len < 5) return DFWS_LAYER_EINVAL;
        *hdr = 5; *children = be32(p + 1); return 0;
    case 0xde:
        if (len < 3) return DFWS_LAYER_EINVAL;
        *hdr = 3; *children = 2u * be16(p + 1); return 0;
    case 0xdf:
        if (len < 5) return DFWS_LAYER_EINVAL;
        *hdr = 5; *children = 2u * (uint64_t)be32(p + 1); return 0;
    default: /* 0xc1 never used */
        return DFWS_LAYER_EINVAL;
    }
}

int dfws_mp_skip(const unsigned char *p, size_t len, size_t *used)
{
    /* Iterative: a stack of "objects still to read" per nesting level. */
    uint64_t todo[65];
    int depth = 0;
    size_t off = 0;

    todo[0] = 1;
    while (depth >= 0) {
        size_t hdr, payload;
        uint64_t children;
        if (todo[depth] == 0) {
            depth--;
            continue;
        }
        todo[depth]--;
        if (mp_head(p + off, len - off, &hdr, &payload, &children) != 0)
            return DFWS_LAYER_EINVAL;
        if (hdr > len - off || payload > len - off - hdr)
            return DFWS_LAYER_EINVAL;
        off += hdr + payload;
        if (children > 0) {
            if (depth >= 64 || children > len - off)
                return DFWS_LAYER_EINVAL;
            todo[++depth] = children;
        }
    }
    *used = off;
    return 0;
}

int dfws_mp_map_header(const unsigned char *p, size_t len, uint32_t *n, size_t *hdr)
{
    if (len < 1)
        return DFWS_LAYER_EINVAL;
    if (p[0] >= 0x80 && p[0] <= 0x8f) {
        *n = p[0] & 0x0f;
        *hdr = 1;
    } else if (p[0] == 0xde && len >= 3) {
        *n = be16(p + 1);
        *hdr = 3;
    } else if (p[0] == 0xdf && len >= 5) {
        *n = be32(p + 1);
        *hdr = 5;
    } else {
        return DFWS_LAYER_EINVAL;
    }
    return 0;
}

int dfws_mp_str(const unsigned char *p, size_t len, const char **s, size_t *slen, size_t *used)
{
    size_t hdr, payload;
    uint64_t children;
    if (len < 1 || !((p[0] >= 0xa0 && p[0] <= 0xbf) || p[0] == 0xd9 || p[0] == 0xda || p[0] == 0xdb))
        return DFWS_LAYER_EINVAL;
    if (mp_head(p, len, &hdr, &payload, &children) != 0 || hdr > len || payload > len - hdr)
        return DFWS_LAYER_EINVAL;
    *s = (const char *)p + hdr;
    *slen = payload;
    *used = hdr + payload;
    return 0;
}

static void put_be(dfws_buf_t *b, unsigned char tag, uint32_t v, int bytes, int *err)
{
    unsigned char t[5];
    int i;
    t[0] = tag;
    for (i = 0; i < bytes; i++)
        t[1 + i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    if (dfws_buf_append(b, t, (size_t)bytes + 1) != 0)
        *err = DFWS_LAYER_ENOMEM;
}

void dfws_mp_put_map_header(dfws_buf_t *b, uint32_t n, int *err)
{
    if (n < 16)
        put_be(b, (unsigned char)(0x80 | n), 0, 0, err);
    else if (n < 65536)
        put_be(b, 0xde, n, 2, err);
    else
        put_be(b, 0xdf, n, 4, err);
}

void dfws_mp_put_array_header(dfws_buf_t *b, uint32_t n, int *err)
{
    if (n < 16)
        put_be(b, (unsigned char)(0x90 | n), 0, 0, err);
    else if (n < 65536)
        put_be(b, 0xdc, n, 2, err);
    else
        put_be(b, 0xdd, n, 4, err);
}

void dfws_mp_put_str(dfws_buf_t *b, const char *s, size_t n, int *err)
{
    if (n < 32)
        put_be(b, (unsigned char)(0xa0 | n), 0, 0, err);
    else if (n < 256)
        put_be(b, 0xd9, (uint32_t)n, 1, err);
    else if (n < 65536)
        put_be(b, 0xda, (uint32_t)n, 2, err);
    else
        put_be(b, 0xdb, (uint32_t)n, 4, err);
    if (dfws_buf_append(b, s, n) != 0)
        *err = DFWS_LAYER_ENOMEM;
}

static int is_channel_key(const char *k, size_t n)
{
    return n == ASGI_CHANNEL_KEY_LEN && memcmp(k, ASGI_CHANNEL_KEY, n) == 0;
}

int dfws_layer_msg_check(const char *mp, size_t len)
{
    const unsigned char *p = (const unsigned char *)mp;
    uint32_t n, i;
    size_t off, used;

    if (mp == NULL || dfws_mp_map_header(p, len, &n, &off) != 0)
        return DFWS_LAYER_EINVAL;
    for (i = 0; i < n; i++) {
        const char *k;
        size_t klen;
        if (dfws_mp_str(p + off, len - off, &k, &klen, &used) != 0 || is_channel_key(k, klen))
            return DFWS_LAYER_EINVAL;
        off += used;
        if (dfws_mp_skip(p + off, len - off, &used) != 0)
            return DFWS_LAYER_EINVAL;
        off += used;
    }
    return off == len ? 0 : DFWS_LAYER_EINVAL;
}

int dfws_layer_msg_add_channel(dfws_buf_t *out, const char *mp, size_t len,
                               const char *const *channels, const size_t *lens,
                               size_t nchannels, int as_list)
{
    const unsigned char *p = (const unsigned char *)mp;
    uint32_t n;
    size_t hdr, i;
    int err = 0;

    if (dfws_mp_map_header(p, len, &n, &hdr) != 0 || n == UINT32_MAX)
        return DFWS_LAYER_EINVAL;
    dfws_mp_put_map_header(out, n + 1, &err);
    if (dfws_buf_append(out, p + hdr, len - hdr) != 0)
        err = DFWS_LAYER_ENOMEM;
    dfws_mp_put_str(out, ASGI_CHANNEL_KEY, ASGI_CHANNEL_KEY_LEN, &err);
    if (as_list) {
        dfws_mp_put_array_header(out, (uint32_t)nchannels, &err);
        for (i = 0; i < nchannels; i++)
            dfws_mp_put_str(out, channels[i], lens[i], &err);
    } else {
        dfws_mp_put_str(out, channels[0], lens[0], &err);
    }
    return err;
}

int dfws_layer_msg_strip_channel(dfws_buf_t *out, const char *mp, size_t len,
                                 dfws_mp_strref_t **dests, size_t *ndests, int *had_key)
{
    const unsigned char *p = (const unsigned char *)mp;
    uint32_t n, i, j;
    size_t off, used, key_start = 0, key_end = 0;
    int err = 0;

    *dests = NULL;
    *ndests = 0;
    *had_key = 0;
    if (dfws_mp_map_header(p, len, &n, &off) != 0)
        return DFWS_LAYER_EINVAL;
    for (i = 0; i < n; i++) {
        const char *k;
        size_t klen, entry = off;
        if (dfws_mp_str(p + off, len - off, &k, &klen, &used) != 0)
            return DFWS_LAYER_EINVAL;
        off += used;
        if (is_channel_key(k, klen) && !*had_key) {
            const char *s;
            size_t slen;
            *had_key = 1;
            key_start = entry;
            if (dfws_mp_str(p + off, len - off, &s, &slen, &used) == 0) {
                *dests = malloc(sizeof(**dests));
                if (*dests == NULL)
                    return DFWS_LAYER_ENOMEM;
                (*dests)[0].s = s;
                (*dests)[0].len = slen;
                *ndests = 1;
                off += used;
            } else {
                size_t hdr, payload;
                uint64_t count;
                if (mp_head(p + off, len - off, &hdr, &payload, &count) != 0 ||
                    !((p[off] >= 0x90 && p[off] <= 0x9f) || p[off] == 0xdc || p[off] == 0xdd) ||
                    count > len)
                    goto bad;
                off += hdr;
                *dests = malloc(sizeof(**dests) * (count ? count : 1));
                if (*dests == NULL)
                    return DFWS_LAYER_ENOMEM;
                for (j = 0; j < count; j++) {
                    if (dfws_mp_str(p + off, len - off, &s, &slen, &used) != 0)
                        goto bad;
                    (*dests)[j].s = s;
                    (*dests)[j].len = slen;
                    off += used;
                }
                *ndests = count;
            }
            key_end = off;
            continue;
        }
        if (dfws_mp_skip(p + off, len - off, &used) != 0)
            goto bad;
        off += used;
    }
    if (off != len)
        goto bad;
    if (!*had_key)
        return dfws_buf_append(out, mp, len);
    {
        size_t hdr = 0;
        uint32_t dummy;
        dfws_mp_map_header(p, len, &dummy, &hdr);
        dfws_mp_put_map_header(out, n - 1, &err);
        if (dfws_buf_append(out, p + hdr, key_start - hdr) != 0 ||
            dfws_buf_append(out, p + key_end, len - key_end) != 0)
            err = DFWS_LAYER_ENOMEM;
    }
    if (err != 0) {
        free(*dests);
        *dests = NULL;
        *ndests = 0;
    }
    return err;
bad:
    free(*dests);
    *dests = NULL;
    *ndests = 0;
    return DFWS_LAYER_EINVAL;
}

int dfws_layer_msg_peek(const char *mp, size_t len, const char **type, size_t *type_len,
                        const char **message, size_t *message_len)
{
    const unsigned char *p = (const unsigned char *)mp;
    uint32_t n, i;
    size_t off, used;

    *type = NULL;
    *type_len = 0;
    if (message) {
        *message = NULL;
        *message_len = 0;
    }
    if (mp == NULL || dfws_mp_map_header(p, len, &n, &off) != 0)
        return DFWS_LAYER_EINVAL;
    for (i = 0; i < n; i++) {
        const char *k, *s;
        size_t klen, slen;
        if (dfws_mp_str(p + off, len - off, &k, &klen, &used) != 0)
            return DFWS_LAYER_EINVAL;
        off += used;
        if (klen == 4 && memcmp(k, "type", 4) == 0 &&
            dfws_mp_str(p + off, len - off, &s, &slen, &used) == 0) {
            *type = s;
            *type_len = slen;
        } else if (message && klen == 7 && memcmp(k, "message", 7) == 0 &&
                   dfws_mp_str(p + off, len - off, &s, &slen, &used) == 0) {
            *message = s;
            *message_len = slen;
        } else if (dfws_mp_skip(p + off, len - off, &used) != 0) {
            return DFWS_LAYER_EINVAL;
        }
        off += used;
    }
    return *type ? 0 : DFWS_LAYER_EINVAL;
}

/* ---- configuration ------------------------------------------------------ */

static char *xstrndup(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

void dfws_layer_host_free(dfws_layer_host_t *h)
{
    free(h->host);
    free(h->unix_path);
    free(h->username);
    free(h->password);
    memset(h, 0, sizeof(*h));
}

static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0:n] into a new string. */
static char *pct_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    size_t i, j = 0;
    if (o == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
            hexval(s[i + 2]) >= 0) {
            o[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    return o;
}

static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    char buf[32];
    char *end;
    long v;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int dfws_layer_host_parse_url(dfws_layer_host_t *h, const char *url, char *err, size_t errlen)
{
    const char *p, *netloc, *nl_end, *path, *path_end, *query, *at;
    int is_unix = 0, rc = DFWS_LAYER_EINVAL;

    memset(h, 0, sizeof(*h));
    h->port = 6379;
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "unix://", 7) == 0) {
        p = url + 7;
        is_unix = 1;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        return set_err(err, errlen, DFWS_LAYER_EUNSUPPORTED,
                       "redis host %s: rediss:// (TLS) is not supported by the C layer", url);
    } else {
        return set_err(err, errlen, DFWS_LAYER_EINVAL,
                       "redis host %s: URL must start with redis:// or unix://", url);
    }
    netloc = p;
    nl_end = netloc + strcspn(netloc, "/?#");
    path = nl_end;
    path_end = path + strcspn(path, "?#");
    query = *path_end == '?' ? path_end + 1 : NULL;

    /* userinfo: everything before the last '@' of the netloc */
    at = NULL;
    for (p = netloc; p < nl_end; p++)
        if (*p == '@')
            at = p;
    if (at != NULL) {
        const char *colon = memchr(netloc, ':', (size_t)(at - netloc));
        const char *uend = colon ? colon : at;
        if (uend > netloc && (h->username = pct_decode(netloc, (size_t)(uend - netloc))) == NULL)
            goto nomem;
        if (colon && at > colon + 1 &&
            (h->password = pct_decode(colon + 1, (size_t)(at - colon - 1))) == NULL)
            goto nomem;
        netloc = at + 1;
    }
    if (!is_unix) {
        const char *hend, *port = NULL;
        if (*netloc == '[') {
            hend = memchr(netloc, ']', (size_t)(nl_end - netloc));
            if (hend == NULL) {
                rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "redis host %s: bad IPv6 address", url);
                goto fail;
            }
            h->host = xstrndup(netloc + 1, (size_t)(hend - netloc - 1));
            if (hend + 1 < nl_end && hend[1] == ':')
                port = hend + 2;
        } else {
            hend = memchr(netloc, ':', (size_t)(nl_end - netloc));
            if (hend == NULL)
                hend = nl_end;
            else
                port = hend + 1;
            h->host = hend > netloc ? pct_decode(netloc, (size_t)(hend - netloc)) : strdup("localhost");
        }
        if (h->host == NULL)
            goto nomem;
        if (port != NULL && parse_int(port, (size_t)(nl_end - port), 1, 65535, &h->port) != 0) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "redis host %s: bad port", url);
            goto fail;
        }
        if (path_end - path > 1) {
            /* redis-py: int(path.replace("/", "")), ignored when not a number */
            char tmp[32];
            size_t j = 0;
            for (p = path; p < path_end && j < sizeof(tmp) - 1; p++)
                if (*p != '/')
                    tmp[j++] = *p;
            if (parse_int(tmp, j, 0, 1 << 20, &h->db) != 0)
                h->db = 0;
        }
    } else {
        if (path_end == path) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "redis host %s: unix URL without a path", url);
            goto fail;
        }
        if ((h->unix_path = pct_decode(path, (size_t)(path_end - path))) == NULL)
            goto nomem;
    }
    while (query != NULL && *query && *query != '#') {
        const char *amp = query + strcspn(query, "&#");
        const char *eq = memchr(query, '=', (size_t)(amp - query));
        if (eq != NULL) {
            size_t kl = (size_t)(eq - query), vl = (size_t)(amp - eq - 1);
            if (kl == 2 && memcmp(query, "db", 2) == 0) {
                char *v = pct_decode(eq + 1, vl);
                int bad = v == NULL || parse_int(v, strlen(v), 0, 1 << 20, &h->db) != 0;
                free(v);
                if (bad) {
                    rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "redis host %s: bad db", url);
                    goto fail;
                }
            } else if (kl == 8 && memcmp(query, "password", 8) == 0 && h->password == NULL) {
                if ((h->password = pct_decode(eq + 1, vl)) == NULL)
                    goto nomem;
            } else if (kl == 8 && memcmp(query, "username", 8) == 0 && h->username == NULL) {
                if ((h->username = pct_decode(eq + 1, vl)) == NULL)
                    goto nomem;
            }
        }
        query = *amp == '&' ? amp + 1 : NULL;
    }
    return 0;
nomem:
    rc = set_err(err, errlen, DFWS_LAYER_ENOMEM, "out of memory");
fail:
    dfws_layer_host_free(h);
    return rc;
}

int dfws_layer_config_init(dfws_layer_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->backend = DFWS_LAYER_BACKEND_MEMORY;
    cfg->prefix = strdup("asgi");
    cfg->expiry = 60;
    cfg->group_expiry = 86400;
    cfg->capacity = 100;
    cfg->brpop_timeout = 5;
    cfg->hosts = calloc(1, sizeof(*cfg->hosts));
    if (cfg->prefix == NULL || cfg->hosts == NULL) {
        dfws_layer_config_free(cfg);
        return DFWS_LAYER_ENOMEM;
    }
    cfg->nhosts = 1;
    cfg->hosts[0].host = strdup("localhost");
    cfg->hosts[0].port = 6379;
    if (cfg->hosts[0].host == NULL) {
        dfws_layer_config_free(cfg);
        return DFWS_LAYER_ENOMEM;
    }
    return 0;
}

void dfws_layer_config_free(dfws_layer_config_t *cfg)
{
    size_t i;
    for (i = 0; i < cfg->nhosts; i++)
        dfws_layer_host_free(&cfg->hosts[i]);
    free(cfg->hosts);
    for (i = 0; i < cfg->ncapacity; i++)
        free(cfg->channel_capacity[i].pattern);
    free(cfg->channel_capacity);
    free(cfg->keys);
    free(cfg->prefix);
    free(cfg->backend_name);
    memset(cfg, 0, sizeof(*cfg));
}

int dfws_layer__config_copy(dfws_layer_config_t *dst, const dfws_layer_config_t *src)
{
    size_t i;
    memset(dst, 0, sizeof(*dst));
    dst->backend = src->backend;
    dst->expiry = src->expiry;
    dst->group_expiry = src->group_expiry;
    dst->capacity = src->capacity;
    dst->brpop_timeout = src->brpop_timeout > 0 ? src->brpop_timeout : 5;
    if ((src->backend_name && !(dst->backend_name = strdup(src->backend_name))) ||
        !(dst->prefix = strdup(src->prefix ? src->prefix : "asgi")))
        goto nomem;
    if (src->nhosts > 0) {
        if (!(dst->hosts = calloc(src->nhosts, sizeof(*dst->hosts))))
            goto nomem;
        dst->nhosts = src->nhosts;
        for (i = 0; i < src->nhosts; i++) {
            const dfws_layer_host_t *s = &src->hosts[i];
            dfws_layer_host_t *d = &dst->hosts[i];
            d->port = s->port;
            d->db = s->db;
            if ((s->host && !(d->host = strdup(s->host))) ||
                (s->unix_path && !(d->unix_path = strdup(s->unix_path))) ||
                (s->username && !(d->username = strdup(s->username))) ||
                (s->password && !(d->password = strdup(s->password))))
                goto nomem;
        }
    }
    if (src->ncapacity > 0) {
        if (!(dst->channel_capacity = calloc(src->ncapacity, sizeof(*dst->channel_capacity))))
            goto nomem;
        dst->ncapacity = src->ncapacity;
        for (i = 0; i < src->ncapacity; i++) {
            dst->channel_capacity[i] = src->channel_capacity[i];
            if (!(dst->channel_capacity[i].pattern = strdup(src->channel_capacity[i].pattern)))
                goto nomem;
        }
    }
    if (src->nkeys > 0) {
        if (!(dst->keys = malloc(src->nkeys * sizeof(*dst->keys))))
            goto nomem;
        memcpy(dst->keys, src->keys, src->nkeys * sizeof(*dst->keys));
        dst->nkeys = src->nkeys;
    }
    return 0;
nomem:
    dfws_layer_config_free(dst);
    return DFWS_LAYER_ENOMEM;
}

static int json_int_field(json_t *root, const char *name, int lo, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, name);
    double d;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return set_err(err, errlen, DFWS_LAYER_EINVAL, "%s must be a number", name);
    d = json_number_value(v);
    if (d < lo || d > 2147483647.0)
        return set_err(err, errlen, DFWS_LAYER_EINVAL, "%s out of range", name);
    *out = (int)d;
    return 0;
}

static int parse_host_json(dfws_layer_host_t *h, json_t *e, size_t idx, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    if (json_is_string(e))
        return dfws_layer_host_parse_url(h, json_string_value(e), err, errlen);
    if (json_is_array(e)) {
        json_t *host = json_array_get(e, 0), *port = json_array_get(e, 1);
        if (json_array_size(e) != 2 || !json_is_string(host) || !json_is_integer(port) ||
            json_integer_value(port) < 1 || json_integer_value(port) > 65535)
            return set_err(err, errlen, DFWS_LAYER_EINVAL, "hosts[%zu]: expected [host, port]", idx);
        h->port = (int)json_integer_value(port);
        h->host = strdup(json_string_value(host));
        return h->host ? 0 : DFWS_LAYER_ENOMEM;
    }
    if (json_is_object(e)) {
        json_t *v;
        if (json_object_get(e, "master_name") || json_object_get(e, "sentinels"))
            return set_err(err, errlen, DFWS_LAYER_EUNSUPPORTED,
                           "hosts[%zu]: Redis Sentinel is not supported by the C layer", idx);
        if ((v = json_object_get(e, "address")) != NULL) {
            if (!json_is_string(v))
                return set_err(err, errlen, DFWS_LAYER_EINVAL, "hosts[%zu].address must be a string", idx);
            return dfws_layer_host_parse_url(h, json_string_value(v), err, errlen);
        }
        h->port = 6379;
        if ((v = json_object_get(e, "path")) != NULL && json_is_string(v))
            h->unix_path = strdup(json_string_value(v));
        else
            h->host = strdup(json_is_string(v = json_object_get(e, "host")) ? json_string_value(v)
                                                                             : "localhost");
        if (json_is_integer(v = json_object_get(e, "port")))
            h->port = (int)json_integer_value(v);
        if (json_is_integer(v = json_object_get(e, "db")))
            h->db = (int)json_integer_value(v);
        if (json_is_string(v = json_object_get(e, "password")))
            h->password = strdup(json_string_value(v));
        if (json_is_string(v = json_object_get(e, "username")))
            h->username = strdup(json_string_value(v));
        if (json_is_true(json_object_get(e, "ssl")))
            return set_err(err, errlen, DFWS_LAYER_EUNSUPPORTED, "hosts[%zu]: TLS is not supported", idx);
        if (h->host == NULL && h->unix_path == NULL)
            return DFWS_LAYER_ENOMEM;
        if (h->port < 1 || h->port > 65535)
            return set_err(err, errlen, DFWS_LAYER_EINVAL, "hosts[%zu]: bad port", idx);
        return 0;
    }
    return set_err(err, errlen, DFWS_LAYER_EINVAL, "hosts[%zu]: expected a URL, [host, port] or object", idx);
}

int dfws_layer_config_parse_json(dfws_layer_config_t *cfg, const char *json, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root, *v;
    int rc = 0;
    size_t i;

    if (err && errlen)
        err[0] = '\0';
    root = json_loads(json, 0, &jerr);
    if (root == NULL) {
        rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "layer config: invalid JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "layer config: expected a JSON object");
        goto out;
    }
    if ((v = json_object_get(root, "backend")) != NULL && json_is_string(v)) {
        free(cfg->backend_name);
        if (!(cfg->backend_name = strdup(json_string_value(v)))) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
    }
    if ((v = json_object_get(root, "kind")) != NULL) {
        const char *k = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(k, "redis") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_REDIS;
        else if (strcmp(k, "pubsub") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_PUBSUB;
        else if (strcmp(k, "memory") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_MEMORY;
        else {
            rc = set_err(err, errlen, DFWS_LAYER_EUNSUPPORTED,
                         "channel layer backend %s is not supported by dfws (kind %s)",
                         cfg->backend_name ? cfg->backend_name : "?", k);
            goto out;
        }
    } else if (cfg->backend_name != NULL) {
        if (strcmp(cfg->backend_name, "channels_redis.core.RedisChannelLayer") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_REDIS;
        else if (strcmp(cfg->backend_name, "channels_redis.pubsub.RedisPubSubChannelLayer") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_PUBSUB;
        else if (strcmp(cfg->backend_name, "channels.layers.InMemoryChannelLayer") == 0)
            cfg->backend = DFWS_LAYER_BACKEND_MEMORY;
        else {
            rc = set_err(err, errlen, DFWS_LAYER_EUNSUPPORTED,
                         "channel layer backend %s is not supported by dfws", cfg->backend_name);
            goto out;
        }
    }
    if ((v = json_object_get(root, "prefix")) != NULL && !json_is_null(v)) {
        if (!json_is_string(v)) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "prefix must be a string");
            goto out;
        }
        free(cfg->prefix);
        if (!(cfg->prefix = strdup(json_string_value(v)))) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
    }
    if ((rc = json_int_field(root, "expiry", 1, &cfg->expiry, err, errlen)) != 0 ||
        (rc = json_int_field(root, "group_expiry", 1, &cfg->group_expiry, err, errlen)) != 0 ||
        (rc = json_int_field(root, "capacity", 1, &cfg->capacity, err, errlen)) != 0 ||
        (rc = json_int_field(root, "brpop_timeout", 1, &cfg->brpop_timeout, err, errlen)) != 0)
        goto out;
    if ((v = json_object_get(root, "hosts")) != NULL && !json_is_null(v) &&
        !(json_is_array(v) && json_array_size(v) == 0)) {
        dfws_layer_host_t *hosts;
        if (!json_is_array(v)) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                         "hosts must be a list of Redis hosts, even if there is only one");
            goto out;
        }
        hosts = calloc(json_array_size(v), sizeof(*hosts));
        if (hosts == NULL) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
        for (i = 0; i < cfg->nhosts; i++)
            dfws_layer_host_free(&cfg->hosts[i]);
        free(cfg->hosts);
        cfg->hosts = hosts;
        cfg->nhosts = 0;
        for (i = 0; i < json_array_size(v); i++) {
            rc = parse_host_json(&cfg->hosts[i], json_array_get(v, i), i, err, errlen);
            cfg->nhosts = i + 1;
            if (rc != 0)
                goto out;
        }
    }
    if ((v = json_object_get(root, "channel_capacity")) != NULL && !json_is_null(v)) {
        if (!json_is_array(v)) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL, "channel_capacity must be a list of rules");
            goto out;
        }
        cfg->channel_capacity = calloc(json_array_size(v) + 1, sizeof(*cfg->channel_capacity));
        if (cfg->channel_capacity == NULL) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
        for (i = 0; i < json_array_size(v); i++) {
            json_t *r = json_array_get(v, i), *g = json_object_get(r, "glob"),
                   *re = json_object_get(r, "regex"), *c = json_object_get(r, "capacity");
            dfws_layer_capacity_rule_t *rule = &cfg->channel_capacity[i];
            if (!json_is_integer(c) || json_integer_value(c) < 0 || json_integer_value(c) > INT32_MAX ||
                !(json_is_string(g) || json_is_string(re))) {
                rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                             "channel_capacity[%zu]: expected {\"glob\"|\"regex\": str, \"capacity\": int}", i);
                goto out;
            }
            rule->kind = json_is_string(g) ? DFWS_LAYER_PATTERN_GLOB : DFWS_LAYER_PATTERN_REGEX;
            rule->capacity = (int)json_integer_value(c);
            rule->pattern = strdup(json_string_value(json_is_string(g) ? g : re));
            cfg->ncapacity = i + 1;
            if (rule->pattern == NULL) {
                rc = DFWS_LAYER_ENOMEM;
                goto out;
            }
            if (rule->kind == DFWS_LAYER_PATTERN_REGEX) {
                regex_t tmp;
                if (regcomp(&tmp, rule->pattern, REG_EXTENDED | REG_NOSUB) != 0) {
                    rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                                 "channel_capacity[%zu]: regex %s is not a POSIX extended regex", i,
                                 rule->pattern);
                    goto out;
                }
                regfree(&tmp);
            }
        }
    }
    if ((v = json_object_get(root, "symmetric_encryption_keys")) != NULL && !json_is_null(v) &&
        !(json_is_array(v) && json_array_size(v) == 0)) {
        if (!json_is_array(v)) {
            rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                         "symmetric_encryption_keys must be a list of possible keys");
            goto out;
        }
        cfg->keys = calloc(json_array_size(v), sizeof(*cfg->keys));
        if (cfg->keys == NULL) {
            rc = DFWS_LAYER_ENOMEM;
            goto out;
        }
        for (i = 0; i < json_array_size(v); i++) {
            json_t *k = json_array_get(v, i), *b;
            if (json_is_string(k)) {
                dfws_fernet_key_from_secret(&cfg->keys[i], json_string_value(k), json_string_length(k));
            } else if (json_is_object(k) && json_is_string(b = json_object_get(k, "base64"))) {
                unsigned char *raw;
                size_t rawlen;
                if (dfws_base64_decode(json_string_value(b), json_string_length(b), &raw, &rawlen) != 0) {
                    rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                                 "symmetric_encryption_keys[%zu]: bad base64", i);
                    goto out;
                }
                dfws_fernet_key_from_secret(&cfg->keys[i], raw, rawlen);
                free(raw);
            } else {
                rc = set_err(err, errlen, DFWS_LAYER_EINVAL,
                             "symmetric_encryption_keys[%zu]: expected a string or {\"base64\": ...}", i);
                goto out;
            }
            cfg->nkeys = i + 1;
        }
    }
out:
    if (root != NULL)
        json_decref(root);
    if (rc != 0) {
        dfws_layer__log(DFWS_LOG_ERROR, "%s", err && errlen && err[0] ? err : dfws_layer_strerror(rc));
        dfws_layer_config_free(cfg);
        dfws_layer_config_init(cfg);
    }
    return rc;
}

/* ---- base layer --------------------------------------------------------- */

int dfws_layer__init(dfws_layer_t *l, uv_loop_t *loop, const dfws_layer_config_t *cfg,
                     const dfws_layer_ops_t *ops)
{
    size_t i;
    int rc;

    l->ops = ops;
    l->loop = loop;
    dfws_map_init(&l->listeners);
    if ((rc = dfws_layer__config_copy(&l->cfg, cfg)) != 0)
        return rc;
    if (l->cfg.ncapacity > 0) {
        l->regs = calloc(l->cfg.ncapacity, sizeof(*l->regs));
        if (l->regs == NULL) {
            dfws_layer_config_free(&l->cfg);
            return DFWS_LAYER_ENOMEM;
        }
        for (i = 0; i < l->cfg.ncapacity; i++) {
            dfws_layer_capacity_rule_t *r = &l->cfg.channel_capacity[i];
            if (r->kind == DFWS_LAYER_PATTERN_REGEX &&
                regcomp(&l->regs[i], r->pattern, REG_EXTENDED) != 0) {
                dfws_layer__log(DFWS_LOG_ERROR, "channel_capacity regex %s does not compile", r->pattern);
                while (i-- > 0)
                    if (l->cfg.channel_capacity[i].kind == DFWS_LAYER_PATTERN_REGEX)
                        regfree(&l->regs[i]);
                free(l->regs);
                l->regs = NULL;
                dfws_layer_config_free(&l->cfg);
                return DFWS_LAYER_EINVAL;
            }
        }
    }
    if ((rc = dfws_layer__uuid4_hex(l->client_prefix)) != 0) {
        dfws_layer__fini(l);
        return rc;
    }
    return 0;
}

static void free_listener(void *ctx, const char *key, size_t klen, void *value)
{
    (void)ctx;
    (void)key;
    (void)klen;
    free(value);
}

void dfws_layer__fini(dfws_layer_t *l)
{
    size_t i;
    dfws_layer__history_free(l);
    dfws_map_foreach(&l->listeners, free_listener, NULL);
    dfws_map_free(&l->listeners);
    if (l->regs != NULL) {
        for (i = 0; i < l->cfg.ncapacity; i++)
            if (l->cfg.channel_capacity[i].kind == DFWS_LAYER_PATTERN_REGEX)
                regfree(&l->regs[i]);
        free(l->regs);
        l->regs = NULL;
    }
    dfws_layer_config_free(&l->cfg);
}

static void run_deferred(dfws_layer_t *l)
{
    /* Take the current list: callbacks queued by these callbacks wait for
     * the next iteration. */
    dfws_layer_defer_t *d = l->defer_head;
    l->defer_head = l->defer_tail = NULL;
    while (d != NULL) {
        dfws_layer_defer_t *next = d->next;
        d->done(d->ud, d->status);
        free(d);
        d = next;
    }
}

static void on_idle(uv_idle_t *h)
{
    dfws_layer_t *l = h->data;
    int again = 0;
    if (l->backend_wants_idle && l->ops->on_idle != NULL) {
        l->backend_wants_idle = 0;
        l->ops->on_idle(l);
    }
    if (l->defer_head != NULL)
        run_deferred(l);
    again = l->backend_wants_idle || l->defer_head != NULL;
    if (!again && l->idle_active && !l->closing) {
        uv_idle_stop(&l->idle);
        l->idle_active = 0;
    }
}

int dfws_layer__start(dfws_layer_t *l)
{
    int rc = uv_idle_init(l->loop, &l->idle);
    if (rc != 0)
        return DFWS_LAYER_EIO;
    l->idle.data = l;
    return 0;
}

void dfws_layer__wake(dfws_layer_t *l)
{
    l->backend_wants_idle = 1;
    if (!l->idle_active && !l->closing) {
        uv_idle_start(&l->idle, on_idle);
        l->idle_active = 1;
    }
}

void dfws_layer__complete(dfws_layer_t *l, dfws_layer_done_cb done, void *ud, int status)
{
    dfws_layer_defer_t *d;
    if (done == NULL)
        return;
    d = malloc(sizeof(*d));
    if (d == NULL) {
        /* Cannot defer: better late-binding than a lost completion. */
        dfws_layer__log(DFWS_LOG_ERROR, "out of memory queueing a completion; calling it now");
        done(ud, status);
        return;
    }
    d->next = NULL;
    d->done = done;
    d->ud = ud;
    d->status = status;
    if (l->defer_tail)
        l->defer_tail->next = d;
    else
        l->defer_head = d;
    l->defer_tail = d;
    if (!l->idle_active && !l->closing) {
        uv_idle_start(&l->idle, on_idle);
        l->idle_active = 1;
    }
}

void dfws_layer__release(dfws_layer_t *l)
{
    dfws_layer_closed_cb closed;
    void *ud;

    if (--l->pending_closes > 0)
        return;
    /* Completions queued before or during closing. */
    while (l->defer_head != NULL)
        run_deferred(l);
    closed = l->closed_cb;
    ud = l->closed_ud;
    l->ops->destroy(l);
    dfws_layer__fini(l);
    free(l);
    if (closed)
        closed(ud);
}

static void on_idle_closed(uv_handle_t *h)
{
    dfws_layer__release(h->data);
}

void dfws_layer_close(dfws_layer_t *l, dfws_layer_closed_cb closed, void *ud)
{
    if (l == NULL || l->closing)
        return;
    l->closing = 1;
    l->closed_cb = closed;
    l->closed_ud = ud;
    dfws_map_foreach(&l->listeners, free_listener, NULL);
    dfws_map_free(&l->listeners);
    l->pending_closes++; /* held until the backend has started closing */
    l->pending_closes++;
    uv_close((uv_handle_t *)&l->idle, on_idle_closed);
    l->ops->close(l);
    dfws_layer__release(l);
}

int dfws_layer_new(uv_loop_t *loop, const dfws_layer_config_t *cfg, dfws_layer_t **out)
{
    if (cfg->backend == DFWS_LAYER_BACKEND_REDIS)
        return dfws_layer_redis_new(loop, cfg, out);
    if (cfg->backend == DFWS_LAYER_BACKEND_PUBSUB)
        return dfws_layer_pubsub_new(loop, cfg, out);
    if (cfg->backend == DFWS_LAYER_BACKEND_MEMORY)
        return dfws_layer_memory_new(loop, cfg, out);
    return DFWS_LAYER_EUNSUPPORTED;
}

int dfws_layer_state(const dfws_layer_t *l, char *why, size_t whylen)
{
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    return l->ops->state != NULL ? l->ops->state(l, why, whylen) : DFWS_LAYER_UP;
}

const char *dfws_layer_client_prefix(const dfws_layer_t *l)
{
    return l->client_prefix;
}

int dfws_layer_new_channel(dfws_layer_t *l, char *buf, size_t buflen)
{
    char id[33];
    int n, rc;
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (l->ops->new_channel != NULL)
        return l->ops->new_channel(l, buf, buflen);
    if ((rc = dfws_layer__uuid4_hex(id)) != 0)
        return rc;
    n = snprintf(buf, buflen, "specific.%s!%s", l->client_prefix, id);
    return n < 0 || (size_t)n >= buflen ? DFWS_LAYER_EINVAL : 0;
}

const dfws_layer_listener_t *dfws_layer__listener(const dfws_layer_t *l, const char *channel, size_t len)
{
    return dfws_map_get(&l->listeners, channel, len);
}

int dfws_layer_listen(dfws_layer_t *l, const char *channel, dfws_layer_deliver_cb cb, void *ud)
{
    dfws_layer_listener_t *li;
    size_t n;
    int rc;

    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (cb == NULL || !dfws_layer_valid_channel_name(channel)) {
        dfws_layer__log(DFWS_LOG_WARNING, "listen: invalid channel name %.120s", channel ? channel : "(null)");
        return DFWS_LAYER_EINVAL;
    }
    n = strlen(channel);
    if (dfws_map_get(&l->listeners, channel, n) != NULL)
        return DFWS_LAYER_EEXIST;
    li = malloc(sizeof(*li));
    if (li == NULL)
        return DFWS_LAYER_ENOMEM;
    li->cb = cb;
    li->ud = ud;
    if (dfws_map_put(&l->listeners, channel, n, li) != 0) {
        free(li);
        return DFWS_LAYER_ENOMEM;
    }
    if ((rc = l->ops->listen(l, channel)) != 0) {
        free(dfws_map_del(&l->listeners, channel, n));
        return rc;
    }
    return 0;
}

int dfws_layer_unlisten(dfws_layer_t *l, const char *channel)
{
    void *li;
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (channel == NULL)
        return DFWS_LAYER_EINVAL;
    li = dfws_map_del(&l->listeners, channel, strlen(channel));
    if (li == NULL)
        return DFWS_LAYER_ENOENT;
    free(li);
    l->ops->unlisten(l, channel);
    return 0;
}

int dfws_layer_send(dfws_layer_t *l, const char *channel, const char *mp, size_t len,
                    dfws_layer_done_cb done, void *ud)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!dfws_layer_valid_channel_name(channel)) {
        dfws_layer__log(DFWS_LOG_WARNING, "send: invalid channel name %.120s", channel ? channel : "(null)");
        return DFWS_LAYER_EINVAL;
    }
    if (dfws_layer_msg_check(mp, len) != 0) {
        dfws_layer__log(DFWS_LOG_WARNING, "send to %s: message is not a msgpack map with string keys "
                        "(or contains __asgi_channel__)", channel);
        return DFWS_LAYER_EINVAL;
    }
    return l->ops->send(l, channel, mp, len, done, ud);
}

int dfws_layer_group_add(dfws_layer_t *l, const char *group, const char *channel)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!dfws_layer_valid_group_name(group) || !dfws_layer_valid_channel_name(channel)) {
        dfws_layer__log(DFWS_LOG_WARNING, "group_add: invalid group %.120s or channel %.120s",
                        group ? group : "(null)", channel ? channel : "(null)");
        return DFWS_LAYER_EINVAL;
    }
    return l->ops->group_add(l, group, channel);
}

int dfws_layer_group_discard(dfws_layer_t *l, const char *group, const char *channel)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!dfws_layer_valid_group_name(group) || !dfws_layer_valid_channel_name(channel))
        return DFWS_LAYER_EINVAL;
    return l->ops->group_discard(l, group, channel);
}

int dfws_layer_group_send(dfws_layer_t *l, const char *group, const char *mp, size_t len,
                          dfws_layer_done_cb done, void *ud)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    if (!dfws_layer_valid_group_name(group)) {
        dfws_layer__log(DFWS_LOG_WARNING, "group_send: invalid group name %.120s", group ? group : "(null)");
        return DFWS_LAYER_EINVAL;
    }
    if (dfws_layer_msg_check(mp, len) != 0) {
        dfws_layer__log(DFWS_LOG_WARNING, "group_send to %s: message is not a msgpack map with string "
                        "keys (or contains __asgi_channel__)", group);
        return DFWS_LAYER_EINVAL;
    }
    return l->ops->group_send(l, group, mp, len, done, ud);
}

int dfws_layer_flush(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    return l->ops->flush(l, done, ud);
}

int dfws_layer_sync(dfws_layer_t *l, dfws_layer_done_cb done, void *ud)
{
    if (l->closing)
        return DFWS_LAYER_ECLOSED;
    return l->ops->sync(l, done, ud);
}

void dfws_layer_get_stats(const dfws_layer_t *l, dfws_layer_stats_t *st)
{
    *st = l->stats;
}

int dfws_layer_capacity_for(const dfws_layer_t *l, const char *channel)
{
    size_t i;
    for (i = 0; i < l->cfg.ncapacity; i++) {
        const dfws_layer_capacity_rule_t *r = &l->cfg.channel_capacity[i];
        if (r->kind == DFWS_LAYER_PATTERN_GLOB) {
            if (fnmatch(r->pattern, channel, FNM_NOESCAPE) == 0)
                return r->capacity;
        } else {
            regmatch_t m;
            if (regexec(&l->regs[i], channel, 1, &m, 0) == 0 && m.rm_so == 0)
                return r->capacity;
        }
    }
    return l->cfg.capacity;
}
