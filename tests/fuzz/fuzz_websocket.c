/* libFuzzer driver for the WebSocket codec (server/websocket.c): arbitrary
 * bytes from a client, fed in two pieces split where the first input byte
 * says (its top bit: permessage-deflate negotiated, so compressed frames
 * are inflated and echoes compressed); the codec must never crash, leak or
 * write out of bounds. */
#include "websocket.h"

#include <stddef.h>
#include <stdint.h>

static int on_write(void *owner, const uint8_t *data, size_t len)
{
    (void)owner;
    (void)data;
    (void)len;
    return 0;
}

static void on_message(void *owner, int binary, const uint8_t *data, size_t len)
{
    dfws_ws_t *ws = owner;
    /* answer like an echo application would, exercising the send path */
    if (len < 4096)
        dfws_ws_send(ws, binary, data, len);
}

static void on_close(void *owner, const dfws_ws_close_info_t *info)
{
    (void)owner;
    (void)info;
}

static void on_fatal(void *owner, int err, const char *what)
{
    (void)owner;
    (void)err;
    (void)what;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dfws_ws_config_t cfg;
    dfws_ws_t ws;
    if (size < 1)
        return 0;
    dfws_ws_config_init(&cfg);
    cfg.cb.write = on_write;
    cfg.cb.on_message = on_message;
    cfg.cb.on_close = on_close;
    cfg.cb.on_fatal = on_fatal;
    cfg.max_message_size = 1 << 16;
    cfg.max_frame_size = 1 << 16;
    static dfws_ws_deflate_t *deflate; /* shared, as in the server: made once */
    int pmd = data[0] & 0x80;
    if (pmd && !deflate)
        deflate = dfws_ws_deflate_new(6, 16, 15);
    if (pmd)
        cfg.deflate = deflate;
    dfws_ws_init(&ws, &cfg, &ws);
    if (pmd && deflate) {
        dfws_ws_pmd_t agreed = {15, 15, 0, 0};
        dfws_ws_set_pmd(&ws, &agreed);
    }
    size_t split = (data[0] & 0x7f) % size;
    data++;
    size--;
    if (split > size)
        split = size;
    if (dfws_ws_feed(&ws, data, split) == 0)
        dfws_ws_feed(&ws, data + split, size - split);
    dfws_ws_cleanup(&ws);
    return 0;
}
