/* Unit tests for server/static.c's pure parts: the request path checked
 * against a route (decoding, traversal attempts), Range, Accept-Encoding,
 * content types and HTTP dates. The serving itself is tested black-box in
 * tests/server/test_static.py against real files. */
#include "static.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

static int resolve(const char *target, char *out)
{
    return dfws_static_resolve("/static", 7, target, strlen(target), out, PATH_MAX);
}

static void expect_ok(const char *target, const char *rel)
{
    char out[PATH_MAX] = "?";
    int rc = resolve(target, out);
    CHECK_MSG(rc == DFWS_STATIC_OK && !strcmp(out, rel), "%s -> rc %d, %s (expected %s)", target,
              rc, out, rel);
}

static void expect_rc(const char *target, int want)
{
    char out[PATH_MAX];
    int rc = resolve(target, out);
    CHECK_MSG(rc == want, "%s -> rc %d, expected %d", target, rc, want);
}

static void test_resolve(void)
{
    expect_ok("/static/app.js", "app.js");
    expect_ok("/static/js/df_websockets.min.js?v=3", "js/df_websockets.min.js");
    expect_ok("/static/a%20b.txt", "a b.txt");
    expect_ok("/static/%C3%A9t%C3%A9.css", "\xc3\xa9t\xc3\xa9.css");
    expect_ok("/static//js///x.js", "js/x.js");
    expect_ok("/static/js/", "js");
    expect_ok("/static", "");
    expect_ok("/static/", "");
    expect_ok("/st%61tic/x.js", "x.js");     /* decoded before matching, as the app sees it */
    expect_ok("/static/..x/y..", "..x/y.."); /* dots inside a name are a name */
    expect_ok("/static/.well-known", ".well-known");

    /* not ours: the application's */
    expect_rc("/staticfiles/x.js", DFWS_STATIC_NOT_MINE);
    expect_rc("/", DFWS_STATIC_NOT_MINE);
    expect_rc("/other/static/x", DFWS_STATIC_NOT_MINE);
    expect_rc("*", DFWS_STATIC_NOT_MINE);
    expect_rc("http://h/static/x", DFWS_STATIC_NOT_MINE);
    expect_rc("/stat", DFWS_STATIC_NOT_MINE);

    /* traversal and malformed paths below the route: 400 */
    expect_rc("/static/../etc/passwd", DFWS_STATIC_BAD);
    expect_rc("/static/js/../../etc/passwd", DFWS_STATIC_BAD);
    expect_rc("/static/..", DFWS_STATIC_BAD);
    expect_rc("/static/./x.js", DFWS_STATIC_BAD);
    expect_rc("/static/%2e%2e/etc/passwd", DFWS_STATIC_BAD);
    expect_rc("/static/%2E%2E/etc/passwd", DFWS_STATIC_BAD);
    expect_rc("/static/.%2e/etc/passwd", DFWS_STATIC_BAD);
    expect_rc("/static/..%2fetc%2fpasswd", DFWS_STATIC_BAD);
    expect_rc("/static/a%2fb", DFWS_STATIC_BAD);
    expect_rc("/static/a%2Fb", DFWS_STATIC_BAD);
    expect_rc("/static%2f..%2fetc", DFWS_STATIC_BAD);
    expect_rc("/static/x%00.js", DFWS_STATIC_BAD);
    {
        /* a raw NUL (found by fuzz_edge): the name would end there, at "a/." */
        static const char raw[] = "/static/a/%2e\0/b.js";
        char out[PATH_MAX];
        int rc = dfws_static_resolve("/static", 7, raw, sizeof(raw) - 1, out, sizeof(out));
        CHECK_MSG(rc == DFWS_STATIC_BAD, "raw NUL -> rc %d", rc);
    }
    expect_rc("/static/..\\etc\\passwd", DFWS_STATIC_BAD);
    expect_rc("/static/a%5cb", DFWS_STATIC_BAD);
    expect_rc("/static/a%zzb", DFWS_STATIC_BAD);
    expect_rc("/static/a%2", DFWS_STATIC_BAD);
    expect_rc("/static/a%", DFWS_STATIC_BAD);
    expect_rc("/static/%252e%252e/x", DFWS_STATIC_OK); /* decoded once: "%2e%2e" is a name */

    /* a path longer than any file name */
    char big[PATH_MAX + 64];
    strcpy(big, "/static/");
    memset(big + 8, 'a', PATH_MAX + 10);
    big[PATH_MAX + 18] = '\0';
    expect_rc(big, DFWS_STATIC_TOO_LONG);
}

