/* The Django fast path: plain HTTP requests to Django's ASGIHandler served
 * as a threaded WSGI server serves them, in one hop.
 *
 * Django's ASGIHandler crosses from the event loop to a worker thread for
 * every piece of sync code of a request (each sync middleware, the view, the
 * signals, close()). Here the loop thread reads the whole request in C, hands
 * it to one of `--django-threads` pthreads and goes on serving other sockets
 * without ever taking the GIL for it. The thread builds the scope from the
 * parsed head (dfws_asgi_build_scope_peer), calls
 * dfws.django_fast.FastPath.run(scope, body) (the middleware chain and view
 * run there, sync), copies the response into C buffers and queues it; the
 * loop writes it.
 *
 * run() answers one of:
 *   (status, headers, body)  the whole response: written from C;
 *   (status, headers, body, True)  the same, read from a sync streaming
 *                            response: sent chunked, as ASGIHandler sends it;
 *   (status, headers, app)   a streaming response with an async iterator:
 *                            `app` streams it as an ASGI application on the
 *                            loop (an ordinary HTTP cycle, http.c);
 *   None                     not for the fast path (an async view): the
 *                            request goes to the project's ASGI application.
 * An exception escaping run() is logged and answered with 500.
 *
 * Ownership: a job holds one reference on its request from the offer until
 * the loop has answered it (or found the client gone). While a job waits for
 * its body, r->app points to it and r->app_fast is set; once queued, only the
 * pool's threads touch it until it comes back on the done list. The request's
 * head, headers and body are not written by the loop after the body is
 * complete (the parser is paused until the response is done), so a thread
 * may read them while the loop runs.
 *
 * The pool (dfws_fast_t) is owned by the dfws_asgi_t. Its uv_async_t is
 * embedded, so the pool is freed in that handle's close callback, after every
 * thread has been joined. A view that never returns keeps its thread: at stop
 * the pool then stays allocated (and the thread is left to the interpreter's
 * exit) rather than freed under it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_timedjoin_np, pthread_setname_np */
#endif
#include "asgi.h"
#include "request.h"
#include "log.h"
#include "str.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

enum { ANSWER_RESPONSE, ANSWER_ASGI, ANSWER_ERROR };

typedef struct job_s {
    struct job_s *next;
    dfws_req_t *req; /* one reference, released on the loop thread */
    dfws_peer_t peer;
    int queued; /* handed to the threads (loop thread's view) */
    int answer;
    int streamed; /* ANSWER_RESPONSE of a streaming response: chunked, no length */
    int status;
    dfws_buf_t headers; /* (uint32 name length, uint32 value length, name, value)* */
    dfws_buf_t body;
    PyObject *app; /* ANSWER_ASGI: what serves the request, and its scope */
    PyObject *scope;
} job_t;

struct dfws_fast_s {
    dfws_asgi_t *A;
    uv_async_t async; /* wakes the loop for jobs on the done list */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_t *todo, **todo_tail; /* guarded by lock */
    job_t *done, **done_tail; /* guarded by lock */
    int stopping;             /* guarded by lock: threads exit when todo is empty */
    int abandoned;            /* guarded by lock: the loop is gone, drop answers */
    int nthreads;
    int named; /* guarded by lock: threads that took their name */
    pthread_t *threads;
    PyObject *run; /* FastPath.run */
};

/* ---- jobs ------------------------------------------------------------------ */

/* Frees a job and the Python objects it holds (GIL held, or none held). */
static void job_free(job_t *job)
{
    Py_XDECREF(job->app);
    Py_XDECREF(job->scope);
    dfws_buf_free(&job->headers);
    dfws_buf_free(&job->body);
    free(job);
}

static int copy_bytes(dfws_buf_t *b, PyObject *o, const char *what)
{
    Py_buffer view;
    if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes, got %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    int rc = dfws_buf_append(b, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (rc)
        PyErr_NoMemory();
    return rc;
}

/* Copies run()'s header list [(name, value), ...] into job->headers. */
static int copy_headers(job_t *job, PyObject *headers)
{
    PyObject *seq = PySequence_Fast(headers, "headers must be a list");
    if (!seq)
        return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_ValueError, "each header must be a (name, value) pair");
            goto fail;
        }
        size_t at = job->headers.len;
        uint32_t lens[2] = {0, 0};
        if (dfws_buf_append(&job->headers, lens, sizeof(lens))) {
            PyErr_NoMemory();
            goto fail;
        }
        size_t start = job->headers.len;
        if (copy_bytes(&job->headers, PyTuple_GET_ITEM(pair, 0), "header name"))
            goto fail;
        lens[0] = (uint32_t)(job->headers.len - start);
        start = job->headers.len;
        if (copy_bytes(&job->headers, PyTuple_GET_ITEM(pair, 1), "header value"))
            goto fail;
        lens[1] = (uint32_t)(job->headers.len - start);
        memcpy(job->headers.base + at, lens, sizeof(lens));
    }
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
}

