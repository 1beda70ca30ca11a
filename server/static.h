/* Static files answered by the server itself, as granian does with
 * --static-path-route / --static-path-mount: a table of URL prefixes, each
 * mounted on a directory. A GET or HEAD whose decoded path lies below a
 * prefix is answered from C (ETag / Last-Modified / 304, single byte
 * ranges, pre-compressed .br / .gz siblings) and never reaches the
 * application; other methods below a prefix get 405.
 *
 * Safety: the path is percent-decoded once; NUL, an encoded slash, a
 * backslash, a malformed escape and any "." or ".." segment make a 400 (no
 * browser sends them: browsers remove dot segments and never escape "/"
 * themselves, so only a hand-made request carries one, and none of them can
 * name a file below the mount). A name that is well formed but does not
 * resolve to a regular file inside the mount (missing, a directory: no
 * listings, a symlink leading out of the mount, a device) is a 404. Files are
 * opened with openat2(RESOLVE_BENEATH), or with a realpath() check where the
 * kernel has no openat2 or a symlink is absolute.
 *
 * A response in progress is owned by its request (req->local): conn.c and
 * http1.c hand drain and detach events to dfws_static_on_drain/_on_detach.
 */
#ifndef DFWS_STATIC_H
#define DFWS_STATIC_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "request.h"

typedef struct dfws_static_s dfws_static_t;

/* Mounts `dir` on the URL prefix `route` ("/static" or "/static/": a
 * trailing slash is dropped; "/" alone is refused, it would hide the
 * application). `expires` is the Cache-Control max-age in seconds, 0 for
 * none. The route table belongs to the server and is freed by
 * dfws_server_close. Returns 0, or -1 with a message in `err`. */
int dfws_static_add(dfws_server_t *s, const char *route, const char *dir, long expires, char *err,
                    size_t errlen);
/* Mounts the routes of the command line (--static-path-route/-mount). */
int dfws_static_add_cli(dfws_server_t *s, char *err, size_t errlen);
/* Frees the route table. */
void dfws_static_free(dfws_server_t *s);

/* Called by http1.c once a request's header section is complete. Returns 0
 * when the request is not below a static route (the application gets it),
 * 1 when static.c answered it or is answering it (the response completes
 * through the request API, as an application's does). */
int dfws_static_try(dfws_conn_t *c, dfws_req_t *r);
/* The connection's output fell below the low-water mark (conn.c, for a
 * request with r->local). */
void dfws_static_on_drain(dfws_req_t *r);
/* The request left its connection: response complete or client gone
 * (http1.c, conn.c). Releases the file; r->local is NULL afterwards. */
void dfws_static_on_detach(dfws_req_t *r);

/* ---- pure helpers, exposed for the unit tests (tests/c/test_static.c) ----- */

enum {
    DFWS_STATIC_OK = 0,
    DFWS_STATIC_NOT_MINE = 1,   /* not below the prefix: the application's */
    DFWS_STATIC_BAD = -400,     /* below the prefix, but malformed or a dot segment */
    DFWS_STATIC_TOO_LONG = -404 /* longer than any file name can be */
};
/* Decodes the path of the request target `target` (query dropped) and
 * checks it against the route `prefix` (no trailing slash). On
 * DFWS_STATIC_OK, `out` holds the path below the mount, relative, without
 * empty segments ("" for the mount itself). */
int dfws_static_resolve(const char *prefix, size_t plen, const char *target, size_t tlen, char *out,
                        size_t outlen);
/* The Range header value `v` against a file of `size` bytes: 0 with
 * [*first, *last] for one satisfiable range, 1 when the header must be
 * ignored (malformed, another unit, several ranges: the whole file is sent),
 * -1 when unsatisfiable (416). */
int dfws_static_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first,
                            uint64_t *last);
/* Whether an Accept-Encoding value accepts `coding` ("br", "gzip"). */
int dfws_static_accepts(const char *v, size_t len, const char *coding);
/* Content-Type for a file name, from its extension. */
const char *dfws_static_mime(const char *name, size_t len);
/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"): 0 and *t, or -1. */
int dfws_static_parse_date(const char *v, size_t len, int64_t *t);
/* Writes an IMF-fixdate for `t` (at least 30 bytes). */
void dfws_static_format_date(int64_t t, char *out, size_t outlen);

#endif
