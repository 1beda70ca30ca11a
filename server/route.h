/* WebSocket endpoints server/ serves itself (the native df_websockets
 * endpoint, native.c), registered by path-matching function: a WebSocket
 * upgrade whose target a route matches goes to the route, not to the
 * application. ws_conn.c looks the table up; whoever sets an endpoint up
 * registers it (asgi/native.c for the native endpoint), and a C test can do
 * the same without Python.
 */
#ifndef DFWS_ROUTE_H
#define DFWS_ROUTE_H

#include <stddef.h>

typedef struct dfws_wsconn_s dfws_wsconn_t;

typedef struct dfws_ws_route_s {
    /* Whether the request target (path and query, as received) is the
     * endpoint's. */
    int (*matches)(const void *ud, const char *target, size_t len);
    /* Takes the upgrade over (state HANDSHAKE). 0, or -1: the server
     * answers 500. */
    int (*start)(void *ud, dfws_wsconn_t *wc);
    void *ud; /* the endpoint's, owned there */
} dfws_ws_route_t;

#define DFWS_WS_ROUTES_MAX 4

/* One server's routes (embedded in dfws_server_t). */
typedef struct dfws_routes_s {
    dfws_ws_route_t ws[DFWS_WS_ROUTES_MAX];
    size_t nws;
} dfws_routes_t;

/* Adds a route (copied). 0, or -1 when the table is full. */
int dfws_route_ws_add(dfws_routes_t *t, const dfws_ws_route_t *r);
/* Removes the routes of endpoint `ud`. */
void dfws_route_ws_remove(dfws_routes_t *t, const void *ud);
/* The first route matching `target`, or NULL. */
const dfws_ws_route_t *dfws_route_ws_find(const dfws_routes_t *t, const char *target, size_t len);

#endif
