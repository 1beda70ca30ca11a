/* libFuzzer driver for the native df_websockets socket's signal calls
 * (server/native.c): the text frames a browser sends, parsed with jansson
 * and, in `channels` mode, turned into msgpack `process.signal` messages
 * sent through the (embedded, in-memory) channel layer. The driver includes
 * native.c to reach on_signal_frame(), which needs no connection: only the
 * window's endpoint and its WindowInfo msgpack. The first byte picks the
 * mode (channels with a queue table, or Python dispatch); no input may
 * crash, leak, or make a message the layer refuses as malformed. */
#include "../../server/native.c"

#include <stdint.h>

static unsigned long long app_calls;

static void on_app_signal(void *ud, dfws_window_t *w, const char *json, size_t len)
{
    (void)ud;
    (void)w;
    (void)json;
    (void)len;
    app_calls++;
}

static const dfws_native_ops_t ops = {.signal = on_app_signal};

static void quiet(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)level;
    (void)msg;
}

/* Queued messages are read back here: each must be a message map the layer
 * accepts (a "type" string), as a Python consumer would need. */
static void on_deliver_check(void *ud, const char *channel, const char *mp, size_t len)
{
    const char *type, *msg;
    size_t tlen, mlen;
    (void)ud;
    (void)channel;
    if (dfws_layer_msg_peek(mp, len, &type, &tlen, &msg, &mlen) != 0 || tlen != 14 ||
        memcmp(type, "process.signal", 14))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static dfws_layer_t *layer;
    static dfws_native_t *native[2];
    static dfws_window_t win[2];
    /* msgpack of a small WindowInfo dict: {"user": nil, "csrf": "x"} */
    static char wi[] = "\x82\xa4user\xc0\xa4"
                       "csrf\xa1x";
    if (!layer) {
        dfws_layer_config_t cfg;
        const char *err = NULL;
        dfws_log_set_level(DFWS_LOG_ERROR + 1);
        uv_loop_init(&loop);
        dfws_layer_config_init(&cfg);
        if (dfws_layer_memory_new(&loop, &cfg, &layer))
            abort();
        dfws_layer_set_log(layer, quiet, NULL);
        dfws_layer_config_free(&cfg);
        dfws_native_config_t nc = {.ws_url = "/ws/",
                                   .channels_mode = 1,
                                   .json_in_c = 1,
                                   .queues_json = "{\"sig.a\": [\"q1\", \"q2\"], \"sig.dyn\": null,"
                                                  " \"sig.b\": [\"q3\", 5, null], \"\": [\"q1\"]}"};
        if (dfws_native_new(layer, &nc, &ops, NULL, &native[0], &err))
            abort();
        nc.channels_mode = 0;
        nc.queues_json = NULL;
        if (dfws_native_new(layer, &nc, &ops, NULL, &native[1], &err))
            abort();
        for (int i = 0; i < 2; i++) {
            win[i].n = native[i];
            win[i].wi_mp = wi;
            win[i].wi_len = sizeof(wi) - 1;
        }
        dfws_layer_listen(layer, "q1", on_deliver_check, NULL);
        dfws_layer_listen(layer, "q3", on_deliver_check, NULL);
    }
    if (size < 1)
        return 0;
    /* the frame in a buffer of its own size: ASan sees a read past its end */
    size_t len = size - 1;
    char *frame = malloc(len ? len : 1);
    memcpy(frame, data + 1, len);
    on_signal_frame(&win[data[0] & 1], frame, len);
    free(frame);
    /* deliveries to q1 and q3 (checked above); q2 stays at its capacity */
    uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
