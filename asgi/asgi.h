/* The CPython boundary: what asgi/ modules share.
 *
 * One dfws_asgi_t per process, owned by the `_dfws.Server` Python object. It
 * keeps strong references to the loop, the application and the cached bound
 * methods until the server is closed and its handles are gone.
 */
#ifndef DFWS_ASGI_H
#define DFWS_ASGI_H

#include <Python.h>
#include <arpa/inet.h>

#include "cli.h"
#include "request.h"
#include "server.h"

typedef struct dfws_fast_s dfws_fast_t;

typedef struct dfws_asgi_s {
    PyObject *loop;
    PyObject *app;
    PyObject *state;          /* lifespan state dict, or NULL without lifespan */
    PyObject *create_task;    /* loop.create_task */
    PyObject *create_future;  /* loop.create_future */
    PyObject *log_exception;  /* callable(message, exc) from dfws.runner */
    PyObject *access_info;    /* logging.getLogger("dfws.access").info */
    PyObject *root_path;      /* str */
    PyObject *proxy_host_hdr; /* lower-case bytes, or NULL */
    PyObject *proxy_port_hdr;
    const dfws_cli_t *cli;
    dfws_server_t server;
    dfws_app_ops_t ops;
    int started;
    dfws_fast_t *fast;        /* the Django fast path, or NULL (django_fast.c) */
    uv_timer_t metrics_timer; /* --metrics-bind: refreshes the slot each second */
    int metrics_timer_on;
    /* the native df_websockets endpoint (native.c), or NULL, and the dfws.native
     * callbacks it hands connects and browser calls to */
    struct dfws_native_s *native;
    PyObject *native_connect, *native_signal;
    /* scope["server"] of the last request (http.c): most requests of a worker
     * share it, so the tuple is built once */
    PyObject *last_server;
    char last_server_host[INET6_ADDRSTRLEN];
    uint16_t last_server_port;
} dfws_asgi_t;

/* The command line and listening socket _dfws.configure() prepared. */
extern const dfws_cli_t *dfws_asgi_cli;
extern int dfws_asgi_fd;
extern int dfws_asgi_is_unix;
/* The TLS context loaded by _dfws.configure() before any fork (server/tls.h), or
 * NULL: plain HTTP. Lives as long as the process. */
extern struct dfws_tls_ctx_s *dfws_asgi_tls;

/* A completed awaitable: `await x` gives its value at once, no Future. */
extern PyTypeObject dfws_ready_type;
/* Returns a new reference to an awaitable yielding `value` (borrowed). */
PyObject *dfws_ready_new(PyObject *value);
/* Shared awaitable yielding None. Borrowed. */
extern PyObject *dfws_ready_none;

extern PyTypeObject dfws_http_cycle_type;
/* ops->http_* implementations (http.c). */
int dfws_http_request(void *ud, dfws_req_t *req);
void dfws_http_body(void *ud, dfws_req_t *req);
void dfws_http_drain(void *ud, dfws_req_t *req);
void dfws_http_detach(void *ud, dfws_req_t *req);

/* ops->ws_* implementations (websocket.c). */
int dfws_ws_request(void *ud, dfws_wsconn_t *wc);
void dfws_ws_message(void *ud, dfws_wsconn_t *wc, int binary, const char *data, size_t len);
void dfws_ws_closed(void *ud, dfws_wsconn_t *wc, int code);
void dfws_ws_drain(void *ud, dfws_wsconn_t *wc);
int dfws_websocket_types_ready(void);

/* A request's addresses, copied: dfws_peer_t, dfws_req_peer (request.h). */

/* The scope shared by HTTP and WebSocket (kind: dfws_str_http or
 * dfws_str_websocket), for a request still on its connection. New
 * reference, or NULL with an exception. */
PyObject *dfws_asgi_build_scope(dfws_asgi_t *A, dfws_req_t *r, PyObject *kind);
/* The same from copied addresses. Reads only the request's head (stable
 * once its header section is complete) and A's settings, so a thread that
 * holds the GIL may call it while the loop runs. */
PyObject *dfws_asgi_build_scope_peer(dfws_asgi_t *A, dfws_req_t *r, PyObject *kind,
                                     const dfws_peer_t *peer);
