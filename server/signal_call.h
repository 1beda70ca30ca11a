/*
 * dfws — the browser's signal call, parsed: one rule set for every path that
 * reads one (the native endpoint here; df_websockets/signal_call.py applies
 * the same rules in Python, and tests/signal_calls.json holds the cases both
 * must agree on).
 *
 * A call is a WebSocket text frame holding a JSON object
 *     {"signal": "<name>", "opts": {...}, "eta"?: int, "expires"?: int, "countdown"?: int}
 * Other keys (a "signal_id" some clients add) are ignored. The rules:
 *   - the text is strict JSON (RFC 8259: no NaN/Infinity, integers that fit
 *     in 64 bits, finite reals, no lone surrogate and no \u0000 in strings;
 *     a repeated key keeps its last value, as Python's json does) whose
 *     arrays and objects nest at most DFWS_SIGNAL_CALL_MAX_DEPTH deep;
 *   - it is an object with a "signal" key (anything else is not a call:
 *     ignored, as upstream df_websockets ignores it);
 *   - "signal" is a string;
 *   - "opts" is present and an object: upstream's consumer drops a call
 *     without it (its browser client's bug, fixed in ours, is to omit it),
 *     and null is not an object;
 *   - "eta", "expires", "countdown" are absent, null or JSON integers (not
 *     strings, reals or booleans); 0 means none, as upstream's
 *     `int(x or 0) or None`.
 * Whether the signal exists and whether its arguments fit is decided later,
 * by whoever dispatches it.
 */
#ifndef DFWS_SIGNAL_CALL_H
#define DFWS_SIGNAL_CALL_H

#include <stddef.h>

#include <jansson.h>

/* Arrays and objects in a call nest at most this deep. */
#define DFWS_SIGNAL_CALL_MAX_DEPTH 64

/* Outcomes: 0 or one of these (their reason codes, as the JSON case table
 * and the Python side name them, come from dfws_signal_call_reason()). */
enum {
    DFWS_SIGNAL_CALL_OK = 0,
    DFWS_SIGNAL_CALL_INVALID_JSON = -1, /* "invalid_json" */
    DFWS_SIGNAL_CALL_TOO_DEEP = -2,     /* "too_deep" */
    DFWS_SIGNAL_CALL_NOT_A_CALL = -3,   /* "not_a_call": no object, or no "signal" key */
    DFWS_SIGNAL_CALL_BAD_SIGNAL = -4,   /* "bad_signal" */
    DFWS_SIGNAL_CALL_MISSING_OPTS = -5, /* "missing_opts" */
    DFWS_SIGNAL_CALL_BAD_OPTS = -6,     /* "bad_opts" */
    DFWS_SIGNAL_CALL_BAD_ETA = -7,      /* "bad_eta" */
    DFWS_SIGNAL_CALL_BAD_EXPIRES = -8,  /* "bad_expires" */
    DFWS_SIGNAL_CALL_BAD_COUNTDOWN = -9 /* "bad_countdown" */
};

typedef struct dfws_signal_call_s {
    json_t *root;     /* owned: the parsed frame (dfws_signal_call_free) */
    const char *name; /* borrowed from root: NUL-terminated, no NUL inside */
    size_t name_len;
    json_t *opts;   /* borrowed from root: an object */
    json_int_t eta; /* 0: none */
    json_int_t expires;
    json_int_t countdown;
} dfws_signal_call_t;

/* Parse text[0..len) into *call. Returns 0 (then call->root is owned by the
 * caller until dfws_signal_call_free) or a negative DFWS_SIGNAL_CALL_* code
 * (nothing to free; *call is zeroed) with a short English explanation in why
 * (if non-NULL; jansson's text for invalid JSON). */
int dfws_signal_call_parse(dfws_signal_call_t *call, const char *text, size_t len, char *why,
                           size_t whylen);
void dfws_signal_call_free(dfws_signal_call_t *call);

/* The reason code of an outcome ("ok", "invalid_json", ...); never NULL. */
const char *dfws_signal_call_reason(int code);

#endif
