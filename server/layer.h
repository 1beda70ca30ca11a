/*
 * dfws channel layer — public interface.
 *
 * Three backends share this interface:
 *   - the embedded in-process layer (layer_memory.c), Channels'
 *     InMemoryChannelLayer semantics, for one process without Redis;
 *   - the Redis layer (layer_redis.c), wire-compatible with
 *     channels_redis.core.RedisChannelLayer 4.x (see
 *     shared/reference/channels_redis-wire.md);
 *   - the Redis pub/sub layer (layer_pubsub.c), wire-compatible with
 *     channels_redis.pubsub.RedisPubSubChannelLayer 4.3 (see
 *     docs/architecture.md, "The channel layer").
 *
 * Threading: every function here must be called on the loop thread of the
 * uv_loop_t the layer was created on. Nothing is thread-safe.
 *
 * Messages cross this API as msgpack bytes of the message map WITHOUT the
 * "__asgi_channel__" key (top level: a map with string keys, a "type"
 * string). The layer adds/removes "__asgi_channel__" on the wire itself.
 *
 * Callbacks:
 *   - a function that fails synchronously (negative return) never calls its
 *     callback;
 *   - a function that returns 0 calls its done callback exactly once, later,
 *     from the loop (never from inside the call), with 0 or a negative
 *     DFWS_LAYER_E* code; when the layer is closed first, with
 *     DFWS_LAYER_ECLOSED, before the layer's closed callback runs;
 *   - deliver callbacks run from the loop, never from inside a layer call.
 *     The msgpack buffer and channel string passed to them belong to the
 *     layer and are valid only during the callback (copy what you keep).
 *     A deliver callback may call any layer function, including
 *     dfws_layer_unlisten and dfws_layer_close.
 *
 * Memory: all strings passed in are copied if kept; the caller keeps
 * ownership of its buffers.
 */
#ifndef DFWS_LAYER_H
#define DFWS_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes (negative). */
enum {
    DFWS_LAYER_OK = 0,
    DFWS_LAYER_EINVAL = -1, /* bad channel/group name, bad message, bad config */
    DFWS_LAYER_EFULL = -2,  /* send(): channel over capacity (ChannelFull) */
    DFWS_LAYER_EIO = -3,    /* Redis unreachable or command failed */
    DFWS_LAYER_ENOMEM = -4,
    DFWS_LAYER_ECLOSED = -5,     /* the layer is closing / closed */
    DFWS_LAYER_EEXIST = -6,      /* listen(): channel already has a listener */
    DFWS_LAYER_ENOENT = -7,      /* unlisten(): no listener for this channel */
    DFWS_LAYER_EUNSUPPORTED = -8 /* backend or host form we do not speak */
};

/* Static English text for a code; never NULL. */
const char *dfws_layer_strerror(int code);

/* Names are shorter than this (Channels' MAX_NAME_LENGTH). */
#define DFWS_LAYER_NAME_MAX 100
/* Buffer size enough for any name returned by dfws_layer_new_channel(). */
#define DFWS_LAYER_CHANNEL_BUF 128

/* ---- logging ---------------------------------------------------------- */

/* Levels are log.h's DFWS_LOG_* (Python's logging numbers). */
#include "log.h"

/* Log hook: msg is a NUL-terminated line without trailing newline, owned by
 * the caller of the hook (valid during the call). Each layer has its own
 * (dfws_layer_set_log); default: stderr, levels >= INFO, prefixed
 * "dfws.layer: ". */
typedef void (*dfws_layer_log_fn)(void *ud, int level, const char *msg);

/* ---- configuration ----------------------------------------------------- */

enum {
    DFWS_LAYER_BACKEND_MEMORY = 1, /* channels.layers.InMemoryChannelLayer or none */
    DFWS_LAYER_BACKEND_REDIS = 2,  /* channels_redis.core.RedisChannelLayer */
    DFWS_LAYER_BACKEND_PUBSUB = 3  /* channels_redis.pubsub.RedisPubSubChannelLayer */
};

/* A sentinel's address (Redis Sentinel, layer_sentinel.h). */
typedef struct dfws_layer_sentinel_addr_s {
    char *host;
    int port;
} dfws_layer_sentinel_addr_t;

