/* The pre-fork supervisor: workers, rolling restarts, recycling, reload.
 *
 * The supervisor is the process that opened the listening socket. It forks
 * the workers, which share that socket, and never closes its own copy
 * while it runs, so the port accepts through every restart: connections
 * wait in the kernel's backlog until a worker takes them.
 *
 * Each worker gets one end of a socketpair, its channel:
 *
 *     worker -> supervisor   'R'  ready: listening, lifespan startup done
 *                            'Q'  quota: --limit-max-requests reached
 *     supervisor -> worker   'D'  drain for a restart (WebSockets get 1012)
 *     EOF at the worker          the supervisor is gone: shut down (1001)
 *
 * A worker is replaced in one way only: a new worker is started, and once it
 * reports ready the old one is told to drain. SIGHUP, --reload, and the
 * recycling limits (requests, RSS, lifetime) all mark workers "to replace";
 * replacements run one at a time. SIGTERM/SIGINT stop everything.
 */
#ifndef DFWS_SUPERVISOR_H
#define DFWS_SUPERVISOR_H

#include "cli.h"

/* What the supervisor lets its caller do around each fork (the embedding
 * interpreter must prepare for it: CPython's PyOS_*Fork*). Any hook may be
 * NULL. */
typedef struct dfws_prefork_hooks_s {
    void (*before)(void);
    void (*after_parent)(void);
    void (*after_child)(void);
} dfws_prefork_hooks_t;

/* Returned by dfws_supervisor_run() in a worker. */
#define DFWS_SUPERVISOR_WORKER (-1)

/* Messages on a worker's channel (see above). */
enum {
    DFWS_SUPERVISOR_READY = 'R',
    DFWS_SUPERVISOR_QUOTA = 'Q',
    DFWS_SUPERVISOR_DRAIN = 'D',
};

/* Runs the supervisor for `cli` on the listening socket `listen_fd`. Like
 * fork(2) it returns twice: in each worker it returns DFWS_SUPERVISOR_WORKER
 * (signals unblocked and back to their defaults, after hooks->after_child)
 * and the caller runs the worker, then exits; in the supervisor it returns
 * only when every worker is gone, with the exit status: 0 after SIGTERM or
 * SIGINT, the worker's status when workers could not start (a worker that
 * exits with an error before it is ready, the first time: the application
 * does not load), 1 after repeated crashes at start or a setup error. The
 * supervisor closes its copy of `listen_fd` when it stops. */
int dfws_supervisor_run(const dfws_cli_t *cli, int listen_fd, const dfws_prefork_hooks_t *hooks);

/* In a worker: the fd of its channel, or -1 (no supervisor). The worker
 * owns it; it lives as long as the process. */
int dfws_supervisor_channel(void);

/* In a worker: sends one message byte to the supervisor. 0, or -1 when
 * there is no supervisor or the write failed. Safe from any thread and
 * without the GIL (one write(2)). */
int dfws_supervisor_notify(char msg);

#endif
