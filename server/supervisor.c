/* The pre-fork supervisor (see supervisor.h for the protocol).
 *
 * One poll() loop over a signalfd (SIGTERM, SIGINT, SIGHUP, SIGCHLD), the
 * workers' channels and, with --reload, an inotify descriptor; timers
 * (drain deadlines, lifetimes, RSS samples, backoffs) bound its timeout.
 * After every event schedule() compares what runs with what is wanted and
 * starts or drains workers. The supervisor holds the embedding
 * interpreter's GIL and runs no other thread: forking is safe, and it never
 * imports the application, so each worker starts from a clean interpreter
 * and loads the code that is on disk now.
 */
#include "supervisor.h"

#include "log.h"
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILL_MARGIN 10.0     /* s a stopping worker gets beyond its drain before SIGKILL */
#define MAX_START_FAILURES 5 /* crashes in a row before the first ready worker: give up */
#define BACKOFF_FIRST 0.5    /* s before starting again after a failed start, doubling */
#define BACKOFF_MAX 30.0
#define FORK_BACKOFF_FIRST 0.1
#define FORK_BACKOFF_MAX 5.0
#define RSS_INTERVAL 1.0  /* s between two samples of the workers' RSS */
#define RELOAD_DELAY 0.25 /* s of quiet gathered after a change (editors write twice) */
#define WATCH_DEPTH 32

/* In a worker: its end of the channel. */
static int channel_fd = -1;

enum { W_STARTING, W_SERVING, W_DRAINING };

typedef struct worker_s {
    pid_t pid;
    int fd; /* supervisor's end of the channel; -1 after EOF */
    int state;
    int id;             /* worker number in the logs, never reused */
    unsigned gen;       /* generation it belongs to: SIGHUP and --reload start a new one */
    const char *retire; /* why it must be replaced (quota, RSS, lifetime), or NULL */
    double started;
    double kill_at;             /* 0, or when SIGKILL ends a stop that was not heeded */
    dfws_metrics_slot_t *mslot; /* its --metrics-bind slot, or NULL */
} worker_t;

typedef struct sup_s {
    const dfws_cli_t *cli;
    const dfws_prefork_hooks_t *hooks;
    sigset_t old_mask;
    int sfd;       /* signalfd */
    int ifd;       /* inotify, -1 without --reload */
    int listen_fd; /* our copy of the listening socket, -1 once closed */
    worker_t *w;   /* live workers (forked, not reaped yet) */
    int nw, cap;
    int next_id;
    unsigned gen;
    const char *gen_reason; /* why the current generation was started */
    int stopping;
    int status;
    int start_failures; /* workers that died before ready, in a row */
    double spawn_at;    /* no fork before this (backoff) */
    double fork_backoff;
    int wait_for_change; /* --reload: the code does not start; wait for an edit */
    double next_rss;
    double reload_at;  /* 0, or when the changes seen are acted upon */
    char changed[256]; /* first file of those changes, for the log */
    char **wd_path;    /* inotify watch descriptor -> directory (owned) */
    int n_wd;
    int n_watched;
    dfws_metrics_t *metrics; /* --metrics-bind: the workers' slots, or NULL */
    int metrics_fd;          /* its listener, or -1 */
} sup_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void describe_status(int wstatus, char *out, size_t len)
{
    if (WIFEXITED(wstatus))
        snprintf(out, len, "exited with status %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        snprintf(out, len, "was killed by signal %d (%s)", WTERMSIG(wstatus),
                 strsignal(WTERMSIG(wstatus)));
    else
        snprintf(out, len, "ended (wait status %#x)", wstatus);
}

static double backoff(int failures)
{
    double d = BACKOFF_FIRST;
    for (int i = 1; i < failures && d < BACKOFF_MAX; i++)
        d *= 2;
    return d < BACKOFF_MAX ? d : BACKOFF_MAX;
}

/* ---- workers ---------------------------------------------------------- */

static void free_watches(sup_t *S)
{
    for (int i = 0; i < S->n_wd; i++)
        free(S->wd_path[i]);
    free(S->wd_path);
    S->wd_path = NULL;
    S->n_wd = 0;
}