/* Runs one job on a pool thread, GIL held. */
static void serve(dfws_fast_t *F, job_t *job)
{
    dfws_asgi_t *A = F->A;
    dfws_req_t *r = job->req;
    PyObject *res = NULL, *body = NULL;
    PyObject *scope = dfws_asgi_build_scope_peer(A, r, dfws_str_http, &job->peer);
    if (!scope)
        goto error;
    body = PyBytes_FromStringAndSize(r->body.base, (Py_ssize_t)r->body.len);
    if (!body)
        goto error;
    res = PyObject_CallFunctionObjArgs(F->run, scope, body, NULL);
    if (!res)
        goto error;
    if (res == Py_None) {
        job->answer = ANSWER_ASGI; /* A->app serves it, with this scope */
        job->scope = scope;
        scope = NULL;
        goto out;
    }
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) < 3 || PyTuple_GET_SIZE(res) > 4) {
        PyErr_SetString(PyExc_TypeError, "FastPath.run() must return None or a tuple");
        goto error;
    }
    long status = PyLong_AsLong(PyTuple_GET_ITEM(res, 0));
    if (status == -1 && PyErr_Occurred())
        goto error;
    if (status < 100 || status > 999) {
        PyErr_Format(PyExc_ValueError, "invalid HTTP status %ld", status);
        goto error;
    }
    job->status = (int)status;
    if (copy_headers(job, PyTuple_GET_ITEM(res, 1)))
        goto error;
    PyObject *content = PyTuple_GET_ITEM(res, 2);
    if (PyBytes_Check(content)) {
        if (copy_bytes(&job->body, content, "body"))
            goto error;
        job->answer = ANSWER_RESPONSE;
        job->streamed = PyTuple_GET_SIZE(res) == 4;
    } else {
        job->answer = ANSWER_ASGI; /* the streaming app, on the loop */
        job->app = Py_NewRef(content);
        job->scope = scope;
        scope = NULL;
    }
    goto out;
error:
    dfws_log_current_exception(A, "Exception inside application");
    job->answer = ANSWER_ERROR;
out:
    Py_XDECREF(res);
    Py_XDECREF(body);
    Py_XDECREF(scope);
}

/* ---- the threads ----------------------------------------------------------- */

/* Names the calling thread for Python too (threading, logging's threadName):
 * a thread Python did not start is otherwise "Dummy-N". */
static void name_thread(const char *name)
{
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *me = threading ? PyObject_CallMethod(threading, "current_thread", NULL) : NULL;
    PyObject *s = PyUnicode_FromString(name);
    if (!me || !s || PyObject_SetAttrString(me, "name", s))
        PyErr_Clear();
    Py_XDECREF(s);
    Py_XDECREF(me);
    Py_XDECREF(threading);
}

static void *thread_main(void *arg)
{
    dfws_fast_t *F = arg;
    char name[16];
    pthread_mutex_lock(&F->lock);
    snprintf(name, sizeof(name), "dfws-django-%d", F->named++);
    pthread_mutex_unlock(&F->lock);
    pthread_setname_np(pthread_self(), name);
    PyGILState_STATE g = PyGILState_Ensure();
    name_thread(name);
    PyThreadState *ts = PyEval_SaveThread();
    pthread_mutex_lock(&F->lock);
    for (;;) {
        while (!F->todo && !F->stopping)
            pthread_cond_wait(&F->cond, &F->lock);
        job_t *job = F->todo;
        if (!job)
            break; /* stopping, nothing left */
        F->todo = job->next;
        if (!F->todo)
            F->todo_tail = &F->todo;
        pthread_mutex_unlock(&F->lock);

        PyEval_RestoreThread(ts);
        serve(F, job);
        ts = PyEval_SaveThread();

        pthread_mutex_lock(&F->lock);
        if (F->abandoned) {
            /* the loop is gone (a view outlived the shutdown): nothing can
             * answer, and the request belongs to a freed server */
            pthread_mutex_unlock(&F->lock);
            PyEval_RestoreThread(ts);
            job_free(job);
            ts = PyEval_SaveThread();
            pthread_mutex_lock(&F->lock);
            continue;
        }
        job->next = NULL;
        *F->done_tail = job;
        F->done_tail = &job->next;
        uv_async_send(&F->async);
    }
    pthread_mutex_unlock(&F->lock);
    PyEval_RestoreThread(ts);
    PyGILState_Release(g);
    return NULL;
}

