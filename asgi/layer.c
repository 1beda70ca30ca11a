/* The channel layer as Python sees it inside dfws-asgi: module functions
 * `_dfws.layer_*` used by df_websockets.layers.EmbeddedChannelLayer.
 *
 * They may be called from any thread (Django sync views, worker threads):
 * calls made off the loop thread are queued and run on the loop thread,
 * woken by one uv_async_t. Messages cross as msgpack bytes, packed and
 * unpacked by Python's msgpack (what channels_redis uses), so the C layer
 * sees exactly what a Redis peer would. */
#include "asgi.h"
#include "history.h"
#include "layer.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OP_SEND,
    OP_GROUP_SEND,
    OP_GROUP_ADD,
    OP_GROUP_DISCARD,
    OP_FLUSH,
    OP_LISTEN,
    OP_UNLISTEN,
    OP_HISTORY_SEND,      /* a: group, b: epoch candidate, data: JSON text */
    OP_HISTORY_CONFIGURE, /* a: append script, b: read script, len: size, ttl */
    OP_HISTORY_READ,      /* a: group, b: epoch, len: offset, done: callback */
};

typedef struct op_s {
    struct op_s *next;
    int kind;
    char *a;    /* channel or group */
    char *b;    /* channel (group ops) */
    char *data; /* msgpack */
    size_t len;
    void *cb;       /* OP_LISTEN: the callback, kept alive by G.listeners */
    PyObject *done; /* OP_SEND: callable(status), owned until called */
    unsigned ttl;   /* OP_HISTORY_CONFIGURE */
} op_t;

typedef struct {
    dfws_layer_t *layer;
    uv_async_t wake; /* closed with the layer */
    pthread_t loop_thread;
    pthread_mutex_t lock; /* guards `head`/`tail` */
    op_t *head, *tail;
    PyObject *listeners; /* dict channel -> callback (keeps them alive) */
    PyObject *packb;     /* functools.partial(msgpack.packb, use_bin_type=True) */
    pid_t pid;           /* the server process: a forked child has no layer */
    int open;
    int told_child;
} glue_t;

static glue_t G;

/* Calls done(status) once and drops it; takes the GIL (any thread). */
static void call_done(PyObject *done, int status)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *res = PyObject_CallFunction(done, "i", status);
    if (!res)
        dfws_log_current_exception(NULL, "Exception in a channel layer send callback");
    Py_XDECREF(res);
    Py_DECREF(done);
    PyGILState_Release(g);
}

static void on_send_done(void *ud, int status)
{
    call_done(ud, status);
}

/* A history read's answer: callback(status, epoch or None, seq or None,
 * [message, ...]) with the GIL; the callback is dropped after. */
static void on_history_read(void *ud, int status, dfws_history_result_t *res)
{
    PyObject *done = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *items = PyList_New(0);
    for (size_t i = 0; items && i < res->n; i++) {
        PyObject *s = PyUnicode_DecodeUTF8(res->items[i], (Py_ssize_t)res->lens[i], "replace");
        if (!s || PyList_Append(items, s)) {
            Py_XDECREF(s);
            Py_CLEAR(items);
            break;
        }
        Py_DECREF(s);
    }
    PyObject *r = NULL;
    if (items) {
        if (res->has_meta)
            r = PyObject_CallFunction(done, "isKO", status, res->epoch,
                                      (unsigned long long)res->seq, items);
        else
            r = PyObject_CallFunction(done, "iOOO", status, Py_None, Py_None, items);
    }
    if (!r)
        dfws_log_current_exception(NULL, "Exception in a history read callback");
    Py_XDECREF(r);
    Py_XDECREF(items);
    Py_DECREF(done);
    PyGILState_Release(g);
}

static void op_free(op_t *op)
{
    if (op->done)
        call_done(op->done, DFWS_LAYER_ECLOSED); /* never ran */
    free(op->a);
    free(op->b);
    free(op->data);
    free(op);
}

static void on_deliver(void *ud, const char *channel, const char *mp, size_t len);

/* Drops the listener's callback from G.listeners once the C layer no longer
 * holds it (loop thread). */
static void forget_listener(const char *channel)
{
    PyGILState_STATE g = PyGILState_Ensure();
    if (G.listeners) {
        PyObject *key = PyUnicode_FromString(channel);
        if (!key || PyDict_DelItem(G.listeners, key))
            PyErr_Clear();
        Py_XDECREF(key);
    }
    PyGILState_Release(g);
}

