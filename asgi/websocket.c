/* ASGI WebSocket: the scope, the event queue behind receive(), and send()
 * for websocket.accept / send / close and the denial-response extension.
 *
 * Ownership: the connection's `app` slot (dfws_wsconn_t.app) holds a strong
 * reference on the WSCycle from the start of the application until its task
 * is done; the WSCycle points at the dfws_wsconn_t only until ops->ws_closed,
 * after which server/ may free it. */
#include "asgi.h"
#include "request.h"
#include "log.h"
#include "str.h"
#include "ws_conn.h"

#include <errno.h>

#define QUEUE_PAUSE 64 /* stop reading the socket above this many queued events */
#define QUEUE_RESUME 16

typedef struct {
    PyObject_HEAD
    dfws_asgi_t *A;
    dfws_wsconn_t *wc;      /* NULL once the connection is gone */
    PyObject *queue;        /* list of events not yet received, oldest first */
    PyObject *last;         /* the disconnect event, repeated once the queue is empty */
    PyObject *waiter;       /* Future of a pending receive() */
    PyObject *drain_waiter; /* Future of a send() waiting for the socket */
    PyObject *task;
    PyObject *cancel_handle;
} WSCycle;

static PyTypeObject wscycle_type;

static PyObject *event(PyObject *type)
{
    PyObject *m = PyDict_New();
    if (m && PyDict_SetItem(m, dfws_str_type, type)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* Hands `ev` (stolen) to a waiting receive() or queues it. */
static void deliver(WSCycle *self, PyObject *ev)
{
    if (!ev) {
        PyErr_Clear();
        return;
    }
    if (self->waiter && PyList_GET_SIZE(self->queue) == 0) {
        dfws_future_take(&self->waiter, ev);
        Py_DECREF(ev);
        return;
    }
    if (PyList_Append(self->queue, ev))
        PyErr_Clear();
    Py_DECREF(ev);
    if (self->wc && PyList_GET_SIZE(self->queue) >= QUEUE_PAUSE && !self->wc->reading_paused)
        dfws_wsconn_pause_reading(self->wc, 1);
}

static PyObject *ws_receive(WSCycle *self, PyObject *unused)
{
    Py_ssize_t n = PyList_GET_SIZE(self->queue);
    if (n) {
        PyObject *ev = PyList_GET_ITEM(self->queue, 0);
        Py_INCREF(ev);
        if (PyList_SetSlice(self->queue, 0, 1, NULL)) {
            Py_DECREF(ev);
            return NULL;
        }
        if (self->wc && self->wc->reading_paused && n - 1 <= QUEUE_RESUME)
            dfws_wsconn_pause_reading(self->wc, 0);
        PyObject *aw = dfws_ready_new(ev);
        Py_DECREF(ev);
        return aw;
    }
    if (self->last)
        return dfws_ready_new(self->last);
    if (self->waiter) {
        PyErr_SetString(PyExc_RuntimeError, "receive() called while another receive() is pending");
        return NULL;
    }
    PyObject *fut = PyObject_CallNoArgs(self->A->create_future);
    if (!fut)
        return NULL;
    self->waiter = Py_NewRef(fut);
    return fut;
}

static int get_opt_str(PyObject *msg, PyObject *key, PyObject **out)
{
    PyObject *v = PyDict_GetItemWithError(msg, key);
    if (!v && PyErr_Occurred())
        return -1;
    *out = v == Py_None ? NULL : v;
    return 0;
}

/* [name, value] pairs into dfws_ws_header_t; `views` keeps the buffers. */
static int collect_headers(PyObject *headers, dfws_ws_header_t **out, Py_buffer **views,
                           Py_ssize_t *count)
{
    *out = NULL;
    *views = NULL;
    *count = 0;
    if (!headers || headers == Py_None)
        return 0;
    PyObject *seq = PySequence_Fast(headers, "headers must be a list of [name, value] pairs");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    *out = PyMem_Calloc((size_t)n + 1, sizeof(**out));
    *views = PyMem_Calloc((size_t)n * 2 + 1, sizeof(**views));
    if (!*out || !*views) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, i),
                                         "each header must be a [name, value] pair");
        if (!pair || PySequence_Fast_GET_SIZE(pair) != 2) {
            if (pair) {
                Py_DECREF(pair);
                PyErr_SetString(PyExc_ValueError, "each header must be a [name, value] pair");
            }
            Py_DECREF(seq);
            return -1;
        }
        Py_buffer *nv = &(*views)[2 * i], *vv = &(*views)[2 * i + 1];
        int bad = PyObject_GetBuffer(PySequence_Fast_GET_ITEM(pair, 0), nv, PyBUF_SIMPLE);
        if (!bad && PyObject_GetBuffer(PySequence_Fast_GET_ITEM(pair, 1), vv, PyBUF_SIMPLE)) {
            PyBuffer_Release(nv);
            bad = 1;
        }
        Py_DECREF(pair);
        if (bad) {
            Py_DECREF(seq);
            return -1;
        }
        (*out)[i].name = nv->buf;
        (*out)[i].name_len = (size_t)nv->len;
        (*out)[i].value = vv->buf;
        (*out)[i].value_len = (size_t)vv->len;
        *count = i + 1;
    }
    Py_DECREF(seq);
    return 0;
}

