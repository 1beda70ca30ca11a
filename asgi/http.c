/* ASGI HTTP: scope building, the receive/send callables and the task that
 * runs the application for one request.
 *
 * Ownership: a Cycle holds one reference on its dfws_req_t (released in its
 * dealloc). The request's `app` slot holds one strong reference on the
 * Cycle from the start of the application until its task is done. */
#include "asgi.h"
#include "proxy.h"
#include "request.h"
#include "log.h"
#include "str.h"
#include "text.h"

#include <errno.h>
#include <strings.h>

typedef struct {
    PyObject_HEAD
    dfws_asgi_t *A;
    dfws_req_t *req;
    PyObject *receive_waiter; /* Future of a pending receive() */
    PyObject *drain_waiter;   /* Future of a send() waiting for the socket */
    PyObject *cancel_handle;  /* TimerHandle of --application-close-timeout */
    PyObject *task;
} Cycle;

static PyObject *disconnect_message(void)
{
    PyObject *m = PyDict_New();
    if (m && PyDict_SetItem(m, dfws_str_type, dfws_str_http_disconnect)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* ---- scope ---------------------------------------------------------------- */

static PyObject *decode_path(const char *p, size_t n)
{
    char stack[512] = {0};
    char *out = n <= sizeof(stack) ? stack : PyMem_Malloc(n);
    if (!out)
        return PyErr_NoMemory();
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (p[i] == '%' && i + 2 < n && (h = dfws_hex_digit(p[i + 1])) >= 0 &&
            (l = dfws_hex_digit(p[i + 2])) >= 0) {
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[o++] = p[i];
        }
    }
    PyObject *s = PyUnicode_DecodeUTF8(out, (Py_ssize_t)o, "replace");
    if (out != stack)
        PyMem_Free(out);
    return s;
}

/* Request header names browsers and proxies send on nearly every request:
 * their lower-case bytes objects are made once and shared. */
static const char *const common_names[] = {
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "cookie",
    "content-type",
    "content-length",
    "referer",
    "origin",
    "cache-control",
    "upgrade-insecure-requests",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "sec-fetch-user",
    "x-requested-with",
    "x-forwarded-for",
    "x-forwarded-proto",
    "if-none-match",
    "if-modified-since",
    "pragma",
    "dnt",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "authorization",
    "x-csrftoken",
    "te",
};
#define NCOMMON (sizeof(common_names) / sizeof(common_names[0]))
static PyObject *common_bytes[NCOMMON];

/* Made once; the lengths then come from the bytes objects, so matching a
 * header costs a length check before any string comparison. */
static int common_ready(void)
{
    if (common_bytes[NCOMMON - 1])
        return 1;
    for (size_t i = 0; i < NCOMMON; i++)
        if (!common_bytes[i] && !(common_bytes[i] = PyBytes_FromString(common_names[i]))) {
            PyErr_Clear();
            return 0;
        }
    return 1;
}

static PyObject *common_name(const char *p, size_t n)
{
    if (!common_ready())
        return NULL;
    for (size_t i = 0; i < NCOMMON; i++) {
        PyObject *b = common_bytes[i];
        if ((size_t)PyBytes_GET_SIZE(b) == n && !strncasecmp(p, PyBytes_AS_STRING(b), n))
            return Py_NewRef(b);
    }
    return NULL;
}

static PyObject *lower_bytes(const char *p, size_t n)
{
    PyObject *known = n < 32 ? common_name(p, n) : NULL;
    if (known)
        return known;
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (!b)
        return NULL;
    char *d = PyBytes_AS_STRING(b);
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        d[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    return b;
}

static int set_item(PyObject *d, PyObject *k, PyObject *v)
{
    if (!v)
        return -1;
    int rc = PyDict_SetItem(d, k, v);
    Py_DECREF(v);
    return rc;
}


/* The scope's `server` pair is the same for every connection accepted on
 * one address: keep the last one in the server's state (borrowed reference
 * for the caller; the GIL guards it). */
static PyObject *server_tuple(dfws_asgi_t *A, const char *host, uint16_t port)
{
    if (!A->last_server || port != A->last_server_port || strcmp(host, A->last_server_host)) {
        PyObject *t = Py_BuildValue("(si)", host, (int)port);
        if (!t)
            return NULL;
        Py_XSETREF(A->last_server, t);
        snprintf(A->last_server_host, sizeof(A->last_server_host), "%s", host);
        A->last_server_port = port;
    }
    return A->last_server;
}

PyObject *dfws_asgi_build_scope(dfws_asgi_t *A, dfws_req_t *r, PyObject *kind)
{
    dfws_peer_t peer;
    dfws_req_peer(r, &peer);
    return dfws_asgi_build_scope_peer(A, r, kind, &peer);
}

PyObject *dfws_asgi_build_scope_peer(dfws_asgi_t *A, dfws_req_t *r, PyObject *kind,
                                     const dfws_peer_t *peer)
{
    const char *base = r->head.base;
    const char *url = base + r->url_off;
    size_t url_len = r->url_len;
    int websocket = kind == dfws_str_websocket;

    /* absolute-form targets (proxies): keep only the path and query */
    if (url_len > 7 && (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8))) {
        const char *slash = memchr(url + 8, '/', url_len - 8);
        if (slash) {
            url_len -= (size_t)(slash - url);
            url = slash;
        } else {
            url = "/";
            url_len = 1;
        }
    }
    size_t path_len = url_len;
    const char *q = memchr(url, '?', url_len);
    const char *hash = memchr(url, '#', url_len);
    size_t end = hash ? (size_t)(hash - url) : url_len;
    if (q && (size_t)(q - url) < end)
        path_len = (size_t)(q - url);
    else
        path_len = end, q = NULL;

    /* daphne's Daphne-Root-Path: a proxy mounting the app under a prefix
     * says so per request. Like daphne, the header (URL-encoded) replaces
     * --root-path and is not passed on to the application. */
    const dfws_hdr_t *root_hdr = dfws_req_header(r, "daphne-root-path", 16);
    PyObject *root_path = root_hdr ? decode_path(base + root_hdr->value_off, root_hdr->value_len)
                                   : Py_NewRef(A->root_path);
    if (!root_path)
        return NULL;
    PyObject *scope = PyDict_New();
    if (!scope || set_item(scope, dfws_str_root_path, root_path)) {
        Py_XDECREF(scope);
        if (!scope)
            Py_DECREF(root_path);
        return NULL;
    }
    PyObject *asgi = Py_BuildValue("{OOOO}", dfws_str_version, dfws_str_v3_0, dfws_str_spec_version,
                                   dfws_str_v2_3);
    PyObject *scheme = websocket ? dfws_str_ws : dfws_str_http;
    if (PyDict_SetItem(scope, dfws_str_type, kind) || set_item(scope, dfws_str_asgi, asgi) ||
        PyDict_SetItem(scope, dfws_str_http_version,
                       r->http_minor == 0 && r->http_major == 1 ? dfws_str_v1_0 : dfws_str_v1_1) ||
        (!websocket && set_item(scope, dfws_str_method, dfws_str_for_method(r->method))) ||
        set_item(scope, dfws_str_path, decode_path(url, path_len)) ||
        set_item(scope, dfws_str_raw_path, PyBytes_FromStringAndSize(url, (Py_ssize_t)path_len)) ||
        set_item(scope, dfws_str_query_string,
                 q ? PyBytes_FromStringAndSize(q + 1, (Py_ssize_t)(end - (size_t)(q - url) - 1))
                   : PyBytes_FromStringAndSize("", 0)))
        goto fail;

    PyObject *headers = PyList_New(0);
    if (!headers)
        goto fail;
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const dfws_hdr_t *h = &r->hdrs[i];
        /* A name with '_' never reaches the application (daphne does the
         * same): WSGI-style META maps '-' and '_' alike, so `X_User` could
         * pass for `X-User` set by a proxy (Django CVE-2026-3902). */
        if (h == root_hdr || memchr(base + h->name_off, '_', h->name_len))
            continue;
        PyObject *name = lower_bytes(base + h->name_off, h->name_len);
        PyObject *value = PyBytes_FromStringAndSize(base + h->value_off, h->value_len);
        PyObject *pair = (name && value) ? PyTuple_Pack(2, name, value) : NULL;
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (!pair || PyList_Append(headers, pair)) {
            Py_XDECREF(pair);
            Py_DECREF(headers);
            goto fail;
        }
        Py_DECREF(pair);
    }
    if (set_item(scope, dfws_str_headers, headers))
        goto fail;

    PyObject *client_host = NULL;
    long client_port = peer->client_port;
    if (peer->has_client)
        client_host = PyUnicode_DecodeLatin1(peer->client_host,
                                             (Py_ssize_t)strlen(peer->client_host), NULL);
    /* a trusted proxy's word on the scheme wins over our own transport */
    if (peer->scheme == DFWS_FWD_SCHEME_SECURE ||
        (peer->scheme == DFWS_FWD_SCHEME_NONE && peer->tls))
        scheme = websocket ? dfws_str_wss : dfws_str_https;
    if (PyDict_SetItem(scope, dfws_str_scheme, scheme))
        goto fail_client;
    if (client_host) {
        if (set_item(scope, dfws_str_client, Py_BuildValue("(Ol)", client_host, client_port)))
            goto fail_client;
        Py_CLEAR(client_host);
        if (PyDict_SetItem(scope, dfws_str_server,
                           server_tuple(A, peer->server_host, peer->server_port)))
            goto fail;
    } else {
        if (PyDict_SetItem(scope, dfws_str_client, Py_None) ||
            PyDict_SetItem(scope, dfws_str_server, Py_None))
            goto fail;
    }
    if (!websocket && set_item(scope, dfws_str_extensions, PyDict_New()))
        goto fail;
    if (A->state && set_item(scope, dfws_str_state, PyDict_Copy(A->state)))
        goto fail;
    return scope;
fail_client:
    Py_XDECREF(client_host);
fail:
    Py_DECREF(scope);
    return NULL;
}

