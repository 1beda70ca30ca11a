/* The built-in module `_dfws`: the Server object dfws.runner drives, the
 * Ready awaitable, the options of this worker, and the log sink that routes
 * server/ log lines to Python's logging. */
#include "asgi.h"
#include "request.h"
#include "layer.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "static.h"
#include "str.h"
#include "tls.h"
#include "ws_conn.h"

#include <limits.h>
#include <uv.h>

const dfws_cli_t *dfws_asgi_cli;
int dfws_asgi_fd = -1;
int dfws_asgi_is_unix;

/* ---- Ready ------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *value;
} Ready;

PyObject *dfws_ready_none;

PyObject *dfws_ready_new(PyObject *value)
{
    Ready *r = PyObject_New(Ready, &dfws_ready_type);
    if (!r)
        return NULL;
    Py_INCREF(value);
    r->value = value;
    return (PyObject *)r;
}

static void ready_dealloc(Ready *self)
{
    Py_XDECREF(self->value);
    PyObject_Free(self);
}

static PyObject *ready_await(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

/* Used when something iterates us the old way (no am_send). */
static PyObject *ready_next(Ready *self)
{
    PyObject *v = self->value;
    if (v == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, v);
    if (e) {
        PyErr_SetObject(PyExc_StopIteration, e);
        Py_DECREF(e);
    }
    return NULL;
}

static PySendResult ready_send(Ready *self, PyObject *arg, PyObject **result)
{
    (void)arg;
    Py_INCREF(self->value);
    *result = self->value;
    return PYGEN_RETURN;
}

static PyAsyncMethods ready_async = {
    .am_await = ready_await,
    .am_send = (sendfunc)ready_send,
};

PyTypeObject dfws_ready_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dfws._dfws.Ready",
    .tp_basicsize = sizeof(Ready),
    .tp_dealloc = (destructor)ready_dealloc,
    .tp_as_async = &ready_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)ready_next,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

/* ---- helpers -------------------------------------------------------------------- */

void dfws_future_take(PyObject **slot, PyObject *value)
{
    PyObject *fut = *slot;
    if (!fut)
        return;
    *slot = NULL;
    dfws_future_resolve(fut, value);
    Py_DECREF(fut);
}

void dfws_future_resolve(PyObject *fut, PyObject *value)
{
    PyObject *done = PyObject_CallMethodNoArgs(fut, dfws_str_done);
    if (done == Py_False) {
        PyObject *res = PyObject_CallMethodOneArg(fut, dfws_str_set_result, value);
        Py_XDECREF(res);
    }
    Py_XDECREF(done);
    PyErr_Clear();
}

static PyObject *runner_log_exception; /* dfws.runner.log_exception, set by Server() */

void dfws_log_current_exception(dfws_asgi_t *A, const char *what)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb)
        PyException_SetTraceback(value, tb);
    PyObject *log = A ? A->log_exception : runner_log_exception;
    PyObject *res = log ? PyObject_CallFunction(log, "sO", what, value) : NULL;
    if (!res) {
        PyErr_Clear();
        dfws_log_error("%s", what);
    }
    Py_XDECREF(res);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* server/ log lines go to logging.getLogger("dfws.server") */
static PyObject *server_log; /* bound Logger.log */

static void python_log_sink(int level, const char *msg, void *ud)
{
    (void)ud;
    PyGILState_STATE g = PyGILState_Ensure();
    /* lines may quote what clients sent, cut anywhere: never trust UTF-8 */
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    PyObject *res = text ? PyObject_CallFunction(server_log, "iO", level, text) : NULL;
    Py_XDECREF(text);
    if (!res) {
        PyErr_Clear();
        fprintf(stderr, "%s\n", msg);
    }
    Py_XDECREF(res);
    PyGILState_Release(g);
}

/* The access log's sink when the project routes `dfws.access` through its
 * own logging handlers: one GIL acquisition per batch (a loop turn), one
 * logger.info() per line. */
static void access_log_batch(void *ud, const char *lines, size_t len)
{
    dfws_asgi_t *A = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    for (const char *p = lines, *end = lines + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        PyObject *s = PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "replace");
        PyObject *res = s ? PyObject_CallOneArg(A->access_info, s) : NULL;
        if (!res)
            PyErr_Clear();
        Py_XDECREF(res);
        Py_XDECREF(s);
        p += n + 1;
    }
    PyGILState_Release(g);
}

/* ---- metrics --------------------------------------------------------------------- */

