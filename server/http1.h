/* HTTP/1.x on a connection: llhttp parsing into dfws_req_t (request.h),
 * response serialisation (Content-Length or chunked, keep-alive,
 * pipelining), the request's response calls (dfws_req_ops_t). A connection
 * speaks HTTP/1 from its accept until an upgrade hands it to ws_conn.c.
 *
 * HTTP/1's state (the parser, the input not parsed yet) lives in the same
 * allocation as the connection it speaks on: dfws_http1_conn_new() makes
 * both, and the connection's last close callback frees them.
 */
#ifndef DFWS_HTTP1_H
#define DFWS_HTTP1_H

#include "conn.h"

/* The protocol table conn.c calls (conn.h). */
extern const dfws_proto_t dfws_http1_proto;
/* Size of one connection with its HTTP/1 state (tests fail allocations of
 * this size). */
extern const size_t dfws_http1_conn_size;

/* A zeroed connection with HTTP/1 state for server `s`, its `dealloc` set;
 * NULL when out of memory. Then dfws_conn_accept (or dfws_conn_open_fd),
 * dfws_conn_start(c, ..., &dfws_http1_proto) and dfws_http1_start. */
dfws_conn_t *dfws_http1_conn_new(dfws_server_t *s);
/* Starts HTTP/1 on a started connection: parser, header timer, reading. */
void dfws_http1_start(dfws_conn_t *c);
/* Feeds received bytes as the connection's read would (unit tests). */
void dfws_http1_on_data(dfws_conn_t *c, const char *data, size_t len);
/* Whether the connection's input is parsed up to a request's end and waits
 * for its response (tests). */
int dfws_http1_paused(const dfws_conn_t *c);

#endif
