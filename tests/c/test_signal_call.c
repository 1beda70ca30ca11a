/*
 * server/signal_call.c against the case table every parser of signal calls
 * shares (tests/signal_calls.json, path in argv[1]): each text, in a buffer
 * of exactly its size (ASan sees a read past its end), must give the
 * normalized call or the reason code the table says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "signal_call.h"
#include "text.h"

static json_int_t expected_int(json_t *accepted, const char *key)
{
    json_t *v = json_object_get(accepted, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static void run_case(json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *text = json_object_get(c, "text");
    json_t *accepted = json_object_get(c, "accepted");
    json_t *rejected = json_object_get(c, "rejected");
    size_t len = json_string_length(text);
    char *buf = malloc(len ? len : 1), why[200];
    dfws_signal_call_t call;
    int rc;

    memcpy(buf, json_string_value(text), len);
    rc = dfws_signal_call_parse(&call, buf, len, why, sizeof(why));
    if (accepted != NULL) {
        json_t *sig = json_object_get(accepted, "signal");
        int ok = rc == 0 && call.name_len == json_string_length(sig) &&
                 memcmp(call.name, json_string_value(sig), call.name_len) == 0 &&
                 json_equal(call.opts, json_object_get(accepted, "opts")) &&
                 call.eta == expected_int(accepted, "eta") &&
                 call.expires == expected_int(accepted, "expires") &&
                 call.countdown == expected_int(accepted, "countdown") && why[0] == '\0';
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  case \"%s\": got %s (%s)\n", name, dfws_signal_call_reason(rc), why);
        dfws_signal_call_free(&call);
        CHECK(call.root == NULL);
    } else {
        const char *want = json_string_value(rejected);
        int ok = want != NULL && strcmp(dfws_signal_call_reason(rc), want) == 0 && why[0] != '\0' &&
                 call.root == NULL && call.opts == NULL && call.name == NULL;
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  case \"%s\": got %s (%s), want %s\n", name,
                    dfws_signal_call_reason(rc), why, want ? want : "(no reason in the table)");
        dfws_signal_call_free(&call); /* harmless on a refused call */
    }
    free(buf);
}

static void test_depth_scan(void)
{
    char deep[200];
    memset(deep, '[', 65);
    CHECK(dfws_json_too_deep(deep, 64, 64) == 0);
    CHECK(dfws_json_too_deep(deep, 65, 64) == 1);
    /* closing brackets bring it back; brackets in strings and escaped quotes do not count */
    CHECK(dfws_json_too_deep("[[]][[]]", 8, 2) == 0);
    CHECK(dfws_json_too_deep("[\"[[[\\\"[[\"]", 11, 1) == 0);
    CHECK(dfws_json_too_deep("[\"\\\\\"[[]]", 10, 2) == 1);
    /* a stray closing bracket does not make room for more */
    CHECK(dfws_json_too_deep("]]][[", 5, 1) == 1);
}

static void test_reasons(void)
{
    CHECK(strcmp(dfws_signal_call_reason(DFWS_SIGNAL_CALL_OK), "ok") == 0);
    CHECK(strcmp(dfws_signal_call_reason(-100), "unknown") == 0);
    /* why may be NULL */
    dfws_signal_call_t call;
    CHECK(dfws_signal_call_parse(&call, "{}", 2, NULL, 0) == DFWS_SIGNAL_CALL_NOT_A_CALL);
    CHECK(dfws_signal_call_parse(&call, "{\"signal\":\"a\",\"opts\":{}}", 24, NULL, 0) == 0);
    dfws_signal_call_free(&call);
}

int main(int argc, char **argv)
{
    json_error_t jerr;
    json_t *doc, *cases, *c;
    size_t i, seen = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: test_signal_call tests/signal_calls.json\n");
        return 2;
    }
    doc = json_load_file(argv[1], 0, &jerr);
    if (doc == NULL) {
        fprintf(stderr, "%s:%d: %s\n", argv[1], jerr.line, jerr.text);
        return 2;
    }
    cases = json_object_get(doc, "cases");
    json_array_foreach(cases, i, c)
    {
        run_case(c);
        seen++;
    }
    CHECK(seen >= 40); /* the table was read, not an empty file */
    test_depth_scan();
    test_reasons();
    json_decref(doc);
    return check_summary();
}
