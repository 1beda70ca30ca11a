#include "listener.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* What is at a UNIX socket path before we bind it: nothing (0), a socket
 * file nobody listens on any more, left by a server that died (1), or a
 * live server (-EADDRINUSE, logged), or something else (-EEXIST, logged).
 * A connect() tells stale from live: the kernel refuses it when no socket
 * is bound behind the file. */
static int probe_unix_path(const char *path, const struct sockaddr_un *sa)
{
    struct stat st;
    if (lstat(path, &st)) {
        if (errno == ENOENT)
            return 0;
        dfws_log_error("cannot use %s: %s", path, strerror(errno));
        return -errno;
    }
    if (!S_ISSOCK(st.st_mode)) {
        dfws_log_error("cannot listen on %s: the path exists and is not a socket", path);
        return -EEXIST;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    int err = rc ? errno : 0;
    close(fd);
    if (err == ECONNREFUSED)
        return 1;
    if (err == 0 || err == EAGAIN || err == EINPROGRESS) {
        /* EAGAIN: a listener whose backlog is full, alive all the same */
        dfws_log_error("cannot listen on %s: another server is listening on it"
                       " (stop it first, or choose another path)",
                       path);
        return -EADDRINUSE;
    }
    dfws_log_error("cannot listen on %s: %s", path, strerror(err));
    return -err;
}

static int open_unix(const dfws_cli_t *cli)
{
    struct sockaddr_un sa;
    size_t n = strlen(cli->unix_socket);
    if (n >= sizeof(sa.sun_path)) {
        dfws_log_error("UNIX socket path too long: %s", cli->unix_socket);
        return -ENAMETOOLONG;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, cli->unix_socket, n + 1);
    int rc = probe_unix_path(cli->unix_socket, &sa);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        dfws_log_info("replacing the stale socket %s", cli->unix_socket);
        unlink(cli->unix_socket);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* chmod before listen(): no client can connect while the file still has
     * the umask's permissions. Two servers racing for one path: bind fails
     * for the second with EADDRINUSE. */
    const char *step = "bind";
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
        goto fail;
    step = "chmod";
    if (cli->socket_mode >= 0 && chmod(cli->unix_socket, (mode_t)cli->socket_mode))
        goto fail;
    step = "listen";
    if (listen(fd, cli->backlog))
        goto fail;
    return fd;
fail:;
    int err = errno;
    dfws_log_error("cannot listen on %s (%s): %s", cli->unix_socket, step, strerror(err));
    close(fd);
    return -err;
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