/* ---- the loop side ----------------------------------------------------------- */

static void answer_response(job_t *job)
{
    dfws_req_t *r = job->req;
    const char *err = NULL;
    dfws_req_body_consume(r);
    int rc = dfws_req_response_start(r, job->status, &err);
    for (size_t at = 0; !rc && at < job->headers.len;) {
        uint32_t lens[2];
        memcpy(lens, job->headers.base + at, sizeof(lens));
        const char *name = job->headers.base + at + sizeof(lens);
        rc = dfws_req_response_header(r, name, lens[0], name + lens[0], lens[1], &err);
        at += sizeof(lens) + lens[0] + lens[1];
    }
    /* a streamed body goes out as ASGIHandler sends it: chunks, then the end */
    if (!rc && (!job->streamed || job->body.len))
        rc = dfws_req_response_body(r, job->body.base, job->body.len, job->streamed, &err);
    if (!rc && job->streamed)
        rc = dfws_req_response_body(r, NULL, 0, 0, &err);
    if (rc == -EINVAL || rc == -ENOMEM) {
        dfws_log_error("Django response rejected: %s", err ? err : "out of memory");
        dfws_req_abort(r, 500);
    }
}

/* Answers a finished job on the loop thread and frees it. */
static void answer(dfws_fast_t *F, job_t *job)
{
    dfws_req_t *r = job->req;
    r->app = NULL;
    r->app_fast = 0;
    if (job->scope) {
        /* ANSWER_ASGI: the project's application (job->app NULL) or the
         * streaming one runs the request as an ordinary HTTP cycle */
        PyGILState_STATE g = PyGILState_Ensure();
        if (dfws_req_attached(r) && dfws_http_start(F->A, r, job->app, job->scope))
            dfws_req_abort(r, 500);
        Py_CLEAR(job->app);
        Py_CLEAR(job->scope);
        PyGILState_Release(g);
    } else if (!dfws_req_attached(r)) {
        /* the client left, or the server answered already (timeout) */
    } else if (job->answer == ANSWER_RESPONSE) {
        answer_response(job);
    } else {
        dfws_req_abort(r, 500);
    }
    dfws_req_release(r);
    job_free(job);
}

static void on_async(uv_async_t *h)
{
    dfws_fast_t *F = DFWS_CONTAINER_OF(h, dfws_fast_t, async);
    pthread_mutex_lock(&F->lock);
    job_t *job = F->done;
    F->done = NULL;
    F->done_tail = &F->done;
    pthread_mutex_unlock(&F->lock);
    while (job) {
        job_t *next = job->next;
        answer(F, job);
        job = next;
    }
}

static void submit(dfws_fast_t *F, job_t *job)
{
    job->queued = 1;
    job->next = NULL;
    pthread_mutex_lock(&F->lock);
    *F->todo_tail = job;
    F->todo_tail = &job->next;
    pthread_cond_signal(&F->cond);
    pthread_mutex_unlock(&F->lock);
}

int dfws_fast_offer(dfws_asgi_t *A, dfws_req_t *r)
{
    dfws_fast_t *F = A->fast;
    job_t *job = calloc(1, sizeof(*job));
    if (!job)
        return 0; /* the ASGI path answers, or fails with its own 500 */
    job->req = r;
    dfws_req_retain(r);
    dfws_req_peer(r, &job->peer);
    r->app = job;
    r->app_fast = 1;
    if (r->body_done) {
        submit(F, job);
    } else {
        dfws_req_continue(r);
        r->app_waiting_body = 1;
    }
    return 1;
}

/* Gives a request whose job never ran back to the ASGI application. */
static void to_asgi(dfws_asgi_t *A, dfws_req_t *r)
{
    job_t *job = r->app;
    r->app = NULL;
    r->app_fast = 0;
    dfws_req_release(r); /* the job's; the connection still holds its own */
    job_free(job);
    PyGILState_STATE g = PyGILState_Ensure();
    if (dfws_http_start(A, r, NULL, NULL))
        dfws_req_abort(r, 500);
    PyGILState_Release(g);
}

