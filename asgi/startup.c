/* Process start-up, called from dfws/__main__.py before the application is
 * imported: the command line, the listening socket, the supervisor, and
 * the signals that arrive meanwhile; then what a worker tells its
 * supervisor (ready, request quota reached).
 *
 *     dfws-asgi ...  ->  dfws.__main__.main()
 *         _dfws.configure(argv)   parse (server/cli.c), open the socket
 *         _dfws.prefork()         supervisor (server/supervisor.c); returns in workers
 *         dfws.runner.main()      one worker: the app, the loop, the server
 *
 * The supervisor runs in the interpreter that forks the workers, holding
 * the GIL: it never imports the application and runs no other thread, so
 * each worker starts from a clean interpreter (PyOS_AfterFork_Child). */
#include "asgi.h"
#include "cli.h"
#include "listener.h"
#include "log.h"
#include "supervisor.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dfws_cli_t cli;
struct dfws_tls_ctx_s *dfws_asgi_tls;

/* SIGTERM, SIGINT and SIGHUP are taken by this handler for the whole life
 * of a worker (and of the process before it forks): it remembers the signal
 * and, once dfws.runner asked for it, writes a byte to a pipe the loop
 * watches. A signal that arrives while the worker starts (the socket
 * already accepts) waits for the runner; a start-up is never killed
 * half-way, and no signal is lost while the loop is not running. */
static volatile sig_atomic_t pending_signal;
static int wakeup_fd = -1; /* write end of the runner's pipe */

static void on_signal(int sig)
{
    /* a stop outranks a restart */
    if (sig != SIGHUP || !pending_signal)
        pending_signal = sig;
    if (wakeup_fd >= 0) {
        int saved = errno;
        if (write(wakeup_fd, "s", 1) < 0) {
            /* full: the loop has a wake-up to read already */
        }
        errno = saved;
    }
}

static const int handled[] = {SIGTERM, SIGINT, SIGHUP};

static void hold_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
        sigaction(handled[i], &sa, NULL);
}

/* Blocks or unblocks (`how`) the handled signals in this thread. */
static void mask_signals(int how)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
        sigaddset(&set, handled[i]);
    sigprocmask(how, &set, NULL);
}

static PyObject *signal_wakeup_fd(PyObject *m, PyObject *unused)
{
    int fds[2];
    if (wakeup_fd >= 0) {
        PyErr_SetString(PyExc_RuntimeError, "signal_wakeup_fd() was called already");
        return NULL;
    }
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC))
        return PyErr_SetFromErrno(PyExc_OSError);
    wakeup_fd = fds[1];
    return PyLong_FromLong(fds[0]);
}

static PyObject *take_pending_signal(PyObject *m, PyObject *unused)
{
    int sig = pending_signal;
    pending_signal = 0;
    return PyLong_FromLong(sig);
}

/* {name: value} into `cli`, as dfws_cli_parse() does with argv: a value is
 * a str, int or float, True/False (a flag given or not), None (left out)
 * or a list (a repeatable option given once per item). The strings live as
 * long as the process, as argv's. */
static int configure_from_dict(PyObject *dict)
{
    char err[512];
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    dfws_cli_defaults(&cli);
    while (PyDict_Next(dict, &pos, &key, &value)) {
        const char *name = PyUnicode_AsUTF8(key);
        if (!name)
            return -1;
        int many = PyList_Check(value) || PyTuple_Check(value);
        PyObject *items = many ? PySequence_Fast(value, "") : PyTuple_Pack(1, value);
        if (!items)
            return -1;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(items); i++) {
            PyObject *v = PySequence_Fast_GET_ITEM(items, i);
            const char *arg = v == Py_True ? "true" : v == Py_False ? "false" : NULL;
            if (v == Py_None)
                continue;
            if (!arg) {
                PyObject *str = PyObject_Str(v);
                const char *utf8 = str ? PyUnicode_AsUTF8(str) : NULL;
                char *copy = utf8 ? strdup(utf8) : NULL;
                Py_XDECREF(str);
                if (!copy) {
                    Py_DECREF(items);
                    if (!PyErr_Occurred())
                        PyErr_NoMemory();
                    return -1;
                }
                arg = copy;
            }
            int rc = dfws_cli_set(&cli, name, arg, err, sizeof(err));
            if (rc) {
                Py_DECREF(items);
                return rc == DFWS_CLI_USAGE ? dfws_cli_usage_error(err) : rc;
            }
        }
        Py_DECREF(items);
    }
    if (dfws_cli_check(&cli, err, sizeof(err)))
        return dfws_cli_usage_error(err);
    return DFWS_CLI_OK;
}