typedef struct dfws_layer_host_s {
    char *host;      /* TCP host, NULL for a unix socket or a sentinel-managed master */
    int port;        /* default 6379 */
    char *unix_path; /* unix socket path, or NULL */
    char *username;  /* AUTH username (Redis 6 ACL) or NULL */
    char *password;  /* AUTH password or NULL */
    int db;          /* SELECT db when != 0 */
    /* Redis Sentinel: when master_name is set, host/port/unix_path are
     * unused and the master's address is asked of the sentinels (in list
     * order) with sentinel_username/password (channels_redis'
     * sentinel_kwargs); username, password and db apply to the master. */
    char *master_name;
    dfws_layer_sentinel_addr_t *sentinels;
    size_t nsentinels;
    char *sentinel_username;
    char *sentinel_password;
} dfws_layer_host_t;

enum { DFWS_LAYER_PATTERN_GLOB = 1, DFWS_LAYER_PATTERN_REGEX = 2 };

typedef struct dfws_layer_capacity_rule_s {
    int kind; /* DFWS_LAYER_PATTERN_GLOB (fnmatch, anchored both ends)
                        or DFWS_LAYER_PATTERN_REGEX (POSIX ERE, anchored at
                        the start like Python's re.match) */
    char *pattern;
    int capacity;
} dfws_layer_capacity_rule_t;

typedef struct dfws_layer_key_s {
    unsigned char sha[32]; /* SHA256(secret): [0:16] HMAC key, [16:32] AES key */
} dfws_layer_key_t;

/* Every pointer inside is owned by the config (freed by
 * dfws_layer_config_free). Layers deep-copy the config they are given. */
typedef struct dfws_layer_config_s {
    int backend;              /* DFWS_LAYER_BACKEND_* */
    char *backend_name;       /* dotted Python class path, informative */
    dfws_layer_host_t *hosts; /* list order = shard index */
    size_t nhosts;
    char *prefix;                                 /* default "asgi" */
    int expiry;                                   /* seconds, default 60 */
    int group_expiry;                             /* seconds, default 86400 */
    int capacity;                                 /* default 100 */
    dfws_layer_capacity_rule_t *channel_capacity; /* first match wins */
    size_t ncapacity;
    dfws_layer_key_t *keys; /* Fernet keys; encrypt with [0], decrypt with any */
    size_t nkeys;
    int brpop_timeout; /* seconds a blocking pop waits, default 5 */
    /* The new layer's log hook, from its creation on (lines logged while
     * dfws_layer_new() runs, such as a Redis host that does not resolve,
     * go there too); not from JSON. NULL: stderr. The layer keeps it as
     * its own state (dfws_layer_set_log() changes it). */
    dfws_layer_log_fn log_fn;
    void *log_ud;
} dfws_layer_config_t;

/* Fill *cfg with defaults (memory backend, prefix "asgi", 60/86400/100,
 * one host redis://localhost:6379 used only by the Redis backend). */
int dfws_layer_config_init(dfws_layer_config_t *cfg);
void dfws_layer_config_free(dfws_layer_config_t *cfg);

/* Parse the JSON produced by dfws/layer_config.py (to_json):
 *   {"backend": "channels_redis.core.RedisChannelLayer",
 *    "kind": "redis" | "pubsub" | "memory" | "unsupported",
 *    "hosts": ["redis://[user][:pass@]host[:port][/db]", "unix:///p?db=N",
 *              ["host", port], {"address": url}, {"host":..,"port":..,"db":..,
 *              "password":..,"username":..}],
 *    "prefix": "asgi", "expiry": 60, "group_expiry": 86400, "capacity": 100,
 *    "channel_capacity": [{"glob": "http.*", "capacity": 200},
 *                         {"regex": "^ws", "capacity": 10}],
 *    "symmetric_encryption_keys": ["secret", {"base64": "..."}]}
 * Every key is optional. On error returns DFWS_LAYER_EINVAL or
 * DFWS_LAYER_EUNSUPPORTED, writes a message into err (if non-NULL) and
 * leaves *cfg freed-and-reinitialised to defaults. cfg must have been
 * initialised with dfws_layer_config_init. */
int dfws_layer_config_parse_json(dfws_layer_config_t *cfg, const char *json, char *err,
                                 size_t errlen);

/* Parse one host URL into *h (fields owned by *h; free with
 * dfws_layer_host_free). */
int dfws_layer_host_parse_url(dfws_layer_host_t *h, const char *url, char *err, size_t errlen);
void dfws_layer_host_free(dfws_layer_host_t *h);

/* ---- layer lifecycle --------------------------------------------------- */

typedef struct dfws_layer_s dfws_layer_t;

typedef void (*dfws_layer_deliver_cb)(void *ud, const char *channel, const char *msgpack,
                                      size_t len);
typedef void (*dfws_layer_done_cb)(void *ud, int status);
typedef void (*dfws_layer_closed_cb)(void *ud);