static void release_headers(dfws_ws_header_t *hs, Py_buffer *views, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        PyBuffer_Release(&views[2 * i]);
        PyBuffer_Release(&views[2 * i + 1]);
    }
    PyMem_Free(hs);
    PyMem_Free(views);
}

/* The message's "headers" (absent or None: none) as dfws_ws_header_t; on
 * success the caller releases them with release_headers. */
static int message_headers(PyObject *msg, dfws_ws_header_t **hs, Py_buffer **views,
                           Py_ssize_t *count)
{
    PyObject *headers = PyDict_GetItemWithError(msg, dfws_str_headers);
    if (!headers && PyErr_Occurred())
        return -1;
    if (collect_headers(headers, hs, views, count)) {
        release_headers(*hs, *views, *count);
        return -1;
    }
    return 0;
}

static int send_accept(WSCycle *self, PyObject *msg)
{
    PyObject *sub;
    if (get_opt_str(msg, dfws_str_subprotocol, &sub))
        return -1;
    Py_ssize_t sublen = 0;
    const char *subp = NULL;
    if (sub && !(subp = PyUnicode_AsUTF8AndSize(sub, &sublen)))
        return -1;
    dfws_ws_header_t *hs;
    Py_buffer *views;
    Py_ssize_t count;
    if (message_headers(msg, &hs, &views, &count))
        return -1;
    int rc = dfws_wsconn_accept(self->wc, subp, (size_t)sublen, hs, (size_t)count);
    release_headers(hs, views, count);
    if (rc == DFWS_WS_HS_E_PROTOCOL || rc == DFWS_WS_HS_E_HEADER || rc == DFWS_WS_E_INVAL) {
        PyErr_Format(PyExc_ValueError, "websocket.accept: %s", dfws_ws_strerror(rc));
        return -1;
    }
    return 0;
}

static int send_data(WSCycle *self, PyObject *msg)
{
    PyObject *b, *t;
    if (get_opt_str(msg, dfws_str_bytes, &b) || get_opt_str(msg, dfws_str_text, &t))
        return -1;
    if (b) {
        Py_buffer view;
        if (PyObject_GetBuffer(b, &view, PyBUF_SIMPLE))
            return -1;
        dfws_wsconn_send(self->wc, 1, view.buf, (size_t)view.len);
        PyBuffer_Release(&view);
        return 0;
    }
    if (t) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(t, &len);
        if (!s)
            return -1;
        dfws_wsconn_send(self->wc, 0, s, (size_t)len);
        return 0;
    }
    PyErr_SetString(PyExc_ValueError, "websocket.send needs 'bytes' or 'text'");
    return -1;
}

