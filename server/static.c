/* Static files from C (static.h says what is served and what is refused).
 *
 * Blocking calls on the loop thread: opening and fstat()ing a local file (a
 * few microseconds, what nginx does on its event loop too) and, for a body of
 * at most CHUNK bytes, one pread(). Larger bodies are read with uv_fs_read
 * (libuv's thread pool) one CHUNK at a time, and the next read starts only
 * while the connection's output is below DFWS_WRITE_HIGH: a 1 GiB file for a
 * slow client holds about DFWS_WRITE_HIGH + CHUNK bytes of memory. Every byte
 * goes through the request API (dfws_req_response_*), hence dfws_conn_write,
 * the access log, keep-alive and pipelining, as an application's response.
 */
#include "static.h"
#include "context.h"
#include "log.h"
#include "request.h"
#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#define CHUNK (128 * 1024)

typedef struct route_s {
    char *prefix; /* "/static": no trailing slash */
    size_t plen;
    char *dir; /* absolute path of the mount, as resolved when added */
    long expires;
} route_t;

struct dfws_static_s {
    route_t *routes;
    size_t n;
};

/* One body being sent in chunks; owned by its request (r->local) while
 * attached, then by itself until a read in flight has come back. */
typedef struct xfer_s {
    uv_fs_t fs;
    dfws_req_t *r; /* NULL once the request left its connection */
    int fd;
    int busy; /* a read is in flight, or we are inside a request-API call */
    uint64_t off, left;
    char buf[CHUNK];
} xfer_t;

/* ---- route table ------------------------------------------------------------ */

int dfws_static_add(dfws_server_t *s, const char *route, const char *dir, long expires, char *err,
                    size_t errlen)
{
    size_t plen = strlen(route);
    while (plen > 1 && route[plen - 1] == '/')
        plen--;
    if (route[0] != '/' || plen < 2 || memchr(route, '?', plen) || memchr(route, '%', plen) ||
        memchr(route, '\\', plen)) {
        snprintf(err, errlen,
                 "static route %s: must be a path such as /static (not / alone, no ? %% or \\)",
                 route);
        return -1;
    }
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(dir, real) || stat(real, &st)) {
        snprintf(err, errlen, "static directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "static directory %s: not a directory", dir);
        return -1;
    }
    dfws_static_t *t = s->statics;
    if (!t && !(t = s->statics = calloc(1, sizeof(*t))))
        goto nomem;
    for (size_t i = 0; i < t->n; i++) {
        if (t->routes[i].plen == plen && !memcmp(t->routes[i].prefix, route, plen)) {
            snprintf(err, errlen, "static route %.*s given twice", (int)plen, route);
            return -1;
        }
    }
    route_t *rs = realloc(t->routes, (t->n + 1) * sizeof(*rs));
    if (!rs)
        goto nomem;
    t->routes = rs;
    route_t *rt = &rs[t->n];
    rt->prefix = strndup(route, plen);
    rt->dir = strdup(real);
    if (!rt->prefix || !rt->dir) {
        free(rt->prefix);
        free(rt->dir);
        goto nomem;
    }
    rt->plen = plen;
    rt->expires = expires;
    t->n++;
    dfws_log_info("serving %s/ from %s", rt->prefix, rt->dir);
    return 0;
nomem:
    snprintf(err, errlen, "static route %s: out of memory", route);
    return -1;
}

int dfws_static_add_cli(dfws_server_t *s, char *err, size_t errlen)
{
    const dfws_cli_t *cli = s->cli;
    for (int i = 0; i < cli->n_static_mounts; i++) {
        const char *route = i < cli->n_static_routes ? cli->static_routes[i] : "/static";
        if (dfws_static_add(s, route, cli->static_mounts[i], cli->static_expires, err, errlen))
            return -1;
    }
    return 0;
}

void dfws_static_free(dfws_server_t *s)
{
    dfws_static_t *t = s->statics;
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->routes[i].prefix);
        free(t->routes[i].dir);
    }
    free(t->routes);
    free(t);
    s->statics = NULL;
}

/* ---- pure helpers --------------------------------------------------------------- */

/* Whether the decoded path `p` is `prefix` or below it. */
static int below(const char *prefix, size_t plen, const char *p, size_t len)
{
    return len >= plen && !memcmp(p, prefix, plen) && (len == plen || p[plen] == '/');
}

