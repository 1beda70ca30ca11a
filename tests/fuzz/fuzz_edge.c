/* libFuzzer driver for the small parsers at the edge of a request, all of
 * them fed bytes a client or a load balancer chooses:
 *   - the PROXY protocol header, v1 and v2 (server/proxy.c), in every
 *     prefix: a shorter prefix must ask for more or refuse, never accept a
 *     different length, and an accepted header's addresses are text;
 *   - --forwarded-allow-ips lists and the addresses checked against them;
 *   - the static files' path resolution, Range, Accept-Encoding and HTTP
 *     dates (server/static.c): a resolved path never holds a dot segment,
 *     a NUL or a backslash, and a range stays inside the file.
 * The first byte picks the parser. */
#include "proxy.h"
#include "static.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void proxy_header(const uint8_t *d, size_t n)
{
    char src[64], dst[64];
    uint16_t sp, dp;
    long whole = dfws_proxy_protocol_parse((const char *)d, n, src, sizeof(src), &sp, dst,
                                           sizeof(dst), &dp);
    if (whole > 0) {
        if ((size_t)whole > n || memchr(src, '\0', sizeof(src)) == NULL ||
            memchr(dst, '\0', sizeof(dst)) == NULL)
            abort();
        for (size_t k = 1; k < (size_t)whole; k++) /* every shorter prefix */
            if (dfws_proxy_protocol_parse((const char *)d, k, src, sizeof(src), &sp, dst,
                                          sizeof(dst), &dp) > 0)
                abort();
    }
}

static void allow_list(const uint8_t *d, size_t n)
{
    const uint8_t *nl = memchr(d, '\n', n);
    size_t ll = nl ? (size_t)(nl - d) : n;
    char *list = strndup((const char *)d, ll);
    char *host = nl ? strndup((const char *)nl + 1, n - ll - 1) : strdup("127.0.0.1");
    dfws_proxy_allow_t a;
    char err[128];
    if (list && host && dfws_proxy_allow_parse(&a, list, err, sizeof(err)) == 0)
        (void)dfws_proxy_allowed(&a, host);
    free(list);
    free(host);
}

static void static_path(const uint8_t *d, size_t n)
{
    char out[4096];
    if (dfws_static_resolve("/static", 7, (const char *)d, n, out, sizeof(out)) != DFWS_STATIC_OK)
        return;
    size_t len = strnlen(out, sizeof(out));
    if (len == sizeof(out) || strchr(out, '\\') || out[0] == '/')
        abort();
    for (const char *seg = out; *seg;) { /* no "." or ".." segment */
        size_t sl = strcspn(seg, "/");
        if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
            abort();
        seg += sl;
        if (*seg == '/')
            seg++;
    }
}

static void static_headers(const uint8_t *d, size_t n)
{
    uint64_t first, last, size = n ? d[0] * 1000u + n : 0;
    if (dfws_static_parse_range((const char *)d, n, size, &first, &last) == 0 &&
        (first > last || last >= size))
        abort();
    (void)dfws_static_accepts((const char *)d, n, "br");
    (void)dfws_static_accepts((const char *)d, n, "gzip");
    int64_t t;
    (void)dfws_static_parse_date((const char *)d, n, &t);
    (void)dfws_static_mime((const char *)d, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0:
        proxy_header(data + 1, size - 1);
        break;
    case 1:
        allow_list(data + 1, size - 1);
        break;
    case 2:
        static_path(data + 1, size - 1);
        break;
    default:
        static_headers(data + 1, size - 1);
        break;
    }
    return 0;
}
