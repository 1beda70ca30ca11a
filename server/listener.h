/* Listening sockets.
 *
 * The socket is opened before any worker starts, so `--workers N` forks N
 * children that share one listening socket (server/supervisor.h).
 */
#ifndef DFWS_LISTENER_H
#define DFWS_LISTENER_H

#include "cli.h"

/* Opens the listening socket the command line asks for (TCP, UNIX socket or
 * an inherited fd). Returns the fd (caller owns it) or a negative errno after
 * logging why. *is_unix tells the socket family.
 *
 * A UNIX socket path that holds a stale socket (nothing accepts a connect)
 * is replaced; a live one, or any other kind of file, is an error:
 * two servers never share or steal a path. --socket-mode is applied to the
 * new socket file before it accepts connections. */
int dfws_listener_open(const dfws_cli_t *cli, int *is_unix);

#endif