/* The path part of the target decoded once into `dec` (at least `len`
 * bytes); *bad is set for a malformed escape, NUL, "%2F" or a backslash. */
static size_t decode_path(const char *p, size_t len, char *dec, int *bad)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (ch == '%') {
            if (i + 2 >= len || dfws_hex_digit((unsigned char)p[i + 1]) < 0 ||
                dfws_hex_digit((unsigned char)p[i + 2]) < 0) {
                *bad = 1;
            } else {
                ch = (char)(dfws_hex_digit((unsigned char)p[i + 1]) * 16 +
                            dfws_hex_digit((unsigned char)p[i + 2]));
                i += 2;
                if (ch == '/')
                    *bad = 1; /* a slash that is not a path separator */
            }
        }
        /* a NUL (encoded, or raw where a caller did not reject it) would
         * end the name the file system sees; a backslash is no separator */
        if (ch == '\\' || ch == '\0')
            *bad = 1;
        dec[n++] = ch;
    }
    return n;
}

/* The decoded path below the prefix, normalised into `out`: empty segments
 * dropped, "." and ".." refused. */
static int normalise(const char *p, size_t len, char *out, size_t outlen)
{
    size_t o = 0, i = 0;
    while (i < len) {
        while (i < len && p[i] == '/')
            i++;
        size_t start = i;
        while (i < len && p[i] != '/')
            i++;
        size_t sl = i - start;
        if (!sl)
            continue;
        if ((sl == 1 && p[start] == '.') || (sl == 2 && p[start] == '.' && p[start + 1] == '.'))
            return DFWS_STATIC_BAD;
        if (o + (o ? 1 : 0) + sl + 1 > outlen)
            return DFWS_STATIC_TOO_LONG;
        if (o)
            out[o++] = '/';
        memcpy(out + o, p + start, sl);
        o += sl;
    }
    out[o] = '\0';
    return DFWS_STATIC_OK;
}

/* Length of the path part of an origin-form target, or 0 for another form. */
static size_t path_len(const char *target, size_t tlen)
{
    if (!tlen || target[0] != '/')
        return 0;
    size_t n = 0;
    while (n < tlen && target[n] != '?' && target[n] != '#')
        n++;
    return n;
}

int dfws_static_resolve(const char *prefix, size_t plen, const char *target, size_t tlen, char *out,
                        size_t outlen)
{
    size_t len = path_len(target, tlen);
    if (!len)
        return DFWS_STATIC_NOT_MINE;
    char *dec = malloc(len);
    if (!dec)
        return DFWS_STATIC_TOO_LONG;
    int bad = 0;
    size_t dlen = decode_path(target, len, dec, &bad);
    int rc;
    if (!below(prefix, plen, dec, dlen))
        rc = DFWS_STATIC_NOT_MINE;
    else if (bad)
        rc = DFWS_STATIC_BAD;
    else
        rc = normalise(dec + plen, dlen - plen, out, outlen);
    free(dec);
    return rc;
}

static int parse_u64(const char *v, size_t len, size_t *i, uint64_t *out)
{
    size_t start = *i;
    uint64_t x = 0;
    while (*i < len && v[*i] >= '0' && v[*i] <= '9') {
        if (*i - start >= 18)
            return -1; /* beyond any file size we serve */
        x = x * 10 + (uint64_t)(v[*i] - '0');
        (*i)++;
    }
    *out = x;
    return *i > start ? 0 : -1;
}