/* Runs one operation on the loop thread; returns the layer's status (only
 * meaningful when the caller ran it synchronously). */
static int run_op(op_t *op)
{
    int rc = 0;
    switch (op->kind) {
    case OP_SEND: {
        PyObject *done = op->done;
        op->done = NULL;
        rc = dfws_layer_send(G.layer, op->a, op->data, op->len, done ? on_send_done : NULL, done);
        if (rc && done)
            call_done(done, rc); /* failed at once: the layer will not call it */
        break;
    }
    case OP_GROUP_SEND:
        rc = dfws_layer_group_send(G.layer, op->a, op->data, op->len, NULL, NULL);
        break;
    case OP_GROUP_ADD:
        rc = dfws_layer_group_add(G.layer, op->a, op->b);
        break;
    case OP_GROUP_DISCARD:
        rc = dfws_layer_group_discard(G.layer, op->a, op->b);
        break;
    case OP_FLUSH:
        rc = dfws_layer_flush(G.layer, NULL, NULL);
        break;
    case OP_LISTEN:
        rc = dfws_layer_listen(G.layer, op->a, on_deliver, op->cb);
        if (rc)
            forget_listener(op->a);
        break;
    case OP_UNLISTEN:
        dfws_layer_unlisten(G.layer, op->a);
        forget_listener(op->a);
        break;
    case OP_HISTORY_SEND:
        rc = dfws_layer_history_send(G.layer, op->a, op->data, op->len, op->b, NULL, NULL);
        break;
    case OP_HISTORY_CONFIGURE:
        rc = dfws_layer_history_configure(G.layer, op->len, op->ttl, op->a, op->b);
        break;
    case OP_HISTORY_READ: {
        PyObject *done = op->done;
        op->done = NULL;
        rc = dfws_layer_history_read(G.layer, op->a, op->b, (uint64_t)op->len, on_history_read,
                                     done);
        if (rc) {
            dfws_history_result_t empty = {0};
            on_history_read(done, rc, &empty);
            rc = 0; /* told to the callback */
        }
        break;
    }
    }
    if (rc)
        dfws_log_warn("channel layer operation on %s failed: %s", op->a ? op->a : "*",
                      dfws_layer_strerror(rc));
    op_free(op);
    return rc;
}

static void on_wake(uv_async_t *h)
{
    (void)h;
    pthread_mutex_lock(&G.lock);
    op_t *list = G.head;
    G.head = G.tail = NULL;
    pthread_mutex_unlock(&G.lock);
    while (list) {
        op_t *next = list->next;
        if (G.open)
            run_op(list);
        else
            op_free(list);
        list = next;
    }
}

/* Runs now on the loop thread, or queues for it. Takes ownership of op.
 * Returns -1 with an exception set when the layer is not running, else 0. */
static int submit(op_t *op)
{
    if (!G.open) {
        op_free(op);
        PyErr_SetString(PyExc_RuntimeError, "the dfws channel layer is not running");
        return -1;
    }
    if (pthread_equal(pthread_self(), G.loop_thread)) {
        run_op(op);
        return 0;
    }
    pthread_mutex_lock(&G.lock);
    if (G.tail)
        G.tail->next = op;
    else
        G.head = op;
    G.tail = op;
    pthread_mutex_unlock(&G.lock);
    uv_async_send(&G.wake);
    return 0;
}

static void layer_log(void *ud, int level, const char *msg)
{
    (void)ud;
    dfws_log(level, "channel layer: %s", msg);
}

int dfws_asgi_layer_start(uv_loop_t *loop, const char *json, char *err, size_t errlen)
{
    dfws_layer_config_t cfg;
    int rc;
    if (G.open) {
        snprintf(err, errlen, "the channel layer is already running");
        return -1;
    }
    if ((rc = dfws_layer_config_init(&cfg)))
        goto fail;
    if ((rc = dfws_layer_config_parse_json(&cfg, json, err, errlen))) {
        dfws_layer_config_free(&cfg);
        return -1;
    }
    cfg.log_fn = layer_log; /* from the start: a Redis host may fail at once */
    rc = dfws_layer_new(loop, &cfg, &G.layer);
    dfws_layer_config_free(&cfg);
    if (rc)
        goto fail;
    pthread_mutex_init(&G.lock, NULL);
    uv_async_init(loop, &G.wake, on_wake);
    G.loop_thread = pthread_self();
    G.pid = getpid();
    G.open = 1;
    return 0;
fail:
    snprintf(err, errlen, "%s", dfws_layer_strerror(rc));
    return -1;
}