/* In the new child: drop everything that belongs to the supervisor, put
 * back the signal dispositions and mask a worker expects. */
static void become_worker(sup_t *S, int fd)
{
    for (int i = 0; i < S->nw; i++)
        if (S->w[i].fd >= 0)
            close(S->w[i].fd);
    close(S->sfd);
    if (S->ifd >= 0)
        close(S->ifd);
    if (S->metrics_fd >= 0)
        close(S->metrics_fd);
    free(S->w);
    free_watches(S);
    channel_fd = fd;
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    /* Accept one connection per wake-up so the workers share the load
     * instead of the first awake one taking the whole backlog. */
    setenv("UV_TCP_SINGLE_ACCEPT", "1", 1);
    /* The hook installs the worker's start-up signal handlers; signals
     * that arrive meanwhile stay pending until the mask is restored. */
    if (S->hooks && S->hooks->after_child)
        S->hooks->after_child();
    sigprocmask(SIG_SETMASK, &S->old_mask, NULL);
}

/* Forks one worker of the current generation. Returns 1 in the child, 0 in
 * the supervisor, -1 when no worker could be started (logged; retried
 * after a backoff, never counted as a live worker). */
static int spawn(sup_t *S, double now)
{
    if (S->nw == S->cap) {
        int cap = S->cap ? S->cap * 2 : 8;
        worker_t *w = realloc(S->w, (size_t)cap * sizeof(*w));
        if (!w) {
            S->spawn_at = now + 1.0;
            return -1;
        }
        S->w = w;
        S->cap = cap;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        dfws_log_error("cannot create a worker's channel: %s", strerror(errno));
        S->spawn_at = now + 1.0;
        return -1;
    }
    dfws_metrics_slot_t *mslot = S->metrics ? dfws_metrics_claim(S->metrics, S->next_id) : NULL;
    if (S->metrics && !mslot)
        dfws_log_warn("metrics: no free slot; worker %d is not counted", S->next_id);
    if (S->hooks && S->hooks->before)
        S->hooks->before();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        dfws_metrics = mslot;
        become_worker(S, sv[1]);
        return 1;
    }
    int err = errno;
    if (S->hooks && S->hooks->after_parent)
        S->hooks->after_parent();
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        if (mslot)
            dfws_metrics_release(S->metrics, mslot);
        S->fork_backoff = S->fork_backoff > 0 ? S->fork_backoff * 2 : FORK_BACKOFF_FIRST;
        if (S->fork_backoff > FORK_BACKOFF_MAX)
            S->fork_backoff = FORK_BACKOFF_MAX;
        S->spawn_at = now + S->fork_backoff;
        dfws_log_error("cannot start a worker: fork failed: %s; trying again in %.1f s",
                       strerror(err), S->fork_backoff);
        return -1;
    }
    S->fork_backoff = 0;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    worker_t *w = &S->w[S->nw++];
    memset(w, 0, sizeof(*w));
    w->pid = pid;
    w->fd = sv[0];
    w->state = W_STARTING;
    w->id = S->next_id++;
    w->gen = S->gen;
    w->started = now;
    w->mslot = mslot;
    if (mslot)
        __atomic_store_n(&mslot->pid, (int64_t)pid, __ATOMIC_RELAXED);
    if (S->metrics && w->id >= S->cli->workers)
        __atomic_add_fetch(&S->metrics->worker_restarts, 1, __ATOMIC_RELAXED);
    dfws_log_info("worker %d started (pid %d)", w->id, (int)pid);
    return 0;
}

static void stop_worker(sup_t *S, worker_t *w, double now, double within)
{
    kill(w->pid, SIGTERM);
    w->state = W_DRAINING;
    if (!w->kill_at)
        w->kill_at = now + within + KILL_MARGIN;
}

/* The worker closes its listener, finishes its HTTP requests, closes its
 * WebSockets with 1012 and exits. Its replacement is already serving. */
