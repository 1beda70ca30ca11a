/* The asyncio Task that runs an application for one connection or request,
 * shared by HTTP (http.c) and WebSocket (websocket.c). */
#include "asgi.h"
#include "str.h"

PyObject *dfws_asgi_start_task(dfws_asgi_t *A, PyObject *self, PyObject *scope,
                               PyMethodDef *receive_def, PyMethodDef *send_def,
                               PyMethodDef *done_def)
{
    return dfws_asgi_start_app_task(A, A->app, self, scope, receive_def, send_def, done_def);
}

PyObject *dfws_asgi_start_app_task(dfws_asgi_t *A, PyObject *app, PyObject *self, PyObject *scope,
                                   PyMethodDef *receive_def, PyMethodDef *send_def,
                                   PyMethodDef *done_def)
{
    PyObject *task = NULL, *coro = NULL, *done = NULL, *res = NULL;
    PyObject *receive = PyCFunction_NewEx(receive_def, self, NULL);
    PyObject *send = PyCFunction_NewEx(send_def, self, NULL);
    if (!receive || !send)
        goto out;
    PyObject *args[3] = {scope, receive, send};
    coro = PyObject_Vectorcall(app, args, 3, NULL);
    if (!coro)
        goto out;
    task = PyObject_CallOneArg(A->create_task, coro);
    if (!task)
        goto out;
    done = PyCFunction_NewEx(done_def, self, NULL);
    res = done ? PyObject_CallMethodOneArg(task, dfws_str_add_done_callback, done) : NULL;
    if (!res)
        Py_CLEAR(task);
out:
    Py_XDECREF(res);
    Py_XDECREF(done);
    Py_XDECREF(coro);
    Py_XDECREF(send);
    Py_XDECREF(receive);
    return task;
}

void dfws_asgi_arm_close_timeout(dfws_asgi_t *A, PyObject *task, PyObject **handle)
{
    if (!task || *handle)
        return;
    PyObject *cancel = PyObject_GetAttr(task, dfws_str_cancel);
    PyObject *delay = PyFloat_FromDouble(A->cli->application_close_timeout);
    if (cancel && delay)
        *handle = PyObject_CallMethodObjArgs(A->loop, dfws_str_call_later, delay, cancel, NULL);
    Py_XDECREF(cancel);
    Py_XDECREF(delay);
    if (!*handle)
        PyErr_Clear();
}

void dfws_asgi_disarm(PyObject **handle)
{
    if (!*handle)
        return;
    PyObject *res = PyObject_CallMethodNoArgs(*handle, dfws_str_cancel);
    Py_XDECREF(res);
    PyErr_Clear();
    Py_CLEAR(*handle);
}

PyObject *dfws_asgi_task_exception(PyObject *task, int *cancelled)
{
    PyObject *c = PyObject_CallMethodNoArgs(task, dfws_str_cancelled);
    *cancelled = c == Py_True;
    Py_XDECREF(c);
    PyErr_Clear();
    if (*cancelled)
        return NULL;
    PyObject *exc = PyObject_CallMethodNoArgs(task, dfws_str_exception);
    if (!exc || exc == Py_None) {
        PyErr_Clear();
        Py_XDECREF(exc);
        return NULL;
    }
    return exc;
}
