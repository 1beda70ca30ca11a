/* The Python side of the native df_websockets endpoint (server/native.c):
 * the one call at connect and, outside `channels` mode, signal calls, both
 * handed to dfws.native which runs them off the loop thread.
 *
 * Ownership: a NativeWindow object is held by its C window (the window's
 * app slot) until the window closes; Python holds it while its connect or
 * signal work is in flight and may outlive the window (then `w` is NULL and
 * every method is a no-op). */
#include "asgi.h"
#include "log.h"
#include "metrics.h"
#include "native.h"
#include "str.h"

typedef struct {
    PyObject_HEAD
    dfws_window_t *w;
} NativeWindow;

/* The WindowInfo dict lives in C as msgpack (what `process.signal` carries);
 * Python gets a fresh dict only when a signal call needs it, so an idle
 * window holds no Python dict. */
static PyObject *unpackb;


static PyObject *nw_accept(NativeWindow *self, PyObject *args)
{
    Py_buffer mp;
    PyObject *groups;
    if (!PyArg_ParseTuple(args, "y*O", &mp, &groups))
        return NULL;
    PyObject *seq = PySequence_Fast(groups, "groups must be a list of str");
    if (!seq) {
        PyBuffer_Release(&mp);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    const char **names = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    int ok = names != NULL;
    for (Py_ssize_t i = 0; ok && i < n; i++)
        ok = (names[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i))) != NULL;
    PyObject *res = NULL;
    if (ok) {
        if (self->w)
            dfws_native_connected(self->w, mp.buf, (size_t)mp.len, names, (size_t)n);
        res = Py_NewRef(Py_None);
    } else if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    PyMem_Free(names);
    Py_DECREF(seq);
    PyBuffer_Release(&mp);
    return res;
}

static PyObject *nw_refuse(NativeWindow *self, PyObject *args)
{
    int status = 403;
    if (!PyArg_ParseTuple(args, "|i", &status))
        return NULL;
    if (status < 400 || status > 599) {
        PyErr_SetString(PyExc_ValueError, "refuse(): status must be an HTTP error status");
        return NULL;
    }
    if (self->w)
        dfws_native_refused(self->w, status);
    Py_RETURN_NONE;
}

static PyObject *nw_get_window_info(NativeWindow *self, void *closure)
{
    size_t len;
    const char *mp = self->w ? dfws_native_window_info(self->w, &len) : NULL;
    if (!mp)
        Py_RETURN_NONE;
    if (!unpackb) {
        PyObject *mod = PyImport_ImportModule("msgpack");
        unpackb = mod ? PyObject_GetAttrString(mod, "unpackb") : NULL;
        Py_XDECREF(mod);
        if (!unpackb)
            return NULL;
    }
    PyObject *raw = PyBytes_FromStringAndSize(mp, (Py_ssize_t)len);
    if (!raw)
        return NULL;
    PyObject *kw = Py_BuildValue("{s:O}", "raw", Py_False);
    PyObject *args = PyTuple_Pack(1, raw);
    PyObject *info = kw && args ? PyObject_Call(unpackb, args, kw) : NULL;
    Py_XDECREF(args);
    Py_XDECREF(kw);
    Py_DECREF(raw);
    return info;
}

static PyObject *nw_get_open(NativeWindow *self, void *closure)
{
    return PyBool_FromLong(self->w != NULL);
}