static int send_close(WSCycle *self, PyObject *msg)
{
    long code = 1000;
    PyObject *c = PyDict_GetItemWithError(msg, dfws_str_code);
    if (c && c != Py_None) {
        code = PyLong_AsLong(c);
        if (code == -1 && PyErr_Occurred())
            return -1;
    } else if (PyErr_Occurred())
        return -1;
    PyObject *reason;
    if (get_opt_str(msg, dfws_str_reason, &reason))
        return -1;
    Py_ssize_t rlen = 0;
    const char *r = reason ? PyUnicode_AsUTF8AndSize(reason, &rlen) : NULL;
    if (reason && !r)
        return -1;
    /* a code out of range must not wrap into a valid one (66536 → 1000):
     * 1 is refused as invalid */
    if (dfws_wsconn_close(self->wc, code < 0 || code > 65535 ? 1 : (int)code, r, (size_t)rlen) ==
        DFWS_WS_E_INVAL) {
        PyErr_Format(PyExc_ValueError, "invalid WebSocket close code %ld", code);
        return -1;
    }
    return 0;
}

static int send_denial(WSCycle *self, PyObject *msg, int start)
{
    dfws_req_t *r = self->wc->req;
    const char *err = "";
    int rc;
    if (!r || self->wc->state != DFWS_WSC_HANDSHAKE) {
        PyErr_SetString(PyExc_RuntimeError,
                        "websocket.http.response.* is only allowed before websocket.accept");
        return -1;
    }
    if (start) {
        PyObject *status = PyDict_GetItemWithError(msg, dfws_str_status);
        long st = status ? PyLong_AsLong(status) : -1;
        if (st == -1) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "websocket.http.response.start needs a status");
            return -1;
        }
        if ((rc = dfws_req_response_start(r, st < 0 || st > 999 ? -1 : (int)st, &err)))
            goto check;
        dfws_ws_header_t *hs;
        Py_buffer *views;
        Py_ssize_t count;
        if (message_headers(msg, &hs, &views, &count))
            return -1;
        rc = 0;
        for (Py_ssize_t i = 0; i < count && !rc; i++)
            rc = dfws_req_response_header(r, hs[i].name, hs[i].name_len, hs[i].value,
                                          hs[i].value_len, &err);
        release_headers(hs, views, count);
    } else {
        Py_buffer body = {0};
        PyObject *b = PyDict_GetItemWithError(msg, dfws_str_body);
        if (!b && PyErr_Occurred())
            return -1;
        if (b && PyObject_GetBuffer(b, &body, PyBUF_SIMPLE))
            return -1;
        PyObject *m = PyDict_GetItemWithError(msg, dfws_str_more_body);
        int more = m ? PyObject_IsTrue(m) : 0;
        rc = more < 0 ? -EINVAL
                      : dfws_req_response_body(r, body.buf, (size_t)(b ? body.len : 0), more, &err);
        if (b)
            PyBuffer_Release(&body);
        if (more < 0)
            return -1;
    }
check:
    if (rc == -EINVAL) {
        PyErr_SetString(PyExc_ValueError, err);
        return -1;
    }
    return 0;
}

static int type_is(PyObject *type, PyObject *s)
{
    return type == s || (PyUnicode_Check(type) && !PyUnicode_Compare(type, s));
}

static PyObject *ws_send(WSCycle *self, PyObject *msg)
{
    if (!PyDict_Check(msg)) {
        PyErr_SetString(PyExc_TypeError, "send() takes a dict message");
        return NULL;
    }
    PyObject *type = PyDict_GetItemWithError(msg, dfws_str_type);
    if (!type) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "message has no 'type'");
        return NULL;
    }
    int rc = 0;
    if (!self->wc) {
        /* the client is gone: like daphne, further sends are dropped */
    } else if (type_is(type, dfws_str_websocket_send))
        rc = send_data(self, msg);
    else if (type_is(type, dfws_str_websocket_accept))
        rc = send_accept(self, msg);
    else if (type_is(type, dfws_str_websocket_close))
        rc = send_close(self, msg);
    else if (type_is(type, dfws_str_websocket_http_response_start))
        rc = send_denial(self, msg, 1);
    else if (type_is(type, dfws_str_websocket_http_response_body))
        rc = send_denial(self, msg, 0);
    else {
        PyErr_Format(PyExc_ValueError, "unexpected ASGI message type %R for a WebSocket", type);
        return NULL;
    }
    if (rc)
        return NULL;
    if (self->wc && dfws_wsconn_write_pending(self->wc) > DFWS_WRITE_HIGH) {
        PyObject *fut = PyObject_CallNoArgs(self->A->create_future);
        if (!fut)
            return NULL;
        Py_XSETREF(self->drain_waiter, Py_NewRef(fut));
        self->wc->app_waiting_drain = 1;
        return fut;
    }
    return Py_NewRef(dfws_ready_none);
}

