/* HTTP/1.x on a connection: llhttp parsing into dfws_req_t, response
 * serialisation (Content-Length or chunked, keep-alive, pipelining), error
 * answers. The application layer drives a request through dfws_req_*.
 */
#ifndef DFWS_HTTP1_H
#define DFWS_HTTP1_H

#include "conn.h"

/* Prepares the parser of a new connection. */
void dfws_http1_init(dfws_conn_t *c);
/* Feeds received bytes (called by conn.c's read callback). */
void dfws_http1_on_data(dfws_conn_t *c, const char *data, size_t len);
/* The peer closed its side. */
void dfws_http1_on_eof(dfws_conn_t *c);
/* A timer of the connection fired. */
void dfws_http1_on_timer(dfws_conn_t *c, int kind);
/* Iterates the elements of a comma-separated header value (RFC 9110 5.6.1),
 * skipping empty elements and the whitespace around each. *pos starts at 0;
 * returns 1 with the next element in *elem / *elen, 0 at the end. */
int dfws_http_list_next(const char *v, size_t len, size_t *pos, const char **elem, size_t *elen);
/* Whether the request asks for a WebSocket upgrade. */
int dfws_req_is_websocket(const dfws_req_t *r);
/* Writes one access-log line in daphne's format when access logging is on;
 * status or size < 0 print as "-". */
void dfws_http1_access_log(dfws_conn_t *c, const char *action, const char *target, size_t tlen,
                           int status, int64_t size);
/* Answers with a short error response and closes. */
void dfws_http1_error(dfws_conn_t *c, int status);
/* Parses what is buffered in c->in (after a resume). */
void dfws_http1_process(dfws_conn_t *c);

/* ---- requests, as the application layer sees them ---------------------- */

/* Takes a reference for the caller; dfws_req_release drops it. */
void dfws_req_retain(dfws_req_t *r);
/* Drops a reference; the last one frees the request. */
void dfws_req_release(dfws_req_t *r);

static inline const char *dfws_req_base(const dfws_req_t *r)
{
    return r->head.base;
}

/* Hands out the buffered body: copies nothing, the caller must consume
 * `*len` bytes with dfws_req_body_consume before anything else runs.
 * *more is 0 when these bytes end the body. */
void dfws_req_body_peek(dfws_req_t *r, const char **data, size_t *len, int *more);
void dfws_req_body_consume(dfws_req_t *r);
/* Sends "100 Continue" if the client asked for it and it is still useful. */
void dfws_req_continue(dfws_req_t *r);

/* Response. Each returns 0, -EINVAL for a bad value (the message explains,
 * via `*err`), or -EPIPE when the request is detached (ignored by callers). */
int dfws_req_response_start(dfws_req_t *r, int status, const char **err);
int dfws_req_response_header(dfws_req_t *r, const char *name, size_t nlen, const char *value,
                             size_t vlen, const char **err);
int dfws_req_response_body(dfws_req_t *r, const char *data, size_t len, int more,
                           const char **err);
/* Forgets a response whose head was not written yet (a header the
 * application gave was refused): it may start again, or be aborted with a
 * clean error response. No-op once the head is out. */
void dfws_req_response_cancel(dfws_req_t *r);
/* The application finished without completing the response: answer 500
 * when nothing was sent yet, else close the connection. */
void dfws_req_abort(dfws_req_t *r, int status);
/* Bytes waiting to be written on the request's connection (0 if detached). */
size_t dfws_req_write_pending(const dfws_req_t *r);

#endif
