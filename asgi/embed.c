/* Interpreter start-up.
 *
 * dfws-asgi must run the Python of the environment it was installed into: a
 * `--system-site-packages` venv or the system. CPython finds its prefix and
 * venv from `executable`, so we point it at the python3 that sits next to our
 * binary (pip puts both in <venv>/bin) and fall back to the interpreter we
 * were built against for a system-wide install or a build tree. */
#include "asgi.h"
#include "log.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DFWS_PYTHON
#define DFWS_PYTHON "/usr/bin/python3"
#endif

static void choose_executable(char *out, size_t outlen)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            snprintf(out, outlen, "%.*s/python3", (int)(slash - self), self);
            if (access(out, X_OK) == 0)
                return;
        }
    }
    snprintf(out, outlen, "%s", DFWS_PYTHON);
}

/* SIGTERM/SIGINT that arrive while the worker starts (the socket already
 * accepts) are remembered here and honoured by dfws.runner as soon as its
 * own handlers are in place: a start-up is never killed half-way. */
static volatile sig_atomic_t pending_signal;

static void on_early_signal(int sig)
{
    pending_signal = sig;
}

int dfws_embed_take_pending_signal(void)
{
    int sig = pending_signal;
    pending_signal = 0;
    return sig;
}

int dfws_embed_run(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_early_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A peer that vanishes makes write() fail with EPIPE; without this the
     * whole worker would die of SIGPIPE (CPython ignores it only when it
     * installs its own handlers, which we ask it not to). */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);

    char exe[PATH_MAX + 16];
    PyStatus status;
    PyConfig config;
    int code = 1;

    if (PyImport_AppendInittab("_dfws", dfws_module_init) < 0)
        return 1;
    choose_executable(exe, sizeof(exe));
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0;
    config.install_signal_handlers = 0; /* ours stay until the loop takes over */
    status = PyConfig_SetBytesString(&config, &config.program_name, exe);
    if (PyStatus_Exception(status))
        goto fail;
    status = PyConfig_SetBytesString(&config, &config.executable, exe);
    if (PyStatus_Exception(status))
        goto fail;
    status = PyConfig_SetBytesArgv(&config, argc, argv);
    if (PyStatus_Exception(status))
        goto fail;
    status = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(status))
        goto fail;
    PyConfig_Clear(&config);

    PyObject *runner = PyImport_ImportModule("dfws.runner");
    PyObject *res = runner ? PyObject_CallMethod(runner, "main", NULL) : NULL;
    if (res) {
        code = (int)PyLong_AsLong(res);
        if (code == -1 && PyErr_Occurred())
            code = 1;
        Py_DECREF(res);
    }
    if (PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
            /* Py_Exit semantics: let CPython print and pick the status */
            PyErr_Print();
        } else {
            PyErr_Print();
            code = 1;
        }
    }
    Py_XDECREF(runner);
    dfws_log_set_sink(NULL, NULL);
    if (Py_FinalizeEx() < 0 && code == 0)
        code = 120;
    return code;
fail:
    PyConfig_Clear(&config);
    fprintf(stderr, "dfws-asgi: cannot start Python: %s\n",
            status.err_msg ? status.err_msg : "unknown error");
    return 1;
}
