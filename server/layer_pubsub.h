/*
 * dfws channel layer — the pieces of the pub/sub backend (layer_pubsub.c)
 * that parse or build what goes over the wire, exposed for the unit tests.
 * Not a public header: the layer itself is created with
 * dfws_layer_pubsub_new() (layer.h).
 */
#ifndef DFWS_LAYER_PUBSUB_H
#define DFWS_LAYER_PUBSUB_H

#include <hiredis/hiredis.h>

#include "layer_int.h"

/* "<prefix>__group__<group>" into buf: the pub/sub channel of a group, as
 * channels_redis.pubsub names it. Its length, or DFWS_LAYER_EINVAL when it
 * does not fit. */
int dfws_pubsub_group_channel(const char *prefix, const char *group, char *buf, size_t n);

/* What a reply on a subscribing connection is. */
enum {
    DFWS_PUBSUB_OTHER = 0,   /* anything else (ignored) */
    DFWS_PUBSUB_MESSAGE = 1, /* ["message", channel, data] */
    DFWS_PUBSUB_CONFIRM = 2  /* ["subscribe" | "unsubscribe", channel, count] */
};
typedef struct dfws_pubsub_event_s {
    const char *channel; /* into the reply; not NUL-terminated */
    size_t channel_len;
    const char *data; /* MESSAGE: the payload, into the reply */
    size_t data_len;
} dfws_pubsub_event_t;
/* Classify rep (may be NULL) and point *ev into it. */
int dfws_pubsub_event(const redisReply *rep, dfws_pubsub_event_t *ev);

/* A received payload -> the message map for listeners: Fernet-decrypted
 * with cfg->keys when there are keys (no age limit, as channels_redis.pubsub
 * decrypts), checked to be one msgpack map with string keys, any
 * "__asgi_channel__" key removed. Appends to out; 0 or DFWS_LAYER_EINVAL
 * (not a map, wrong key, corrupt token) / DFWS_LAYER_ENOMEM. */
int dfws_pubsub_decode(const dfws_layer_config_t *cfg, const char *payload, size_t len,
                       dfws_buf_t *out);

#endif
