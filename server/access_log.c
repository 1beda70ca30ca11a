/* The access log (see access_log.h for where lines go and when). */
#include "access_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "request.h"

/* Written at once above this; otherwise once per loop turn. */
#define FLUSH_AT (32 * 1024)
/* Longest target, user agent or referer quoted in a line. */
#define FIELD_MAX 300

enum field {
    F_LITERAL,
    F_CLIENT,
    F_CLIENT_HOST,
    F_METHOD,
    F_PATH,
    F_QUERY,
    F_TARGET,
    F_STATUS,
    F_BYTES,
    F_DURATION_MS,
    F_USER_AGENT,
    F_REFERER,
    F_TIME,
    F_PROTOCOL,
};

static const struct {
    const char *name;
    enum field field;
} field_names[] = {
    {"client", F_CLIENT},
    {"client_host", F_CLIENT_HOST},
    {"method", F_METHOD},
    {"path", F_PATH},
    {"query", F_QUERY},
    {"target", F_TARGET},
    {"status", F_STATUS},
    {"bytes", F_BYTES},
    {"duration_ms", F_DURATION_MS},
    {"user_agent", F_USER_AGENT},
    {"referer", F_REFERER},
    {"time", F_TIME},
    {"protocol", F_PROTOCOL},
};
#define NFIELDS (sizeof(field_names) / sizeof(field_names[0]))

/* A compiled --access-log-format: literal runs and fields, in order. */
typedef struct {
    enum field field;
    uint32_t off, len; /* F_LITERAL: bytes of `text` */
} part_t;

struct dfws_access_fmt_s {
    size_t nparts;
    char *text;
    part_t parts[];
};

/* Parses `%(name)X` (X an optional printf conversion, ignored: each field
 * has one rendering) and `%%`. Returns the compiled format, or NULL with the
 * reason in err. */
static struct dfws_access_fmt_s *compile(const char *s, char *err, size_t errlen)
{
    size_t n = strlen(s);
    struct dfws_access_fmt_s *f = calloc(1, sizeof(*f) + (n + 1) * sizeof(part_t));
    char *text = malloc(n + 1);
    if (!f || !text) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    f->text = text;
    size_t tlen = 0;
    part_t *lit = NULL;
    for (size_t i = 0; i < n;) {
        if (s[i] == '%' && s[i + 1] == '(') {
            const char *close = strchr(s + i + 2, ')');
            if (!close) {
                snprintf(err, errlen, "unclosed %%( at offset %zu", i);
                goto fail;
            }
            size_t nlen = (size_t)(close - (s + i + 2));
            size_t k = 0;
            while (k < NFIELDS && (strlen(field_names[k].name) != nlen ||
                                   strncmp(field_names[k].name, s + i + 2, nlen)))
                k++;
            if (k == NFIELDS) {
                snprintf(err, errlen,
                         "unknown field %%(%.*s): fields are client, client_host, "
                         "method, path, query, target, status, bytes, duration_ms, user_agent, "
                         "referer, time, protocol",
                         (int)(nlen > 40 ? 40 : nlen), s + i + 2);
                goto fail;
            }
            f->parts[f->nparts++] = (part_t){field_names[k].field, 0, 0};
            lit = NULL;
            i = (size_t)(close - s) + 1;
            i += strspn(s + i, "0123456789.-"); /* a printf width/precision, ignored */
            if (s[i] && strchr("sdfi", s[i]))
                i++;
            continue;
        }
        char ch = s[i];
        if (ch == '%') {
            if (s[i + 1] != '%') {
                snprintf(err, errlen, "a lone %% at offset %zu (write %%%% for a percent sign)", i);
                goto fail;
            }
            i++;
        }
        if (!lit) {
            lit = &f->parts[f->nparts++];
            *lit = (part_t){F_LITERAL, (uint32_t)tlen, 0};
        }
        text[tlen++] = ch;
        lit->len++;
        i++;
    }
    text[tlen] = '\0';
    return f;
fail:
    free(text);
    free(f);
    return NULL;
}