static void expect_range(const char *v, uint64_t size, int want, uint64_t f, uint64_t l)
{
    uint64_t first = 12345, last = 12345;
    int rc = dfws_static_parse_range(v, strlen(v), size, &first, &last);
    CHECK_MSG(rc == want && (rc != 0 || (first == f && last == l)),
              "range %s of %llu -> rc %d [%llu, %llu]", v, (unsigned long long)size, rc,
              (unsigned long long)first, (unsigned long long)last);
}

static void test_range(void)
{
    expect_range("bytes=0-99", 1000, 0, 0, 99);
    expect_range("bytes=100-", 1000, 0, 100, 999);
    expect_range("bytes=-100", 1000, 0, 900, 999);
    expect_range("bytes=-5000", 1000, 0, 0, 999);
    expect_range("bytes=990-2000", 1000, 0, 990, 999);
    expect_range("Bytes=0-0", 1000, 0, 0, 0);
    expect_range(" bytes=5-9 ", 1000, 0, 5, 9);
    expect_range("bytes=1000-", 1000, -1, 0, 0);
    expect_range("bytes=5000-6000", 1000, -1, 0, 0);
    expect_range("bytes=-0", 1000, -1, 0, 0);
    expect_range("bytes=0-", 0, -1, 0, 0);
    expect_range("bytes=-1", 0, -1, 0, 0);
    expect_range("bytes=0-1,5-6", 1000, 1, 0, 0);
    expect_range("bytes=9-5", 1000, 1, 0, 0);
    expect_range("items=0-5", 1000, 1, 0, 0);
    expect_range("bytes=a-5", 1000, 1, 0, 0);
    expect_range("bytes=5", 1000, 1, 0, 0);
    expect_range("bytes=-", 1000, 1, 0, 0);
    expect_range("bytes=", 1000, 1, 0, 0);
    expect_range("bytes=99999999999999999999-", 1000, 1, 0, 0);
}

static void expect_accepts(const char *v, const char *coding, int want)
{
    int got = dfws_static_accepts(v, strlen(v), coding);
    CHECK_MSG(got == want, "Accept-Encoding %s, %s -> %d", v, coding, got);
}

static void test_accepts(void)
{
    expect_accepts("gzip, deflate, br", "br", 1);
    expect_accepts("gzip, deflate, br", "gzip", 1);
    expect_accepts("gzip", "br", 0);
    expect_accepts("GZIP", "gzip", 1);
    expect_accepts("br;q=0, gzip;q=0.5", "br", 0);
    expect_accepts("br;q=0, gzip;q=0.5", "gzip", 1);
    expect_accepts("br; q=0.000", "br", 0);
    expect_accepts("br;q=0.001", "br", 1);
    expect_accepts("*", "br", 1);
    expect_accepts("*;q=0", "gzip", 0);
    expect_accepts("gzip;q=1, *;q=0", "br", 0);
    expect_accepts("identity", "gzip", 0);
    expect_accepts("", "gzip", 0);
    expect_accepts("x-gzip", "gzip", 0);
    expect_accepts("brotli", "br", 0);
}

static void test_mime(void)
{
    static const char *cases[][2] = {
        {"js/df_websockets.min.js", "text/javascript; charset=utf-8"},
        {"a.MJS", "text/javascript; charset=utf-8"},
        {"css/site.css", "text/css; charset=utf-8"},
        {"x.min.js.map", "application/json"},
        {"i.svg", "image/svg+xml"},
        {"f.woff2", "font/woff2"},
        {"m.wasm", "application/wasm"},
        {"index.html", "text/html; charset=utf-8"},
        {"noext", "application/octet-stream"},
        {"dir.js/noext", "application/octet-stream"},
        {"x.tar.gz", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = dfws_static_mime(cases[i][0], strlen(cases[i][0]));
        CHECK_MSG(!strcmp(got, cases[i][1]), "%s -> %s", cases[i][0], got);
    }
}

static void test_dates(void)
{
    char out[40];
    dfws_static_format_date(784111777, out, sizeof(out));
    CHECK_MSG(!strcmp(out, "Sun, 06 Nov 1994 08:49:37 GMT"), "format: %s", out);
    int64_t t = 0;
    CHECK_MSG(!dfws_static_parse_date(out, strlen(out), &t) && t == 784111777, "parse: %lld",
              (long long)t);
    const char *bad[] = {"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                         "Sun, 06 Nox 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 UTC", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_MSG(dfws_static_parse_date(bad[i], strlen(bad[i]), &t) == -1, "parsed %s", bad[i]);
}

int main(void)
{
    RUN(test_resolve);
    RUN(test_range);
    RUN(test_accepts);
    RUN(test_mime);
    RUN(test_dates);
    return check_summary();
}