int dfws_static_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first,
                            uint64_t *last)
{
    size_t i = 0;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    while (len > i && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (len - i < 6 || strncasecmp(v + i, "bytes=", 6))
        return 1;
    i += 6;
    if (memchr(v + i, ',', len - i))
        return 1; /* several ranges: the whole file, as RFC 9110 allows */
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    uint64_t a, b;
    if (i < len && v[i] == '-') {
        i++;
        if (parse_u64(v, len, &i, &b) || i != len)
            return 1;
        if (b == 0 || size == 0)
            return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 0;
    }
    if (parse_u64(v, len, &i, &a) || i >= len || v[i] != '-')
        return 1;
    i++;
    if (i == len) {
        b = UINT64_MAX;
    } else if (parse_u64(v, len, &i, &b) || i != len || b < a) {
        return 1;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 0;
}

int dfws_static_accepts(const char *v, size_t len, const char *coding)
{
    size_t cl = strlen(coding);
    int star = -1;
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',' && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
            i++;
        size_t nl = i - start;
        /* the parameters: only q matters; q=0 (0, 0.0, 0.000) refuses */
        int q_zero = 0;
        while (i < len && v[i] != ',') {
            if (v[i] == ';') {
                i++;
                while (i < len && (v[i] == ' ' || v[i] == '\t'))
                    i++;
                if (i + 1 < len && (v[i] == 'q' || v[i] == 'Q') && v[i + 1] == '=') {
                    i += 2;
                    size_t qs = i;
                    while (i < len && (v[i] == '0' || v[i] == '.'))
                        i++;
                    q_zero = i > qs && v[qs] == '0' &&
                             (i == len || v[i] == ',' || v[i] == ';' || v[i] == ' ' ||
                              v[i] == '\t');
                    continue;
                }
            }
            i++;
        }
        if (nl == cl && !strncasecmp(v + start, coding, cl))
            return !q_zero;
        if (nl == 1 && v[start] == '*')
            star = !q_zero;
    }
    return star == 1;
}

const char *dfws_static_mime(const char *name, size_t len)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"avif", "image/avif"},
        {"ico", "image/x-icon"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"ttf", "font/ttf"},
        {"otf", "font/otf"},
        {"txt", "text/plain; charset=utf-8"},
        {"xml", "application/xml"},
        {"wasm", "application/wasm"},
        {"pdf", "application/pdf"},
    };
    size_t dot = len;
    while (dot > 0 && name[dot - 1] != '.' && name[dot - 1] != '/')
        dot--;
    if (dot > 0 && name[dot - 1] == '.') {
        size_t el = len - dot;
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            if (strlen(types[i].ext) == el && !strncasecmp(name + dot, types[i].ext, el))
                return types[i].type;
        }
    }
    return "application/octet-stream";
}

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void dfws_static_format_date(int64_t t, char *out, size_t outlen)
{
    /* by hand: strftime's names follow the locale the application may set */
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int digits(const char *v, size_t n, int *out)
{
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 0;
}

int dfws_static_parse_date(const char *v, size_t len, int64_t *t)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT": 29 bytes; other forms are ignored */
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (len && (*v == ' ' || *v == '\t'))
        v++, len--;
    if (len != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' ||
        v[19] != ':' || v[22] != ':' || memcmp(v + 25, " GMT", 4))
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (!memcmp(v + 8, months[i], 3))
            mon = i;
    if (mon < 0 || digits(v + 5, 2, &tm.tm_mday) || digits(v + 12, 4, &tm.tm_year) ||
        digits(v + 17, 2, &tm.tm_hour) || digits(v + 20, 2, &tm.tm_min) ||
        digits(v + 23, 2, &tm.tm_sec))
        return -1;
    tm.tm_mon = mon;
    tm.tm_year -= 1900;
    *t = (int64_t)timegm(&tm);
    return 0;
}

static const dfws_req_local_ops_t local_ops;

/* ---- serving -------------------------------------------------------------------- */

/* The value of the first header `name`, or NULL. */
static const char *header(const dfws_req_t *r, const char *name, size_t *vlen)
{
    return dfws_req_header_value(r, name, strlen(name), vlen);
}

/* Opens `rel` below the route's directory, read-only, refusing anything
 * that resolves outside it. Returns a descriptor or -errno. */
static int open_below(const route_t *rt, const char *rel)
{
    /* O_NONBLOCK: a FIFO dropped in the mount must not block the loop in
     * open(); regular files ignore the flag. */
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    int err;
#ifdef SYS_openat2
    /* The mount is opened per request: a deploy that swaps the directory
     * (a release symlink) is seen at once. */
    int dfd = open(rt->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)flags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    int fd = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
    err = errno;
    close(dfd);
    if (fd >= 0)
        return fd;
    /* EXDEV: a symlink leads out, or is absolute (it may still point inside:
     * checked below). ENOSYS/EPERM: no openat2 here (old kernel, seccomp). */
    if (err != EXDEV && err != ENOSYS && err != EPERM)
        return -err;
#endif
    /* realpath() and a prefix check. A symlink swapped between the check and
     * the open() needs write access to the mount: whoever has it can put
     * any file there anyway. */
    char full[PATH_MAX], real[PATH_MAX];
    size_t dl = strlen(rt->dir);
    if ((size_t)snprintf(full, sizeof(full), "%s/%s", rt->dir, rel) >= sizeof(full))
        return -ENAMETOOLONG;
    if (!realpath(full, real))
        return -errno;
    if (strncmp(real, rt->dir, dl) || (dl > 1 && real[dl] != '/'))
        return -EXDEV;
    int fd2 = open(real, flags | O_NOFOLLOW);
    return fd2 >= 0 ? fd2 : -errno;
}