static void drain(sup_t *S, worker_t *w, double now)
{
    const char msg = DFWS_SUPERVISOR_DRAIN;
    dfws_log_info("worker %d (pid %d) drains: %s", w->id, (int)w->pid,
                  w->retire ? w->retire : S->gen_reason);
    if (w->fd < 0 || send(w->fd, &msg, 1, MSG_NOSIGNAL) != 1) {
        stop_worker(S, w, now, dfws_cli_graceful_timeout(S->cli));
        return;
    }
    w->state = W_DRAINING;
    w->kill_at = now + dfws_cli_graceful_timeout(S->cli) + KILL_MARGIN;
}

static void begin_stop(sup_t *S, int status, double now)
{
    if (S->stopping)
        return;
    S->stopping = 1;
    S->status = status;
    /* Nobody accepts any more once the workers closed theirs: new clients
     * are refused (and go elsewhere) instead of waiting in the backlog. */
    if (S->listen_fd >= 0) {
        close(S->listen_fd);
        S->listen_fd = -1;
    }
    for (int i = 0; i < S->nw; i++)
        stop_worker(S, &S->w[i], now, S->cli->shutdown_timeout);
}

/* SIGHUP or --reload: every worker is to be replaced, one at a time. */
static void restart_all(sup_t *S, const char *why, double now)
{
    S->gen++;
    S->gen_reason = why;
    S->start_failures = 0;
    S->spawn_at = 0;
    S->wait_for_change = 0;
    int n = 0;
    for (int i = 0; i < S->nw; i++) {
        worker_t *w = &S->w[i];
        if (w->state == W_SERVING)
            n++;
        else if (w->state == W_STARTING) /* may have loaded the code before the change */
            stop_worker(S, w, now, S->cli->shutdown_timeout);
    }
    dfws_log_info("%s: replacing %d worker%s, one at a time", why, n, n == 1 ? "" : "s");
}

static int count_state(const sup_t *S, int state)
{
    int n = 0;
    for (int i = 0; i < S->nw; i++)
        n += S->w[i].state == state;
    return n;
}

/* A worker died before it reported ready. */
static void start_failed(sup_t *S, const worker_t *w, int wstatus, double now)
{
    char how[96];
    describe_status(wstatus, how, sizeof(how));
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    int serving = count_state(S, W_SERVING);
    S->start_failures++;
    int new_serving = 0;
    for (int i = 0; i < S->nw; i++)
        new_serving += S->w[i].state == W_SERVING && S->w[i].gen == S->gen;
    if (serving > 0 && new_serving == 0) {
        /* A deploy that does not start must not take the site down: the
         * workers of the previous start keep serving. (Once a new worker
         * did start, a failure is not the code's: try again, below.) */
        int adopted = 0;
        for (int i = 0; i < S->nw; i++)
            if (S->w[i].state == W_SERVING && S->w[i].gen != S->gen) {
                S->w[i].gen = S->gen;
                adopted++;
            }
        if (adopted) {
            dfws_log_error("worker %d (pid %d) %s before it was ready: restart abandoned, the %d"
                           " running workers keep serving; fix the application, then %s",
                           w->id, (int)w->pid, how, serving,
                           S->cli->reload ? "save a file" : "send SIGHUP again");
            S->wait_for_change = S->cli->reload;
            return;
        }
    }
    if (serving > 0) {
        S->spawn_at = now + backoff(S->start_failures);
        dfws_log_error("worker %d (pid %d) %s before it was ready; %d workers keep serving;"
                       " trying again in %.1f s",
                       w->id, (int)w->pid, how, serving, S->spawn_at - now);
        return;
    }
    if (S->cli->reload) {
        dfws_log_error("worker %d (pid %d) %s before it was ready; waiting for a file to change",
                       w->id, (int)w->pid, how);
        S->wait_for_change = 1;
        return;
    }
    if (WIFEXITED(wstatus) && code != 0) {
        /* The application does not load or its lifespan startup failed:
         * starting it again would fail the same way. */
        dfws_log_error("worker %d (pid %d) %s before it was ready: the application cannot"
                       " start (see above); stopping",
                       w->id, (int)w->pid, how);
        begin_stop(S, code, now);
        return;
    }
    if (S->start_failures >= MAX_START_FAILURES) {
        dfws_log_error("worker %d (pid %d) %s before it was ready, %d times in a row; stopping",
                       w->id, (int)w->pid, how, S->start_failures);
        begin_stop(S, code ? code : 1, now);
        return;
    }
    S->spawn_at = now + backoff(S->start_failures);
    dfws_log_warn("worker %d (pid %d) %s before it was ready; starting another in %.1f s"
                  " (attempt %d of %d)",
                  w->id, (int)w->pid, how, S->spawn_at - now, S->start_failures + 1,
                  MAX_START_FAILURES);
}

