/*
 * dfws channel layer — the msgpack subset the layer reads and writes
 * without building objects: skipping and reading values in place, writing
 * headers and strings, and the surgery on "__asgi_channel__" that turns a
 * message into channels_redis's wire form and back.
 */
#include "layer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ASGI_CHANNEL_KEY[] = "__asgi_channel__";
#define ASGI_CHANNEL_KEY_LEN (sizeof(ASGI_CHANNEL_KEY) - 1)

/* ---- msgpack ------------------------------------------------------------ */

static uint32_t be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}
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
    case 0xcc:
    case 0xd0:
        *hdr = 2;
        return 0;
    case 0xcd:
    case 0xd1:
        *hdr = 3;
        return 0;
    case 0xca:
    case 0xce:
    case 0xd2:
        *hdr = 5;
        return 0;
    case 0xcb:
    case 0xcf:
    case 0xd3:
        *hdr = 9;
        return 0;
    case 0xd4:
        *hdr = 2;
        *payload = 1;
        return 0;
    case 0xd5:
        *hdr = 2;
        *payload = 2;
        return 0;
    case 0xd6:
        *hdr = 2;
        *payload = 4;
        return 0;
    case 0xd7:
        *hdr = 2;
        *payload = 8;
        return 0;
    case 0xd8:
        *hdr = 2;
        *payload = 16;
        return 0;
    case 0xc4:
    case 0xd9:
        if (len < 2)
            return DFWS_LAYER_EINVAL;
        *hdr = 2;
        *payload = p[1];
        return 0;
    case 0xc5:
    case 0xda:
        if (len < 3)
            return DFWS_LAYER_EINVAL;
        *hdr = 3;
        *payload = be16(p + 1);
        return 0;
    case 0xc6:
    case 0xdb:
        if (len < 5)
            return DFWS_LAYER_EINVAL;
        *hdr = 5;
        *payload = be32(p + 1);
        return 0;
    case 0xc7:
        if (len < 2)
            return DFWS_LAYER_EINVAL;
        *hdr = 3;
        *payload = p[1];
        return 0;
    case 0xc8:
        if (len < 3)
            return DFWS_LAYER_EINVAL;
        *hdr = 4;
        *payload = be16(p + 1);
        return 0;
    case 0xc9:
        if (len < 5)
            return DFWS_LAYER_EINVAL;
        *hdr = 6;
        *payload = be32(p + 1);
        return 0;
    case 0xdc:
        if (len < 3)
            return DFWS_LAYER_EINVAL;
        *hdr = 3;
        *children = be16(p + 1);
        return 0;
    case 0xdd:
        if (len < 5)
            return DFWS_LAYER_EINVAL;
        *hdr = 5;
        *children = be32(p + 1);
        return 0;
    case 0xde:
        if (len < 3)
            return DFWS_LAYER_EINVAL;
        *hdr = 3;
        *children = 2u * be16(p + 1);
        return 0;
    case 0xdf:
        if (len < 5)
            return DFWS_LAYER_EINVAL;
        *hdr = 5;
        *children = 2u * (uint64_t)be32(p + 1);
        return 0;
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
    if (len < 1 ||
        !((p[0] >= 0xa0 && p[0] <= 0xbf) || p[0] == 0xd9 || p[0] == 0xda || p[0] == 0xdb))
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
                               const char *const *channels, const size_t *lens, size_t nchannels,
                               int as_list)
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
