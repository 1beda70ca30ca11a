/*
 * dfws channel layer — internals shared by layer.c and the backends
 * (layer_memory.c, layer_redis.c, layer_pubsub.c). Not a public header.
 *
 * Lifetime rule: a layer is freed only after every libuv handle and every
 * hiredis context it owns is gone. Each of those holds one count in
 * l->pending_closes while closing; dfws_layer__release() drops one and the
 * last one runs the queued done callbacks, the closed callback, the
 * backend's destroy and frees the memory.
 */
#ifndef DFWS_LAYER_INT_H
#define DFWS_LAYER_INT_H

#include <regex.h>
#include <stdarg.h>

#include "layer.h"

/* Growable byte buffers are server/buf.h's dfws_buf_t. */
#include "buf.h"

/* The string-keyed hash map is server/map.h's dfws_map_t. */
#include "map.h"

/* ---- msgpack helpers (no allocation unless stated) --------------------- */
/* Size in bytes of the msgpack object at p (validated, nesting <= 64). */
int dfws_mp_skip(const unsigned char *p, size_t len, size_t *used);
/* Map header: *n entries, *hdr header bytes. */
int dfws_mp_map_header(const unsigned char *p, size_t len, uint32_t *n, size_t *hdr);
/* String at p: *s and *slen point into p, *used total bytes. EINVAL if not str. */
int dfws_mp_str(const unsigned char *p, size_t len, const char **s, size_t *slen, size_t *used);
void dfws_mp_put_map_header(dfws_buf_t *b, uint32_t n, int *err);
void dfws_mp_put_array_header(dfws_buf_t *b, uint32_t n, int *err);
void dfws_mp_put_str(dfws_buf_t *b, const char *s, size_t n, int *err);

/* Check that mp is exactly one map with string keys and no
 * "__asgi_channel__" key. */
int dfws_layer_msg_check(const char *mp, size_t len);
/* Append to out: mp's map plus "__asgi_channel__" as the last key; its value
 * is channels[0] as a string when as_list == 0, else an array of the
 * nchannels strings. */
int dfws_layer_msg_add_channel(dfws_buf_t *out, const char *mp, size_t len,
                               const char *const *channels, const size_t *lens, size_t nchannels,
                               int as_list);

/* One destination parsed out of a wire message (points into the input). */
typedef struct dfws_mp_strref_s {
    const char *s;
    size_t len;
} dfws_mp_strref_t;

/* Parse a wire message: write into out the map without "__asgi_channel__"
 * and fill *dests (malloc'ed array, caller frees; NULL when absent) with
 * the destination channel(s), *ndests their count, *had_key 1 if the key was
 * present. Strings in *dests point into mp. */
int dfws_layer_msg_strip_channel(dfws_buf_t *out, const char *mp, size_t len,
                                 dfws_mp_strref_t **dests, size_t *ndests, int *had_key);

/* ---- base layer -------------------------------------------------------- */
typedef struct dfws_layer_defer_s {
    struct dfws_layer_defer_s *next;
    dfws_layer_done_cb done;
    void *ud;
    int status;
} dfws_layer_defer_t;

typedef struct dfws_layer_listener_s {
    dfws_layer_deliver_cb cb;
    void *ud;
} dfws_layer_listener_t;

struct redisReply;
typedef void (*dfws_layer_reply_cb)(void *ud, struct redisReply *reply);
/* The history settings and store of a layer (history.c). */
typedef struct dfws_layer_history_s dfws_layer_history_t;
void dfws_layer__history_free(dfws_layer_t *l);