/* Create a layer from cfg->backend (deep-copies cfg). *out is owned by the
 * caller until dfws_layer_close. */
int dfws_layer_new(uv_loop_t *loop, const dfws_layer_config_t *cfg, dfws_layer_t **out);
/* Send l's log lines to fn(ud, ...) from now on (fn == NULL: the default,
 * stderr); cfg->log_fn sets it from the start. Loop thread only; ud must
 * outlive l or the next call. */
void dfws_layer_set_log(dfws_layer_t *l, dfws_layer_log_fn fn, void *ud);
int dfws_layer_memory_new(uv_loop_t *loop, const dfws_layer_config_t *cfg, dfws_layer_t **out);
/* Start connecting at once; never fail because Redis is down (they retry
 * with exponential backoff and log once per outage). The pub/sub layer uses
 * hosts, prefix and keys of cfg; expiry and capacities do not apply to it. */
int dfws_layer_redis_new(uv_loop_t *loop, const dfws_layer_config_t *cfg, dfws_layer_t **out);
int dfws_layer_pubsub_new(uv_loop_t *loop, const dfws_layer_config_t *cfg, dfws_layer_t **out);

/* Whether the layer can carry messages now. */
enum {
    DFWS_LAYER_UP = 0,         /* every connection is ready (memory: always) */
    DFWS_LAYER_CONNECTING = 1, /* a first connection attempt is still under way */
    DFWS_LAYER_DOWN = 2        /* a connection failed or was lost and is not back */
};
/* DFWS_LAYER_UP, _CONNECTING or _DOWN; when DOWN, why (if non-NULL) gets a
 * line naming the host and the error, e.g. "redis 127.0.0.1:6379 (shard 0,
 * command connection): Connection refused". */
int dfws_layer_state(const dfws_layer_t *l, char *why, size_t whylen);

/* Start closing: pending done callbacks get DFWS_LAYER_ECLOSED (Redis
 * commands already written are allowed to finish first), listeners are
 * dropped, every handle is closed, then closed(ud) is called (may be NULL)
 * and the layer memory is freed. Do not use l after this call. */
void dfws_layer_close(dfws_layer_t *l, dfws_layer_closed_cb closed, void *ud);

/* ---- channels ---------------------------------------------------------- */

/* Write "specific.<client_prefix>!<uuid4 hex>" (pub/sub layer:
 * "<prefix>specific.<uuid4 hex>", as channels_redis.pubsub names them)
 * NUL-terminated into buf. DFWS_LAYER_EINVAL if buflen is too small (use
 * DFWS_LAYER_CHANNEL_BUF). */
int dfws_layer_new_channel(dfws_layer_t *l, char *buf, size_t buflen);
/* The 32-hex client prefix of this layer instance (owned by the layer). */
const char *dfws_layer_client_prefix(const dfws_layer_t *l);

/* Register a local receiver. Messages for channel are delivered to cb.
 * Redis: a "!" channel must be one of this layer's (non-local part
 * "<anything>.<client_prefix>!"), a plain channel name is also allowed
 * (the process pops that queue key on every shard). Pub/sub: any channel
 * (SUBSCRIBE to exactly that name; messages published before are lost).
 * Memory: any channel; messages queued before listen are delivered right
 * after it. */
int dfws_layer_listen(dfws_layer_t *l, const char *channel, dfws_layer_deliver_cb cb, void *ud);
int dfws_layer_unlisten(dfws_layer_t *l, const char *channel);

/* Send msgpack (map without __asgi_channel__) to channel. done may be NULL.
 * done status: 0, DFWS_LAYER_EFULL (over capacity), DFWS_LAYER_EIO,
 * DFWS_LAYER_ECLOSED. */
int dfws_layer_send(dfws_layer_t *l, const char *channel, const char *mp, size_t len,
                    dfws_layer_done_cb done, void *ud);

/* Group membership. The layer remembers local memberships (Redis: refreshes
 * them every group_expiry/3 and re-adds them after a reconnect; pub/sub:
 * membership lives only in this process, which subscribes to the group's
 * channel while it has a member). Errors after the call are logged, not
 * reported. */
int dfws_layer_group_add(dfws_layer_t *l, const char *group, const char *channel);
int dfws_layer_group_discard(dfws_layer_t *l, const char *group, const char *channel);

/* Send to every member. Members over capacity are skipped silently (counted
 * in stats.group_dropped), like channels_redis. done status 0, EIO, ECLOSED. */
int dfws_layer_group_send(dfws_layer_t *l, const char *group, const char *mp, size_t len,
                          dfws_layer_done_cb done, void *ud);