static void fmt_free(struct dfws_access_fmt_s *f)
{
    if (f) {
        free(f->text);
        free(f);
    }
}

int dfws_access_format_check(const char *format, char *err, size_t errlen)
{
    struct dfws_access_fmt_s *f = compile(format, err, errlen);
    fmt_free(f);
    return f ? 0 : -1;
}

/* ---- output ---------------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* a closed stdout: the lines are lost, the server goes on */
        }
        p += w;
        n -= (size_t)w;
    }
}

void dfws_access_log_flush(dfws_access_log_t *L)
{
    if (!L->pending.len)
        return;
    if (L->fd >= 0)
        write_all(L->fd, L->pending.base, L->pending.len);
    else if (L->sink)
        L->sink(L->sink_ud, L->pending.base, L->pending.len);
    L->pending.len = 0;
    if (L->pending.cap > 4 * FLUSH_AT)
        dfws_buf_free(&L->pending);
}

static void on_check(uv_check_t *h)
{
    dfws_access_log_t *L = DFWS_CONTAINER_OF(h, dfws_access_log_t, check);
    dfws_access_log_flush(L);
    uv_check_stop(h); /* started again by the next line */
}

int dfws_access_log_init(dfws_access_log_t *L, uv_loop_t *loop, const char *format)
{
    memset(L, 0, sizeof(*L));
    L->fd = -1;
    if (format) {
        char err[160];
        if (!(L->fmt = compile(format, err, sizeof(err))))
            return UV_EINVAL; /* the command line was checked: out of memory */
    }
    int rc = uv_check_init(loop, &L->check);
    if (rc) {
        fmt_free(L->fmt);
        L->fmt = NULL;
        return rc;
    }
    uv_unref((uv_handle_t *)&L->check);
    L->check_ready = 1;
    return 0;
}

void dfws_access_log_set(dfws_access_log_t *L, int on, int fd, dfws_access_sink_fn sink, void *ud)
{
    dfws_access_log_flush(L);
    L->on = on;
    L->fd = fd;
    L->sink = sink;
    L->sink_ud = ud;
}

void dfws_access_log_close(dfws_access_log_t *L)
{
    dfws_access_log_flush(L);
    L->on = 0;
    if (L->check_ready) {
        L->check_ready = 0;
        uv_close((uv_handle_t *)&L->check, NULL);
    }
    dfws_buf_free(&L->pending);
    fmt_free(L->fmt);
    L->fmt = NULL;
}

/* ---- one line ----------------------------------------------------------------- */

/* Appends client bytes so that a line stays one line and stays parseable:
 * control bytes, non-ASCII, quotes and backslashes become \xHH. */
static void append_escaped(dfws_buf_t *b, const char *p, size_t n)
{
    if (n > FIELD_MAX)
        n = FIELD_MAX;
    if (dfws_buf_reserve(b, n * 4))
        return;
    char *o = b->base + b->len;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            *o++ = (char)ch;
        } else {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    b->len = (size_t)(o - b->base);
}

static const dfws_hdr_t *header(const dfws_req_t *r, const char *name, size_t nlen)
{
    return r ? dfws_req_header(r, name, nlen) : NULL;
}

static void append_header(dfws_buf_t *b, const dfws_req_t *r, const char *name)
{
    const dfws_hdr_t *h = header(r, name, strlen(name));
    if (h)
        append_escaped(b, r->head.base + h->value_off, h->value_len);
    else
        dfws_buf_append(b, "-", 1);
}

static const char *log_date(dfws_access_log_t *L)
{
    time_t t = time(NULL);
    if (t != L->date_sec || !L->date[0]) {
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(L->date, sizeof(L->date), "%d/%b/%Y:%H:%M:%S", &tm);
        L->date_sec = t;
    }
    return L->date;
}

