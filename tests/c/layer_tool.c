/*
 * layer_tool — drive the dfws C channel layer from the command line, so
 * Python tests can talk to it as a subprocess.
 *
 *   layer_tool [--config JSON] [--debug] COMMAND ARGS...
 *     send CHANNEL MSG_JSON           -> {"ok": true} | {"ok": false, "code": -2, "error": "channel full"}
 *     group-add GROUP CHANNEL
 *     group-discard GROUP CHANNEL
 *     group-send GROUP MSG_JSON
 *     flush
 *     new-channel                     -> the name on one line
 *     receive CHANNEL [--count N] [--timeout S]
 *     listen-new [--group G]... [--count N] [--timeout S]
 *                                     -> {"channel": NAME} then one line per message
 *     serve                           -> JSON commands on stdin, one per line:
 *        ["listen", ch] ["listen-new", [groups...]] ["unlisten", ch] ["send", ch, msg]
 *        ["group-add", g, ch] ["group-discard", g, ch] ["group-send", g, msg]
 *        ["flush"] ["stats"] ["state"] ["quit"]
 *        ["history-configure", size, ttl, append_lua_text, read_lua_text]
 *        ["history-send", group, json_text, epoch_candidate]
 *        ["history-read", group, epoch, offset] -> "epoch", "seq", "items"
 *     hash N NAME...                  -> dfws_layer_shard(NAME, N), one per line (no layer)
 *     each answered by one JSON line with "event": "reply"; messages arrive as
 *     {"event": "message", "channel": ..., "message": ...}.
 * Messages print as {"channel": NAME, "message": {...}}. msgpack bin values
 * map to {"$bin": "<hex>"} in JSON, both ways.
 * Exit status: 0 ok, 1 bad usage/input, 2 channel full, 3 redis error,
 * 4 timeout before --count messages arrived.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>
#include <uv.h>

#include "history.h"
#include "layer.h"

static uv_loop_t *loop;
static dfws_layer_t *layer;
static int exit_code;
static long want_count = -1, got_count;
static uv_timer_t timeout_timer;
static int serve_mode;
static uv_pipe_t stdin_pipe;
static char *line_buf;
static size_t line_len;

/* ---- JSON <-> msgpack ---------------------------------------------------- */

static int pack_json(msgpack_packer *pk, json_t *v)
{
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        json_t *bin = json_object_get(v, "$bin");
        if (bin && json_object_size(v) == 1 && json_is_string(bin)) {
            const char *h = json_string_value(bin);
            size_t n = strlen(h) / 2;
            unsigned char *b = malloc(n ? n : 1);
            for (i = 0; i < n; i++) {
                unsigned int byte;
                sscanf(h + 2 * i, "%2x", &byte);
                b[i] = (unsigned char)byte;
            }
            msgpack_pack_bin(pk, n);
            msgpack_pack_bin_body(pk, b, n);
            free(b);
            return 0;
        }
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach(v, k, x)
        {
            msgpack_pack_str(pk, strlen(k));
            msgpack_pack_str_body(pk, k, strlen(k));
            pack_json(pk, x);
        }
        return 0;
    }
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        for (i = 0; i < json_array_size(v); i++)
            pack_json(pk, json_array_get(v, i));
        return 0;
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        return 0;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        return 0;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    default:
        msgpack_pack_nil(pk);
        return 0;
    }
}

static json_t *obj_to_json(const msgpack_object *o)
{
    uint32_t i;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        char *h = malloc(2 * o->via.bin.size + 1);
        json_t *r;
        for (i = 0; i < o->via.bin.size; i++)
            sprintf(h + 2 * i, "%02x", (unsigned char)o->via.bin.ptr[i]);
        h[2 * o->via.bin.size] = '\0';
        r = json_pack("{s:s}", "$bin", h);
        free(h);
        return r;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, obj_to_json(&o->via.array.ptr[i]));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char *ks;
            if (k->type != MSGPACK_OBJECT_STR)
                continue;
            /* not strndup: the key is not NUL-terminated, and ASan's
             * strict_string_checks reads a strndup source to its end */
            if (!(ks = malloc(k->via.str.size + 1)))
                continue;
            memcpy(ks, k->via.str.ptr, k->via.str.size);
            ks[k->via.str.size] = '\0';
            json_object_set_new(m, ks, obj_to_json(&o->via.map.ptr[i].val));
            free(ks);
        }
        return m;
    }
    default:
        return json_null();
    }
}