static PyObject *configure(PyObject *m, PyObject *args)
{
    PyObject *config; /* argv (a list) or options (a dict) */
    int inherited_fd = -1;
    if (!PyArg_ParseTuple(args, "O|i", &config, &inherited_fd))
        return NULL;
    if (!PyList_Check(config) && !PyDict_Check(config)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes argv (a list) or options (a dict)");
        return NULL;
    }
    if (dfws_asgi_cli) {
        PyErr_SetString(PyExc_RuntimeError, "dfws-asgi is already configured");
        return NULL;
    }
    int rc;
    if (PyDict_Check(config)) {
        if ((rc = configure_from_dict(config)) < 0)
            return NULL;
    } else {
        /* getopt keeps pointers into argv: the strings live as long as the
         * process (the options are read by every worker). */
        Py_ssize_t argc = PyList_GET_SIZE(config);
        char **argv = PyMem_RawCalloc((size_t)argc + 1, sizeof(char *));
        if (!argv)
            return PyErr_NoMemory();
        for (Py_ssize_t i = 0; i < argc; i++) {
            const char *a = PyUnicode_AsUTF8(PyList_GET_ITEM(config, i));
            if (!a || !(argv[i] = strdup(a))) {
                for (Py_ssize_t j = 0; j < i; j++)
                    free(argv[j]);
                PyMem_RawFree(argv);
                return a ? PyErr_NoMemory() : NULL;
            }
        }
        rc = dfws_cli_parse(&cli, (int)argc, argv);
    }
    if (rc == DFWS_CLI_EXIT)
        return PyLong_FromLong(0);
    if (rc == DFWS_CLI_USAGE)
        return PyLong_FromLong(2);
    dfws_log_set_level(cli.verbosity == 0   ? DFWS_LOG_WARNING
                       : cli.verbosity == 1 ? DFWS_LOG_INFO
                                            : DFWS_LOG_DEBUG);
    char tls_err[256];
    if (dfws_tls_check_cli(&cli, tls_err, sizeof(tls_err))) {
        fprintf(stderr,
                "dfws-asgi: error: %s\nusage: dfws-asgi [options] APP   (see dfws-asgi --help)\n",
                tls_err);
        return PyLong_FromLong(2);
    }
    /* The certificate and key are read here, once, before the socket is
     * opened and before any worker forks: a bad file stops the start with
     * its name and reason, and every worker shares the context. */
    if (dfws_tls_wanted(&cli) && !(dfws_asgi_tls = dfws_tls_ctx_new(&cli)))
        return PyLong_FromLong(1);
    /* A peer that vanishes makes write() fail with EPIPE; without this the
     * whole worker would die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    hold_signals();
    /* A restart in place (dfws.runner.reexec) blocked these across exec(2)
     * so none is lost; the handlers above now take them. */
    mask_signals(SIG_UNBLOCK);
    int is_unix = 0;
    int fd;
    if (inherited_fd >= 0) {
        /* the socket of this same process before its restart in place */
        dfws_cli_t as_fd = cli;
        as_fd.fd = inherited_fd;
        fd = dfws_listener_open(&as_fd, &is_unix);
    } else {
        fd = dfws_listener_open(&cli, &is_unix);
    }
    if (fd < 0)
        return PyLong_FromLong(1);
    dfws_asgi_cli = &cli;
    dfws_asgi_fd = fd;
    dfws_asgi_is_unix = is_unix;
    Py_RETURN_NONE;
}