/* ---- receive ---------------------------------------------------------------- */

/* The message receive() can hand out now (new reference), Py_None (new
 * reference) when it must wait, NULL on error. */
static PyObject *receive_now(Cycle *self)
{
    dfws_req_t *r = self->req;
    if (!dfws_req_attached(r) || r->response_done || r->disconnected)
        return disconnect_message();
    if (r->body_delivered)
        Py_RETURN_NONE; /* the next event is the disconnect */
    dfws_req_continue(r);
    const char *data;
    size_t len;
    int more;
    dfws_req_body_peek(r, &data, &len, &more);
    if (len == 0 && more)
        Py_RETURN_NONE;
    PyObject *m = PyDict_New();
    if (!m)
        return NULL;
    if (PyDict_SetItem(m, dfws_str_type, dfws_str_http_request) ||
        set_item(m, dfws_str_body, PyBytes_FromStringAndSize(data, (Py_ssize_t)len)) ||
        PyDict_SetItem(m, dfws_str_more_body, more ? Py_True : Py_False)) {
        Py_DECREF(m);
        return NULL;
    }
    dfws_req_body_consume(r);
    return m;
}

static PyObject *cycle_receive(Cycle *self, PyObject *unused)
{
    PyObject *m = receive_now(self);
    if (!m)
        return NULL;
    if (m != Py_None) {
        PyObject *aw = dfws_ready_new(m);
        Py_DECREF(m);
        return aw;
    }
    Py_DECREF(m);
    if (self->receive_waiter) {
        PyErr_SetString(PyExc_RuntimeError, "receive() called while another receive() is pending");
        return NULL;
    }
    PyObject *fut = PyObject_CallNoArgs(self->A->create_future);
    if (!fut)
        return NULL;
    Py_INCREF(fut);
    self->receive_waiter = fut;
    self->req->app_waiting_body = 1;
    return fut;
}