static json_t *mp_to_json(const char *mp, size_t len)
{
    msgpack_unpacked u;
    json_t *r = NULL;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, mp, len, NULL) == MSGPACK_UNPACK_SUCCESS)
        r = obj_to_json(&u.data);
    msgpack_unpacked_destroy(&u);
    return r ? r : json_null();
}

/* Pack a JSON message (object) into sbuf; 0 or -1. */
static int msg_from_json(json_t *msg, msgpack_sbuffer *sbuf)
{
    msgpack_packer pk;
    if (!json_is_object(msg))
        return -1;
    msgpack_sbuffer_init(sbuf);
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    return pack_json(&pk, msg);
}

/* ---- output -------------------------------------------------------------- */

static void emit(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(j);
}

static int code_exit(int status)
{
    switch (status) {
    case 0:
        return 0;
    case DFWS_LAYER_EFULL:
        return 2;
    case DFWS_LAYER_EIO:
        return 3;
    default:
        return 1;
    }
}

static json_t *status_json(const char *cmd, int status)
{
    json_t *j = json_pack("{s:b,s:i}", "ok", status == 0, "code", status);
    if (status != 0)
        json_object_set_new(j, "error", json_string(dfws_layer_strerror(status)));
    if (serve_mode) {
        json_object_set_new(j, "event", json_string("reply"));
        json_object_set_new(j, "cmd", json_string(cmd));
    }
    return j;
}

static void on_closed(void *ud)
{
    (void)ud;
    layer = NULL;
    if (!uv_is_closing((uv_handle_t *)&timeout_timer))
        uv_close((uv_handle_t *)&timeout_timer, NULL);
    if (serve_mode && !uv_is_closing((uv_handle_t *)&stdin_pipe))
        uv_close((uv_handle_t *)&stdin_pipe, NULL);
}

static void finish(int code)
{
    exit_code = code;
    if (layer != NULL)
        dfws_layer_close(layer, on_closed, NULL);
}

static void on_done(void *ud, int status)
{
    const char *cmd = ud;
    emit(status_json(cmd, status));
    if (!serve_mode)
        finish(code_exit(status));
}

static void on_message(void *ud, const char *channel, const char *mp, size_t len)
{
    json_t *j = json_pack("{s:s,s:o}", "channel", channel, "message", mp_to_json(mp, len));
    (void)ud;
    if (serve_mode)
        json_object_set_new(j, "event", json_string("message"));
    emit(j);
    got_count++;
    if (!serve_mode && want_count > 0 && got_count >= want_count)
        finish(0);
}

static void on_timeout(uv_timer_t *t)
{
    (void)t;
    finish(want_count > 0 && got_count < want_count ? 4 : 0);
}

static void log_all(void *ud, int level, const char *msg)
{
    (void)ud;
    fprintf(stderr, "layer[%d]: %s\n", level, msg);
}

/* ---- commands ------------------------------------------------------------ */

static void on_synced(void *ud, int status)
{
    json_t *j = ud;
    json_object_set_new(j, "synced", json_integer(status));
    emit(j);
}

/* serve mode: answer once Redis has executed what the command issued, so a
 * test can rely on "joined" before it makes another process send. */
static void emit_synced(json_t *j)
{
    if (!serve_mode || json_integer_value(json_object_get(j, "code")) != 0 ||
        dfws_layer_sync(layer, on_synced, j) != 0)
        emit(j);
}

static void on_history(void *ud, int status, struct dfws_history_result_s *res)
{
    json_t *j = status_json("history-read", status), *items = json_array();
    (void)ud;
    json_object_set_new(j, "epoch", res->has_meta ? json_string(res->epoch) : json_null());
    json_object_set_new(j, "seq", res->has_meta ? json_integer((json_int_t)res->seq) : json_null());
    for (size_t i = 0; i < res->n; i++)
        json_array_append_new(items, json_stringn(res->items[i], res->lens[i]));
    json_object_set_new(j, "items", items);
    emit(j);
}

