/* The server: one listening socket, its connections, on a given uv_loop_t
 * (uvloop's own loop: see ../DESIGN.md). It accepts connections and hands
 * them to HTTP/1; its state, which the protocols share, is context.h's.
 * Protocol code calls the application through dfws_app_ops_t, which asgi/
 * implements; server/ never sees Python.
 */
#ifndef DFWS_SERVER_H
#define DFWS_SERVER_H

#include "context.h"

/* Starts serving on the listening socket `fd` (ownership passes to the
 * server). `cli` and `ops` must outlive the server. Returns 0 or a negative
 * libuv error. */
int dfws_server_start(dfws_server_t *s, uv_loop_t *loop, const dfws_cli_t *cli, int fd, int is_unix,
                      const dfws_app_ops_t *ops, void *ops_ud);
/* Stops accepting; closes connections that have no request in progress and
 * makes the others close once their response is complete. WebSockets are
 * closed with 1001 (going away), or with 1012 (service restart) when
 * `restart`: this worker is being replaced and clients should reconnect at
 * once. A restart also keeps connections that were accepted but have not
 * sent a request yet: their client sends its first request on them and
 * would not retry it, as it retries on a reused keep-alive connection. */
void dfws_server_shutdown(dfws_server_t *s, int restart);
/* Closes the listener and every connection. The handles finish closing (and
 * their memory is freed) in the loop's next iteration: the caller runs the
 * loop once more before closing it (dfws.runner does). */
void dfws_server_close(dfws_server_t *s);

#endif