dfws_layer_t *dfws_asgi_layer(void)
{
    return G.open ? G.layer : NULL;
}

void dfws_asgi_layer_stop(void)
{
    if (!G.open)
        return;
    G.open = 0;
    on_wake(&G.wake); /* frees whatever is queued */
    uv_close((uv_handle_t *)&G.wake, NULL);
    dfws_layer_close(G.layer, NULL, NULL);
    G.layer = NULL;
    Py_CLEAR(G.listeners);
}

/* ---- Python functions ------------------------------------------------------ */

static PyObject *pack(PyObject *message, char **data, size_t *len)
{
    if (!PyDict_Check(message)) {
        PyErr_SetString(PyExc_TypeError, "a channel layer message must be a dict");
        return NULL;
    }
    if (!G.packb) {
        PyObject *mod = PyImport_ImportModule("msgpack");
        if (!mod)
            return NULL;
        PyObject *packb = PyObject_GetAttrString(mod, "packb");
        Py_DECREF(mod);
        if (!packb)
            return NULL;
        PyObject *functools = PyImport_ImportModule("functools");
        PyObject *kw = Py_BuildValue("{s:O}", "use_bin_type", Py_True);
        PyObject *args = Py_BuildValue("(O)", packb);
        PyObject *partial = functools ? PyObject_GetAttrString(functools, "partial") : NULL;
        G.packb = partial && kw && args ? PyObject_Call(partial, args, kw) : NULL;
        Py_XDECREF(partial);
        Py_XDECREF(args);
        Py_XDECREF(kw);
        Py_XDECREF(functools);
        Py_DECREF(packb);
        if (!G.packb)
            return NULL;
    }
    PyObject *b = PyObject_CallOneArg(G.packb, message);
    if (!b)
        return NULL;
    *len = (size_t)PyBytes_GET_SIZE(b);
    *data = malloc(*len ? *len : 1);
    if (!*data) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    memcpy(*data, PyBytes_AS_STRING(b), *len);
    return b;
}

static op_t *new_op(int kind, const char *a, const char *b)
{
    op_t *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->kind = kind;
    op->a = a ? strdup(a) : NULL;
    op->b = b ? strdup(b) : NULL;
    return op;
}

static PyObject *py_available(PyObject *m, PyObject *unused)
{
    if (G.open && getpid() != G.pid) {
        /* a `process` worker forked from the server: the layer's loop and
         * sockets belong to the parent, nothing sent here would arrive */
        if (!G.told_child) {
            G.told_child = 1;
            dfws_log_error("pid %d: a process forked from dfws-asgi cannot use the server's "
                           "in-process channel layer; messages sent from here are lost (use "
                           "channels_redis with WEBSOCKET_WORKERS = 'process')",
                           (int)getpid());
        }
        Py_RETURN_FALSE;
    }
    return PyBool_FromLong(G.open);
}

static PyObject *send_common(PyObject *args, int kind, int (*valid)(const char *))
{
    const char *name;
    PyObject *message, *done = Py_None;
    if (!PyArg_ParseTuple(args, "sO|O", &name, &message, &done))
        return NULL;
    if (!valid(name))
        return PyErr_Format(PyExc_TypeError, "invalid channel or group name %R",
                            PyTuple_GET_ITEM(args, 0));
    op_t *op = new_op(kind, name, NULL);
    if (!op)
        return PyErr_NoMemory();
    PyObject *b = pack(message, &op->data, &op->len);
    if (!b) {
        op_free(op);
        return NULL;
    }
    Py_DECREF(b);
    if (kind == OP_SEND && done != Py_None)
        op->done = Py_NewRef(done);
    if (submit(op))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_send(PyObject *m, PyObject *args)
{
    return send_common(args, OP_SEND, dfws_layer_valid_channel_name);
}

static PyObject *py_group_send(PyObject *m, PyObject *args)
{
    return send_common(args, OP_GROUP_SEND, dfws_layer_valid_group_name);
}

static PyObject *membership(PyObject *args, int kind)
{
    const char *group, *channel;
    if (!PyArg_ParseTuple(args, "ss", &group, &channel))
        return NULL;
    if (!dfws_layer_valid_group_name(group) || !dfws_layer_valid_channel_name(channel))
        return PyErr_Format(PyExc_TypeError, "invalid group or channel name");
    op_t *op = new_op(kind, group, channel);
    if (!op)
        return PyErr_NoMemory();
    if (submit(op))
        return NULL;
    Py_RETURN_NONE;
}

/* layer_history_send(group, json_text, epoch_candidate): see
 * dfws_layer_history_send (df_websockets.history is the caller). */
static PyObject *py_history_send(PyObject *m, PyObject *args)
{
    const char *group, *epoch, *text;
    PyObject *json;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "sUs", &group, &json, &epoch))
        return NULL;
    if (!(text = PyUnicode_AsUTF8AndSize(json, &len)))
        return NULL;
    if (!dfws_layer_valid_group_name(group))
        return PyErr_Format(PyExc_TypeError, "invalid group name %R", PyTuple_GET_ITEM(args, 0));
    op_t *op = new_op(OP_HISTORY_SEND, group, epoch);
    if (!op || !(op->data = malloc(len ? (size_t)len : 1))) {
        if (op)
            op_free(op);
        return PyErr_NoMemory();
    }
    memcpy(op->data, text, (size_t)len);
    op->len = (size_t)len;
    if (submit(op))
        return NULL;
    Py_RETURN_NONE;
}

