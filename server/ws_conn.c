#include "ws_conn.h"
#include "http1.h"

/* Until the WebSocket layer is wired in, no connection is ever upgraded:
 * ws_request is not set, so upgrade requests are served as plain HTTP. These
 * entry points close the connection if reached. */
void dfws_wsconn_on_data(dfws_conn_t *c, const char *data, size_t len)
{
    (void)data;
    (void)len;
    dfws_conn_close(c);
}

void dfws_wsconn_on_eof(dfws_conn_t *c)
{
    dfws_conn_close(c);
}

void dfws_wsconn_on_timer(dfws_conn_t *c)
{
    dfws_conn_close(c);
}

void dfws_wsconn_on_drain(dfws_conn_t *c)
{
    (void)c;
}

void dfws_wsconn_on_close(dfws_conn_t *c)
{
    (void)c;
}

void dfws_wsconn_take_over(dfws_conn_t *c, const char *rest, size_t len)
{
    (void)rest;
    (void)len;
    dfws_conn_close(c);
}