/* Runs one command. argv strings or JSON values; returns 0 when the command
 * completes asynchronously or was answered, else an exit code. */
static int run_command(const char *cmd, json_t *args)
{
    json_t *a0 = json_array_get(args, 0), *a1 = json_array_get(args, 1);
    int rc;

    if (strcmp(cmd, "send") == 0 || strcmp(cmd, "group-send") == 0) {
        msgpack_sbuffer sb;
        if (!json_is_string(a0) || msg_from_json(a1, &sb) != 0) {
            emit(status_json(cmd, DFWS_LAYER_EINVAL));
            return 1;
        }
        if (cmd[0] == 's')
            rc = dfws_layer_send(layer, json_string_value(a0), sb.data, sb.size, on_done,
                                 (void *)"send");
        else
            rc = dfws_layer_group_send(layer, json_string_value(a0), sb.data, sb.size, on_done,
                                       (void *)"group-send");
        msgpack_sbuffer_destroy(&sb);
        if (rc != 0) {
            emit(status_json(cmd, rc));
            return code_exit(rc);
        }
        return -1; /* async */
    }
    if (strcmp(cmd, "group-add") == 0 || strcmp(cmd, "group-discard") == 0) {
        if (!json_is_string(a0) || !json_is_string(a1))
            rc = DFWS_LAYER_EINVAL;
        else if (strcmp(cmd, "group-add") == 0)
            rc = dfws_layer_group_add(layer, json_string_value(a0), json_string_value(a1));
        else
            rc = dfws_layer_group_discard(layer, json_string_value(a0), json_string_value(a1));
        emit_synced(status_json(cmd, rc));
        return code_exit(rc);
    }
    if (strcmp(cmd, "flush") == 0) {
        rc = dfws_layer_flush(layer, on_done, (void *)"flush");
        if (rc != 0) {
            emit(status_json(cmd, rc));
            return code_exit(rc);
        }
        return -1;
    }
    if (strcmp(cmd, "listen") == 0 || strcmp(cmd, "unlisten") == 0) {
        if (!json_is_string(a0))
            rc = DFWS_LAYER_EINVAL;
        else if (cmd[0] == 'l')
            rc = dfws_layer_listen(layer, json_string_value(a0), on_message, NULL);
        else
            rc = dfws_layer_unlisten(layer, json_string_value(a0));
        emit(status_json(cmd, rc));
        return code_exit(rc);
    }
    if (strcmp(cmd, "listen-new") == 0 || strcmp(cmd, "new-channel") == 0) {
        char name[DFWS_LAYER_CHANNEL_BUF];
        json_t *j;
        size_t i;
        rc = dfws_layer_new_channel(layer, name, sizeof(name));
        if (rc == 0 && cmd[0] == 'l')
            rc = dfws_layer_listen(layer, name, on_message, NULL);
        for (i = 0; rc == 0 && cmd[0] == 'l' && i < json_array_size(a0); i++)
            rc = dfws_layer_group_add(layer, json_string_value(json_array_get(a0, i)), name);
        if (rc != 0) {
            emit(status_json(cmd, rc));
            return code_exit(rc);
        }
        if (!serve_mode && cmd[0] == 'n') {
            printf("%s\n", name);
            fflush(stdout);
            return 0;
        }
        j = serve_mode ? status_json(cmd, 0) : json_object();
        json_object_set_new(j, "channel", json_string(name));
        emit_synced(j);
        return serve_mode ? 0 : -1;
    }
    if (strcmp(cmd, "stats") == 0) {
        dfws_layer_stats_t st;
        json_t *j = status_json(cmd, 0);
        dfws_layer_get_stats(layer, &st);
        json_object_set_new(j, "sent", json_integer((json_int_t)st.sent));
        json_object_set_new(j, "received", json_integer((json_int_t)st.received));
        json_object_set_new(j, "undeliverable", json_integer((json_int_t)st.undeliverable));
        json_object_set_new(j, "group_dropped", json_integer((json_int_t)st.group_dropped));
        json_object_set_new(j, "reconnects", json_integer((json_int_t)st.reconnects));
        emit(j);
        return 0;
    }
    if (strcmp(cmd, "state") == 0) {
        static const char *names[] = {"up", "connecting", "down"};
        char why[512];
        json_t *j = status_json(cmd, 0);
        int st = dfws_layer_state(layer, why, sizeof(why));
        json_object_set_new(j, "state", json_string(names[st]));
        json_object_set_new(j, "why", json_string(why));
        emit(j);
        return 0;
    }
    if (strcmp(cmd, "history-configure") == 0) {
        json_t *a2 = json_array_get(args, 2), *a3 = json_array_get(args, 3);
        if (!json_is_integer(a0) || !json_is_integer(a1))
            rc = DFWS_LAYER_EINVAL;
        else
            rc = dfws_layer_history_configure(layer, (size_t)json_integer_value(a0),
                                              (unsigned)json_integer_value(a1),
                                              json_string_value(a2), json_string_value(a3));
        emit(status_json(cmd, rc));
        return code_exit(rc);
    }
    if (strcmp(cmd, "history-send") == 0) {
        json_t *a2 = json_array_get(args, 2);
        if (!json_is_string(a0) || !json_is_string(a1) || !json_is_string(a2))
            rc = DFWS_LAYER_EINVAL;
        else
            rc = dfws_layer_history_send(layer, json_string_value(a0), json_string_value(a1),
                                         json_string_length(a1), json_string_value(a2), on_done,
                                         (void *)"history-send");
        if (rc != 0) {
            emit(status_json(cmd, rc));
            return code_exit(rc);
        }
        return -1;
    }
    if (strcmp(cmd, "history-read") == 0) {
        json_t *a2 = json_array_get(args, 2);
        if (!json_is_string(a0) || !json_is_string(a1) || !json_is_integer(a2))
            rc = DFWS_LAYER_EINVAL;
        else
            rc = dfws_layer_history_read(layer, json_string_value(a0), json_string_value(a1),
                                         (uint64_t)json_integer_value(a2), on_history, NULL);
        if (rc != 0) {
            emit(status_json(cmd, rc));
            return code_exit(rc);
        }
        return -1;
    }
    if (strcmp(cmd, "quit") == 0) {
        emit(status_json(cmd, 0));
        finish(0);
        return 0;
    }
    fprintf(stderr, "layer_tool: unknown command %s\n", cmd);
    emit(status_json(cmd, DFWS_LAYER_EINVAL));
    return 1;
}

