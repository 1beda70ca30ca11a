/* Interned Python strings used on the request path, created once at
 * start-up (dfws_str_init) and kept for the life of the interpreter. */
#ifndef DFWS_ASGI_STR_H
#define DFWS_ASGI_STR_H

#include <Python.h>

#define DFWS_STRINGS(X)                                                                            \
    X(type, "type")                                                                                \
    X(asgi, "asgi")                                                                                \
    X(version, "version")                                                                          \
    X(v3_0, "3.0")                                                                                 \
    X(spec_version, "spec_version")                                                                \
    X(v2_3, "2.3")                                                                                 \
    X(http_version, "http_version")                                                                \
    X(v1_1, "1.1")                                                                                 \
    X(v1_0, "1.0")                                                                                 \
    X(method, "method")                                                                            \
    X(scheme, "scheme")                                                                            \
    X(http, "http")                                                                                \
    X(https, "https")                                                                              \
    X(ws, "ws")                                                                                    \
    X(wss, "wss")                                                                                  \
    X(path, "path")                                                                                \
    X(raw_path, "raw_path")                                                                        \
    X(query_string, "query_string")                                                                \
    X(root_path, "root_path")                                                                      \
    X(headers, "headers")                                                                          \
    X(client, "client")                                                                            \
    X(server, "server")                                                                            \
    X(state, "state")                                                                              \
    X(extensions, "extensions")                                                                    \
    X(subprotocols, "subprotocols")                                                                \
    X(subprotocol, "subprotocol")                                                                  \
    X(websocket, "websocket")                                                                      \
    X(http_request, "http.request")                                                                \
    X(http_disconnect, "http.disconnect")                                                          \
    X(http_response_start, "http.response.start")                                                  \
    X(http_response_body, "http.response.body")                                                    \
    X(body, "body")                                                                                \
    X(more_body, "more_body")                                                                      \
    X(status, "status")                                                                            \
    X(trailers, "trailers")                                                                        \
    X(text, "text")                                                                                \
    X(bytes, "bytes")                                                                              \
    X(code, "code")                                                                                \
    X(reason, "reason")                                                                            \
    X(websocket_connect, "websocket.connect")                                                      \
    X(websocket_accept, "websocket.accept")                                                        \
    X(websocket_receive, "websocket.receive")                                                      \
    X(websocket_send, "websocket.send")                                                            \
    X(websocket_close, "websocket.close")                                                          \
    X(websocket_disconnect, "websocket.disconnect")                                                \
    X(websocket_http_response_start, "websocket.http.response.start")                              \
    X(websocket_http_response_body, "websocket.http.response.body")                                \
    X(websocket_http_response, "websocket.http.response")                                          \
    X(set_result, "set_result")                                                                    \
    X(cancel, "cancel")                                                                            \
    X(cancelled, "cancelled")                                                                      \
    X(exception, "exception")                                                                      \
    X(add_done_callback, "add_done_callback")                                                      \
    X(call_later, "call_later")                                                                    \
    X(done, "done")                                                                                \
    X(copy, "copy")

#define DFWS_STR_DECLARE(name, literal) extern PyObject *dfws_str_##name;
DFWS_STRINGS(DFWS_STR_DECLARE)
#undef DFWS_STR_DECLARE

/* 0, or -1 with a Python exception set. */
int dfws_str_init(void);
/* Interned method name for a method number (request.h; a new str for unknown). */
PyObject *dfws_str_for_method(int method);

#endif
