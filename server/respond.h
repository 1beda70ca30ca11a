/* Answers the server gives itself, whatever protocol was speaking: error
 * responses (400, 408, 431, 503, a refused WebSocket handshake...) and the
 * access-log lines of events that are not a completed response
 * (WSCONNECTING, WSCONNECT, WSREJECT, WSDISCONNECT). Used by http1.c and
 * ws_conn.c; calls only down (conn.h, request.h, access_log.h).
 */
#ifndef DFWS_RESPOND_H
#define DFWS_RESPOND_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* Answers `status` with a short plain-text response and ends the
 * connection; the request on it, if any, is detached as disconnected. When
 * its response already started, the connection just closes. `method_known`:
 * whether c->req's method was parsed (metrics). */
void dfws_respond_error(dfws_conn_t *c, int status, int method_known);
/* Writes one access-log line in daphne's format when access logging is on;
 * status or size < 0 print as "-". */
void dfws_respond_log(dfws_conn_t *c, const char *action, const char *target, size_t tlen,
                      int status, int64_t size);

#endif
