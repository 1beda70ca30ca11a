/* Listening sockets and the pre-fork supervisor.
 *
 * The socket is opened before Python starts, so `--workers N` forks N
 * children that share one listening socket and the parent never runs Python.
 */
#ifndef DFWS_LISTENER_H
#define DFWS_LISTENER_H

#include "cli.h"

/* Opens the listening socket the command line asks for (TCP, UNIX socket or
 * an inherited fd). Returns the fd (caller owns it) or a negative errno after
 * logging why. *is_unix tells the socket family. */
int dfws_listener_open(const dfws_cli_t *cli, int *is_unix);

/* Runs one worker in this process: returns its exit status. */
typedef int (*dfws_worker_fn)(void *arg);

/* Forks `workers` children running fn(arg) and supervises them: SIGTERM and
 * SIGINT are forwarded, a worker that dies is restarted, a worker that exits
 * with an error within a few seconds of its start (it could not load the
 * app) stops the whole server with its status. Returns the parent's exit
 * status. */
int dfws_prefork_run(int workers, dfws_worker_fn fn, void *arg);

#endif