/* Runs `app` (borrowed; NULL: A->app) as the ASGI application of HTTP
 * request r with `scope` (borrowed; NULL: built now). Holds the GIL.
 * 0, or -1 with the exception logged. */
int dfws_http_start(dfws_asgi_t *A, dfws_req_t *r, PyObject *app, PyObject *scope);

/* The Task of an application (task.c). */
/* Starts A->app(scope, receive, send) as a Task on the loop; receive, send
 * and the Task's done callback are the given methods bound to `self`.
 * Returns the Task (new reference) or NULL with an exception set. */
PyObject *dfws_asgi_start_task(dfws_asgi_t *A, PyObject *self, PyObject *scope,
                               PyMethodDef *receive_def, PyMethodDef *send_def,
                               PyMethodDef *done_def);
/* The same with another application than A->app (borrowed). */
PyObject *dfws_asgi_start_app_task(dfws_asgi_t *A, PyObject *app, PyObject *self, PyObject *scope,
                                   PyMethodDef *receive_def, PyMethodDef *send_def,
                                   PyMethodDef *done_def);
/* --application-close-timeout: task.cancel() later; the TimerHandle goes to
 * *handle (nothing happens if one is already there). */
void dfws_asgi_arm_close_timeout(dfws_asgi_t *A, PyObject *task, PyObject **handle);
void dfws_asgi_disarm(PyObject **handle);
/* A finished Task's exception (new reference), or NULL when it returned or
 * was cancelled (*cancelled tells). Never leaves an exception set. */
PyObject *dfws_asgi_task_exception(PyObject *task, int *cancelled);

/* Calls fut.set_result(value) unless the future is already done; never
 * leaves an exception set. */
void dfws_future_resolve(PyObject *fut, PyObject *value);
/* Takes the Future out of *slot (a strong reference, may be NULL),
 * resolves it with value and drops it. */
void dfws_future_take(PyObject **slot, PyObject *value);
/* Logs the current Python exception through dfws.runner's logger and clears it. */
void dfws_log_current_exception(dfws_asgi_t *A, const char *what);

/* The process's channel layer (layer.c). */
struct dfws_layer_s;
int dfws_asgi_layer_start(uv_loop_t *loop, const char *json, char *err, size_t errlen);
struct dfws_layer_s *dfws_asgi_layer(void);
void dfws_asgi_layer_stop(void);
extern PyMethodDef dfws_layer_methods[];

/* The native df_websockets endpoint (native.c). */
int dfws_native_types_ready(void);
PyObject *dfws_native_enable(dfws_asgi_t *A, PyObject *args);
void dfws_native_disable(dfws_asgi_t *A);
PyObject *dfws_native_stats(dfws_asgi_t *A);
/* Copies the native endpoint's counters into this worker's metrics slot. */
void dfws_native_metrics(dfws_asgi_t *A);

/* The Django fast path (django_fast.c): plain HTTP requests to Django's
 * ASGIHandler run on a pool of threads, each in one hop through
 * dfws.django_fast.FastPath.run, and their response is written from C. The
 * loop thread never takes the GIL for them. */
/* Server.enable_django_fast_path(run, stream_app, threads) (GIL held). */
PyObject *dfws_fast_enable(dfws_asgi_t *A, PyObject *args);
/* Loop thread, no GIL. Takes request r (its header section complete) when
 * the fast path is on: 1 taken, 0 the ASGI path must serve it. */
int dfws_fast_offer(dfws_asgi_t *A, dfws_req_t *r);
/* ops->http_body / ops->http_detach for a request the fast path took
 * (r->app_fast). Loop thread, no GIL. */
void dfws_fast_body(dfws_asgi_t *A, dfws_req_t *r);
void dfws_fast_detach(dfws_asgi_t *A, dfws_req_t *r);
/* Stops the threads (waiting at most `timeout` s for running views) and
 * frees the pool once its handle is closed. Loop thread, GIL held (it is
 * released while waiting). */
void dfws_fast_stop(dfws_asgi_t *A, double timeout);

/* Start-up (startup.c): module functions behind dfws/__main__.py and the
 * worker's side of the supervisor. */
extern PyMethodDef dfws_startup_methods[];
/* After `n` requests (0: never), the worker asks its supervisor for a
 * replacement (--limit-max-requests). */
void dfws_startup_limit_requests(dfws_server_t *s, uint64_t n);

#endif
