/*
 * dfws — the browser's signal call, parsed (rules in signal_call.h).
 */
#include "signal_call.h"
#include "text.h"

#include <stdio.h>
#include <string.h>

const char *dfws_signal_call_reason(int code)
{
    switch (code) {
    case DFWS_SIGNAL_CALL_OK:
        return "ok";
    case DFWS_SIGNAL_CALL_INVALID_JSON:
        return "invalid_json";
    case DFWS_SIGNAL_CALL_TOO_DEEP:
        return "too_deep";
    case DFWS_SIGNAL_CALL_NOT_A_CALL:
        return "not_a_call";
    case DFWS_SIGNAL_CALL_BAD_SIGNAL:
        return "bad_signal";
    case DFWS_SIGNAL_CALL_MISSING_OPTS:
        return "missing_opts";
    case DFWS_SIGNAL_CALL_BAD_OPTS:
        return "bad_opts";
    case DFWS_SIGNAL_CALL_BAD_ETA:
        return "bad_eta";
    case DFWS_SIGNAL_CALL_BAD_EXPIRES:
        return "bad_expires";
    case DFWS_SIGNAL_CALL_BAD_COUNTDOWN:
        return "bad_countdown";
    default:
        return "unknown";
    }
}

static int fail(dfws_signal_call_t *call, int code, char *why, size_t whylen, const char *text)
{
    json_decref(call->root);
    memset(call, 0, sizeof(*call));
    if (why != NULL && whylen > 0) {
        if (code == DFWS_SIGNAL_CALL_TOO_DEEP)
            snprintf(why, whylen, "nested deeper than %d levels", DFWS_SIGNAL_CALL_MAX_DEPTH);
        else
            snprintf(why, whylen, "%s", text);
    }
    return code;
}

/* Absent, null or a JSON integer (0: none). */
static int optional_int(json_t *o, const char *key, json_int_t *out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return 0;
}

int dfws_signal_call_parse(dfws_signal_call_t *call, const char *text, size_t len, char *why,
                           size_t whylen)
{
    json_error_t jerr;
    json_t *sig;

    memset(call, 0, sizeof(*call));
    if (dfws_json_too_deep(text, len, DFWS_SIGNAL_CALL_MAX_DEPTH))
        return fail(call, DFWS_SIGNAL_CALL_TOO_DEEP, why, whylen, NULL);
    /* DECODE_ANY: a bare scalar is JSON, just not a call (as in Python).
     * No REJECT_DUPLICATES: the last value of a repeated key wins, as in
     * Python, so that both sides read the same call from the same text. */
    call->root = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (call->root == NULL)
        return fail(call, DFWS_SIGNAL_CALL_INVALID_JSON, why, whylen, jerr.text);
    sig = json_object_get(call->root, "signal"); /* NULL unless an object */
    if (sig == NULL)
        return fail(call, DFWS_SIGNAL_CALL_NOT_A_CALL, why, whylen,
                    "no \"signal\" key in an object");
    if (!json_is_string(sig))
        return fail(call, DFWS_SIGNAL_CALL_BAD_SIGNAL, why, whylen, "signal must be a string");
    call->name = json_string_value(sig);
    call->name_len = json_string_length(sig);
    call->opts = json_object_get(call->root, "opts");
    if (call->opts == NULL)
        return fail(call, DFWS_SIGNAL_CALL_MISSING_OPTS, why, whylen, "no \"opts\"");
    if (!json_is_object(call->opts))
        return fail(call, DFWS_SIGNAL_CALL_BAD_OPTS, why, whylen, "opts must be an object");
    if (optional_int(call->root, "eta", &call->eta))
        return fail(call, DFWS_SIGNAL_CALL_BAD_ETA, why, whylen, "eta must be an integer");
    if (optional_int(call->root, "expires", &call->expires))
        return fail(call, DFWS_SIGNAL_CALL_BAD_EXPIRES, why, whylen, "expires must be an integer");
    if (optional_int(call->root, "countdown", &call->countdown))
        return fail(call, DFWS_SIGNAL_CALL_BAD_COUNTDOWN, why, whylen,
                    "countdown must be an integer");
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    return 0;
}

void dfws_signal_call_free(dfws_signal_call_t *call)
{
    json_decref(call->root);
    memset(call, 0, sizeof(*call));
}
