/*
 * dfws channel layer — Redis Sentinel: finding a shard's master.
 * Internal to the Redis backends; not a public header.
 *
 * A host entry of CHANNEL_LAYERS may name a master through sentinels, as
 * channels_redis accepts it:
 *     {"master_name": "mymaster", "sentinels": [("10.0.0.5", 26379), ...],
 *      "sentinel_kwargs": {"password": ...}, "password": ..., "db": ...}
 * (dfws_layer_host_t: master_name != NULL). One dfws_sentinel_t per such
 * shard, owned by the backend, finds the master for every connection of
 * that shard:
 *   - discovery: the sentinels are asked in order (the last one that
 *     answered first) "SENTINEL get-master-addr-by-name <name>"; the first
 *     address wins. No sentinel answering: retried with backoff
 *     (100 ms .. 5 s), one log line per outage; the last known address is
 *     kept meanwhile.
 *   - the sentinel that answered is also subscribed to "+switch-master":
 *     a failover moves the shard at once, without waiting for a connection
 *     to fail.
 *   - a connection to the master that fails, or finds a replica (ROLE is
 *     checked after AUTH/SELECT: dfws_redis_open), or gets READONLY, calls
 *     dfws_sentinel_suspect(): the sentinels are asked again.
 * Whenever the address changes, changed(ud, shard) runs: the backend drops
 * the shard's connections (they were to the old master) and reconnects them
 * now. What was in flight on a dropped connection fails as on any lost
 * connection (DFWS_LAYER_EIO to the sender; see docs/deploy.md).
 *
 * Everything runs on the layer's loop thread.
 */
#ifndef DFWS_LAYER_SENTINEL_H
#define DFWS_LAYER_SENTINEL_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <uv.h>

#include "layer.h"

/* ---- configuration (called by the layer's config code) ------------------------------- */

/* Fill the Sentinel fields of h from the JSON host object e (a json_t *;
 * dfws/layer_config.py writes it):
 *   {"master_name": "m", "sentinels": [["host", port], ...],
 *    "sentinel_kwargs": {"username": .., "password": ..},
 *    "username": .., "password": .., "db": n}
 * 0, or DFWS_LAYER_EINVAL / DFWS_LAYER_ENOMEM with a message in err
 * ("hosts[idx]: ..."). h's fields are owned by h (dfws_layer_host_free). */
int dfws_sentinel_config_parse(dfws_layer_host_t *h, const void *e, size_t idx, char *err,
                               size_t errlen);
/* Deep-copy the Sentinel fields of src into dst (others untouched). 0 or
 * DFWS_LAYER_ENOMEM (dst then holds what was copied: free it). */
int dfws_sentinel_config_copy(dfws_layer_host_t *dst, const dfws_layer_host_t *src);
/* Free the Sentinel fields of h. */
void dfws_sentinel_config_free(dfws_layer_host_t *h);

/* ---- replies (no I/O; unit tested in tests/c/test_sentinel.c) ----------------- */

/* The reply to SENTINEL get-master-addr-by-name: an array of two strings,
 * host and port. 0 with host (NUL-terminated) and *port; 1 for a nil reply
 * (the sentinel does not know that master); DFWS_LAYER_EINVAL for anything
 * else (an error reply's text, or what is wrong, in err). */
int dfws_sentinel_parse_master(const redisReply *rep, char *host, size_t hostlen, int *port,
                               char *err, size_t errlen);
/* The payload of a "+switch-master" message:
 * "<name> <old ip> <old port> <new ip> <new port>". 0 when it is about
 * master name (new address into host, *port), 1 when about another master,
 * DFWS_LAYER_EINVAL when malformed. */
int dfws_sentinel_parse_switch(const char *msg, size_t len, const char *name, char *host,
                               size_t hostlen, int *port);
/* The reply to ROLE: 1 when its first element is "master", 0 for another
 * role (its name into role), DFWS_LAYER_EINVAL when malformed. */
int dfws_sentinel_parse_role(const redisReply *rep, char *role, size_t rolelen);

/* ---- a shard's master ------------------------------------------------------------- */

typedef struct dfws_sentinel_s dfws_sentinel_t;
typedef void (*dfws_sentinel_changed_cb)(void *ud, size_t shard);
typedef void (*dfws_sentinel_closed_cb)(void *ud);

/* Start discovering the master of cfg (cfg->master_name != NULL; borrowed,
 * must outlive the object) on the loop of layer (whose log hook gets the
 * lines; borrowed too). changed(ud, shard) runs on each change of the
 * master's address, the first discovery included. NULL when out of memory. */
dfws_sentinel_t *dfws_sentinel_new(const dfws_layer_t *layer, const dfws_layer_host_t *cfg,
                                   size_t shard, dfws_sentinel_changed_cb changed, void *ud);
/* The master to connect to: a host record with its address and cfg's
 * credentials, db and master_name (borrowed; valid until the next change).
 * NULL while unknown, with why: "" during the first discovery (changed()
 * follows: wait for it), else the reason (no sentinel answered, ...). */
const dfws_layer_host_t *dfws_sentinel_master(const dfws_sentinel_t *s, char *why, size_t whylen);
/* A connection to the master failed, found a replica or got READONLY: ask
 * the sentinels again (at once, or soon if they were just asked). */
void dfws_sentinel_suspect(dfws_sentinel_t *s);
/* 1 when rep is a READONLY error (a replica's answer to a write). */
int dfws_sentinel_is_readonly(const redisReply *rep);
/* Close every handle and connection; closed(ud) runs once all are gone
 * (from the loop, never inside this call) and s is freed. */
void dfws_sentinel_close(dfws_sentinel_t *s, dfws_sentinel_closed_cb closed, void *ud);

#endif
