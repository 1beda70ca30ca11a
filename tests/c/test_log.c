/*
 * test_log.c - unit tests for dfws_log_quote (server/log.c): client bytes
 * quoted in a log line stay on that line, carry no terminal control, and
 * are cut only at a UTF-8 character boundary.
 */
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

static void expect(const char *what, const char *in, size_t len, size_t max, const char *want)
{
    char out[DFWS_LOG_QUOTE_SIZE(64)];
    dfws_log_quote(out, sizeof(out), in, len, max);
    CHECK_MSG(!strcmp(out, want), "%s: got \"%s\", want \"%s\"", what, out, want);
}

#define EXPECT(what, in, max, want) expect(what, in, sizeof(in) - 1, max, want)

int main(void)
{
    EXPECT("plain", "hello {\"a\": 1}", 64, "hello {\"a\": 1}");
    EXPECT("newlines", "a\nb\r\nc\td", 64, "a\\nb\\r\\nc\\td");
    EXPECT("C0 and DEL", "\x1b[2J\x7f\x01", 64, "\\x1b[2J\\x7f\\x01");
    EXPECT("NUL inside", "a\0b", 64, "a\\x00b");
    EXPECT("UTF-8 kept", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 64,
           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    EXPECT("C1 control (NEL)",
           "a\xc2\x85"
           "b",
           64, "a\\u0085b");
    EXPECT("line separators",
           "a\xe2\x80\xa8"
           "b\xe2\x80\xa9",
           64, "a\\u2028b\\u2029");
    EXPECT("invalid bytes", "\xff\xfe\xc3", 64, "\\xff\\xfe\\xc3");
    EXPECT("overlong", "\xc0\xaf", 64, "\\xc0\\xaf");
    EXPECT("surrogate", "\xed\xa0\x80", 64, "\\xed\\xa0\\x80");
    EXPECT("cut", "abcdef", 3, "abc...");
    EXPECT("cut at a character", "ab\xc3\xa9\xc3\xa9", 3, "ab\xc3\xa9...");
    EXPECT("exactly max", "abc", 3, "abc");
    EXPECT("empty", "", 10, "");
    {
        /* a small buffer: never overflows, still terminated */
        char small[8];
        dfws_log_quote(small, sizeof(small), "\n\n\n\n", 4, 4);
        CHECK_MSG(strlen(small) < sizeof(small) && !strcmp(small, "\\n\\n\\n"),
                  "small buffer: got \"%s\"", small);
    }
    return check_summary();
}