static void on_worker_exit(sup_t *S, const worker_t *w, int wstatus, double now)
{
    char how[96];
    describe_status(wstatus, how, sizeof(how));
    if (S->stopping) {
        dfws_log_debug("worker %d (pid %d) %s", w->id, (int)w->pid, how);
        return;
    }
    if (w->state == W_DRAINING) {
        if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
            dfws_log_info("worker %d (pid %d) retired", w->id, (int)w->pid);
        else
            dfws_log_warn("worker %d (pid %d) %s while draining", w->id, (int)w->pid, how);
        return;
    }
    if (w->state == W_STARTING) {
        start_failed(S, w, wstatus, now);
        return;
    }
    /* schedule() starts its replacement */
    dfws_log_warn("worker %d (pid %d) %s; starting another", w->id, (int)w->pid, how);
}

static void reap(sup_t *S, double now)
{
    int wstatus;
    pid_t pid;
    while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
        for (int i = 0; i < S->nw; i++) {
            if (S->w[i].pid != pid)
                continue;
            worker_t w = S->w[i];
            S->w[i] = S->w[--S->nw];
            if (w.fd >= 0)
                close(w.fd);
            if (w.mslot)
                dfws_metrics_release(S->metrics, w.mslot);
            on_worker_exit(S, &w, wstatus, now);
            break;
        }
    }
}

static void on_message(sup_t *S, worker_t *w, char msg)
{
    if (msg == DFWS_SUPERVISOR_READY && w->state == W_STARTING) {
        w->state = W_SERVING;
        S->start_failures = 0;
        dfws_log_info("worker %d (pid %d) ready", w->id, (int)w->pid);
    } else if (msg == DFWS_SUPERVISOR_QUOTA && w->state == W_SERVING && !w->retire) {
        w->retire = "it served its --limit-max-requests";
        dfws_log_info("worker %d (pid %d) reached its request limit: replacing it", w->id,
                      (int)w->pid);
    }
}

static void read_channel(sup_t *S, int fd)
{
    for (int i = 0; i < S->nw; i++) {
        worker_t *w = &S->w[i];
        if (w->fd != fd)
            continue;
        char buf[64];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            for (ssize_t j = 0; j < n; j++)
                on_message(S, w, buf[j]);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(fd); /* the worker is exiting: SIGCHLD follows */
            w->fd = -1;
        }
        return;
    }
}

static long rss_mib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long size = 0, resident = -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    if (resident < 0)
        return -1;
    return (long)((double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0));
}

/* Lifetimes and RSS mark workers to replace, a quiet --reload starts a new
 * generation, deadlines kill; schedule() acts upon the marks right after.
 * Returns the next time something is due here (0: nothing). */
static double run_timers(sup_t *S, double now)
{
    const dfws_cli_t *cli = S->cli;
    double next = 0;
#define DUE(t)                                                                                     \
    do {                                                                                           \
        double t_ = (t);                                                                           \
        if (t_ > 0 && (next == 0 || t_ < next))                                                    \
            next = t_;                                                                             \
    } while (0)
    int sample_rss = cli->workers_max_rss > 0 && !S->stopping && now >= S->next_rss;
    if (sample_rss)
        S->next_rss = now + RSS_INTERVAL;
    for (int i = 0; i < S->nw; i++) {
        worker_t *w = &S->w[i];
        if (w->kill_at > 0 && now >= w->kill_at) {
            dfws_log_warn("worker %d (pid %d) did not stop in time: killing it", w->id,
                          (int)w->pid);
            kill(w->pid, SIGKILL);
            w->kill_at = 0;
        }
        DUE(w->kill_at);
        if (w->state != W_SERVING || w->retire || S->stopping)
            continue;
        if (cli->workers_lifetime > 0) {
            if (now >= w->started + cli->workers_lifetime) {
                w->retire = "it reached its --workers-lifetime";
                dfws_log_info("worker %d (pid %d) reached its lifetime: replacing it", w->id,
                              (int)w->pid);
            } else {
                DUE(w->started + cli->workers_lifetime);
            }
        }
        long mib;
        if (sample_rss && !w->retire && (mib = rss_mib(w->pid)) > cli->workers_max_rss) {
            w->retire = "its memory exceeded --workers-max-rss";
            dfws_log_info("worker %d (pid %d) uses %ld MiB, above --workers-max-rss %ld:"
                          " replacing it",
                          w->id, (int)w->pid, mib, cli->workers_max_rss);
        }
    }
    if (cli->workers_max_rss > 0 && !S->stopping)
        DUE(S->next_rss);
    if (S->reload_at > 0 && !S->stopping) {
        if (now >= S->reload_at) {
            S->reload_at = 0;
            dfws_log_info("%s changed", S->changed);
            restart_all(S, "--reload", now);
        } else {
            DUE(S->reload_at);
        }
    }
#undef DUE
    return next;
}