static void nw_dealloc(NativeWindow *self)
{
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef nw_methods[] = {
    {"accept", (PyCFunction)nw_accept, METH_VARARGS,
     "accept(window_info_msgpack, groups): join the groups and accept."},
    {"refuse", (PyCFunction)nw_refuse, METH_VARARGS,
     "refuse([status]): refuse the handshake with 403, or status (500, 503)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef nw_getset[] = {
    {"window_info", (getter)nw_get_window_info, NULL,
     "WindowInfo.to_dict() of the window (a new dict each time; None once closed)", NULL},
    {"open", (getter)nw_get_open, NULL, "whether the window is still connected", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject nw_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dfws._dfws.NativeWindow",
    .tp_basicsize = sizeof(NativeWindow),
    .tp_dealloc = (destructor)nw_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = nw_methods,
    .tp_getset = nw_getset,
};

int dfws_native_types_ready(void)
{
    return PyType_Ready(&nw_type);
}

/* ---- ops -------------------------------------------------------------------- */

static int op_connect(void *ud, dfws_window_t *w, dfws_req_t *req)
{
    dfws_asgi_t *A = ud;
    int ret = -1;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *scope = dfws_asgi_build_scope(A, req, dfws_str_websocket);
    NativeWindow *obj = scope ? PyObject_New(NativeWindow, &nw_type) : NULL;
    if (obj) {
        obj->w = w;
        dfws_native_set_app(w, obj); /* the window's reference */
        PyObject *res = PyObject_CallFunctionObjArgs(A->native_connect, scope, (PyObject *)obj,
                                                     NULL);
        if (res) {
            Py_DECREF(res);
            ret = 0;
        } else {
            dfws_native_set_app(w, NULL);
            obj->w = NULL;
            Py_DECREF(obj);
        }
    }
    if (ret)
        dfws_log_current_exception(A, "Exception while connecting a df_websockets window");
    Py_XDECREF(scope);
    PyGILState_Release(g);
    return ret;
}

static void op_signal(void *ud, dfws_window_t *w, const char *json, size_t len)
{
    dfws_asgi_t *A = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *obj = dfws_native_get_app(w);
    PyObject *text = PyUnicode_DecodeUTF8(json, (Py_ssize_t)len, "replace");
    PyObject *res = text && obj ? PyObject_CallFunctionObjArgs(A->native_signal, obj, text, NULL)
                                : NULL;
    if (!res)
        dfws_log_current_exception(A, "Exception while handing a browser signal to Python");
    Py_XDECREF(res);
    Py_XDECREF(text);
    PyGILState_Release(g);
}

static void op_closed(void *ud, dfws_window_t *w)
{
    (void)ud;
    PyGILState_STATE g = PyGILState_Ensure();
    NativeWindow *obj = dfws_native_get_app(w);
    if (obj) {
        obj->w = NULL;
        dfws_native_set_app(w, NULL);
        Py_DECREF(obj);
    }
    PyGILState_Release(g);
}

static const dfws_native_ops_t native_ops = {
    .connect = op_connect,
    .signal = op_signal,
    .closed = op_closed,
};

/* The native endpoint's route (route.h): ws_conn.c hands it the upgrades
 * whose target is its path, before the ASGI application sees them. */
static int route_matches(const void *ud, const char *target, size_t len)
{
    return dfws_native_matches(ud, target, len);
}

static int route_start(void *ud, dfws_wsconn_t *wc)
{
    return dfws_native_start(ud, wc) ? -1 : 0;
}

/* Server.enable_native(ws_url, channels_mode, json_in_c, queues_json, connect, signal
 *                      [, history_size, history_ttl, recovery_max_bytes, append_lua, read_lua]) */
PyObject *dfws_native_enable(dfws_asgi_t *A, PyObject *args)
{
    const char *ws_url, *queues_json, *append_lua = NULL, *read_lua = NULL;
    int channels_mode, json_in_c;
    PyObject *connect, *signal;
    Py_ssize_t history_size = 0, max_bytes = 0;
    unsigned int history_ttl = 0;
    if (!PyArg_ParseTuple(args, "sppzOO|nInzz", &ws_url, &channels_mode, &json_in_c, &queues_json,
                          &connect, &signal, &history_size, &history_ttl, &max_bytes, &append_lua,
                          &read_lua))
        return NULL;
    if (history_size < 0 || max_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "history size and recovery bytes must be >= 0");
        return NULL;
    }
    if (A->native) {
        PyErr_SetString(PyExc_RuntimeError, "native WebSockets are already enabled");
        return NULL;
    }
    dfws_layer_t *layer = dfws_asgi_layer();
    if (!layer) {
        PyErr_SetString(PyExc_RuntimeError, "native WebSockets need the C channel layer");
        return NULL;
    }
    dfws_native_config_t cfg = {
        .ws_url = ws_url,
        .channels_mode = channels_mode,
        .json_in_c = json_in_c,
        .queues_json = queues_json,
        .rate_limit = A->cli->ws_rate_limit,
        .connect_capacity = A->cli->ws_connect_capacity,
        .history_size = (size_t)history_size,
        .history_ttl = history_ttl,
        .recovery_max_bytes = (size_t)max_bytes,
        .history_append_lua = append_lua,
        .history_read_lua = read_lua,
    };
    const char *err = "out of memory";
    if (dfws_native_new(layer, &cfg, &native_ops, A, &A->native, &err))
        return PyErr_Format(PyExc_ValueError, "native WebSockets: %s", err);
    dfws_ws_route_t route = {route_matches, route_start, A->native};
    if (dfws_route_ws_add(&A->server.routes, &route)) {
        dfws_native_free(A->native);
        A->native = NULL;
        PyErr_SetString(PyExc_RuntimeError, "native WebSockets: no room in the route table");
        return NULL;
    }
    A->native_connect = Py_NewRef(connect);
    A->native_signal = Py_NewRef(signal);
    Py_RETURN_NONE;
}

void dfws_native_disable(dfws_asgi_t *A)
{
    if (A->native)
        dfws_route_ws_remove(&A->server.routes, A->native);
    dfws_native_free(A->native);
    A->native = NULL;
    Py_CLEAR(A->native_connect);
    Py_CLEAR(A->native_signal);
}

void dfws_native_metrics(dfws_asgi_t *A)
{
    dfws_metrics_slot_t *m = dfws_metrics;
    if (!m || !A->native)
        return;
    dfws_native_stats_t st = {0};
    dfws_native_get_stats(A->native, &st);
    /* this process's running totals: the slot follows them */
    __atomic_store_n(&m->deliveries, (uint64_t)st.deliveries, __ATOMIC_RELAXED);
    __atomic_store_n(&m->deliveries_dropped, (uint64_t)st.deliveries_dropped, __ATOMIC_RELAXED);
    __atomic_store_n(&m->signal_calls, (uint64_t)st.calls_dispatched, __ATOMIC_RELAXED);
    __atomic_store_n(&m->connects_refused, (uint64_t)st.connects_refused, __ATOMIC_RELAXED);
    dfws_metrics_set(&m->native_windows, (int64_t)st.windows);
}

PyObject *dfws_native_stats(dfws_asgi_t *A)
{
    dfws_native_stats_t st = {0};
    if (A->native)
        dfws_native_get_stats(A->native, &st);
    return Py_BuildValue("{s:n,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "windows",
                         (Py_ssize_t)st.windows, "frames_in", st.frames_in, "heartbeats",
                         st.heartbeats, "calls_dispatched", st.calls_dispatched, "calls_to_app",
                         st.calls_to_app, "calls_dropped", st.calls_dropped, "deliveries",
                         st.deliveries, "deliveries_dropped", st.deliveries_dropped, "rate_limited",
                         st.rate_limited, "connects_refused", st.connects_refused);
}