static void wake_receiver(Cycle *self)
{
    if (!self->receive_waiter)
        return;
    PyObject *m = receive_now(self);
    if (!m) {
        PyErr_Clear();
        return;
    }
    if (m == Py_None) {
        Py_DECREF(m);
        self->req->app_waiting_body = 1;
        return;
    }
    self->req->app_waiting_body = 0;
    dfws_future_take(&self->receive_waiter, m);
    Py_DECREF(m);
}

/* ---- send ------------------------------------------------------------------- */

static int raise_for(int rc, const char *err)
{
    if (rc == -EINVAL)
        PyErr_SetString(PyExc_ValueError, err);
    else if (rc == -ENOMEM)
        PyErr_NoMemory();
    else
        return 0; /* -EPIPE: the client is gone; ASGI apps are not told */
    return -1;
}

static int get_buffer(PyObject *o, Py_buffer *view, const char *what)
{
    if (PyObject_GetBuffer(o, view, PyBUF_SIMPLE)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes, got %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    return 0;
}

static int send_start(Cycle *self, PyObject *msg)
{
    dfws_req_t *r = self->req;
    const char *err = NULL;
    PyObject *status = PyDict_GetItemWithError(msg, dfws_str_status);
    if (!status) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "http.response.start needs a 'status'");
        return -1;
    }
    long st = PyLong_AsLong(status);
    if (st == -1 && PyErr_Occurred())
        return -1;
    /* out of int range must not wrap into a valid status (4294967496 → 200) */
    int rc = dfws_req_response_start(r, st < 0 || st > 999 ? -1 : (int)st, &err);
    if (rc)
        return raise_for(rc, err);
    PyObject *headers = PyDict_GetItemWithError(msg, dfws_str_headers);
    if (!headers)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *it = PyObject_GetIter(headers);
    if (!it)
        return -1;
    PyObject *item;
    while ((item = PyIter_Next(it))) {
        PyObject *seq = PySequence_Fast(item, "each header must be a [name, value] pair");
        Py_DECREF(item);
        if (!seq)
            goto fail;
        if (PySequence_Fast_GET_SIZE(seq) != 2) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "each header must be a [name, value] pair");
            goto fail;
        }
        Py_buffer n, v;
        if (get_buffer(PySequence_Fast_GET_ITEM(seq, 0), &n, "header name")) {
            Py_DECREF(seq);
            goto fail;
        }
        if (get_buffer(PySequence_Fast_GET_ITEM(seq, 1), &v, "header value")) {
            PyBuffer_Release(&n);
            Py_DECREF(seq);
            goto fail;
        }
        rc = dfws_req_response_header(r, n.buf, (size_t)n.len, v.buf, (size_t)v.len, &err);
        PyBuffer_Release(&n);
        PyBuffer_Release(&v);
        Py_DECREF(seq);
        if (rc && raise_for(rc, err))
            goto fail;
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
fail:
    Py_DECREF(it);
    return -1;
}