/* layer_history_configure(size, ttl, append_lua, read_lua): the same
 * settings again change nothing (the native socket and the writer both
 * configure it). */
static PyObject *py_history_configure(PyObject *m, PyObject *args)
{
    const char *append_lua, *read_lua;
    Py_ssize_t size;
    unsigned int ttl;
    if (!PyArg_ParseTuple(args, "nIss", &size, &ttl, &append_lua, &read_lua))
        return NULL;
    if (size < 0)
        return PyErr_Format(PyExc_ValueError, "history size must be >= 0");
    op_t *op = new_op(OP_HISTORY_CONFIGURE, append_lua, read_lua);
    if (!op)
        return PyErr_NoMemory();
    op->len = (size_t)size;
    op->ttl = ttl;
    if (submit(op))
        return NULL;
    Py_RETURN_NONE;
}

/* layer_history_read(group, epoch, offset, callback): callback(status,
 * epoch or None, seq or None, [message, ...]) later, on the loop thread
 * (the Python consumer's recovery, docs/recovery.md). */
static PyObject *py_history_read(PyObject *m, PyObject *args)
{
    const char *group, *epoch;
    unsigned long long offset;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "ssKO", &group, &epoch, &offset, &cb))
        return NULL;
    if (!dfws_layer_valid_group_name(group) || !dfws_history_valid_epoch(epoch, strlen(epoch)))
        return PyErr_Format(PyExc_ValueError, "invalid group name or epoch");
    op_t *op = new_op(OP_HISTORY_READ, group, epoch);
    if (!op)
        return PyErr_NoMemory();
    op->len = (size_t)offset;
    op->done = Py_NewRef(cb);
    if (submit(op))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_group_add(PyObject *m, PyObject *args)
{
    return membership(args, OP_GROUP_ADD);
}

static PyObject *py_group_discard(PyObject *m, PyObject *args)
{
    return membership(args, OP_GROUP_DISCARD);
}

