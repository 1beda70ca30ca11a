#include "listener.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int open_unix(const dfws_cli_t *cli)
{
    struct sockaddr_un sa;
    size_t n = strlen(cli->unix_socket);
    if (n >= sizeof(sa.sun_path)) {
        dfws_log_error("UNIX socket path too long: %s", cli->unix_socket);
        return -ENAMETOOLONG;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, cli->unix_socket, n + 1);
    /* A stale socket file from an earlier run would make bind fail; remove
     * it only when it is a socket, never a regular file. */
    struct stat st;
    if (!stat(cli->unix_socket, &st) && S_ISSOCK(st.st_mode))
        unlink(cli->unix_socket);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, cli->backlog)) {
        int err = errno;
        dfws_log_error("cannot listen on %s: %s", cli->unix_socket, strerror(err));
        close(fd);
        return -err;
    }
    return fd;
}

static int open_tcp(const dfws_cli_t *cli)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    const char *host = cli->bind;
    char unbracketed[256];

    /* daphne accepts "[::1]" as well as "::1" */
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof(unbracketed)) {
        memcpy(unbracketed, host + 1, hl - 2);
        unbracketed[hl - 2] = '\0';
        host = unbracketed;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof(port), "%d", cli->port);
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        dfws_log_error("cannot resolve bind address %s: %s", host, gai_strerror(rc));
        return -EINVAL;
    }
    int err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, cli->backlog)) {
            freeaddrinfo(res);
            return fd;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    dfws_log_error("cannot listen on %s:%d: %s", cli->bind, cli->port, strerror(err));
    return -(err ? err : EINVAL);
}

int dfws_listener_open(const dfws_cli_t *cli, int *is_unix)
{
    if (cli->fd >= 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getsockname(cli->fd, (struct sockaddr *)&ss, &len)) {
            int err = errno;
            dfws_log_error("--fd %d is not a socket: %s", cli->fd, strerror(err));
            return -err;
        }
        *is_unix = ss.ss_family == AF_UNIX;
        return cli->fd;
    }
    if (cli->unix_socket) {
        *is_unix = 1;
        return open_unix(cli);
    }
    *is_unix = 0;
    return open_tcp(cli);
}

/* ---- pre-fork supervisor ---------------------------------------------- */

#define QUICK_EXIT_SECONDS 3

typedef struct {
    pid_t pid;
    time_t started;
} worker_slot_t;

/* fork(2) with the caller's hooks around it; in the child, puts back the
 * signal dispositions and mask the worker expects. */
static pid_t spawn(const dfws_prefork_hooks_t *hooks, const sigset_t *old)
{
    if (hooks && hooks->before)
        hooks->before();
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, old, NULL);
        /* Accept one connection per wake-up so the workers share the load
         * instead of the first awake one taking the whole backlog. */
        setenv("UV_TCP_SINGLE_ACCEPT", "1", 1);
        if (hooks && hooks->after_child)
            hooks->after_child();
    } else if (hooks && hooks->after_parent) {
        hooks->after_parent();
    }
    return pid;
}

int dfws_prefork_run(int workers, const dfws_prefork_hooks_t *hooks)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);

    worker_slot_t *slots = calloc((size_t)workers, sizeof(*slots));
    if (!slots)
        return 1;
    for (int i = 0; i < workers; i++) {
        slots[i].pid = spawn(hooks, &old);
        if (slots[i].pid == 0) {
            free(slots);
            return DFWS_PREFORK_WORKER;
        }
        slots[i].started = time(NULL);
        if (slots[i].pid < 0)
            dfws_log_error("fork failed: %s", strerror(errno));
        else
            dfws_log_info("worker %d started (pid %d)", i, (int)slots[i].pid);
    }

    int stopping = 0, status_out = 0, alive = workers;
    while (alive > 0) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig < 0)
            continue;
        if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
            stopping = 1;
            dfws_log_info("received signal %d, stopping %d workers", sig, alive);
            for (int i = 0; i < workers; i++)
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGTERM);
            continue;
        }
        if (sig != SIGCHLD)
            continue;
        int wstatus;
        pid_t pid;
        while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
            for (int i = 0; i < workers; i++) {
                if (slots[i].pid != pid)
                    continue;
                int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
                slots[i].pid = 0;
                alive--;
                if (stopping)
                    break;
                /* A worker that *exits* with an error right away could not
                 * start (the app does not import, lifespan failed): starting
                 * it again would fail the same way. One killed by a signal
                 * (crash, OOM killer, an operator) is restarted. */
                if (WIFEXITED(wstatus) && code != 0 &&
                    time(NULL) - slots[i].started < QUICK_EXIT_SECONDS) {
                    dfws_log_error("worker %d (pid %d) exited with status %d right after start;"
                                   " stopping",
                                   i, (int)pid, code);
                    status_out = code;
                    stopping = 1;
                    for (int j = 0; j < workers; j++)
                        if (slots[j].pid > 0)
                            kill(slots[j].pid, SIGTERM);
                    break;
                }
                dfws_log_warn("worker %d (pid %d) died with status %d; restarting", i, (int)pid,
                              code);
                slots[i].pid = spawn(hooks, &old);
                if (slots[i].pid == 0) {
                    free(slots);
                    return DFWS_PREFORK_WORKER;
                }
                slots[i].started = time(NULL);
                if (slots[i].pid > 0)
                    alive++;
                break;
            }
        }
    }
    free(slots);
    return status_out;
}