static PyObject *ws_done(WSCycle *self, PyObject *task)
{
    dfws_asgi_t *A = self->A;
    int was_cancelled;
    dfws_asgi_disarm(&self->cancel_handle);
    PyObject *exc = dfws_asgi_task_exception(task, &was_cancelled);
    int failed = exc != NULL;
    if (failed) {
        PyObject *res = PyObject_CallFunction(A->log_exception, "sO",
                                              "Exception inside WebSocket application", exc);
        Py_XDECREF(res);
        PyErr_Clear();
        Py_DECREF(exc);
    }
    dfws_wsconn_t *wc = self->wc;
    if (wc) {
        if (wc->state == DFWS_WSC_HANDSHAKE) {
            /* a denial response under way, or an exception: 500 (or a dropped
             * connection when the response had started); else 403 */
            if (wc->req && (wc->req->response_started || failed))
                dfws_req_abort(wc->req, 500);
            else
                dfws_wsconn_reject(wc);
        } else if (wc->state == DFWS_WSC_OPEN) {
            dfws_wsconn_close(wc, failed ? 1011 : 1000, NULL, 0);
        }
        if (self->wc)
            self->wc->app = NULL;
        self->wc = NULL;
    }
    Py_CLEAR(self->task);
    Py_CLEAR(self->waiter);
    dfws_future_take(&self->drain_waiter, Py_None);
    Py_DECREF(self); /* the connection's reference, dropped at the end of the app */
    Py_RETURN_NONE;
}

static PyMethodDef receive_def = {"receive", (PyCFunction)ws_receive, METH_NOARGS, NULL};
static PyMethodDef send_def = {"send", (PyCFunction)ws_send, METH_O, NULL};
static PyMethodDef done_def = {"_done", (PyCFunction)ws_done, METH_O, NULL};

static int wscycle_traverse(WSCycle *self, visitproc visit, void *arg)
{
    Py_VISIT(self->queue);
    Py_VISIT(self->last);
    Py_VISIT(self->waiter);
    Py_VISIT(self->drain_waiter);
    Py_VISIT(self->task);
    Py_VISIT(self->cancel_handle);
    return 0;
}

static int wscycle_clear(WSCycle *self)
{
    Py_CLEAR(self->queue);
    Py_CLEAR(self->last);
    Py_CLEAR(self->waiter);
    Py_CLEAR(self->drain_waiter);
    Py_CLEAR(self->task);
    Py_CLEAR(self->cancel_handle);
    return 0;
}

static void wscycle_dealloc(WSCycle *self)
{
    PyObject_GC_UnTrack(self);
    wscycle_clear(self);
    PyObject_GC_Del(self);
}

static PyTypeObject wscycle_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dfws._dfws.WebSocketCycle",
    .tp_basicsize = sizeof(WSCycle),
    .tp_dealloc = (destructor)wscycle_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)wscycle_traverse,
    .tp_clear = (inquiry)wscycle_clear,
};

int dfws_websocket_types_ready(void)
{
    return PyType_Ready(&wscycle_type);
}

/* ---- ops called by server/ ---------------------------------------------------- */

