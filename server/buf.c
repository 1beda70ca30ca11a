#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int dfws_buf_reserve(dfws_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > (size_t)-1 / 2)
            return -ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->base, cap);
    if (!p)
        return -ENOMEM;
    b->base = p;
    b->cap = cap;
    return 0;
}

int dfws_buf_append(dfws_buf_t *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    int rc = dfws_buf_reserve(b, len);
    if (rc)
        return rc;
    memcpy(b->base + b->len, data, len);
    b->len += len;
    return 0;
}

int dfws_buf_appendf(dfws_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(room ? b->base + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -EINVAL;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return 0;
        }
        int rc = dfws_buf_reserve(b, (size_t)n + 1);
        if (rc)
            return rc;
    }
}

void dfws_buf_consume(dfws_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
}

void dfws_buf_free(dfws_buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}
