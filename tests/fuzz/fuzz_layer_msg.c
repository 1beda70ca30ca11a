/* libFuzzer driver for the channel layer's msgpack message surgery
 * (server/layer.c): what a Redis member or a pub/sub payload holds after
 * decryption is bytes from another process, and the layer reads it in place
 * without msgpack-c. Every function must reject what is not a message, and
 * the ones that accept must agree with one another:
 *   - msg_check(m) == 0  =>  strip(add_channel(m, ch)) gives back m's
 *     entries and exactly ch;
 *   - strip(w) == 0      =>  its output passes msg_check;
 *   - msg_peek points inside the input. */
#include "layer_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The entries of a map (what follows its header). */
static const char *entries(const char *mp, size_t len, size_t *elen)
{
    uint32_t n;
    size_t hdr;
    if (dfws_mp_map_header((const unsigned char *)mp, len, &n, &hdr) != 0)
        abort();
    *elen = len - hdr;
    return mp + hdr;
}

static void round_trip(const char *mp, size_t len, int as_list)
{
    static const char *const chans[2] = {"specific.abc!def", "x.y"};
    static const size_t lens[2] = {16, 3};
    size_t n = as_list ? 2 : 1;
    dfws_buf_t wire = {0}, back = {0};
    dfws_mp_strref_t *dests;
    size_t ndests, e1, e2;
    int had_key;
    if (dfws_layer_msg_add_channel(&wire, mp, len, chans, lens, n, as_list) != 0)
        abort();
    if (dfws_layer_msg_strip_channel(&back, wire.base, wire.len, &dests, &ndests, &had_key) != 0 ||
        !had_key || ndests != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (dests[i].len != lens[i] || memcmp(dests[i].s, chans[i], lens[i]))
            abort();
    if (dfws_layer_msg_check(back.base, back.len) != 0)
        abort();
    const char *a = entries(mp, len, &e1), *b = entries(back.base, back.len, &e2);
    if (e1 != e2 || memcmp(a, b, e1))
        abort();
    free(dests);
    dfws_buf_free(&wire);
    dfws_buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *mp = (const char *)data;
    /* the input exactly, in a buffer of its own size, so that ASan sees any
     * read past its end */
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    mp = copy;

    size_t used;
    if (dfws_mp_skip((const unsigned char *)mp, size, &used) == 0 && used > size)
        abort();

    const char *type, *msg;
    size_t tlen, mlen;
    if (dfws_layer_msg_peek(mp, size, &type, &tlen, &msg, &mlen) == 0) {
        if (type < mp || type + tlen > mp + size)
            abort();
        if (msg && (msg < mp || msg + mlen > mp + size))
            abort();
    }

    if (dfws_layer_msg_check(mp, size) == 0) {
        round_trip(mp, size, 0);
        round_trip(mp, size, 1);
    }

    dfws_buf_t out = {0};
    dfws_mp_strref_t *dests;
    size_t ndests;
    int had_key;
    if (dfws_layer_msg_strip_channel(&out, mp, size, &dests, &ndests, &had_key) == 0) {
        if (!had_key && dfws_layer_msg_check(out.base, out.len) != 0)
            abort();
        for (size_t i = 0; i < ndests; i++)
            if (dests[i].s < mp || dests[i].s + dests[i].len > mp + size)
                abort();
    }
    free(dests);
    dfws_buf_free(&out);
    free(copy);
    return 0;
}