/* ---- serve mode: stdin lines --------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void handle_line(const char *line)
{
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr), *args;
    if (!json_is_array(j) || !json_is_string(json_array_get(j, 0))) {
        fprintf(stderr, "layer_tool: bad command line: %s\n", line);
        emit(status_json("?", DFWS_LAYER_EINVAL));
        json_decref(j);
        return;
    }
    args = json_array();
    {
        size_t i;
        for (i = 1; i < json_array_size(j); i++)
            json_array_append(args, json_array_get(j, i));
    }
    run_command(json_string_value(json_array_get(j, 0)), args);
    json_decref(args);
    json_decref(j);
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        free(buf->base);
        uv_read_stop(s);
        finish(exit_code);
        return;
    }
    line_buf = realloc(line_buf, line_len + (size_t)n + 1);
    memcpy(line_buf + line_len, buf->base, (size_t)n);
    line_len += (size_t)n;
    free(buf->base);
    for (;;) {
        char *nl = memchr(line_buf, '\n', line_len);
        size_t used;
        if (nl == NULL)
            break;
        *nl = '\0';
        used = (size_t)(nl - line_buf) + 1;
        if (nl > line_buf)
            handle_line(line_buf);
        if (layer == NULL)
            return;
        memmove(line_buf, line_buf + used, line_len - used);
        line_len -= used;
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: layer_tool [--config JSON] [--debug] COMMAND ...\n"
            "  send CHANNEL MSG_JSON | group-add GROUP CHANNEL | group-discard GROUP CHANNEL\n"
            "  group-send GROUP MSG_JSON | flush | new-channel | serve\n"
            "  receive CHANNEL [--count N] [--timeout S] | hash N NAME...\n"
            "  listen-new [--group G]... [--count N] [--timeout S]\n");
}

int main(int argc, char **argv)
{
    const char *config = "{}";
    dfws_layer_config_t cfg;
    char err[256];
    double timeout = 0;
    json_t *args = json_array(), *groups = json_array();
    const char *cmd = NULL;
    int i, rc, debug = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--debug") == 0)
            debug = 1;
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            want_count = atol(argv[++i]);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = atof(argv[++i]);
        else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
            json_array_append_new(groups, json_string(argv[++i]));
        else if (cmd == NULL)
            cmd = argv[i];
        else {
            /* message arguments are JSON, names are plain strings */
            json_error_t jerr;
            json_t *v = argv[i][0] == '{' ? json_loads(argv[i], 0, &jerr) : json_string(argv[i]);
            if (v == NULL) {
                fprintf(stderr, "layer_tool: bad JSON %s: %s\n", argv[i], jerr.text);
                return 1;
            }
            json_array_append_new(args, v);
        }
    }
    if (cmd == NULL) {
        usage();
        return 1;
    }
    if (strcmp(cmd, "hash") == 0) {
        size_t k, n = json_array_size(args)
                          ? (size_t)atol(json_string_value(json_array_get(args, 0)))
                          : 0;
        for (k = 1; k < json_array_size(args); k++) {
            const char *name = json_string_value(json_array_get(args, k));
            printf("%zu\n", dfws_layer_shard(name, strlen(name), n));
        }
        json_decref(args);
        json_decref(groups);
        return n ? 0 : 1;
    }
    dfws_layer_config_init(&cfg);
    if (dfws_layer_config_parse_json(&cfg, config, err, sizeof(err)) != 0) {
        fprintf(stderr, "layer_tool: %s\n", err);
        dfws_layer_config_free(&cfg);
        return 1;
    }
    loop = uv_default_loop();
    rc = dfws_layer_new(loop, &cfg, &layer);
    dfws_layer_config_free(&cfg);
    if (rc != 0) {
        fprintf(stderr, "layer_tool: cannot create layer: %s\n", dfws_layer_strerror(rc));
        return 1;
    }
    if (debug)
        dfws_layer_set_log(layer, log_all, NULL);
    uv_timer_init(loop, &timeout_timer);
    if (timeout > 0)
        uv_timer_start(&timeout_timer, on_timeout, (uint64_t)(timeout * 1000), 0);

    if (strcmp(cmd, "serve") == 0) {
        serve_mode = 1;
        uv_pipe_init(loop, &stdin_pipe, 0);
        uv_pipe_open(&stdin_pipe, 0);
        uv_read_start((uv_stream_t *)&stdin_pipe, on_alloc, on_stdin);
        rc = -1;
    } else if (strcmp(cmd, "receive") == 0) {
        rc = 0;
        if (!json_is_string(json_array_get(args, 0)) ||
            (rc = dfws_layer_listen(layer, json_string_value(json_array_get(args, 0)), on_message,
                                    NULL)) != 0) {
            fprintf(stderr, "layer_tool: cannot listen: %s\n",
                    dfws_layer_strerror(rc ? rc : DFWS_LAYER_EINVAL));
            rc = 1;
        } else {
            rc = -1;
        }
    } else if (strcmp(cmd, "listen-new") == 0) {
        json_array_insert(args, 0, groups);
        rc = run_command(cmd, args);
    } else {
        rc = run_command(cmd, args);
    }
    if (rc >= 0)
        finish(rc);
    uv_run(loop, UV_RUN_DEFAULT);
    if (layer != NULL) { /* loop ended with the layer open: should not happen */
        dfws_layer_close(layer, on_closed, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(loop);
    json_decref(args);
    json_decref(groups);
    free(line_buf);
    return exit_code;
}
