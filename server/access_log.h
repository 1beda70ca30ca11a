/* The access log: one line per HTTP request and per WebSocket step, in
 * daphne's format or in --access-log-format's, formatted in C and written in
 * batches.
 *
 * Lines accumulate in one buffer owned by the server. They are written once
 * per loop turn (an unreferenced uv_check handle, after the turn's I/O
 * callbacks), or at once above 32 KiB, either straight to a file descriptor
 * (stdout or the --access-log file: no Python, no GIL) or handed to a sink as
 * one batch (asgi/ sends it through Python's `logging` when the project
 * configured its own handlers on the `dfws.access` logger).
 */
#ifndef DFWS_ACCESS_LOG_H
#define DFWS_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "buf.h"

struct dfws_conn_s;
struct dfws_req_s;
struct dfws_access_fmt_s;

/* Receives complete lines, each ending with '\n'; valid only for the call. */
typedef void (*dfws_access_sink_fn)(void *ud, const char *lines, size_t len);

typedef struct dfws_access_log_s {
    int on;
    int fd; /* where lines are written, or -1: the sink gets them */
    dfws_access_sink_fn sink;
    void *sink_ud;
    dfws_buf_t pending; /* formatted lines not written yet */
    uv_check_t check;   /* flushes once per loop turn; closed by dfws_access_log_close */
    int check_ready;
    time_t date_sec;               /* the second `date` was formatted for */
    char date[32];                 /* "02/Dec/2026:10:41:15" (local time, as daphne) */
    struct dfws_access_fmt_s *fmt; /* NULL: daphne's line */
} dfws_access_log_t;

/* What one line tells. `req` (may be NULL) gives the headers, the start time
 * and the protocol; the client is the connection's, or the one its last
 * request named through --proxy-headers. */
typedef struct dfws_access_entry_s {
    const char *action; /* method, or WSCONNECTING / WSCONNECT / WSREJECT / WSDISCONNECT */
    const char *target;
    size_t target_len;
    int status;   /* < 0: "-" */
    int64_t size; /* < 0: "-" */
    const struct dfws_req_s *req;
} dfws_access_entry_t;

/* Checks an --access-log-format string: 0, or -1 with the reason in err. */
int dfws_access_format_check(const char *format, char *err, size_t errlen);

/* Prepares L on `loop` (off, with no output, until dfws_access_log_set).
 * `format` NULL: daphne's line. 0 or a negative libuv error. */
int dfws_access_log_init(dfws_access_log_t *L, uv_loop_t *loop, const char *format);
/* Where lines go: fd >= 0 (not owned: the caller keeps it open), or the
 * sink; on 0 turns the log off. Pending lines are written first. */
void dfws_access_log_set(dfws_access_log_t *L, int on, int fd, dfws_access_sink_fn sink, void *ud);
/* Adds one line (when the log is on). */
void dfws_access_log_add(dfws_access_log_t *L, struct dfws_conn_s *c, const dfws_access_entry_t *e);
/* Writes what is pending now. */
void dfws_access_log_flush(dfws_access_log_t *L);
/* Flushes, closes the handle and frees the buffers. The handle's memory is
 * the caller's, which keeps it until the loop ran its close callback. */
void dfws_access_log_close(dfws_access_log_t *L);

#endif
