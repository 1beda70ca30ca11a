/* Prometheus metrics (--metrics-bind): counters kept in C by every worker,
 * read and served by the supervisor.
 *
 * The supervisor maps one shared anonymous region before its first fork.
 * Each worker owns one slot of it, and is its only writer: the hot paths
 * (a request completed, bytes read or written) add to their own slot with
 * relaxed atomic adds, no lock and no Python. Counters that modules already
 * keep (native windows, the channel layer) are copied into the slot once a
 * second by the worker (asgi/). The supervisor sums the slots when
 * /metrics is scraped, and folds the counters of a worker that exits into a
 * "retired" slot, so a counter never goes down across worker restarts.
 *
 * `dfws_metrics` is a process-wide pointer on purpose: a worker process has
 * exactly one slot, written from every module of that process.
 */
#ifndef DFWS_METRICS_H
#define DFWS_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum {
    DFWS_M_GET,
    DFWS_M_POST,
    DFWS_M_HEAD,
    DFWS_M_PUT,
    DFWS_M_PATCH,
    DFWS_M_DELETE,
    DFWS_M_OPTIONS,
    DFWS_M_OTHER,
    DFWS_M_NMETHODS
};
#define DFWS_METRICS_BUCKETS 12 /* request duration histogram, +Inf excluded */

typedef struct dfws_metrics_slot_s {
    /* who writes it: a worker's pid, 0 when free (the supervisor's bookkeeping) */
    int64_t pid;
    int64_t worker; /* the worker's number in the logs */
    /* counters: only ever added to */
    uint64_t requests[DFWS_M_NMETHODS][5];              /* by method and status class 1xx..5xx */
    uint64_t duration_bucket[DFWS_METRICS_BUCKETS + 1]; /* per bucket, not cumulative */
    uint64_t duration_us;                               /* sum */
    uint64_t bytes_in, bytes_out;
    uint64_t websockets_opened;
    uint64_t deliveries, deliveries_dropped, signal_calls, connects_refused;
    uint64_t layer_sent, layer_received, redis_reconnects;
    /* gauges: set by the worker */
    int64_t http_connections, websockets, native_windows;
} dfws_metrics_slot_t;

typedef struct dfws_metrics_s {
    size_t nslots;
    uint64_t worker_restarts;    /* workers started to replace another */
    dfws_metrics_slot_t retired; /* counters of the workers that exited */
    dfws_metrics_slot_t slots[];
} dfws_metrics_t;

/* This process's slot, or NULL (no --metrics-bind, or not a worker). */
extern dfws_metrics_slot_t *dfws_metrics;

static inline void dfws_metrics_add(uint64_t *counter, uint64_t n)
{
    __atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}
static inline void dfws_metrics_set(int64_t *gauge, int64_t v)
{
    __atomic_store_n(gauge, v, __ATOMIC_RELAXED);
}

/* One completed HTTP request (llhttp method number, status, duration). */
void dfws_metrics_request(int method, int status, uint64_t duration_ns);

/* ---- the supervisor's side ------------------------------------------------ */

/* Maps the region for `nslots` workers. NULL (logged) when it cannot. */
dfws_metrics_t *dfws_metrics_map(size_t nslots);
/* A free slot for the worker about to be forked, or NULL when none is. */
dfws_metrics_slot_t *dfws_metrics_claim(dfws_metrics_t *m, int worker);
/* The worker of slot `slot` exited: its counters go to `retired`. */
void dfws_metrics_release(dfws_metrics_t *m, dfws_metrics_slot_t *slot);
/* The Prometheus text exposition (format 0.0.4) of every slot, appended to
 * a malloc'd buffer; returns it (NUL-terminated) with its length, or NULL. */
char *dfws_metrics_render(const dfws_metrics_t *m, size_t *len);
/* Opens the --metrics-bind listener ("HOST:PORT", "[V6]:PORT" or "PORT"),
 * non-blocking. The fd, or -1 with the reason in err. */
int dfws_metrics_listen(const char *bind, char *err, size_t errlen);
/* Answers one scrape on an accepted connection (GET /metrics, else 404)
 * and closes it; waits at most a second for the request. */
void dfws_metrics_serve(const dfws_metrics_t *m, int fd);

#endif