static PyObject *subprotocols(dfws_req_t *r)
{
    dfws_ws_header_t stack[32];
    dfws_ws_header_t *hs = dfws_wsconn_headers(r, stack, 32);
    if (!hs)
        return PyErr_NoMemory();
    dfws_ws_token_t toks[32];
    int count = dfws_ws_parse_protocols(hs, r->nhdrs, toks, 32);
    if (hs != stack)
        free(hs);
    if (count < 0)
        count = 0;
    if (count > 32)
        count = 32;
    PyObject *list = PyList_New(count);
    for (int i = 0; list && i < count; i++) {
        PyObject *s = PyUnicode_DecodeLatin1(toks[i].ptr, (Py_ssize_t)toks[i].len, NULL);
        if (!s) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, s);
    }
    return list;
}

int dfws_ws_request(void *ud, dfws_wsconn_t *wc)
{
    dfws_asgi_t *A = ud;
    int ret = -1;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *scope = NULL, *ext = NULL;
    WSCycle *self = PyObject_GC_New(WSCycle, &wscycle_type);
    if (!self)
        goto out;
    self->A = A;
    self->wc = wc;
    self->queue = PyList_New(0);
    self->last = self->waiter = self->drain_waiter = self->task = self->cancel_handle = NULL;
    PyObject_GC_Track(self);
    if (!self->queue)
        goto out;
    deliver(self, event(dfws_str_websocket_connect));

    scope = dfws_asgi_build_scope(A, wc->req, dfws_str_websocket);
    if (!scope)
        goto out;
    PyObject *subs = subprotocols(wc->req);
    if (!subs || PyDict_SetItem(scope, dfws_str_subprotocols, subs)) {
        Py_XDECREF(subs);
        goto out;
    }
    Py_DECREF(subs);
    ext = Py_BuildValue("{O{}}", dfws_str_websocket_http_response);
    if (!ext || PyDict_SetItem(scope, dfws_str_extensions, ext))
        goto out;
    self->task = dfws_asgi_start_task(A, (PyObject *)self, scope, &receive_def, &send_def,
                                      &done_def);
    if (!self->task)
        goto out;
    wc->app = self;
    Py_INCREF(self);
    ret = 0;
out:
    if (ret) {
        dfws_log_current_exception(A, "Exception while starting the WebSocket application");
        if (self)
            self->wc = NULL;
    }
    Py_XDECREF(ext);
    Py_XDECREF(scope);
    Py_XDECREF(self);
    PyGILState_Release(g);
    return ret;
}

void dfws_ws_message(void *ud, dfws_wsconn_t *wc, int binary, const char *data, size_t len)
{
    (void)ud;
    PyGILState_STATE g = PyGILState_Ensure();
    WSCycle *self = wc->app;
    PyObject *ev = event(dfws_str_websocket_receive);
    PyObject *payload = binary ? PyBytes_FromStringAndSize(data, (Py_ssize_t)len)
                               : PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "strict");
    if (ev && payload && !PyDict_SetItem(ev, binary ? dfws_str_bytes : dfws_str_text, payload)) {
        deliver(self, ev);
        ev = NULL;
    }
    Py_XDECREF(payload);
    Py_XDECREF(ev);
    PyErr_Clear();
    PyGILState_Release(g);
}

void dfws_ws_closed(void *ud, dfws_wsconn_t *wc, int code)
{
    dfws_asgi_t *A = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    WSCycle *self = wc->app;
    self->wc = NULL;
    wc->app = NULL;
    PyObject *ev = event(dfws_str_websocket_disconnect);
    PyObject *c = PyLong_FromLong(code);
    if (ev && c && !PyDict_SetItem(ev, dfws_str_code, c)) {
        self->last = Py_NewRef(ev);
        deliver(self, ev);
        ev = NULL;
    }
    Py_XDECREF(c);
    Py_XDECREF(ev);
    PyErr_Clear();
    dfws_future_take(&self->drain_waiter, Py_None);
    dfws_asgi_arm_close_timeout(A, self->task, &self->cancel_handle);
    PyGILState_Release(g);
}

void dfws_ws_drain(void *ud, dfws_wsconn_t *wc)
{
    (void)ud;
    PyGILState_STATE g = PyGILState_Ensure();
    if (wc->app)
        dfws_future_take(&((WSCycle *)wc->app)->drain_waiter, Py_None);
    PyGILState_Release(g);
}