static void append_client(dfws_buf_t *b, const dfws_conn_t *c, int with_port)
{
    if (c->fwd_client) {
        append_escaped(b, c->fwd_host, strlen(c->fwd_host));
        if (with_port)
            dfws_buf_appendf(b, ":%u", c->fwd_port);
    } else if (c->tr.is_unix) {
        dfws_buf_append(b, "-", 1);
    } else if (with_port) {
        dfws_buf_appendf(b, "%s:%u", c->client_host, c->client_port);
    } else {
        dfws_buf_append(b, c->client_host, strlen(c->client_host));
    }
}

static void append_number(dfws_buf_t *b, int64_t v)
{
    if (v < 0)
        dfws_buf_append(b, "-", 1);
    else
        dfws_buf_appendf(b, "%" PRId64, v);
}

static void append_field(dfws_access_log_t *L, dfws_conn_t *c, const dfws_access_entry_t *e,
                         enum field field)
{
    dfws_buf_t *b = &L->pending;
    const dfws_req_t *r = e->req;
    const char *q = memchr(e->target, '?', e->target_len);
    size_t path_len = q ? (size_t)(q - e->target) : e->target_len;
    switch (field) {
    case F_LITERAL:
        break;
    case F_CLIENT:
        append_client(b, c, 1);
        break;
    case F_CLIENT_HOST:
        append_client(b, c, 0);
        break;
    case F_METHOD:
        dfws_buf_append(b, e->action, strlen(e->action));
        break;
    case F_PATH:
        append_escaped(b, e->target, path_len);
        break;
    case F_QUERY:
        if (q)
            append_escaped(b, q + 1, e->target_len - path_len - 1);
        break;
    case F_TARGET:
        append_escaped(b, e->target, e->target_len);
        break;
    case F_STATUS:
        append_number(b, e->status);
        break;
    case F_BYTES:
        append_number(b, e->size);
        break;
    case F_DURATION_MS:
        if (r && r->start_ns)
            dfws_buf_appendf(b, "%.3f", (double)(uv_hrtime() - r->start_ns) / 1e6);
        else
            dfws_buf_append(b, "-", 1);
        break;
    case F_USER_AGENT:
        append_header(b, r, "user-agent");
        break;
    case F_REFERER:
        append_header(b, r, "referer");
        break;
    case F_TIME:
        dfws_buf_append(b, log_date(L), strlen(L->date));
        break;
    case F_PROTOCOL:
        if (r)
            dfws_buf_appendf(b, "HTTP/%u.%u", r->http_major, r->http_minor);
        else
            dfws_buf_append(b, "-", 1);
        break;
    }
}

void dfws_access_log_add(dfws_access_log_t *L, dfws_conn_t *c, const dfws_access_entry_t *e)
{
    if (!L->on)
        return;
    dfws_buf_t *b = &L->pending;
    size_t start = b->len;
    if (!L->fmt) {
        /* daphne's line: host:port - - [date] "METHOD target" status size */
        append_client(b, c, 1); /* "-" on a UNIX socket, as daphne's "- - -" */
        dfws_buf_append(b, " - - [", 6);
        dfws_buf_append(b, log_date(L), strlen(L->date));
        dfws_buf_append(b, "] \"", 3);
        dfws_buf_append(b, e->action, strlen(e->action));
        dfws_buf_append(b, " ", 1);
        append_escaped(b, e->target, e->target_len);
        dfws_buf_append(b, "\" ", 2);
        append_number(b, e->status);
        dfws_buf_append(b, " ", 1);
        append_number(b, e->size);
    } else {
        for (size_t i = 0; i < L->fmt->nparts; i++) {
            const part_t *p = &L->fmt->parts[i];
            if (p->field == F_LITERAL)
                dfws_buf_append(b, L->fmt->text + p->off, p->len);
            else
                append_field(L, c, e, p->field);
        }
    }
    if (dfws_buf_append(b, "\n", 1)) {
        b->len = start; /* out of memory: this line is lost, not half of it */
        return;
    }
    if (b->len >= FLUSH_AT)
        dfws_access_log_flush(L);
    else if (L->check_ready && !uv_is_active((uv_handle_t *)&L->check))
        uv_check_start(&L->check, on_check);
}
