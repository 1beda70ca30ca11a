/*
 * dfws channel layer — Redis connections on the loop (see redis_conn.h).
 *
 * Why our own libuv glue: hiredis's adapters/libuv.h returns from its poll
 * callback when libuv reports an error, and libuv reports EPOLLERR (a
 * refused connect, a reset connection) exactly that way, after stopping the
 * poll handle. hiredis then never learns what happened: a connect to a port
 * where nothing listens sat until our connect timeout and was logged as
 * "connect timed out", and a reset connection stayed silent. Here an error
 * is handed to hiredis as "writable, then readable": the write path checks
 * a pending connect (SO_ERROR), a read returns the socket's error, and
 * hiredis reports it with its own text ("Connection refused", "Connection
 * reset by peer").
 */
#include "redis_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_int.h"
#include "layer_sentinel.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000

/* ---- hiredis <-> libuv ------------------------------------------------------ */

/* Owned by the hiredis context (freed after its cleanup hook closed the
 * poll handle). */
typedef struct uvglue_s {
    redisAsyncContext *ac; /* NULL once hiredis let go of the context */
    uv_poll_t poll;
    int events;
    dfws_redis_bound_t bound; /* the reader's count (dfws_redis_bound_reader) */
} uvglue_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    uvglue_t *g = h->data;

    if (status < 0) {
        /* libuv stopped the handle; let hiredis read the error itself. */
        if (g->ac != NULL)
            redisAsyncHandleWrite(g->ac);
        if (g->ac != NULL)
            redisAsyncHandleRead(g->ac);
        if (g->ac != NULL && g->events)
            uv_poll_start(&g->poll, g->events, on_poll);
        return;
    }
    if (g->ac != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(g->ac);
    if (g->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(g->ac);
}

static void glue_set(uvglue_t *g, int events)
{
    g->events = events;
    if (events)
        uv_poll_start(&g->poll, events, on_poll);
    else
        uv_poll_stop(&g->poll);
}

static void glue_add_read(void *p)
{
    uvglue_t *g = p;
    glue_set(g, g->events | UV_READABLE);
}

static void glue_del_read(void *p)
{
    uvglue_t *g = p;
    glue_set(g, g->events & ~UV_READABLE);
}

static void glue_add_write(void *p)
{
    uvglue_t *g = p;
    glue_set(g, g->events | UV_WRITABLE);
}

static void glue_del_write(void *p)
{
    uvglue_t *g = p;
    glue_set(g, g->events & ~UV_WRITABLE);
}

static void on_glue_closed(uv_handle_t *h)
{
    free(h->data);
}

static void glue_cleanup(void *p)
{
    uvglue_t *g = p;
    g->ac = NULL;
    uv_close((uv_handle_t *)&g->poll, on_glue_closed);
}

/* ---- bounded replies ------------------------------------------------------------ */

/* hiredis's reader allocates an array reply's element table as soon as it
 * reads the header: "*2147483647\r\n" (13 bytes from the server) asks for
 * 16 GiB, and nested arrays multiply that. The reader's own functions are
 * kept; only createArray is wrapped, and it refuses a reply whose arrays
 * hold more than DFWS_REDIS_MAX_ELEMENTS elements in all (hiredis then
 * fails the read, which drops the connection: it reconnects with backoff). */
#if HIREDIS_MAJOR >= 1
typedef size_t dfws_redis_nelem_t;
#else
typedef int dfws_redis_nelem_t;
#endif
static redisReplyObjectFunctions bounded_fns;
static void *(*reader_create_array)(const redisReadTask *, dfws_redis_nelem_t);

static void *create_array_bounded(const redisReadTask *task, dfws_redis_nelem_t elements)
{
    dfws_redis_bound_t *b = task->privdata;
    size_t *count = &b->count;
    if (task->parent == NULL)
        *count = 0; /* a new reply */
    if (elements > 0) {
        if ((size_t)elements > DFWS_REDIS_MAX_ELEMENTS - *count) {
            dfws_layer__log(b->layer, DFWS_LOG_WARNING,
                            "redis reply with more than %d array elements refused; dropping the "
                            "connection",
                            DFWS_REDIS_MAX_ELEMENTS);
            return NULL;
        }
        *count += (size_t)elements;
    }
    return reader_create_array(task, elements);
}

void dfws_redis_bound_reader(redisReader *r, dfws_redis_bound_t *b)
{
    if (reader_create_array == NULL) {
        bounded_fns = *r->fn;
        reader_create_array = r->fn->createArray;
        bounded_fns.createArray = create_array_bounded;
    }
    b->count = 0;
    r->privdata = b;
    r->fn = &bounded_fns;
}

int dfws_redis_attach(redisAsyncContext *ac, const dfws_layer_t *l)
{
    uvglue_t *g;

    if (ac->ev.data != NULL)
        return REDIS_ERR;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return REDIS_ERR;
    if (uv_poll_init(l->loop, &g->poll, ac->c.fd) != 0) {
        free(g);
        return REDIS_ERR;
    }
    g->poll.data = g;
    g->ac = ac;
    g->bound.layer = l;
    dfws_redis_bound_reader(ac->c.reader, &g->bound); /* g outlives the reader */
    ac->ev.data = g;
    ac->ev.addRead = glue_add_read;
    ac->ev.delRead = glue_del_read;
    ac->ev.addWrite = glue_add_write;
    ac->ev.delWrite = glue_del_write;
    ac->ev.cleanup = glue_cleanup;
    return REDIS_OK;
}

/* ---- counting what is lost ----------------------------------------------------- */

void dfws_redis_note_lost(dfws_layer_t *l, uint64_t *lost, const char *what, const char *target)
{
    ++*lost;
    l->stats.undeliverable++;
    if (*lost == 1 || *lost % 1000 == 0)
        dfws_layer__log(l, DFWS_LOG_WARNING,
                        "%s to %s not delivered: redis unavailable (%llu lost so far)", what,
                        target, (unsigned long long)*lost);
}

void dfws_redis_note_undeliverable(dfws_layer_t *l, uint64_t *count, const char *why,
                                   const char *where, size_t wlen)
{
    ++*count;
    l->stats.undeliverable++;
    if (*count == 1 || *count % 1000 == 0)
        dfws_layer__log(l, DFWS_LOG_WARNING, "undeliverable message on %.*s: %s (%llu so far)",
                        (int)(wlen > 200 ? 200 : wlen), where, why, (unsigned long long)*count);
}

void dfws_redis_argv_push_key(void *ctx, const char *key, size_t klen, void *value)
{
    dfws_redis_argv_t *a = ctx;
    (void)value;
    a->argv[a->n] = key;
    a->lens[a->n] = klen;
    a->n++;
}

/* ---- connecting ---------------------------------------------------------------- */

const char *dfws_redis_host_desc(const dfws_layer_host_t *h, char *buf, size_t n)
{
    if (h->master_name != NULL && h->host == NULL)
        snprintf(buf, n, "sentinel master '%s'", h->master_name);
    else if (h->master_name != NULL)
        snprintf(buf, n, "%s:%d (sentinel master '%s')", h->host, h->port, h->master_name);
    else if (h->unix_path)
        snprintf(buf, n, "unix://%s", h->unix_path);
    else
        snprintf(buf, n, "%s:%d", h->host, h->port);
    return buf;
}

static int queue_setup(redisAsyncContext *ac, const dfws_layer_host_t *h,
                       const dfws_redis_callbacks_t *cbs);

redisAsyncContext *dfws_redis_open(const dfws_layer_host_t *h, const dfws_layer_t *l, void *data,
                                   const dfws_redis_callbacks_t *cbs, int *nsetup, char *why,
                                   size_t whylen)
{
    redisAsyncContext *ac;
    int n;

    ac = h->unix_path ? redisAsyncConnectUnix(h->unix_path) : redisAsyncConnect(h->host, h->port);
    if (ac == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (ac->err) {
        /* hiredis resolves names before connecting: REDIS_ERR_OTHER is
         * getaddrinfo's answer (or a socket that cannot be made). */
        if (ac->err == REDIS_ERR_OTHER && h->host != NULL)
            snprintf(why, whylen, "%s (resolving %s)", ac->errstr, h->host);
        else
            snprintf(why, whylen, "%s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = data;
    if (dfws_redis_attach(ac, l) != REDIS_OK) {
        redisAsyncFree(ac);
        snprintf(why, whylen, "cannot attach to the event loop");
        return NULL;
    }
    if (h->host != NULL)
        redisEnableKeepAlive(&ac->c);
    redisAsyncSetConnectCallback(ac, cbs->connected);
    redisAsyncSetDisconnectCallback(ac, cbs->disconnected);
    /* Queued before the connection completes; Redis runs them first. */
    n = queue_setup(ac, h, cbs);
    if (nsetup != NULL)
        *nsetup = n;
    return ac;
}

/* The reply to ROLE on a sentinel-managed master: anything but "master"
 * reaches the setup callback as an error, so the connection is dropped and
 * the sentinels are asked again (a demoted master, or sentinels that have
 * not switched yet). privdata: the callbacks. */
static void on_role(redisAsyncContext *ac, void *reply, void *priv)
{
    const dfws_redis_callbacks_t *cbs = priv;
    redisReply *rep = reply, fake;
    char role[32], text[80];
    int rc;

    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        cbs->setup(ac, rep, (void *)"ROLE");
        return;
    }
    rc = dfws_sentinel_parse_role(rep, role, sizeof(role));
    if (rc == 1) {
        cbs->setup(ac, rep, (void *)"ROLE");
        return;
    }
    memset(&fake, 0, sizeof(fake));
    fake.type = REDIS_REPLY_ERROR;
    fake.len = (size_t)snprintf(text, sizeof(text), "not the master (role %s)",
                                rc == 0 ? role : "unreadable");
    fake.str = text;
    cbs->setup(ac, &fake, (void *)"ROLE");
}

static int queue_setup(redisAsyncContext *ac, const dfws_layer_host_t *h,
                       const dfws_redis_callbacks_t *cbs)
{
    redisCallbackFn *cb = cbs->setup;
    int n = 0;

    if (h->password != NULL || h->username != NULL) {
        const char *argv[3];
        size_t lens[3];
        int argc = 0;
        argv[argc] = "AUTH";
        lens[argc++] = 4;
        if (h->username != NULL) {
            argv[argc] = h->username;
            lens[argc++] = strlen(h->username);
        }
        argv[argc] = h->password ? h->password : "";
        lens[argc] = strlen(argv[argc]);
        argc++;
        if (redisAsyncCommandArgv(ac, cb, (void *)"AUTH", argc, argv, lens) == REDIS_OK)
            n++;
    }
    if (h->db != 0) {
        char db[16];
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, 0};
        lens[1] = (size_t)snprintf(db, sizeof(db), "%d", h->db);
        if (redisAsyncCommandArgv(ac, cb, (void *)"SELECT", 2, argv, lens) == REDIS_OK)
            n++;
    }
    if (h->master_name != NULL && cb != NULL) {
        if (redisAsyncCommand(ac, on_role, (void *)cbs, "ROLE") == REDIS_OK)
            n++;
    }
    return n;
}

/* ---- a connection that reconnects ---------------------------------------------- */

static void conn_connect(dfws_redis_conn_t *c);

static void release(dfws_redis_conn_t *c)
{
    if (--c->holds == 0)
        c->ops->closed(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    release(h->data);
}

static void log_line(const dfws_redis_conn_t *c, const char *what)
{
    char hd[300];
    dfws_layer__log(c->layer, DFWS_LOG_WARNING, "redis %s (shard %zu, %s connection): %s",
                    dfws_redis_host_desc(c->host, hd, sizeof(hd)), c->shard, c->role, what);
}

static void on_timer(uv_timer_t *t);

/* Free the context ourselves; its callbacks (hiredis may still run them,
 * with NULL replies or from a deferred free) see no owner. */
static void drop(dfws_redis_conn_t *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->state = DFWS_REDIS_DOWN;
    ac->data = NULL;
    redisAsyncFree(ac);
}

/* The context is gone (hiredis frees it, or we did). */
static void went_down(dfws_redis_conn_t *c, const char *why)
{
    c->ac = NULL;
    c->state = DFWS_REDIS_DOWN;
    c->setup_pending = 0;
    if (why != c->error)
        snprintf(c->error, sizeof(c->error), "%s", why);
    if (c->closing) {
        release(c);
        return;
    }
    if (c->sentinel != NULL)
        dfws_sentinel_suspect(c->sentinel);
    if (!c->outage) {
        char line[300];
        c->outage = 1;
        snprintf(line, sizeof(line), "%s; reconnecting", c->error);
        log_line(c, line);
    }
    uv_timer_start(&c->timer, on_timer, c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (c->ops->down)
        c->ops->down(c);
}

static void became_ready(dfws_redis_conn_t *c)
{
    uv_timer_stop(&c->timer);
    c->state = DFWS_REDIS_READY;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->error[0] = '\0';
    c->connects++;
    if (c->outage) {
        c->outage = 0;
        log_line(c, c->connects > 1 ? "reconnected" : "connected");
    }
    c->ops->ready(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    dfws_redis_conn_t *c = ac->data;

    if (c == NULL)
        return; /* dropped by us */
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        went_down(c, ac->errstr[0] ? ac->errstr : "connection failed");
        return;
    }
    if (c->setup_pending == 0)
        became_ready(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    dfws_redis_conn_t *c = ac->data;
    (void)status;
    if (c == NULL)
        return; /* dropped by us (time limit, close): already accounted for */
    uv_timer_stop(&c->timer);
    if (c->state == DFWS_REDIS_CONNECTING && c->error[0] != '\0')
        went_down(c, c->error); /* AUTH or SELECT refused (on_setup) */
    else
        went_down(c, ac->errstr[0] ? ac->errstr : "connection closed by the server");
}

static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    dfws_redis_conn_t *c = ac->data;
    redisReply *rep = reply;

    if (rep == NULL || c == NULL)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        /* Retrying is all we can do; the log line says why (once). */
        snprintf(c->error, sizeof(c->error), "%s failed: %s", (const char *)priv, rep->str);
        redisAsyncFree(ac); /* deferred by hiredis until we return; on_disconnect follows */
        return;
    }
    if (--c->setup_pending == 0 && (ac->c.flags & REDIS_CONNECTED))
        became_ready(c);
}

static void conn_connect(dfws_redis_conn_t *c)
{
    static const dfws_redis_callbacks_t cbs = {on_connect, on_disconnect, on_setup};
    char why[sizeof(c->error)];
    const dfws_layer_host_t *h = c->host;
    redisAsyncContext *ac;

    if (h->master_name != NULL && c->sentinel == NULL) {
        went_down(c, "out of memory (sentinel)");
        return;
    }
    if (c->sentinel != NULL && (h = dfws_sentinel_master(c->sentinel, why, sizeof(why))) == NULL) {
        if (why[0] != '\0') {
            went_down(c, why);
        } else {
            /* the first discovery runs: dfws_redis_conn_reset() follows */
            c->state = DFWS_REDIS_DOWN;
            snprintf(c->error, sizeof(c->error), "asking the sentinels for the master");
        }
        return;
    }
    ac = dfws_redis_open(h, c->layer, c, &cbs, &c->setup_pending, why, sizeof(why));
    if (ac == NULL) {
        went_down(c, why);
        return;
    }
    c->ac = ac;
    c->state = DFWS_REDIS_CONNECTING;
    c->error[0] = '\0';
    uv_timer_start(&c->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
}

static void on_timer(uv_timer_t *t)
{
    dfws_redis_conn_t *c = t->data;
    redisAsyncContext *ac;
    int tcp_up;

    if (c->closing)
        return;
    if (c->state == DFWS_REDIS_DOWN) {
        conn_connect(c);
        return;
    }
    if (c->state != DFWS_REDIS_CONNECTING)
        return;
    /* No connection, or no answer to AUTH/SELECT, in time: drop the
     * context and try again later. */
    ac = c->ac;
    tcp_up = (ac->c.flags & REDIS_CONNECTED) != 0;
    drop(c);
    went_down(c, tcp_up ? "no answer to AUTH/SELECT in time" : "connect timed out");
}

void dfws_redis_conn_start(dfws_redis_conn_t *c, const dfws_layer_t *layer,
                           const dfws_layer_host_t *host, dfws_sentinel_t *sentinel, size_t shard,
                           const char *role, int drain_on_close, const dfws_redis_conn_ops_t *ops,
                           void *data)
{
    memset(c, 0, sizeof(*c));
    c->sentinel = sentinel;
    c->layer = layer;
    c->loop = layer->loop;
    c->host = host;
    c->shard = shard;
    c->role = role;
    c->drain_on_close = drain_on_close;
    c->ops = ops;
    c->data = data;
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(c->loop, &c->timer);
    c->timer.data = c;
    conn_connect(c);
}

void dfws_redis_conn_close(dfws_redis_conn_t *c)
{
    redisAsyncContext *ac = c->ac;

    c->closing = 1;
    c->holds = 1;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    if (ac == NULL)
        return;
    c->holds++;
    if (c->state == DFWS_REDIS_READY && c->drain_on_close) {
        /* let written commands finish: went_down() releases, maybe now */
        redisAsyncDisconnect(ac);
        return;
    }
    drop(c);
    release(c);
}

void dfws_redis_conn_reset(dfws_redis_conn_t *c, const char *why)
{
    if (c->closing)
        return;
    if (c->ac != NULL) {
        drop(c);
        went_down(c, why); /* schedules the next attempt after the backoff */
    }
    /* the master is known: try now */
    uv_timer_stop(&c->timer);
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

int dfws_redis_conn_usable(const dfws_redis_conn_t *c)
{
    return c->state == DFWS_REDIS_READY && !c->closing && c->ac != NULL;
}

int dfws_redis_conn_queueable(const dfws_redis_conn_t *c)
{
    return c->ac != NULL && !c->closing;
}

int dfws_redis_health(int ready, int outage, const dfws_layer_host_t *h, size_t shard,
                      const char *role, const char *error, char *why, size_t whylen)
{
    char hd[300];
    if (ready)
        return DFWS_LAYER_UP;
    if (!outage)
        return DFWS_LAYER_CONNECTING;
    if (why != NULL && whylen > 0)
        snprintf(why, whylen, "redis %s (shard %zu, %s connection): %s",
                 dfws_redis_host_desc(h, hd, sizeof(hd)), shard, role,
                 error[0] ? error : "not connected");
    return DFWS_LAYER_DOWN;
}

int dfws_redis_conn_health(const dfws_redis_conn_t *c, char *why, size_t whylen)
{
    return dfws_redis_health(c->state == DFWS_REDIS_READY, c->outage, c->host, c->shard, c->role,
                             c->error, why, whylen);
}