static void add_header(dfws_req_t *r, const char *name, const char *value)
{
    const char *err;
    dfws_req_response_header(r, name, strlen(name), value, strlen(value), &err);
}

/* A short text answer (400, 404, 405, 416, 500). */
static void answer(dfws_req_t *r, int status, const char *extra_name, const char *extra_value)
{
    static const struct {
        int status;
        const char *text;
    } texts[] = {{400, "Bad Request\n"},
                 {404, "Not Found\n"},
                 {405, "Method Not Allowed\n"},
                 {416, "Range Not Satisfiable\n"},
                 {500, "Internal Server Error\n"}};
    const char *text = "Error\n", *err;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].status == status)
            text = texts[i].text;
    if (dfws_req_response_start(r, status, &err))
        return;
    add_header(r, "Content-Type", "text/plain; charset=utf-8");
    if (extra_name)
        add_header(r, extra_name, extra_value);
    dfws_req_response_body(r, text, strlen(text), 0, &err);
}

static void xfer_free(xfer_t *x)
{
    close(x->fd);
    free(x);
}

void dfws_static_on_detach(dfws_req_t *r)
{
    xfer_t *x = r->local;
    r->local = NULL;
    if (!x)
        return;
    x->r = NULL;
    if (!x->busy)
        xfer_free(x);
}

static void on_file_read(uv_fs_t *req);

/* Reads the next chunk unless the connection's output is above the mark
 * (then dfws_static_on_drain resumes). `x` is attached and not busy. */
static void xfer_next(xfer_t *x)
{
    dfws_req_t *r = x->r;
    if (dfws_conn_write_pending(r->conn) >= DFWS_WRITE_HIGH) {
        r->app_waiting_drain = 1;
        return;
    }
    size_t n = x->left < CHUNK ? (size_t)x->left : CHUNK;
    uv_buf_t b = uv_buf_init(x->buf, (unsigned)n);
    x->busy = 1;
    int rc = uv_fs_read(r->server->loop, &x->fs, x->fd, &b, 1, (int64_t)x->off, on_file_read);
    if (rc < 0) {
        x->busy = 0;
        uv_fs_req_cleanup(&x->fs);
        dfws_log_warn("static file: read failed: %s", uv_strerror(rc));
        dfws_req_abort(r, 500); /* response started: the connection drops; frees x */
    }
}

static void on_file_read(uv_fs_t *req)
{
    xfer_t *x = DFWS_CONTAINER_OF(req, xfer_t, fs);
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    if (!x->r) { /* the client left meanwhile */
        xfer_free(x);
        return;
    }
    dfws_req_t *r = x->r;
    if (n <= 0) {
        x->busy = 0;
        dfws_log_warn("static file: %s while sending it (the file changed?)",
                      n < 0 ? uv_strerror((int)n) : "end of file");
        dfws_req_abort(r, 500); /* frees x through dfws_static_on_detach */
        return;
    }
    if ((uint64_t)n > x->left)
        n = (ssize_t)x->left;
    x->off += (uint64_t)n;
    x->left -= (uint64_t)n;
    const char *err;
    /* busy stays set: completing the response (or a failed write) detaches
     * the request, which must not free x under us */
    dfws_req_response_body(r, x->buf, (size_t)n, x->left > 0, &err);
    x->busy = 0;
    if (!x->r) {
        xfer_free(x);
        return;
    }
    if (x->left)
        xfer_next(x);
}

void dfws_static_on_drain(dfws_req_t *r)
{
    xfer_t *x = r->local;
    if (x && !x->busy && x->r)
        xfer_next(x);
}