/* Delete every message and group (Redis: every key starting with prefix on
 * every shard; memory: everything). Local memberships are forgotten. */
int dfws_layer_flush(dfws_layer_t *l, dfws_layer_done_cb done, void *ud);

/* Barrier: done(ud, status) runs once every command issued before this
 * call (group_add's ZADD included) has been executed by Redis (a PING on
 * every command connection; EIO if one is down; pub/sub: also every
 * SUBSCRIBE and UNSUBSCRIBE confirmed). Memory: next iteration.
 * Lets a caller order "joined the group" before "tell others to send". */
int dfws_layer_sync(dfws_layer_t *l, dfws_layer_done_cb done, void *ud);

typedef struct dfws_layer_stats_s {
    uint64_t sent;          /* messages queued by send() (memory: also group_send targets) */
    uint64_t received;      /* messages delivered to local listeners */
    uint64_t undeliverable; /* received for a local channel nobody listens to,
                                  undecodable, or lost during an outage */
    uint64_t group_dropped; /* group_send members skipped: over capacity */
    uint64_t reconnects;    /* Redis connections re-established */
} dfws_layer_stats_t;
void dfws_layer_get_stats(const dfws_layer_t *l, dfws_layer_stats_t *st);

/* ---- history (docs/recovery.md) ---------------------------------------- */

/* The history of each topic group: `size` messages kept per group (0: off,
 * the default), `ttl` seconds each. Memory backend: in the process
 * (history.c). Redis backends: in Redis, through the two Lua scripts of
 * df_websockets (their text, copied), run on the group's shard. Replaces
 * any earlier configuration (the memory store is then emptied). */
int dfws_layer_history_configure(dfws_layer_t *l, size_t size, unsigned ttl, const char *append_lua,
                                 const char *read_lua);
/* Messages kept per group; 0 when history is off. */
size_t dfws_layer_history_size(const dfws_layer_t *l);

/* Appends json (a JSON object text) to group's history, creating it with
 * epoch_candidate (8 lowercase hex digits) when it has none, and
 * group_sends {"type": "ws_message", "message": final JSON} (json with
 * "topic" and "pos" added). History off: json is sent as it is. When Redis
 * cannot write the history, the message is sent without a position (logged).
 * done as for dfws_layer_group_send. */
int dfws_layer_history_send(dfws_layer_t *l, const char *group, const char *json, size_t len,
                            const char *epoch_candidate, dfws_layer_done_cb done, void *ud);

/* The answer of a read: res (history.h) is valid during the callback only;
 * the callback may take its items (set res->items to NULL after freeing
 * nothing else). status 0, EIO (Redis unreachable or bad reply), ENOMEM,
 * ECLOSED. */
struct dfws_history_result_s;
typedef void (*dfws_layer_history_cb)(void *ud, int status, struct dfws_history_result_s *res);
/* Reads group's history after offset in epoch (the recovery of a window):
 * cb gets the meta and, when epoch is current, the messages after offset
 * still within the TTL, at most `size`, in offset order. EUNSUPPORTED when
 * history is off. */
int dfws_layer_history_read(dfws_layer_t *l, const char *group, const char *epoch, uint64_t offset,
                            dfws_layer_history_cb cb, void *ud);

/* ---- helpers ----------------------------------------------------------- */

/* 1 if valid, 0 if not (Channels' rules: [A-Za-z0-9-_.]+ optionally "!" +
 * [A-Za-z0-9-_.]*, length < 100). */
int dfws_layer_valid_channel_name(const char *name);
int dfws_layer_valid_group_name(const char *name);
/* Length of the non-local part: up to and including the first '!', or the
 * whole length. */
size_t dfws_layer_non_local_len(const char *name);
/* IEEE CRC-32 (zlib's). */
uint32_t dfws_layer_crc32(const void *data, size_t len);
/* channels_redis consistent_hash: shard index in [0, nshards). */
size_t dfws_layer_shard(const char *s, size_t len, size_t nshards);
/* Capacity for channel from cfg's channel_capacity rules or cfg->capacity. */
int dfws_layer_capacity_for(const dfws_layer_t *l, const char *channel);

/* Hot-path peek into a message: points *type at the "type" string and
 * *message at the "message" string (NULL/0 if absent or not a string), into
 * mp itself (not NUL-terminated, no copy). Returns 0, or DFWS_LAYER_EINVAL if
 * mp is not a msgpack map or has no string "type". */
int dfws_layer_msg_peek(const char *mp, size_t len, const char **type, size_t *type_len,
                        const char **message, size_t *message_len);

#ifdef __cplusplus
}
#endif
#endif