/* --metrics-bind: the gauges of this worker, and the counters other modules
 * keep, copied into its slot once a second (the hot paths add to it
 * themselves: requests, bytes). */
static void refresh_metrics(dfws_asgi_t *A)
{
    dfws_metrics_slot_t *m = dfws_metrics;
    if (!m)
        return;
    dfws_metrics_set(&m->http_connections, (int64_t)A->server.conns.n);
    dfws_metrics_set(&m->websockets, (int64_t)A->server.websockets);
    dfws_native_metrics(A);
    dfws_layer_t *l = dfws_asgi_layer();
    if (l) {
        dfws_layer_stats_t st;
        dfws_layer_get_stats(l, &st);
        __atomic_store_n(&m->layer_sent, st.sent, __ATOMIC_RELAXED);
        __atomic_store_n(&m->layer_received, st.received, __ATOMIC_RELAXED);
        __atomic_store_n(&m->redis_reconnects, st.reconnects, __ATOMIC_RELAXED);
    }
}

static void on_metrics_timer(uv_timer_t *t)
{
    refresh_metrics(DFWS_CONTAINER_OF(t, dfws_asgi_t, metrics_timer));
}

/* ---- Server --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    dfws_asgi_t A;
} Server;

static int server_init(Server *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"loop", "app", "state", "log_exception", NULL};
    PyObject *loop, *app, *state, *log_exception;
    dfws_asgi_t *A = &self->A;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOO", kwlist, &loop, &app, &state, &log_exception))
        return -1;
    if (A->started) {
        PyErr_SetString(PyExc_RuntimeError, "server already started");
        return -1;
    }
    if (!dfws_asgi_cli) {
        PyErr_SetString(PyExc_RuntimeError, "_dfws.Server needs _dfws.configure() first");
        return -1;
    }
    /* dfws.binding made uvloop's libuv the one this module calls: the
     * handles below go on uvloop's own loop, with uvloop's own code. */
    PyObject *mod = PyImport_ImportModule("uvloop.loop");
    if (!mod)
        return -1;
    PyObject *capsule = PyObject_CallMethod(mod, "libuv_get_loop_t_ptr", "O", loop);
    Py_DECREF(mod);
    if (!capsule)
        return -1;
    uv_loop_t *uvloop = PyCapsule_GetPointer(capsule, NULL);
    Py_DECREF(capsule);
    if (!uvloop)
        return -1;

    A->cli = dfws_asgi_cli;
    A->loop = Py_NewRef(loop);
    A->app = Py_NewRef(app);
    A->state = state == Py_None ? NULL : Py_NewRef(state);
    A->log_exception = Py_NewRef(log_exception);
    Py_XSETREF(runner_log_exception, Py_NewRef(log_exception));
    A->create_task = PyObject_GetAttrString(loop, "create_task");
    A->create_future = PyObject_GetAttrString(loop, "create_future");
    A->root_path = PyUnicode_FromString(A->cli->root_path);
    PyObject *logging = PyImport_ImportModule("logging");
    PyObject *access_logger = logging
                                  ? PyObject_CallMethod(logging, "getLogger", "s", "dfws.access")
                                  : NULL;
    PyObject *server_logger = logging
                                  ? PyObject_CallMethod(logging, "getLogger", "s", "dfws.server")
                                  : NULL;
    Py_XDECREF(logging);
    A->access_info = access_logger ? PyObject_GetAttrString(access_logger, "info") : NULL;
    if (server_logger && !server_log)
        server_log = PyObject_GetAttrString(server_logger, "log");
    Py_XDECREF(access_logger);
    Py_XDECREF(server_logger);
    if (!A->create_task || !A->create_future || !A->root_path || !A->access_info || !server_log)
        return -1;

    A->ops.http_request = dfws_http_request;
    A->ops.http_body = dfws_http_body;
    A->ops.http_drain = dfws_http_drain;
    A->ops.http_detach = dfws_http_detach;
    A->ops.ws_request = dfws_ws_request;
    A->ops.ws_message = dfws_ws_message;
    A->ops.ws_closed = dfws_ws_closed;
    A->ops.ws_drain = dfws_ws_drain;
    int rc = dfws_server_start(&A->server, uvloop, A->cli, dfws_asgi_fd, dfws_asgi_is_unix, &A->ops,
                               A);
    if (rc) {
        PyErr_Format(PyExc_OSError, "cannot listen: %s", uv_strerror(rc));
        return -1;
    }
    if (dfws_asgi_tls) { /* before the first accept: the loop has not run yet */
        A->server.transport = &dfws_transport_tls;
        A->server.transport_ctx = dfws_asgi_tls;
    }
    /* daphne's rule: an access log with --access-log, or on stdout at -v >= 1;
     * through `logging` until dfws.runner says where lines can go directly */
    dfws_access_log_set(&A->server.access_log, A->cli->access_log != NULL || A->cli->verbosity >= 1,
                        -1, access_log_batch, A);
    A->started = 1;
    dfws_log_set_sink(python_log_sink, NULL);
    char err[PATH_MAX + 128];
    if (dfws_static_add_cli(&A->server, err, sizeof(err))) {
        PyErr_SetString(PyExc_OSError, err);
        return -1; /* the server closes with the object */
    }
    if (dfws_metrics && !uv_timer_init(uvloop, &A->metrics_timer)) {
        A->metrics_timer_on = 1;
        uv_unref((uv_handle_t *)&A->metrics_timer);
        uv_timer_start(&A->metrics_timer, on_metrics_timer, 0, 1000);
    }
    return 0;
}