static PyObject *py_flush(PyObject *m, PyObject *unused)
{
    op_t *op = new_op(OP_FLUSH, NULL, NULL);
    if (!op)
        return PyErr_NoMemory();
    if (submit(op))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_new_channel(PyObject *m, PyObject *args)
{
    const char *prefix = "specific";
    if (!PyArg_ParseTuple(args, "|s", &prefix))
        return NULL;
    if (!G.open) {
        PyErr_SetString(PyExc_RuntimeError, "the dfws channel layer is not running");
        return NULL;
    }
    char buf[DFWS_LAYER_CHANNEL_BUF];
    if (dfws_layer_new_channel(G.layer, buf, sizeof(buf)))
        return PyErr_Format(PyExc_RuntimeError, "cannot make a channel name");
    /* the layer names channels "specific.<prefix>!<id>": keep Channels'
     * custom prefix when one is asked for */
    if (strcmp(prefix, "specific")) {
        const char *dot = strchr(buf, '.');
        return PyUnicode_FromFormat("%s%s", prefix, dot ? dot : buf);
    }
    return PyUnicode_FromString(buf);
}

static void on_deliver(void *ud, const char *channel, const char *mp, size_t len)
{
    PyObject *cb = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *b = PyBytes_FromStringAndSize(mp, (Py_ssize_t)len);
    PyObject *res = b ? PyObject_CallFunction(cb, "sO", channel, b) : NULL;
    if (!res)
        dfws_log_current_exception(NULL, "Exception in a channel layer receiver");
    Py_XDECREF(res);
    Py_XDECREF(b);
    PyGILState_Release(g);
}

/* layer_listen(channel, callback): from any thread. The callback is kept
 * alive by G.listeners from now until the C layer has dropped it. */
static PyObject *py_listen(PyObject *m, PyObject *args)
{
    const char *channel;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "sO", &channel, &cb))
        return NULL;
    if (!dfws_layer_valid_channel_name(channel))
        return PyErr_Format(PyExc_TypeError, "invalid channel name %R", PyTuple_GET_ITEM(args, 0));
    if (!G.listeners && !(G.listeners = PyDict_New()))
        return NULL;
    if (PyDict_GetItemWithError(G.listeners, PyTuple_GET_ITEM(args, 0)))
        return PyErr_Format(PyExc_RuntimeError, "%s already has a receiver", channel);
    if (PyErr_Occurred() || PyDict_SetItem(G.listeners, PyTuple_GET_ITEM(args, 0), cb))
        return NULL;
    op_t *op = new_op(OP_LISTEN, channel, NULL);
    if (!op)
        return PyErr_NoMemory();
    op->cb = cb;
    if (submit(op))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_unlisten(PyObject *m, PyObject *args)
{
    const char *channel;
    if (!PyArg_ParseTuple(args, "s", &channel))
        return NULL;
    op_t *op = new_op(OP_UNLISTEN, channel, NULL);
    if (!op)
        return PyErr_NoMemory();
    if (submit(op))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_stats(PyObject *m, PyObject *unused)
{
    dfws_layer_stats_t st = {0};
    if (G.open)
        dfws_layer_get_stats(G.layer, &st);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K}", "sent", st.sent, "received", st.received,
                         "undeliverable", st.undeliverable, "group_dropped", st.group_dropped,
                         "reconnects", st.reconnects);
}

static PyObject *py_state(PyObject *m, PyObject *unused)
{
    static const char *names[] = {"up", "connecting", "down"};
    char why[512] = "";
    int st;
    if (!G.open)
        return Py_BuildValue("(ss)", "off", "");
    if (!pthread_equal(pthread_self(), G.loop_thread)) {
        PyErr_SetString(PyExc_RuntimeError, "layer_state() runs on the server's loop thread only");
        return NULL;
    }
    st = dfws_layer_state(G.layer, why, sizeof(why));
    return Py_BuildValue("(ss)", names[st], why);
}

PyMethodDef dfws_layer_methods[] = {
    {"layer_available", py_available, METH_NOARGS, "Whether the server's channel layer runs."},
    {"layer_send", py_send, METH_VARARGS,
     "layer_send(channel, message[, done]): send; done(status) runs on the server's loop "
     "thread once the layer took it (0) or refused it (LAYER_EFULL, ...)."},
    {"layer_group_send", py_group_send, METH_VARARGS, "layer_group_send(group, message)."},
    {"layer_group_add", py_group_add, METH_VARARGS, "layer_group_add(group, channel)."},
    {"layer_history_send", py_history_send, METH_VARARGS,
     "layer_history_send(group, json_text, epoch_candidate): append to the group's history and "
     "group_send the message with its position."},
    {"layer_history_read", py_history_read, METH_VARARGS,
     "layer_history_read(group, epoch, offset, callback): callback(status, epoch, seq, messages) "
     "on the loop thread."},
    {"layer_history_configure", py_history_configure, METH_VARARGS,
     "layer_history_configure(size, ttl, append_lua, read_lua)."},
    {"layer_group_discard", py_group_discard, METH_VARARGS, "layer_group_discard(group, channel)."},
    {"layer_flush", py_flush, METH_NOARGS, "Delete every message and group."},
    {"layer_new_channel", py_new_channel, METH_VARARGS, "A new process-specific channel name."},
    {"layer_listen", py_listen, METH_VARARGS,
     "layer_listen(channel, callback): callback(channel, msgpack_bytes), called on the "
     "server's loop thread for each message."},
    {"layer_unlisten", py_unlisten, METH_VARARGS, "layer_unlisten(channel)."},
    {"layer_stats", py_stats, METH_NOARGS, "Counters of the C layer."},
    {"layer_state", py_state, METH_NOARGS,
     "(state, why): 'up', 'connecting' (first attempt), 'down' (why names the host and the "
     "error) or 'off' (no layer). On the loop thread only."},
    {NULL, NULL, 0, NULL},
};
