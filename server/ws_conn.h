/* A connection after a WebSocket upgrade: the WebSocket codec
 * (websocket.c) on one side, the application (ASGI or the native
 * df_websockets endpoint) on the other. conn.c routes its events here once
 * c->upgraded is set. */
#ifndef DFWS_WS_CONN_H
#define DFWS_WS_CONN_H

#include "conn.h"

void dfws_wsconn_on_data(dfws_conn_t *c, const char *data, size_t len);
void dfws_wsconn_on_eof(dfws_conn_t *c);
void dfws_wsconn_on_timer(dfws_conn_t *c);
void dfws_wsconn_on_drain(dfws_conn_t *c);
void dfws_wsconn_on_close(dfws_conn_t *c);

#endif
