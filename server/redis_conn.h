/*
 * dfws channel layer — Redis connections on the loop (hiredis async).
 * Internal to the layer backends; not a public header.
 *
 * Three pieces:
 *   - dfws_redis_attach(): the glue between a hiredis async context and a
 *     libuv loop, used instead of hiredis's adapters/libuv.h (see the .c for
 *     why: that adapter drops socket errors);
 *   - dfws_redis_open(): AUTH and SELECT for a new connection, as
 *     channels_redis sends them, and ROLE on a sentinel-managed master;
 *   - dfws_redis_conn_t: one connection that reconnects by itself with
 *     exponential backoff and remembers why it is down, for backends that
 *     keep one connection per purpose and shard (layer_pubsub.c).
 *
 * Everything runs on the loop thread of the layer.
 */
#ifndef DFWS_REDIS_CONN_H
#define DFWS_REDIS_CONN_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "layer.h"

/* Attach ac to the loop of layer l (whose log hook gets the reader's
 * refusals). The glue's memory is freed after ac is freed (its poll handle
 * closes on its own). REDIS_OK or REDIS_ERR (ac untouched then). */
int dfws_redis_attach(redisAsyncContext *ac, const dfws_layer_t *l);

/* At most this many array elements in one Redis reply (all its arrays
 * together): the largest legitimate one is a group's member list. */
#define DFWS_REDIS_MAX_ELEMENTS (1 << 20)
/* Make reader r refuse larger replies (a read error, as on a corrupt
 * stream) and log why through b->layer's hook (NULL: the default log).
 * b holds the reader's running count; it must outlive r.
 * dfws_redis_attach() does this for every context. */
typedef struct dfws_redis_bound_s {
    size_t count;
    const dfws_layer_t *layer;
} dfws_redis_bound_t;
void dfws_redis_bound_reader(redisReader *r, dfws_redis_bound_t *b);

/* The callbacks of a context made by dfws_redis_open(). */
typedef struct dfws_redis_callbacks_s {
    redisConnectCallback *connected;
    redisDisconnectCallback *disconnected;
    /* The reply to AUTH or SELECT; privdata is the command's name (a
     * static string). */
    redisCallbackFn *setup;
} dfws_redis_callbacks_t;

/* A new context connecting to h (TCP with keepalive, or a unix socket),
 * attached to l's loop, ac->data = data, with AUTH (when h has a password or a
 * username) and SELECT (db != 0) queued to run first; *nsetup (if non-NULL)
 * gets how many were queued. NULL on failure, with hiredis's reason in why
 * (a name that does not resolve says so). The caller owns the context
 * (redisAsyncFree, or hiredis frees it after a failed connect). */
redisAsyncContext *dfws_redis_open(const dfws_layer_host_t *h, const dfws_layer_t *l, void *data,
                                   const dfws_redis_callbacks_t *cbs, int *nsetup, char *why,
                                   size_t whylen);

/* Count a message lost because Redis was unreachable (in *lost and
 * l->stats.undeliverable); log the first and every 1000th. */
void dfws_redis_note_lost(dfws_layer_t *l, uint64_t *lost, const char *what, const char *target);
/* Count a received message nobody can take (in *count and
 * l->stats.undeliverable); log the first and every 1000th with why. */
void dfws_redis_note_undeliverable(dfws_layer_t *l, uint64_t *count, const char *why,
                                   const char *where, size_t wlen);

/* Arguments of a command being built for redisAsyncCommandArgv. */
typedef struct dfws_redis_argv_s {
    const char **argv;
    size_t *lens;
    size_t n;
} dfws_redis_argv_t;
/* A dfws_map_foreach callback (ctx: a dfws_redis_argv_t with room): append
 * the key (borrowed from the map) as the next argument. */
void dfws_redis_argv_push_key(void *ctx, const char *key, size_t klen, void *value);

/* "host:port" or "unix:///path" into buf (always NUL-terminated); buf. */
const char *dfws_redis_host_desc(const dfws_layer_host_t *h, char *buf, size_t n);

/* ---- a connection that reconnects ------------------------------------------ */

enum { DFWS_REDIS_DOWN = 0, DFWS_REDIS_CONNECTING = 1, DFWS_REDIS_READY = 2 };

