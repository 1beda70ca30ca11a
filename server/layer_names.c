/*
 * dfws channel layer — names, hashing and randomness shared by the base and
 * the backends: channel/group name validation, channels_redis's CRC32 shard
 * choice, the fast and the cryptographic random sources, uuid4 hex names.
 */
#include "layer_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

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
