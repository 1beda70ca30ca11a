/* Prometheus metrics: per-worker slots in shared memory (metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <llhttp.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

dfws_metrics_slot_t *dfws_metrics;

/* upper bounds of the duration buckets, in microseconds */
static const uint64_t bucket_us[DFWS_METRICS_BUCKETS] = {
    1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const bucket_le[DFWS_METRICS_BUCKETS] = {
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};
static const char *const method_names[DFWS_M_NMETHODS] = {
    "GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
};

void dfws_metrics_request(int method, int status, uint64_t duration_ns)
{
    dfws_metrics_slot_t *m = dfws_metrics;
    if (!m)
        return;
    int k;
    switch (method) {
    case HTTP_GET:
        k = DFWS_M_GET;
        break;
    case HTTP_POST:
        k = DFWS_M_POST;
        break;
    case HTTP_HEAD:
        k = DFWS_M_HEAD;
        break;
    case HTTP_PUT:
        k = DFWS_M_PUT;
        break;
    case HTTP_PATCH:
        k = DFWS_M_PATCH;
        break;
    case HTTP_DELETE:
        k = DFWS_M_DELETE;
        break;
    case HTTP_OPTIONS:
        k = DFWS_M_OPTIONS;
        break;
    default:
        k = DFWS_M_OTHER;
        break;
    }
    int cls = status / 100 - 1;
    if (cls < 0 || cls > 4)
        cls = 4;
    dfws_metrics_add(&m->requests[k][cls], 1);
    uint64_t us = duration_ns / 1000;
    int b = 0;
    while (b < DFWS_METRICS_BUCKETS && us > bucket_us[b])
        b++;
    dfws_metrics_add(&m->duration_bucket[b], 1);
    dfws_metrics_add(&m->duration_us, us);
}

/* ---- the supervisor's side ------------------------------------------------------ */

dfws_metrics_t *dfws_metrics_map(size_t nslots)
{
    size_t size = sizeof(dfws_metrics_t) + nslots * sizeof(dfws_metrics_slot_t);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        dfws_log_error("metrics: cannot map %zu bytes: %s", size, strerror(errno));
        return NULL;
    }
    dfws_metrics_t *m = p; /* mmap gives zeroed pages */
    m->nslots = nslots;
    return m;
}