typedef struct dfws_redis_conn_s dfws_redis_conn_t;
typedef struct dfws_sentinel_s dfws_sentinel_t; /* layer_sentinel.h */

typedef struct dfws_redis_conn_ops_s {
    /* Connected, AUTH and SELECT done: c->ac takes commands. */
    void (*ready)(dfws_redis_conn_t *c);
    /* The connection was lost or an attempt failed (c->ac is NULL, hiredis
     * already gave every pending callback a NULL reply); the next attempt
     * is scheduled. Not called once closing. May be NULL. */
    void (*down)(dfws_redis_conn_t *c);
    /* After dfws_redis_conn_close(): no timer, no context left; the owner
     * may free the memory of c. */
    void (*closed)(dfws_redis_conn_t *c);
} dfws_redis_conn_ops_t;

struct dfws_redis_conn_s {
    /* Set by dfws_redis_conn_start(); read-only for the owner. */
    uv_loop_t *loop;
    const dfws_layer_t *layer;     /* the owner's layer: its log hook */
    const dfws_layer_host_t *host; /* borrowed: must outlive the connection */
    dfws_sentinel_t *sentinel;     /* borrowed, or NULL: where host's master is */
    size_t shard;
    const char *role; /* static text naming it in log lines */
    const dfws_redis_conn_ops_t *ops;
    void *data;             /* the owner's */
    redisAsyncContext *ac;  /* takes commands while state is READY */
    int state;              /* DFWS_REDIS_* */
    unsigned long connects; /* successful connections so far */
    char error[200];        /* why it is down ("" while ready) */
    /* Private. */
    uv_timer_t timer; /* DOWN: next attempt; CONNECTING: time limit */
    unsigned backoff_ms;
    int setup_pending;  /* AUTH/SELECT replies still to come */
    int outage;         /* a failure was logged, no success since */
    int drain_on_close; /* close lets written commands finish */
    int closing;
    int holds; /* timer + context, while closing */
};

/* Start connecting (the first attempt runs now) on the loop of `layer`,
 * whose log hook gets c's log lines (borrowed: the layer owns c). With a
 * sentinel (host names a master through sentinels: layer_sentinel.h),
 * every attempt goes to the master it knows, and a failure makes it ask
 * again; the owner calls dfws_redis_conn_reset() when the master changes.
 * drain_on_close: on close, wait for the replies of commands already
 * written (a publisher) instead of dropping them (a subscriber). Never
 * fails: errors show as state DOWN. */
void dfws_redis_conn_start(dfws_redis_conn_t *c, const dfws_layer_t *layer,
                           const dfws_layer_host_t *host, dfws_sentinel_t *sentinel, size_t shard,
                           const char *role, int drain_on_close, const dfws_redis_conn_ops_t *ops,
                           void *data);
/* Start closing; ops->closed runs once everything is released (maybe from
 * inside this call). c must not be used for commands afterwards. */
void dfws_redis_conn_close(dfws_redis_conn_t *c);
/* The master moved: drop the connection if there is one (pending
 * callbacks get NULL replies, ops->down runs, one log line with why) and
 * connect again at once. */
void dfws_redis_conn_reset(dfws_redis_conn_t *c, const char *why);
/* 1 when c is ready: commands issued on c->ac run now. */
int dfws_redis_conn_usable(const dfws_redis_conn_t *c);
/* 1 when commands may be queued on c->ac: ready, or an attempt under way
 * (they run after AUTH/SELECT, or get NULL replies if the attempt fails). */
int dfws_redis_conn_queueable(const dfws_redis_conn_t *c);

/* Health for dfws_layer_state(): DFWS_LAYER_UP when ready,
 * DFWS_LAYER_CONNECTING during the first attempt, else DFWS_LAYER_DOWN with
 * "redis HOST (shard N, ROLE connection): ERROR" written into why (if
 * non-NULL). dfws_redis_health() is the same for any connection record. */
int dfws_redis_conn_health(const dfws_redis_conn_t *c, char *why, size_t whylen);
int dfws_redis_health(int ready, int outage, const dfws_layer_host_t *h, size_t shard,
                      const char *role, const char *error, char *why, size_t whylen);

#endif
