/* The recovery of missed signals on the native socket (docs/recovery.md):
 * a reconnecting window names, in the `dfws_recover` query parameter of its
 * upgrade request, the last position it processed per topic group; the
 * server replays what it missed from the groups' histories, in order and
 * de-duplicated by signal_id, holds the live deliveries that arrive
 * meanwhile, then sends those, and one df_websockets.recovery_failed
 * listing the groups it could not recover.
 *
 * The request is untrusted: dfws_recovery_param() and dfws_recovery_parse()
 * bound and validate it; only groups the window holds are read.
 * Everything runs on the loop thread.
 */
#ifndef DFWS_RECOVERY_H
#define DFWS_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "layer.h"

#define DFWS_RECOVERY_PARAM "dfws_recover"
#define DFWS_RECOVERY_MAX_PARAM 8192 /* bytes of the decoded parameter */
#define DFWS_RECOVERY_MAX_GROUPS 64  /* groups read per reconnect */
#define DFWS_RECOVERY_MAX_DEPTH 2    /* JSON nesting of the parameter */
#define DFWS_RECOVERY_FAILED_SIGNAL "df_websockets.recovery_failed"

/* The decoded value of the dfws_recover parameter of query (the part of a
 * request target after '?', or the whole target: everything up to the
 * first '?' is skipped when there is one). Returns 1 and *out (malloc'ed,
 * NUL-terminated, caller frees) when present, 0 when absent, -1 when
 * present but longer than DFWS_RECOVERY_MAX_PARAM decoded, badly
 * percent-encoded or holding a NUL byte, -2 out of memory. The first
 * occurrence counts. */
int dfws_recovery_param(const char *target, size_t len, char **out, size_t *olen);

/* One group to recover: its position. */
typedef struct dfws_recovery_want_s {
    char *group;
    char epoch[9];
    uint64_t offset;
} dfws_recovery_want_t;

/* A validated request (everything owned; free with dfws_recovery_req_free). */
typedef struct dfws_recovery_req_s {
    dfws_recovery_want_t *wants; /* held groups with a well-formed position */
    size_t nwants;
    char **failed; /* held groups that get recovery_failed already */
    size_t nfailed;
    size_t ignored; /* names the window does not hold */
} dfws_recovery_req_t;

/* Validates the parameter's JSON against the groups the window holds
 * (`held`, from its key's server-side record): an object of at most
 * DFWS_RECOVERY_MAX_DEPTH levels mapping group -> "<epoch>-<offset>"
 * (8 lowercase hex digits, '-', a decimal offset without leading zeros,
 * at most 2^53). Names not held are ignored (counted); a held group with a
 * malformed position, or past the first DFWS_RECOVERY_MAX_GROUPS held
 * groups, is failed. A parameter that is not such an object at all fails
 * every held group. Returns 0, or -1 out of memory (*req empty). */
int dfws_recovery_parse(const char *json, size_t len, const char *const *held, size_t nheld,
                        dfws_recovery_req_t *req);
void dfws_recovery_req_free(dfws_recovery_req_t *req);

/* {"signal": "df_websockets.recovery_failed", "opts": {"topics": [...]},
 * "signal_id": "<uuid4>"} into *out (malloc'ed). 0 or -1. */
int dfws_recovery_failed_message(const char *const *groups, size_t n, char **out, size_t *olen);

/* ---- a recovery under way ---------------------------------------------- */

typedef struct dfws_recovery_s dfws_recovery_t;

/* Sends one text to the window (the live path, with its backpressure). It
 * may close the window: the owner then calls dfws_recovery_abandon (maybe
 * from inside this call). */
typedef void (*dfws_recovery_send_fn)(void *ud, const char *msg, size_t len);
/* The recovery is over (everything sent): the owner forgets the handle. Not
 * called after dfws_recovery_abandon, nor when start returned NULL. */
typedef void (*dfws_recovery_done_fn)(void *ud);

/* Starts recovering req (taken, freed by the recovery): reads every wanted
 * group's history through the layer. Returns the handle while reads are
 * under way: from then until done(ud), the owner passes every live delivery
 * of the window to dfws_recovery_live() first. Returns NULL when everything
 * was settled at once (no group to read, or every read refused): what there
 * was to send (recovery_failed) was sent through send() already.
 * `max_bytes` bounds the replayed bytes and, separately, the held ones. */
dfws_recovery_t *dfws_recovery_start(dfws_layer_t *l, dfws_recovery_req_t *req, size_t max_bytes,
                                     dfws_recovery_send_fn send, dfws_recovery_done_fn done,
                                     void *ud);
/* A live delivery for the window. While the reads are under way it is held
 * (copied) until the replay is sent: 1. For a few seconds after the replay,
 * the deliveries replayed already (same group and offset, or signal_id)
 * are dropped (1) and the others are the owner's to send (0); past that
 * time, done(ud) runs from inside this call, r is freed and 0 returned. */
int dfws_recovery_live(dfws_recovery_t *r, const char *msg, size_t len);
/* The window is gone: nothing more is sent, the handle frees itself when
 * its reads come back. r must not be used afterwards. */
void dfws_recovery_abandon(dfws_recovery_t *r);

#endif