void dfws_fast_body(dfws_asgi_t *A, dfws_req_t *r)
{
    if (r->body_done) {
        submit(A->fast, r->app);
    } else if (r->body.len >= DFWS_BODY_HIGH) {
        /* a large upload: reading stopped at the high-water mark; the ASGI
         * path streams it to Django's own spooling instead of holding it */
        to_asgi(A, r);
    } else {
        r->app_waiting_body = 1;
    }
}

void dfws_fast_detach(dfws_asgi_t *A, dfws_req_t *r)
{
    (void)A;
    job_t *job = r->app;
    if (job->queued)
        return; /* a thread has it: answer() finds the connection gone */
    r->app = NULL;
    r->app_fast = 0;
    r->app_waiting_body = 0;
    dfws_req_release(r);
    job_free(job);
}

/* ---- start and stop ------------------------------------------------------------ */

PyObject *dfws_fast_enable(dfws_asgi_t *A, PyObject *args)
{
    PyObject *run;
    int nthreads;
    if (!PyArg_ParseTuple(args, "Oi", &run, &nthreads))
        return NULL;
    if (A->fast) {
        PyErr_SetString(PyExc_RuntimeError, "the Django fast path is already on");
        return NULL;
    }
    if (nthreads < 1 || nthreads > 256) {
        PyErr_SetString(PyExc_ValueError, "threads must be from 1 to 256");
        return NULL;
    }
    dfws_fast_t *F = calloc(1, sizeof(*F));
    pthread_t *threads = calloc((size_t)nthreads, sizeof(*threads));
    if (!F || !threads) {
        free(F);
        free(threads);
        return PyErr_NoMemory();
    }
    F->A = A;
    F->threads = threads;
    F->todo_tail = &F->todo;
    F->done_tail = &F->done;
    F->run = Py_NewRef(run);
    pthread_mutex_init(&F->lock, NULL);
    pthread_cond_init(&F->cond, NULL);
    int rc = uv_async_init(A->server.loop, &F->async, on_async);
    if (rc) {
        Py_DECREF(F->run);
        free(threads);
        free(F);
        PyErr_Format(PyExc_OSError, "uv_async_init: %s", uv_strerror(rc));
        return NULL;
    }
    for (; F->nthreads < nthreads; F->nthreads++) {
        rc = pthread_create(&threads[F->nthreads], NULL, thread_main, F);
        if (rc)
            break;
    }
    A->fast = F;
    if (rc) {
        dfws_fast_stop(A, 1);
        PyErr_Format(PyExc_OSError, "cannot start the Django fast path's threads: %s",
                     strerror(rc));
        return NULL;
    }
    Py_RETURN_NONE;
}

static void on_async_closed(uv_handle_t *h)
{
    dfws_fast_t *F = DFWS_CONTAINER_OF(h, dfws_fast_t, async);
    /* answers that arrived after the last loop turn: their clients are gone */
    on_async(&F->async);
    if (F->abandoned)
        return;                               /* threads still in a view use F: it stays */
    PyGILState_STATE g = PyGILState_Ensure(); /* close callbacks run without it */
    Py_CLEAR(F->run);
    PyGILState_Release(g);
    pthread_mutex_destroy(&F->lock);
    pthread_cond_destroy(&F->cond);
    free(F->threads);
    free(F);
}

void dfws_fast_stop(dfws_asgi_t *A, double timeout)
{
    dfws_fast_t *F = A->fast;
    if (!F)
        return;
    A->fast = NULL;
    pthread_mutex_lock(&F->lock);
    F->stopping = 1;
    pthread_cond_broadcast(&F->cond);
    pthread_mutex_unlock(&F->lock);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(timeout > 0 ? timeout : 0) + 1;
    int stuck = 0;
    Py_BEGIN_ALLOW_THREADS for (int i = 0; i < F->nthreads;
                                i++) if (pthread_timedjoin_np(F->threads[i], NULL, &deadline))
        stuck++;
    Py_END_ALLOW_THREADS if (stuck)
    {
        pthread_mutex_lock(&F->lock);
        F->abandoned = 1;
        pthread_mutex_unlock(&F->lock);
        dfws_log_error("Django fast path: %d thread(s) still in a view at shutdown; left running",
                       stuck);
    }
    uv_close((uv_handle_t *)&F->async, on_async_closed);
}
