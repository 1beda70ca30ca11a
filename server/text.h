/* Small helpers for the parsers of outside bytes (URL percent-escapes, JSON
 * depth), written once. A leaf: it includes no other dfws header. */
#ifndef DFWS_TEXT_H
#define DFWS_TEXT_H

#include <stddef.h>

/* The value of one hexadecimal digit, or -1. */
static inline int dfws_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Whether the arrays and objects of a JSON text nest deeper than `limit`,
 * read from its bytes before any parser sees them: Python's json module
 * recurses once per level, jansson stops at 2048 and the msgpack of a deep
 * call costs a frame of C stack per level. Strings are skipped. Used by the
 * signal-call parser and the recovery request. */
static inline int dfws_json_too_deep(const char *text, size_t len, int limit)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > limit)
                return 1;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

#endif