/* Compares the workers that run with those wanted; starts or drains.
 * Returns 1 in a new worker (the caller returns at once), else 0. */
static int schedule(sup_t *S, double now)
{
    if (S->stopping)
        return 0;
    int want = S->cli->workers;
    int fresh_serving = 0, fresh_starting = 0, stale_serving = 0;
    for (int i = 0; i < S->nw; i++) {
        const worker_t *w = &S->w[i];
        int stale = w->gen != S->gen || w->retire;
        if (w->state == W_STARTING)
            fresh_starting++;
        else if (w->state == W_SERVING && stale)
            stale_serving++;
        else if (w->state == W_SERVING)
            fresh_serving++;
    }
    /* A replacement is ready: the oldest worker to replace drains. */
    while (stale_serving > 0 && fresh_serving + stale_serving > want) {
        worker_t *oldest = NULL;
        for (int i = 0; i < S->nw; i++) {
            worker_t *w = &S->w[i];
            if (w->state == W_SERVING && (w->gen != S->gen || w->retire) &&
                (!oldest || w->id < oldest->id))
                oldest = w;
        }
        drain(S, oldest, now);
        stale_serving--;
    }
    if (now < S->spawn_at || S->wait_for_change)
        return 0;
    /* Missing workers (start, a death) are started together; replacements
     * one at a time, each only once the previous one is ready. */
    int missing = want - (fresh_serving + fresh_starting + stale_serving);
    if (missing <= 0 && stale_serving > 0 && fresh_starting == 0 && fresh_serving < want)
        missing = 1;
    for (; missing > 0; missing--) {
        int rc = spawn(S, now);
        if (rc == 1)
            return 1;
        if (rc < 0)
            break;
    }
    return 0;
}

/* ---- --reload: inotify over the watched trees ---------------------------- */

static int skip_dir(const char *parent, const char *name)
{
    if (name[0] == '.' || !strcmp(name, "__pycache__") || !strcmp(name, "node_modules") ||
        !strcmp(name, "site-packages"))
        return 1;
    char cfg[4096];
    struct stat st;
    snprintf(cfg, sizeof(cfg), "%s/%s/pyvenv.cfg", parent, name); /* a virtualenv */
    return !stat(cfg, &st);
}

static void watch_tree(sup_t *S, const char *dir, int depth)
{
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                          IN_ONLYDIR | IN_DONT_FOLLOW;
    int wd = inotify_add_watch(S->ifd, dir, mask);
    if (wd < 0) {
        if (errno == ENOSPC)
            dfws_log_warn("--reload: cannot watch %s: too many watches (raise"
                          " fs.inotify.max_user_watches)",
                          dir);
        else
            dfws_log_warn("--reload: cannot watch %s: %s", dir, strerror(errno));
        return;
    }
    if (wd >= S->n_wd) {
        int n = wd + 64;
        char **p = realloc(S->wd_path, (size_t)n * sizeof(*p));
        if (!p)
            return;
        memset(p + S->n_wd, 0, (size_t)(n - S->n_wd) * sizeof(*p));
        S->wd_path = p;
        S->n_wd = n;
    }
    if (!S->wd_path[wd])
        S->n_watched++;
    free(S->wd_path[wd]);
    S->wd_path[wd] = strdup(dir);
    if (depth >= WATCH_DEPTH)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || skip_dir(dir, e->d_name))
            continue;
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        struct stat st;
        if (e->d_type == DT_DIR ||
            (e->d_type == DT_UNKNOWN && !lstat(path, &st) && S_ISDIR(st.st_mode)))
            watch_tree(S, path, depth + 1);
    }
    closedir(d);
}