dfws_metrics_slot_t *dfws_metrics_claim(dfws_metrics_t *m, int worker)
{
    for (size_t i = 0; i < m->nslots; i++) {
        dfws_metrics_slot_t *s = &m->slots[i];
        if (!__atomic_load_n(&s->pid, __ATOMIC_RELAXED)) {
            memset(s, 0, sizeof(*s));
            s->pid = -1; /* taken; the supervisor writes the pid after fork */
            s->worker = worker;
            return s;
        }
    }
    return NULL;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* dst += the counters of src */
static void add_counters(dfws_metrics_slot_t *dst, const dfws_metrics_slot_t *src)
{
    for (int k = 0; k < DFWS_M_NMETHODS; k++)
        for (int c = 0; c < 5; c++)
            dst->requests[k][c] += LOAD(src->requests[k][c]);
    for (int b = 0; b <= DFWS_METRICS_BUCKETS; b++)
        dst->duration_bucket[b] += LOAD(src->duration_bucket[b]);
    dst->duration_us += LOAD(src->duration_us);
    dst->bytes_in += LOAD(src->bytes_in);
    dst->bytes_out += LOAD(src->bytes_out);
    dst->websockets_opened += LOAD(src->websockets_opened);
    dst->deliveries += LOAD(src->deliveries);
    dst->deliveries_dropped += LOAD(src->deliveries_dropped);
    dst->signal_calls += LOAD(src->signal_calls);
    dst->connects_refused += LOAD(src->connects_refused);
    dst->layer_sent += LOAD(src->layer_sent);
    dst->layer_received += LOAD(src->layer_received);
    dst->redis_reconnects += LOAD(src->redis_reconnects);
}

void dfws_metrics_release(dfws_metrics_t *m, dfws_metrics_slot_t *slot)
{
    add_counters(&m->retired, slot);
    memset(slot, 0, sizeof(*slot)); /* pid 0: free */
}

static void counter(dfws_buf_t *b, const char *name, const char *help, uint64_t v)
{
    dfws_buf_appendf(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name,
                     v);
}

char *dfws_metrics_render(const dfws_metrics_t *m, size_t *len)
{
    dfws_metrics_slot_t sum;
    memset(&sum, 0, sizeof(sum));
    add_counters(&sum, &m->retired);
    size_t live = 0;
    for (size_t i = 0; i < m->nslots; i++)
        if (LOAD(m->slots[i].pid) > 0) {
            add_counters(&sum, &m->slots[i]);
            live++;
        }
    dfws_buf_t b = {0};
    dfws_buf_appendf(&b, "# HELP dfws_http_requests_total HTTP requests answered, by method and "
                         "status class.\n# TYPE dfws_http_requests_total counter\n");
    for (int k = 0; k < DFWS_M_NMETHODS; k++)
        for (int c = 0; c < 5; c++)
            if (sum.requests[k][c] || (k == DFWS_M_GET && c == 1))
                dfws_buf_appendf(
                    &b, "dfws_http_requests_total{method=\"%s\",status=\"%dxx\"} %" PRIu64 "\n",
                    method_names[k], c + 1, sum.requests[k][c]);
    dfws_buf_appendf(&b, "# HELP dfws_http_request_duration_seconds From a request's first byte "
                         "to its response's last.\n"
                         "# TYPE dfws_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < DFWS_METRICS_BUCKETS; i++) {
        cum += sum.duration_bucket[i];
        dfws_buf_appendf(&b, "dfws_http_request_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
                         bucket_le[i], cum);
    }
    cum += sum.duration_bucket[DFWS_METRICS_BUCKETS];
    dfws_buf_appendf(&b,
                     "dfws_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                     "dfws_http_request_duration_seconds_sum %.6f\n"
                     "dfws_http_request_duration_seconds_count %" PRIu64 "\n",
                     cum, (double)sum.duration_us / 1e6, cum);
    counter(&b, "dfws_received_bytes_total", "Bytes read from clients (HTTP and WebSocket).",
            sum.bytes_in);
    counter(&b, "dfws_sent_bytes_total", "Bytes written to clients (HTTP and WebSocket).",
            sum.bytes_out);
    counter(&b, "dfws_websockets_opened_total", "WebSocket connections accepted.",
            sum.websockets_opened);
    counter(&b, "dfws_native_deliveries_total",
            "Messages delivered to df_websockets windows by the native socket.", sum.deliveries);
    counter(&b, "dfws_native_deliveries_dropped_total",
            "Messages for df_websockets windows dropped (slow reader, invalid, closed).",
            sum.deliveries_dropped);
    counter(&b, "dfws_native_signal_calls_total",
            "Browser signal calls handed to the signal workers.", sum.signal_calls);
    counter(&b, "dfws_native_connects_refused_total",
            "Windows answered 503: --websocket-connect-capacity exhausted.", sum.connects_refused);
    counter(&b, "dfws_layer_messages_sent_total", "Channel layer messages sent.", sum.layer_sent);
    counter(&b, "dfws_layer_messages_received_total", "Channel layer messages received.",
            sum.layer_received);
    counter(&b, "dfws_layer_redis_reconnects_total", "Redis connections re-established.",
            sum.redis_reconnects);
    counter(&b, "dfws_worker_restarts_total", "Workers started to replace another.",
            LOAD(((dfws_metrics_t *)m)->worker_restarts));
    static const struct {
        const char *name, *help;
        size_t off;
    } gauges[] = {
        {"dfws_http_connections", "Open client connections (HTTP, WebSocket included).",
         offsetof(dfws_metrics_slot_t, http_connections)},
        {"dfws_websockets", "Open WebSocket connections.",
         offsetof(dfws_metrics_slot_t, websockets)},
        {"dfws_native_windows", "Open df_websockets windows on the native socket.",
         offsetof(dfws_metrics_slot_t, native_windows)},
    };
    for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        dfws_buf_appendf(&b, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help,
                         gauges[g].name);
        for (size_t i = 0; i < m->nslots; i++) {
            const dfws_metrics_slot_t *s = &m->slots[i];
            if (LOAD(s->pid) <= 0)
                continue;
            int64_t v = __atomic_load_n((const int64_t *)((const char *)s + gauges[g].off),
                                        __ATOMIC_RELAXED);
            dfws_buf_appendf(&b, "%s{worker=\"%" PRId64 "\"} %" PRId64 "\n", gauges[g].name,
                             s->worker, v);
        }
    }
    dfws_buf_appendf(&b,
                     "# HELP dfws_workers Worker processes running.\n"
                     "# TYPE dfws_workers gauge\ndfws_workers %zu\n",
                     live);
    if (!b.base || dfws_buf_append(&b, "", 1)) {
        dfws_buf_free(&b);
        return NULL;
    }
    *len = b.len - 1;
    return b.base;
}

int dfws_metrics_listen(const char *bind_spec, char *err, size_t errlen)
{
    char host[256] = "127.0.0.1";
    const char *port = bind_spec;
    const char *colon = strrchr(bind_spec, ':');
    if (colon) {
        size_t n = (size_t)(colon - bind_spec);
        const char *h = bind_spec;
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
            h++, n -= 2;
        if (n >= sizeof(host)) {
            snprintf(err, errlen, "host too long");
            return -1;
        }
        if (n) {
            memcpy(host, h, n);
            host[n] = '\0';
        }
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "%s: %s", bind_spec, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 16)) {
        snprintf(err, errlen, "%s: %s", bind_spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void dfws_metrics_serve(const dfws_metrics_t *m, int fd)
{
    /* One short blocking exchange: a scraper sends its request at once; a
     * client that does not costs the supervisor at most a second. */
    struct timeval tv = {1, 0};
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char req[4096];
    size_t n = 0;
    while (n < sizeof(req) - 1) {
        ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[n] = '\0';
    int head = !strncmp(req, "HEAD ", 5);
    const char *path = head ? req + 5 : !strncmp(req, "GET ", 4) ? req + 4 : NULL;
    size_t plen = path ? strcspn(path, " ?\r\n") : 0;
    char *body = NULL;
    size_t blen = 0;
    int status = 404;
    if (path && plen == 8 && !memcmp(path, "/metrics", 8) && (body = dfws_metrics_render(m, &blen)))
        status = 200;
    char hdr[256];
    int hn = snprintf(hdr, sizeof(hdr),
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status == 200 ? "200 OK" : "404 Not Found",
                      status == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
                      status == 200 ? blen : (size_t)10);
    write_all(fd, hdr, (size_t)hn);
    if (!head)
        write_all(fd, status == 200 ? body : "not found\n", status == 200 ? blen : 10);
    free(body);
    close(fd);
}