static int send_body(Cycle *self, PyObject *msg)
{
    dfws_req_t *r = self->req;
    const char *err = NULL;
    Py_buffer body = {0};
    int more = 0;
    PyObject *o = PyDict_GetItemWithError(msg, dfws_str_body);
    if (!o && PyErr_Occurred())
        return -1;
    if (o && get_buffer(o, &body, "body"))
        return -1;
    o = PyDict_GetItemWithError(msg, dfws_str_more_body);
    if (o && (more = PyObject_IsTrue(o)) < 0) {
        PyBuffer_Release(&body);
        return -1;
    }
    if (!o && PyErr_Occurred()) {
        PyBuffer_Release(&body);
        return -1;
    }
    int rc = dfws_req_response_body(r, body.buf, (size_t)(o || body.obj ? body.len : 0), more,
                                    &err);
    if (body.obj)
        PyBuffer_Release(&body);
    return rc ? raise_for(rc, err) : 0;
}

static PyObject *cycle_send(Cycle *self, PyObject *msg)
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
    int rc;
    if (type == dfws_str_http_response_body ||
        (PyUnicode_Check(type) && !PyUnicode_Compare(type, dfws_str_http_response_body)))
        rc = send_body(self, msg);
    else if (type == dfws_str_http_response_start ||
             (PyUnicode_Check(type) && !PyUnicode_Compare(type, dfws_str_http_response_start))) {
        /* a refused header leaves no half-built head: the app may start
         * again, or fail and get a clean 500 */
        if ((rc = send_start(self, msg)))
            dfws_req_response_cancel(self->req);
    } else {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "unexpected ASGI message type %R for an HTTP request",
                         type);
        return NULL;
    }
    if (rc)
        return NULL;
    dfws_req_t *r = self->req;
    if (dfws_req_attached(r) && dfws_req_write_pending(r) > DFWS_WRITE_HIGH) {
        /* backpressure: resume the app when the socket drained */
        PyObject *fut = PyObject_CallNoArgs(self->A->create_future);
        if (!fut)
            return NULL;
        Py_XSETREF(self->drain_waiter, fut);
        Py_INCREF(fut);
        r->app_waiting_drain = 1;
        return fut;
    }
    Py_INCREF(dfws_ready_none);
    return dfws_ready_none;
}

