/*
 * What the channel layer's unit tests (test_layer.c, test_pubsub.c) share:
 * the pass/fail counters with CHECK(), and hex test vectors to bytes.
 * Included by one test program each (static definitions).
 */
#ifndef DFWS_TEST_LAYER_CHECK_H
#define DFWS_TEST_LAYER_CHECK_H

#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
        }                                                                                  \
    } while (0)

/* "0aff..." -> bytes into out (big enough); the byte count. */
static inline size_t unhex(const char *h, unsigned char *out)
{
    size_t n = strlen(h) / 2, i;
    for (i = 0; i < n; i++) {
        unsigned int b;
        sscanf(h + 2 * i, "%2x", &b);
        out[i] = (unsigned char)b;
    }
    return n;
}

#endif
