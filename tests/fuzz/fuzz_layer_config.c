/* libFuzzer driver for the channel layer's configuration parsers
 * (server/layer.c): the JSON that dfws/layer_config.py makes of Django's
 * CHANNEL_LAYERS setting, and the Redis URLs inside it ("redis://",
 * "rediss://", "unix://", percent-encoded user and password, db, query).
 * Settings are the operator's, but a URL may come from the environment and
 * any string must give a clear error, never a crash. The first byte picks
 * the parser; a successful parse is copied (what every layer does with its
 * configuration) and freed. */
#include "layer_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int dfws_layer__config_copy(dfws_layer_config_t *dst, const dfws_layer_config_t *src);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (size < 1)
        return 0;
    int which = data[0] & 1;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    err[0] = '\0';
    if (which == 0) {
        dfws_layer_host_t h;
        memset(&h, 0, sizeof(h));
        if (dfws_layer_host_parse_url(&h, s, err, sizeof(err)) == 0) {
            if (h.port < 0 || h.port > 65535 || (!h.host && !h.unix_path))
                abort();
        } else if (!err[0]) {
            abort(); /* an error always says why */
        }
        dfws_layer_host_free(&h);
    } else {
        dfws_layer_config_t cfg, copy;
        dfws_layer_config_init(&cfg);
        if (dfws_layer_config_parse_json(&cfg, s, err, sizeof(err)) == 0) {
            memset(&copy, 0, sizeof(copy));
            if (dfws_layer__config_copy(&copy, &cfg) == 0)
                dfws_layer_config_free(&copy);
        } else if (!err[0]) {
            abort();
        }
        dfws_layer_config_free(&cfg);
    }
    free(s);
    return 0;
}
