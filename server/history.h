/* Histories of topic groups, for the recovery of missed signals
 * (docs/recovery.md is the contract: positions, the Redis keys and scripts).
 *
 * Two pieces:
 *   - dfws_history_store_t: the in-process history the embedded (memory)
 *     layer keeps: per group an epoch, the last offset and a ring of the
 *     last `size` final messages with their times;
 *   - dfws_layer_history_*(): the layer-level API (declared in layer.h)
 *     that appends-and-sends and reads, in the process (memory layer) or in
 *     Redis (one EVAL of df_websockets' Lua scripts on the group's shard).
 *
 * Nothing here is thread-safe: the loop thread of the layer only.
 */
#ifndef DFWS_HISTORY_H
#define DFWS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define DFWS_HISTORY_EPOCH_LEN 8
/* Seconds a history's epoch and last offset are kept after its last write
 * (the TTL of the Redis meta hash): a position in a quiet topic stays valid
 * (nothing missed) after its messages expired. */
#define DFWS_HISTORY_META_TTL 86400

/* What a read returns (the Lua read script's answer, decoded). Owned by
 * whoever holds it; free with dfws_history_result_free. */
typedef struct dfws_history_result_s {
    int has_meta;                           /* 0: no history for the group */
    char epoch[DFWS_HISTORY_EPOCH_LEN + 1]; /* valid when has_meta */
    uint64_t seq;                           /* last offset written */
    char **items;                           /* final message JSON texts, offset order */
    size_t *lens;
    size_t n;
} dfws_history_result_t;

void dfws_history_result_free(dfws_history_result_t *r);

/* The final JSON: msg (a JSON object text, trailing whitespace allowed)
 * with `"topic":"<group>","pos":"<epoch>-<seq>"` added before its closing
 * brace. *out is malloc'ed (caller frees). 0, or -1 when msg does not end
 * with '}' or out of memory. */
int dfws_history_final_json(const char *msg, size_t len, const char *group, const char *epoch,
                            uint64_t seq, char **out, size_t *olen);

/* 1 when s is 8 lowercase hex digits. */
int dfws_history_valid_epoch(const char *s, size_t len);

/* ---- the in-process store ------------------------------------------------ */

typedef struct dfws_history_store_s dfws_history_store_t;

/* size: messages kept per group (> 0); ttl_s: seconds a message stays. */
dfws_history_store_t *dfws_history_store_new(size_t size, unsigned ttl_s);
void dfws_history_store_free(dfws_history_store_t *st);

/* Appends msg to group's history (creating it with epoch_candidate, 8
 * lowercase hex digits, when it has none) and returns the final JSON in
 * *final (malloc'ed, caller frees). 0 or -1 (bad message, out of memory). */
int dfws_history_store_append(dfws_history_store_t *st, const char *group,
                              const char *epoch_candidate, const char *msg, size_t len,
                              uint64_t now_ms, char **final, size_t *flen);

/* What history_read.lua answers: the meta of group's history and, when
 * epoch is its epoch, the messages whose offset is above `offset` and
 * whose time is within the TTL, at most max, in offset order (copies).
 * 0 or -1 (out of memory; *out is then empty). */
int dfws_history_store_read(dfws_history_store_t *st, const char *group, const char *epoch,
                            uint64_t offset, size_t max, uint64_t now_ms,
                            dfws_history_result_t *out);

/* Groups with a history now (for tests). */
size_t dfws_history_store_groups(const dfws_history_store_t *st);

#endif