/* ---- the task --------------------------------------------------------------- */

static PyObject *cycle_done(Cycle *self, PyObject *task)
{
    dfws_req_t *r = self->req;
    int was_cancelled;
    dfws_asgi_disarm(&self->cancel_handle);
    PyObject *exc = dfws_asgi_task_exception(task, &was_cancelled);
    if (exc) {
        PyObject *res = PyObject_CallFunction(self->A->log_exception, "sO",
                                              "Exception inside application", exc);
        Py_XDECREF(res);
        PyErr_Clear();
        Py_DECREF(exc);
        dfws_req_abort(r, 500);
    } else if (dfws_req_attached(r) && !r->response_done) {
        if (!was_cancelled)
            dfws_log_error(r->response_started
                               ? "application returned before completing its response"
                               : "application returned without starting a response");
        dfws_req_abort(r, 500);
    }
    Py_CLEAR(self->task);
    Py_CLEAR(self->receive_waiter);
    Py_CLEAR(self->drain_waiter);
    r->app_waiting_body = r->app_waiting_drain = 0;
    if (r->app == self) {
        r->app = NULL;
        Py_DECREF(self); /* the reference the request's app slot held */
    }
    Py_RETURN_NONE;
}

static PyMethodDef receive_def = {"receive", (PyCFunction)cycle_receive, METH_NOARGS, NULL};
static PyMethodDef send_def = {"send", (PyCFunction)cycle_send, METH_O, NULL};
static PyMethodDef done_def = {"_done", (PyCFunction)cycle_done, METH_O, NULL};

static void cycle_dealloc(Cycle *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->receive_waiter);
    Py_CLEAR(self->drain_waiter);
    Py_CLEAR(self->cancel_handle);
    Py_CLEAR(self->task);
    if (self->req)
        dfws_req_release(self->req);
    PyObject_GC_Del(self);
}

static int cycle_traverse(Cycle *self, visitproc visit, void *arg)
{
    Py_VISIT(self->receive_waiter);
    Py_VISIT(self->drain_waiter);
    Py_VISIT(self->cancel_handle);
    Py_VISIT(self->task);
    return 0;
}

static int cycle_clear(Cycle *self)
{
    Py_CLEAR(self->receive_waiter);
    Py_CLEAR(self->drain_waiter);
    Py_CLEAR(self->cancel_handle);
    Py_CLEAR(self->task);
    return 0;
}

PyTypeObject dfws_http_cycle_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dfws._dfws.HTTPCycle",
    .tp_basicsize = sizeof(Cycle),
    .tp_dealloc = (destructor)cycle_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)cycle_traverse,
    .tp_clear = (inquiry)cycle_clear,
};

/* ---- ops called by server/ ---------------------------------------------------- */

