/* A growable byte buffer: the one container server/ uses for bytes whose
 * size is not known in advance (request heads, bodies, outgoing data). */
#ifndef DFWS_BUF_H
#define DFWS_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct dfws_buf_s {
    char *base;
    size_t len;
    size_t cap;
} dfws_buf_t;

/* Makes room for `extra` more bytes; 0 or -ENOMEM. */
int dfws_buf_reserve(dfws_buf_t *b, size_t extra);
int dfws_buf_append(dfws_buf_t *b, const void *data, size_t len);
int dfws_buf_appendf(dfws_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void dfws_buf_consume(dfws_buf_t *b, size_t n);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void dfws_buf_free(dfws_buf_t *b);

static inline void dfws_buf_reset(dfws_buf_t *b)
{
    b->len = 0;
}

#endif