static void after_child(void)
{
    PyOS_AfterFork_Child();
    hold_signals();
}

static PyObject *prefork(PyObject *m, PyObject *unused)
{
    static const dfws_prefork_hooks_t hooks = {
        .before = PyOS_BeforeFork,
        .after_parent = PyOS_AfterFork_Parent,
        .after_child = after_child,
    };
    if (!dfws_asgi_cli) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    if (!dfws_cli_supervised(&cli))
        Py_RETURN_NONE;
    /* A signal caught since configure() is handed to the supervisor: made
     * pending again under the mask its signalfd reads. */
    mask_signals(SIG_BLOCK);
    int early = pending_signal;
    pending_signal = 0;
    if (early)
        raise(early);
    int rc = dfws_supervisor_run(&cli, dfws_asgi_fd, &hooks);
    if (rc == DFWS_SUPERVISOR_WORKER)
        Py_RETURN_NONE;
    dfws_asgi_fd = -1; /* the supervisor closed it */
    return PyLong_FromLong(rc);
}

static PyObject *process_info(PyObject *m, PyObject *unused)
{
    if (!dfws_asgi_cli) {
        PyErr_SetString(PyExc_RuntimeError, "no options outside dfws-asgi");
        return NULL;
    }
    return Py_BuildValue("{s:i,s:i,s:d,s:L,s:L}", "channel", dfws_supervisor_channel(), "listen_fd",
                         dfws_asgi_fd, "graceful_timeout", dfws_cli_graceful_timeout(&cli),
                         "limit_max_requests", (long long)cli.limit_max_requests,
                         "limit_max_requests_jitter", (long long)cli.limit_max_requests_jitter);
}

static PyObject *notify_ready(PyObject *m, PyObject *unused)
{
    if (dfws_supervisor_channel() >= 0 && dfws_supervisor_notify(DFWS_SUPERVISOR_READY))
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static void on_requests_limit(dfws_server_t *s)
{
    dfws_supervisor_notify(DFWS_SUPERVISOR_QUOTA);
}

void dfws_startup_limit_requests(dfws_server_t *s, uint64_t n)
{
    s->requests_limit = n;
    s->on_requests_limit = n ? on_requests_limit : NULL;
}

PyMethodDef dfws_startup_methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(argv, inherited_fd=-1): parse the command line (a list; or a dict "
     "{option: value}, see dfws.__main__.main) and open the listening socket "
     "(or take inherited_fd, this process's own socket before a restart in place). None to go "
     "on, else the exit status (help printed, usage error, socket error)."},
    {"prefork", prefork, METH_NOARGS,
     "With --workers N > 1, --reload or a recycling limit: fork and supervise the workers. "
     "None in a worker (run it), the exit status in the supervisor once every worker is gone."},
    {"take_pending_signal", take_pending_signal, METH_NOARGS,
     "The last SIGTERM/SIGINT/SIGHUP received (a stop outranks SIGHUP), or 0; clears it."},
    {"signal_wakeup_fd", signal_wakeup_fd, METH_NOARGS,
     "A pipe's read end that gets a byte for each SIGTERM/SIGINT/SIGHUP from now on "
     "(non-blocking; once per process)."},
    {"process_info", process_info, METH_NOARGS,
     "channel (fd to the supervisor, -1 without one), listen_fd, graceful_timeout, "
     "limit_max_requests, limit_max_requests_jitter."},
    {"notify_ready", notify_ready, METH_NOARGS,
     "Tell the supervisor this worker serves (no-op without a supervisor)."},
    {NULL, NULL, 0, NULL},
};