typedef struct dfws_layer_ops_s {
    const char *name;
    int (*send)(dfws_layer_t *l, const char *channel, const char *mp, size_t len,
                dfws_layer_done_cb done, void *ud);
    int (*group_add)(dfws_layer_t *l, const char *group, const char *channel);
    int (*group_discard)(dfws_layer_t *l, const char *group, const char *channel);
    int (*group_send)(dfws_layer_t *l, const char *group, const char *mp, size_t len,
                      dfws_layer_done_cb done, void *ud);
    int (*flush)(dfws_layer_t *l, dfws_layer_done_cb done, void *ud);
    int (*sync)(dfws_layer_t *l, dfws_layer_done_cb done, void *ud);
    /* Validate/arm receiving for a new listener (called before it is stored). */
    int (*listen)(dfws_layer_t *l, const char *channel);
    void (*unlisten)(dfws_layer_t *l, const char *channel);
    /* Work to do from the idle handler (memory deliveries); may be NULL. */
    void (*on_idle)(dfws_layer_t *l);
    /* Start closing backend handles (each one holds a pending_closes count). */
    void (*close)(dfws_layer_t *l);
    /* Free backend memory; l itself is freed by the base afterwards. */
    void (*destroy)(dfws_layer_t *l);
    /* Name a new channel (NULL: "specific.<client_prefix>!<uuid4 hex>"). */
    int (*new_channel)(dfws_layer_t *l, char *buf, size_t buflen);
    /* dfws_layer_state() (NULL: always DFWS_LAYER_UP). */
    int (*state)(const dfws_layer_t *l, char *why, size_t whylen);
    /* Redis backends: run one command on the command connection of the
     * shard of shard_key (the layer's consistent hash, as for a group);
     * cb(ud, redisReply* or NULL when the connection was lost or the layer
     * closed) runs once, later. Returns 0 or EIO (shard down, cb not
     * called). NULL for the memory backend. Used by history.c. */
    int (*command)(dfws_layer_t *l, const char *shard_key, size_t klen, int argc, const char **argv,
                   const size_t *lens, dfws_layer_reply_cb cb, void *ud);
} dfws_layer_ops_t;

struct dfws_layer_s {
    const dfws_layer_ops_t *ops;
    uv_loop_t *loop;
    dfws_layer_config_t cfg; /* deep copy, owned */
    regex_t *regs;           /* one per cfg.channel_capacity rule (regex kind) */
    char client_prefix[33];
    dfws_map_t listeners; /* channel -> dfws_layer_listener_t* (owned) */
    uv_idle_t idle;
    int idle_active;
    int backend_wants_idle;
    dfws_layer_defer_t *defer_head;
    dfws_layer_defer_t *defer_tail;
    int closing;
    int pending_closes;
    dfws_layer_closed_cb closed_cb;
    void *closed_ud;
    dfws_layer_stats_t stats;
    dfws_layer_log_fn log_fn; /* dfws_layer_set_log(); NULL: stderr */
    void *log_ud;
    dfws_layer_history_t *history; /* NULL: history off (history.c owns it) */
};

/* Initialise the base (copies cfg, compiles patterns, starts nothing but
 * the idle handle init). Returns 0 or negative; on failure nothing leaks. */
int dfws_layer__init(dfws_layer_t *l, uv_loop_t *loop, const dfws_layer_config_t *cfg,
                     const dfws_layer_ops_t *ops);
/* Frees what dfws_layer__init allocated (used on backend init failure,
 * before any handle was started: closes nothing, the idle handle is not
 * initialised until dfws_layer__start). */
void dfws_layer__fini(dfws_layer_t *l);
int dfws_layer__start(dfws_layer_t *l);
/* Queue done(ud, status) to run from the idle handler (no-op if done NULL). */
void dfws_layer__complete(dfws_layer_t *l, dfws_layer_done_cb done, void *ud, int status);
/* Ask for ops->on_idle to run on the next loop iteration. */
void dfws_layer__wake(dfws_layer_t *l);
/* Drop one pending_closes count (see the lifetime rule above). */
void dfws_layer__release(dfws_layer_t *l);
const dfws_layer_listener_t *dfws_layer__listener(const dfws_layer_t *l, const char *channel,
                                                  size_t len);

/* Log through l's hook; l == NULL (code that runs outside any layer, such
 * as the configuration parser) or no hook: stderr, levels >= INFO. */
void dfws_layer__log(const dfws_layer_t *l, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fast non-cryptographic random bytes (the 12-byte member prefix). */
void dfws_layer__fast_random(void *buf, size_t n);
/* Cryptographic random bytes (uuid4, IVs); 0 or DFWS_LAYER_EIO. */
int dfws_layer__secure_random(void *buf, size_t n);
double dfws_layer__now(void);
/* 32 lowercase hex digits of a random (version 4) UUID, like uuid4().hex. */
int dfws_layer__uuid4_hex(char out[33]);
int dfws_layer__config_copy(dfws_layer_config_t *dst, const dfws_layer_config_t *src);

#endif