/* Whether If-None-Match lists our entity tag (weak comparison). */
static int etag_matches(const char *v, size_t len, const char *etag)
{
    const char *opaque = etag + 2; /* ours is W/"..." */
    size_t ol = strlen(opaque), pos = 0, n;
    const char *e;
    while (dfws_http_list_next(v, len, &pos, &e, &n)) {
        if (n == 1 && *e == '*')
            return 1;
        if (n > 2 && e[0] == 'W' && e[1] == '/')
            e += 2, n -= 2;
        if (n == ol && !memcmp(e, opaque, ol))
            return 1;
    }
    return 0;
}

/* Opens a pre-compressed sibling (rel + ext) if it is a regular file. */
static int open_variant(const route_t *rt, const char *rel, const char *ext, struct stat *st)
{
    char name[PATH_MAX];
    if ((size_t)snprintf(name, sizeof(name), "%s%s", rel, ext) >= sizeof(name))
        return -1;
    int fd = open_below(rt, name);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void serve_file(dfws_req_t *r, const route_t *rt, const char *rel)
{
    dfws_conn_t *c = r->conn;
    int fd = *rel ? open_below(rt, rel) : -EISDIR;
    struct stat st;
    if (fd >= 0 && fstat(fd, &st)) {
        close(fd);
        fd = -errno;
    }
    if (fd >= 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        fd = S_ISDIR(st.st_mode) ? -EISDIR : -ENODEV;
    }
    if (fd < 0) {
        if (fd == -EXDEV)
            dfws_log_info("%s:%u: static %s/%s leads out of %s: 404", c->client_host,
                          c->client_port, rt->prefix, rel, rt->dir);
        else
            dfws_log_debug("static %s/%s: %s: 404", rt->prefix, rel, strerror(-fd));
        answer(r, 404, NULL, NULL);
        return;
    }

    size_t rlen = 0, aelen = 0, vlen;
    const char *range = header(r, "range", &rlen);
    const char *ae = header(r, "accept-encoding", &aelen);

    /* Pre-compressed siblings, as collectstatic-time compressors write them.
     * Range requests get the identity file: ranges of a compressed variant
     * are not worth their confusion. */
    const char *encoding = NULL;
    int vary = 0;
    static const struct {
        const char *coding, *ext;
    } variants[] = {{"br", ".br"}, {"gzip", ".gz"}};
    for (size_t i = 0; i < 2; i++) {
        struct stat vst;
        int vfd = open_variant(rt, rel, variants[i].ext, &vst);
        if (vfd < 0)
            continue;
        vary = 1;
        if (!encoding && !range && ae && dfws_static_accepts(ae, aelen, variants[i].coding)) {
            encoding = variants[i].coding;
            close(fd);
            fd = vfd;
            st = vst;
        } else {
            close(vfd);
        }
    }

    uint64_t size = (uint64_t)st.st_size;
    char etag[64], lastmod[40], len[24], cache[40], crange[64];
    snprintf(etag, sizeof(etag), "W/\"%" PRIx64 "-%" PRIx64 ".%lx\"", size,
             (uint64_t)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
    dfws_static_format_date((int64_t)st.st_mtim.tv_sec, lastmod, sizeof(lastmod));

    int status = 200;
    const char *inm = header(r, "if-none-match", &vlen);
    if (inm) {
        if (etag_matches(inm, vlen, etag))
            status = 304;
    } else {
        const char *ims = header(r, "if-modified-since", &vlen);
        int64_t t;
        if (ims && !dfws_static_parse_date(ims, vlen, &t) && (int64_t)st.st_mtim.tv_sec <= t)
            status = 304;
    }
    uint64_t first = 0, last = size ? size - 1 : 0;
    if (status == 200 && range && !encoding) {
        /* If-Range: our entity tags are weak, so only the date can match */
        const char *ifr = header(r, "if-range", &vlen);
        int use = !ifr || (vlen == strlen(lastmod) && !memcmp(ifr, lastmod, vlen));
        int rc = use ? dfws_static_parse_range(range, rlen, size, &first, &last) : 1;
        if (rc < 0) {
            close(fd);
            snprintf(crange, sizeof(crange), "bytes */%" PRIu64, size);
            answer(r, 416, "Content-Range", crange);
            return;
        }
        if (rc == 0) {
            status = 206;
            snprintf(crange, sizeof(crange), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last,
                     size);
        }
    }
    uint64_t n = size ? last - first + 1 : 0;

    const char *err;
    if (dfws_req_response_start(r, status, &err)) {
        close(fd);
        return;
    }
    if (status != 304)
        add_header(r, "Content-Type", dfws_static_mime(rel, strlen(rel)));
    /* a 304 may carry the length a 200 would have (RFC 9110, 8.6) */
    snprintf(len, sizeof(len), "%" PRIu64, status == 304 ? size : n);
    add_header(r, "Content-Length", len);
    add_header(r, "Last-Modified", lastmod);
    add_header(r, "ETag", etag);
    if (rt->expires > 0) {
        snprintf(cache, sizeof(cache), "max-age=%ld", rt->expires);
        add_header(r, "Cache-Control", cache);
    }
    if (!encoding)
        add_header(r, "Accept-Ranges", "bytes");
    if (encoding)
        add_header(r, "Content-Encoding", encoding);
    if (vary)
        add_header(r, "Vary", "Accept-Encoding");
    if (status == 206)
        add_header(r, "Content-Range", crange);

    if (r->no_body || n == 0) {
        close(fd);
        dfws_req_response_body(r, NULL, 0, 0, &err);
        return;
    }
    if (n <= CHUNK) {
        /* small (most static files): one pread on the loop, like the open */
        char buf[CHUNK];
        ssize_t got = pread(fd, buf, (size_t)n, (off_t)first);
        close(fd);
        if (got != (ssize_t)n) {
            dfws_log_warn("static %s/%s: short read (the file changed?)", rt->prefix, rel);
            dfws_req_abort(r, 500);
            return;
        }
        dfws_req_response_body(r, buf, (size_t)n, 0, &err);
        return;
    }
    xfer_t *x = malloc(sizeof(*x));
    if (!x) {
        close(fd);
        dfws_req_abort(r, 500);
        return;
    }
    memset(&x->fs, 0, sizeof(x->fs));
    x->r = r;
    x->fd = fd;
    x->busy = 0;
    x->off = first;
    x->left = n;
    r->local = x;
    r->local_ops = &local_ops;
    xfer_next(x); /* the head goes out with the first chunk */
}

static const dfws_req_local_ops_t local_ops = {
    .drain = dfws_static_on_drain,
    .detach = dfws_static_on_detach,
};

int dfws_static_try(dfws_conn_t *c, dfws_req_t *r)
{
    dfws_static_t *t = c->server->statics;
    /* an upgrade request stays the application's: its parser state differs */
    if (!t || !t->n || r->upgrade)
        return 0;
    const char *target = r->head.base + r->url_off;
    size_t len = path_len(target, r->url_len);
    if (!len)
        return 0;

    /* Decode once; the common target has no escape and needs no copy. */
    char *dec = NULL;
    const char *path = target;
    size_t dlen = len;
    int bad = memchr(target, '\\', len) != NULL;
    if (memchr(target, '%', len)) {
        if (!(dec = malloc(len)))
            return 0;
        bad = 0;
        dlen = decode_path(target, len, dec, &bad);
        path = dec;
    }
    const route_t *rt = NULL;
    for (size_t i = 0; i < t->n && !rt; i++)
        if (below(t->routes[i].prefix, t->routes[i].plen, path, dlen))
            rt = &t->routes[i];
    if (!rt) {
        free(dec);
        return 0;
    }
    if (r->method != DFWS_METHOD_GET && r->method != DFWS_METHOD_HEAD) {
        free(dec);
        answer(r, 405, "Allow", "GET, HEAD");
        return 1;
    }
    char rel[PATH_MAX];
    int rc = bad ? DFWS_STATIC_BAD : normalise(path + rt->plen, dlen - rt->plen, rel, sizeof(rel));
    free(dec);
    if (rc == DFWS_STATIC_BAD) {
        dfws_log_info("%s:%u: static request with a malformed path, a dot segment, an encoded "
                      "slash or a backslash: 400",
                      c->client_host, c->client_port);
        answer(r, 400, NULL, NULL);
    } else if (rc) {
        answer(r, 404, NULL, NULL);
    } else {
        serve_file(r, rt, rel);
    }
    return 1;
}
