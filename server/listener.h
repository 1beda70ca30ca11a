/* Listening sockets and the pre-fork supervisor.
 *
 * The socket is opened before any worker starts, so `--workers N` forks N
 * children that share one listening socket. The parent only supervises: it
 * never imports the application nor runs a loop.
 */
#ifndef DFWS_LISTENER_H
#define DFWS_LISTENER_H

#include "cli.h"

/* Opens the listening socket the command line asks for (TCP, UNIX socket or
 * an inherited fd). Returns the fd (caller owns it) or a negative errno after
 * logging why. *is_unix tells the socket family. */
int dfws_listener_open(const dfws_cli_t *cli, int *is_unix);

/* What the pre-fork supervisor lets its caller do around each fork (the
 * embedding interpreter must prepare for it: CPython's PyOS_*Fork*). Any
 * hook may be NULL. */
typedef struct dfws_prefork_hooks_s {
    void (*before)(void);
    void (*after_parent)(void);
    void (*after_child)(void);
} dfws_prefork_hooks_t;

/* Returned by dfws_prefork_run() in a worker. */
#define DFWS_PREFORK_WORKER (-1)

/* Forks `workers` children and supervises them like fork(2) returns twice:
 * in each child the call returns DFWS_PREFORK_WORKER (signals reset to
 * their defaults and unblocked, after hooks->after_child) and the caller
 * runs the worker, then exits; in the parent it returns only when every
 * worker is gone, with the server's exit status. SIGTERM and SIGINT are
 * forwarded; a worker that dies is restarted (the child then returns from
 * this call too); a worker that exits with an error within a few seconds
 * of its start (it could not load the app) stops the whole server with its
 * status. */
int dfws_prefork_run(int workers, const dfws_prefork_hooks_t *hooks);

#endif
