/* Process start-up, called from dfws/__main__.py before the application is
 * imported: the command line, the listening socket, the pre-fork
 * supervisor, and the SIGTERM/SIGINT that arrive meanwhile.
 *
 *     dfws-asgi ...  ->  dfws.__main__.main()
 *         _dfws.configure(argv)   parse (server/cli.c), open the socket
 *         _dfws.prefork()         --workers N: fork, supervise; returns in workers
 *         dfws.runner.main()      one worker: the app, the loop, the server
 *
 * The supervisor runs in the interpreter that forks the workers, holding
 * the GIL: it never imports the application and runs no other thread, so
 * each worker starts from a clean interpreter (PyOS_AfterFork_Child). */
#include "asgi.h"
#include "cli.h"
#include "listener.h"
#include "log.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static dfws_cli_t cli;

/* SIGTERM/SIGINT that arrive while a worker starts (the socket already
 * accepts) are remembered here and honoured by dfws.runner as soon as its
 * own handlers are in place: a start-up is never killed half-way. */
static volatile sig_atomic_t pending_signal;

static void on_early_signal(int sig)
{
    pending_signal = sig;
}

static void hold_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_early_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

PyObject *dfws_startup_take_pending_signal(PyObject *m, PyObject *unused)
{
    int sig = pending_signal;
    pending_signal = 0;
    return PyLong_FromLong(sig);
}

PyObject *dfws_startup_configure(PyObject *m, PyObject *args)
{
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list))
        return NULL;
    if (dfws_asgi_cli) {
        PyErr_SetString(PyExc_RuntimeError, "dfws-asgi is already configured");
        return NULL;
    }
    /* getopt keeps pointers into argv: the strings live as long as the
     * process (the options are read by every worker). */
    Py_ssize_t argc = PyList_GET_SIZE(list);
    char **argv = PyMem_RawCalloc((size_t)argc + 1, sizeof(char *));
    if (!argv)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < argc; i++) {
        const char *a = PyUnicode_AsUTF8(PyList_GET_ITEM(list, i));
        if (!a || !(argv[i] = strdup(a))) {
            for (Py_ssize_t j = 0; j < i; j++)
                free(argv[j]);
            PyMem_RawFree(argv);
            return a ? PyErr_NoMemory() : NULL;
        }
    }
    int rc = dfws_cli_parse(&cli, (int)argc, argv);
    if (rc == DFWS_CLI_EXIT)
        return PyLong_FromLong(0);
    if (rc == DFWS_CLI_USAGE)
        return PyLong_FromLong(2);
    dfws_log_set_level(cli.verbosity == 0   ? DFWS_LOG_WARNING
                       : cli.verbosity == 1 ? DFWS_LOG_INFO
                                            : DFWS_LOG_DEBUG);
    /* A peer that vanishes makes write() fail with EPIPE; without this the
     * whole worker would die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    hold_signals();
    int is_unix = 0;
    int fd = dfws_listener_open(&cli, &is_unix);
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

PyObject *dfws_startup_prefork(PyObject *m, PyObject *unused)
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
    if (cli.workers <= 1)
        Py_RETURN_NONE;
    int rc = dfws_prefork_run(cli.workers, &hooks);
    if (rc == DFWS_PREFORK_WORKER)
        Py_RETURN_NONE;
    return PyLong_FromLong(rc);
}