static int reload_setup(sup_t *S)
{
    S->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (S->ifd < 0) {
        dfws_log_error("--reload: inotify: %s", strerror(errno));
        return -1;
    }
    const dfws_cli_t *cli = S->cli;
    for (int i = 0; i < cli->n_reload_dirs; i++) {
        struct stat st;
        if (stat(cli->reload_dirs[i], &st) || !S_ISDIR(st.st_mode)) {
            dfws_log_error("--reload-dir %s: not a directory", cli->reload_dirs[i]);
            return -1;
        }
    }
    if (cli->n_reload_dirs == 0)
        watch_tree(S, ".", 0);
    for (int i = 0; i < cli->n_reload_dirs; i++)
        watch_tree(S, cli->reload_dirs[i], 0);
    dfws_log_info("--reload: watching Python files in %d directories", S->n_watched);
    return 0;
}

static int is_python_file(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 3 && !strcmp(name + n - 3, ".py");
}

static void read_inotify(sup_t *S, double now)
{
    /* aligned for struct inotify_event, as inotify(7) asks */
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(S->ifd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            const char *dir = ev->wd >= 0 && ev->wd < S->n_wd ? S->wd_path[ev->wd] : NULL;
            if (ev->mask & IN_IGNORED) {
                if (dir) {
                    free(S->wd_path[ev->wd]);
                    S->wd_path[ev->wd] = NULL;
                    S->n_watched--;
                }
                continue;
            }
            const char *name = ev->len ? ev->name : "";
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir ? dir : "?", name);
            if (ev->mask & IN_ISDIR) {
                /* a new package: watch it (a moved-in tree may hold code) */
                if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && dir && !skip_dir(dir, name))
                    watch_tree(S, path, 1);
                if (!(ev->mask & IN_MOVED_TO))
                    continue;
            } else if (!(ev->mask & IN_Q_OVERFLOW) &&
                       (!is_python_file(name) || (ev->mask & IN_CREATE))) {
                continue; /* a created file is acted upon when written */
            }
            if (S->stopping)
                continue;
            if (!S->reload_at) {
                S->reload_at = now + RELOAD_DELAY;
                const char *what = ev->mask & IN_Q_OVERFLOW  ? "(many files)"
                                   : !strncmp(path, "./", 2) ? path + 2
                                                             : path;
                size_t len = strlen(what);
                if (len >= sizeof(S->changed))
                    len = sizeof(S->changed) - 1; /* for the log only */
                memcpy(S->changed, what, len);
                S->changed[len] = '\0';
            }
        }
    }
}

/* ---- the loop ----------------------------------------------------------- */

static void read_signals(sup_t *S, double now)
{
    struct signalfd_siginfo si;
    while (read(S->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGCHLD) {
            reap(S, now);
        } else if (sig == SIGHUP) {
            if (!S->stopping)
                restart_all(S, "SIGHUP", now);
        } else if (!S->stopping) {
            dfws_log_info("received %s, stopping %d workers", sig == SIGINT ? "SIGINT" : "SIGTERM",
                          S->nw);
            begin_stop(S, 0, now);
        }
    }
}