static PyObject *server_add_static(Server *self, PyObject *args)
{
    const char *route, *dir;
    char err[PATH_MAX + 128];
    if (!PyArg_ParseTuple(args, "ss", &route, &dir))
        return NULL;
    if (!self->A.started) {
        PyErr_SetString(PyExc_RuntimeError, "the server is not running");
        return NULL;
    }
    if (dfws_static_add(&self->A.server, route, dir, self->A.cli->static_expires, err,
                        sizeof(err))) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *server_shutdown(Server *self, PyObject *args)
{
    int restart = 0;
    if (!PyArg_ParseTuple(args, "|p", &restart))
        return NULL;
    if (self->A.started)
        dfws_server_shutdown(&self->A.server, restart);
    Py_RETURN_NONE;
}

static PyObject *server_retire_after(Server *self, PyObject *arg)
{
    unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (n == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (self->A.started)
        dfws_startup_limit_requests(&self->A.server, (uint64_t)n);
    Py_RETURN_NONE;
}

static PyObject *server_start_layer(Server *self, PyObject *arg)
{
    char err[256] = "";
    const char *json = PyUnicode_AsUTF8(arg);
    if (!json)
        return NULL;
    if (!self->A.started) {
        PyErr_SetString(PyExc_RuntimeError, "the server is not running");
        return NULL;
    }
    if (dfws_asgi_layer_start(self->A.server.loop, json, err, sizeof(err))) {
        PyErr_Format(PyExc_ValueError, "channel layer: %s", err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *server_enable_native(Server *self, PyObject *args)
{
    if (!self->A.started) {
        PyErr_SetString(PyExc_RuntimeError, "the server is not running");
        return NULL;
    }
    return dfws_native_enable(&self->A, args);
}

static PyObject *server_set_access_log(Server *self, PyObject *args)
{
    const char *mode;
    int fd = -1;
    if (!PyArg_ParseTuple(args, "s|i", &mode, &fd))
        return NULL;
    if (!self->A.started) {
        PyErr_SetString(PyExc_RuntimeError, "the server is not running");
        return NULL;
    }
    dfws_access_log_t *L = &self->A.server.access_log;
    if (!strcmp(mode, "off"))
        dfws_access_log_set(L, 0, -1, NULL, NULL);
    else if (!strcmp(mode, "fd") && fd >= 0)
        dfws_access_log_set(L, 1, fd, NULL, NULL);
    else if (!strcmp(mode, "logging"))
        dfws_access_log_set(L, 1, -1, access_log_batch, &self->A);
    else {
        PyErr_SetString(PyExc_ValueError, "set_access_log('off' | 'logging' | 'fd', fd)");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *server_enable_django_fast_path(Server *self, PyObject *args)
{
    if (!self->A.started) {
        PyErr_SetString(PyExc_RuntimeError, "the server is not running");
        return NULL;
    }
    return dfws_fast_enable(&self->A, args);
}

static PyObject *server_native_stats(Server *self, PyObject *unused)
{
    return dfws_native_stats(&self->A);
}

static void stop_metrics(dfws_asgi_t *A)
{
    if (!A->metrics_timer_on)
        return;
    A->metrics_timer_on = 0;
    refresh_metrics(A); /* the last figures, before the supervisor folds them */
    uv_close((uv_handle_t *)&A->metrics_timer, NULL);
}

static PyObject *server_close(Server *self, PyObject *unused)
{
    stop_metrics(&self->A);
    dfws_native_disable(&self->A);
    dfws_asgi_layer_stop();
    if (self->A.started) {
        dfws_server_close(&self->A.server);
        self->A.started = 0;
    }
    /* after the connections: answers still in flight find their clients gone */
    dfws_fast_stop(&self->A, 5);
    Py_RETURN_NONE;
}

static PyObject *server_active_requests(Server *self, PyObject *unused)
{
    return PyLong_FromSize_t(self->A.started ? self->A.server.active_requests : 0);
}

static PyObject *server_websockets(Server *self, PyObject *unused)
{
    return PyLong_FromSize_t(self->A.started ? self->A.server.websockets : 0);
}

static PyObject *server_connections(Server *self, PyObject *unused)
{
    return PyLong_FromSize_t(self->A.started ? self->A.server.conns.n : 0);
}

static void server_dealloc(Server *self)
{
    dfws_asgi_t *A = &self->A;
    if (A->started) {
        dfws_server_close(&A->server);
        A->started = 0;
    }
    dfws_fast_stop(A, 5);
    Py_CLEAR(A->loop);
    Py_CLEAR(A->app);
    Py_CLEAR(A->state);
    Py_CLEAR(A->create_task);
    Py_CLEAR(A->create_future);
    Py_CLEAR(A->log_exception);
    Py_CLEAR(A->access_info);
    Py_CLEAR(A->root_path);
    Py_CLEAR(A->last_server);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef server_methods[] = {
    {"shutdown", (PyCFunction)server_shutdown, METH_VARARGS,
     "shutdown(restart=False): stop accepting; idle connections close now, busy ones after "
     "their response; WebSockets close with 1001, or 1012 for a restart."},
    {"retire_after", (PyCFunction)server_retire_after, METH_O,
     "retire_after(n): ask the supervisor for a replacement after n requests."},
    {"close", (PyCFunction)server_close, METH_NOARGS, "Close every connection now."},
    {"add_static", (PyCFunction)server_add_static, METH_VARARGS,
     "add_static(route, directory): serve the files below directory on the URL prefix route "
     "from C (--static-path-expires applies); ValueError with the reason if it cannot."},
    {"enable_native", (PyCFunction)server_enable_native, METH_VARARGS,
     "enable_native(ws_url, channels_mode, json_in_c, queues_json, connect, signal)."},
    {"set_access_log", (PyCFunction)server_set_access_log, METH_VARARGS,
     "set_access_log(mode, fd=-1): 'off', 'logging' (one logger.info per line, batched), or "
     "'fd' (lines written straight to file descriptor fd, which the caller keeps open)."},
    {"enable_django_fast_path", (PyCFunction)server_enable_django_fast_path, METH_VARARGS,
     "enable_django_fast_path(run, threads): serve plain HTTP requests through "
     "dfws.django_fast.FastPath.run on `threads` threads."},
    {"native_stats", (PyCFunction)server_native_stats, METH_NOARGS, "Native window counters."},
    {"start_layer", (PyCFunction)server_start_layer, METH_O,
     "Start the C channel layer from dfws.layer_config JSON."},
    {"active_requests", (PyCFunction)server_active_requests, METH_NOARGS,
     "Requests whose response is not complete."},
    {"connections", (PyCFunction)server_connections, METH_NOARGS, "Open connections."},
    {"websockets", (PyCFunction)server_websockets, METH_NOARGS, "Open WebSockets."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject server_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dfws._dfws.Server",
    .tp_basicsize = sizeof(Server),
    .tp_dealloc = (destructor)server_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = server_methods,
    .tp_init = (initproc)server_init,
    .tp_new = PyType_GenericNew,
};

/* ---- module functions ------------------------------------------------------------ */

/* One option's value, by its type (server/options.h). */
static PyObject *option_value(const dfws_cli_t *c, const dfws_option_t *o)
{
    const void *f = dfws_option_field(c, o);
    switch (o->type) {
    case DFWS_OPT_STRING:
    case DFWS_OPT_CLEAR: {
        const char *s = *(const char *const *)f;
        if (s)
            return PyUnicode_FromString(s);
        Py_RETURN_NONE;
    }
    case DFWS_OPT_INT:
    case DFWS_OPT_OCTAL:
        return PyLong_FromLong(*(const int *)f);
    case DFWS_OPT_LONG:
    case DFWS_OPT_DURATION:
        return PyLong_FromLong(*(const long *)f);
    case DFWS_OPT_SIZE:
        return PyLong_FromSize_t(*(const size_t *)f);
    case DFWS_OPT_SECONDS:
    case DFWS_OPT_NUMBER:
        return PyFloat_FromDouble(*(const double *)f);
    case DFWS_OPT_ENUM:
        return PyUnicode_FromString(o->choices[*(const int *)f]);
    case DFWS_OPT_BOOL:
    case DFWS_OPT_FLAG:
        return PyBool_FromLong(*(const int *)f);
    case DFWS_OPT_LIST: {
        int n = *(const int *)((const char *)c + o->count_offset);
        PyObject *list = PyList_New(n);
        for (int i = 0; list && i < n; i++) {
            PyObject *s = PyUnicode_FromString(((const char *const *)f)[i]);
            if (!s)
                Py_CLEAR(list);
            else
                PyList_SET_ITEM(list, i, s);
        }
        return list;
    }
    case DFWS_OPT_ACTION:
        break;
    }
    Py_RETURN_NONE;
}

/* Every option of server/options.c by its key, plus is_unix. */
static PyObject *mod_options(PyObject *m, PyObject *unused)
{
    const dfws_cli_t *c = dfws_asgi_cli;
    if (!c) {
        PyErr_SetString(PyExc_RuntimeError, "no options outside dfws-asgi");
        return NULL;
    }
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < dfws_n_options; i++) {
        const dfws_option_t *o = &dfws_options[i];
        char key[64];
        if ((o->flags & DFWS_OPT_F_NOKEY) || o->type == DFWS_OPT_ACTION)
            continue;
        PyObject *v = option_value(c, o);
        if (!v || PyDict_SetItemString(d, dfws_option_key(o, key, sizeof(key)), v))
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    if (d && PyDict_SetItemString(d, "is_unix", dfws_asgi_is_unix ? Py_True : Py_False))
        Py_CLEAR(d);
    return d;
}

static PyObject *mod_lifespan_mode(PyObject *m, PyObject *unused)
{
    static const char *names[] = {"auto", "on", "off"};
    return PyUnicode_FromString(dfws_asgi_cli ? names[dfws_asgi_cli->lifespan] : "auto");
}

static PyObject *mod_ws_deflate_stats(PyObject *m, PyObject *unused)
{
    dfws_ws_deflate_stats_t st;
    dfws_wsconn_deflate_stats(&st);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K}", "compressed", st.compressed, "reused",
                         st.reused, "not_smaller", st.not_smaller, "inflated", st.inflated,
                         "bytes_in", st.bytes_in, "bytes_out", st.bytes_out);
}

static PyMethodDef module_methods[] = {
    {"options", mod_options, METH_NOARGS, "The command-line options of this worker."},
    {"ws_deflate_stats", mod_ws_deflate_stats, METH_NOARGS,
     "permessage-deflate counters of this process (messages compressed, sends that reused "
     "a compressed message, ...)."},
    {"lifespan_mode", mod_lifespan_mode, METH_NOARGS, "auto, on or off."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dfws._dfws",
    .m_doc = "dfws-asgi's C server. Import it through dfws.binding, which binds it to uvloop's "
             "libuv first.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__dfws(void)
{
    if (dfws_str_init())
        return NULL;
    if (PyType_Ready(&dfws_ready_type) || PyType_Ready(&dfws_http_cycle_type) ||
        dfws_websocket_types_ready() || dfws_native_types_ready() || PyType_Ready(&server_type))
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    if (PyModule_AddFunctions(m, dfws_layer_methods) ||
        PyModule_AddFunctions(m, dfws_startup_methods) ||
        PyModule_AddIntConstant(m, "LAYER_EFULL", DFWS_LAYER_EFULL) ||
        PyModule_AddIntConstant(m, "LAYER_EIO", DFWS_LAYER_EIO) ||
        PyModule_AddIntConstant(m, "LAYER_ECLOSED", DFWS_LAYER_ECLOSED))
        goto fail;
    if (!dfws_ready_none && !(dfws_ready_none = dfws_ready_new(Py_None)))
        goto fail;
    Py_INCREF(&server_type);
    if (PyModule_AddObject(m, "Server", (PyObject *)&server_type)) {
        Py_DECREF(&server_type);
        goto fail;
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