int dfws_http_start(dfws_asgi_t *A, dfws_req_t *r, PyObject *app, PyObject *scope)
{
    int ret = -1;
    PyObject *own_scope = NULL;
    Cycle *self = PyObject_GC_New(Cycle, &dfws_http_cycle_type);
    if (!self)
        goto out;
    self->A = A;
    self->req = r;
    dfws_req_retain(r);
    self->receive_waiter = self->drain_waiter = self->cancel_handle = self->task = NULL;
    PyObject_GC_Track(self);
    if (!scope && !(scope = own_scope = dfws_asgi_build_scope(A, r, dfws_str_http)))
        goto out;
    self->task = dfws_asgi_start_app_task(A, app ? app : A->app, (PyObject *)self, scope,
                                          &receive_def, &send_def, &done_def);
    if (!self->task)
        goto out;
    r->app = self;
    Py_INCREF(self);
    ret = 0;
out:
    if (ret)
        dfws_log_current_exception(A, "Exception while starting the application");
    Py_XDECREF(own_scope);
    Py_XDECREF(self);
    return ret;
}

/* --health-path: answered here, without the application or the GIL: 200
 * while serving, 503 once the worker drains (a load balancer then stops
 * sending it new requests). 1 when r was such a request. */
static int health_check(dfws_asgi_t *A, dfws_req_t *r)
{
    const char *want = A->cli->health_path;
    size_t n = strlen(want), len = r->url_len;
    const char *url = r->head.base + r->url_off;
    const char *q = memchr(url, '?', len);
    if (q)
        len = (size_t)(q - url);
    if (len != n || memcmp(url, want, n))
        return 0;
    int draining = A->server.shutting_down;
    const char *body = draining ? "draining\n" : "ok\n";
    const char *err = NULL;
    static const char ctype[] = "text/plain; charset=utf-8", nocache[] = "no-store";
    if (!dfws_req_response_start(r, draining ? 503 : 200, &err) &&
        !dfws_req_response_header(r, "Content-Type", 12, ctype, sizeof(ctype) - 1, &err) &&
        !dfws_req_response_header(r, "Cache-Control", 13, nocache, sizeof(nocache) - 1, &err))
        dfws_req_response_body(r, body, strlen(body), 0, &err);
    return 1;
}

int dfws_http_request(void *ud, dfws_req_t *r)
{
    dfws_asgi_t *A = ud;
    if (A->cli->health_path && r->body_done && health_check(A, r))
        return 0;
    if (A->fast && dfws_fast_offer(A, r))
        return 0; /* no GIL on this thread for the fast path */
    PyGILState_STATE g = PyGILState_Ensure();
    int ret = dfws_http_start(A, r, NULL, NULL);
    PyGILState_Release(g);
    return ret;
}

void dfws_http_body(void *ud, dfws_req_t *r)
{
    if (r->app_fast) {
        dfws_fast_body(ud, r);
        return;
    }
    PyGILState_STATE g = PyGILState_Ensure();
    if (r->app)
        wake_receiver(r->app);
    PyGILState_Release(g);
}

void dfws_http_drain(void *ud, dfws_req_t *r)
{
    (void)ud;
    PyGILState_STATE g = PyGILState_Ensure();
    Cycle *self = r->app;
    if (self)
        dfws_future_take(&self->drain_waiter, Py_None);
    PyGILState_Release(g);
}

void dfws_http_detach(void *ud, dfws_req_t *r)
{
    dfws_asgi_t *A = ud;
    if (r->app_fast) {
        dfws_fast_detach(A, r);
        return;
    }
    PyGILState_STATE g = PyGILState_Ensure();
    Cycle *self = r->app;
    if (!self)
        goto out;
    wake_receiver(self);
    dfws_future_take(&self->drain_waiter, Py_None);
    /* The client left while the app runs: it gets the disconnect event and
     * --application-close-timeout seconds to finish. */
    if (r->disconnected)
        dfws_asgi_arm_close_timeout(A, self->task, &self->cancel_handle);
out:
    PyGILState_Release(g);
}