/* --metrics-bind: answers the scrapers waiting on the metrics listener. */
static void accept_scrapes(sup_t *S)
{
    for (int i = 0; i < 8; i++) {
        int fd = accept4(S->metrics_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return;
        dfws_metrics_serve(S->metrics, fd);
    }
}

static int run_loop(sup_t *S)
{
    struct pollfd *pfd = NULL;
    int npfd = 0;
    for (;;) {
        double now = now_s();
        double next = run_timers(S, now);
        if (schedule(S, now)) {
            free(pfd);
            return DFWS_SUPERVISOR_WORKER;
        }
        if (S->stopping && S->nw == 0)
            break;
        if (!S->stopping && S->spawn_at > now && (next == 0 || S->spawn_at < next))
            next = S->spawn_at;
        if (npfd < S->nw + 3) {
            struct pollfd *p = realloc(pfd, (size_t)(S->nw + 8) * sizeof(*p));
            if (!p) {
                sleep(1);
                continue;
            }
            pfd = p;
            npfd = S->nw + 8;
        }
        pfd[0] = (struct pollfd){.fd = S->sfd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = S->ifd, .events = POLLIN};        /* -1: ignored by poll */
        pfd[2] = (struct pollfd){.fd = S->metrics_fd, .events = POLLIN}; /* -1: ignored */
        int n = 3;
        for (int i = 0; i < S->nw; i++)
            if (S->w[i].fd >= 0)
                pfd[n++] = (struct pollfd){.fd = S->w[i].fd, .events = POLLIN};
        int timeout = -1;
        if (next > 0) {
            double ms = (next - now) * 1000.0 + 1;
            timeout = ms < 0 ? 0 : ms > 3600e3 ? 3600000 : (int)ms;
        }
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            dfws_log_error("supervisor: poll: %s", strerror(errno));
            sleep(1);
            continue;
        }
        now = now_s();
        for (int i = 3; i < n; i++)
            if (pfd[i].revents)
                read_channel(S, pfd[i].fd);
        if (pfd[2].fd >= 0 && pfd[2].revents)
            accept_scrapes(S);
        if (pfd[1].fd >= 0 && pfd[1].revents)
            read_inotify(S, now);
        if (pfd[0].revents)
            read_signals(S, now);
    }
    free(pfd);
    return S->status;
}

int dfws_supervisor_run(const dfws_cli_t *cli, int listen_fd, const dfws_prefork_hooks_t *hooks)
{
    sup_t S;
    memset(&S, 0, sizeof(S));
    S.cli = cli;
    S.hooks = hooks;
    S.ifd = -1;
    S.metrics_fd = -1;
    S.listen_fd = listen_fd;
    S.gen_reason = "start";

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    /* Blocked from here to the end of the process: the signalfd receives
     * them (and the supervisor exits right after this returns). */
    sigprocmask(SIG_BLOCK, &set, &S.old_mask);
    for (int sig = 1; sig < NSIG; sig++) /* the workers get these unblocked */
        if (sigismember(&set, sig) == 1)
            sigdelset(&S.old_mask, sig);
    int rc = 1;
    S.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (S.sfd < 0) {
        dfws_log_error("supervisor: signalfd: %s", strerror(errno));
        goto out;
    }
    if (cli->reload && reload_setup(&S))
        goto out;
    if (cli->metrics_bind) {
        char err[256];
        if ((S.metrics_fd = dfws_metrics_listen(cli->metrics_bind, err, sizeof(err))) < 0) {
            dfws_log_error("--metrics-bind: cannot listen on %s", err);
            goto out;
        }
        /* room for every worker, the replacements of a rolling restart and
         * workers still draining */
        if (!(S.metrics = dfws_metrics_map((size_t)cli->workers * 4 + 8)))
            goto out;
        dfws_log_info("metrics: http://%s/metrics", cli->metrics_bind);
    }
    rc = run_loop(&S);
    if (rc == DFWS_SUPERVISOR_WORKER)
        return rc; /* become_worker() released the supervisor's state */
out:
    if (S.sfd >= 0)
        close(S.sfd);
    if (S.ifd >= 0)
        close(S.ifd);
    if (S.metrics_fd >= 0)
        close(S.metrics_fd);
    if (S.listen_fd >= 0)
        close(S.listen_fd);
    free(S.w);
    free_watches(&S);
    return rc;
}

/* ---- the worker's side ------------------------------------------------- */

int dfws_supervisor_channel(void)
{
    return channel_fd;
}

int dfws_supervisor_notify(char msg)
{
    if (channel_fd < 0)
        return -1;
    ssize_t n;
    do
        n = send(channel_fd, &msg, 1, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -1;
}
