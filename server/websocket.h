/*
 * websocket.h - sans-I/O WebSocket protocol (RFC 6455), server side.
 *
 * This module never touches sockets, libuv or Python: the owner feeds the
 * bytes it read (dfws_ws_feed) and receives callbacks; every byte the
 * module wants to send goes out synchronously through the config's `write`
 * callback, which must copy it (into the owner's socket buffer) before
 * returning.  NO outgoing byte is ever queued inside the module: the
 * amount of pending output held here is always 0.
 *
 * Incoming frames are decoded by wslay's frame API (header, length forms,
 * unmasking, control frame FIN/length checks).  Everything wslay's frame
 * layer does not check is done here: RSV bits, reserved opcodes, masking,
 * fragmentation rules, UTF-8 of text messages and close reasons, close
 * codes, size limits, and the close handshake.
 *
 * Memory: dfws_ws_t is meant to be embedded in the owner's connection
 * struct (no allocation of its own).  Heap memory is held only while it is
 * needed and freed as soon as it is not:
 *   - wslay's frame context (4272 bytes measured with wslay 1.1.1) only
 *     while a frame is partially received (freed at the end of every
 *     dfws_ws_feed call that leaves the parser between frames);
 *   - the reassembly buffer only while a fragmented (or split across
 *     dfws_ws_feed calls) message is in progress;
 *   - a 125-byte control buffer only while a control frame is split
 *     across dfws_ws_feed calls.
 * An idle connection therefore costs sizeof(dfws_ws_t) and nothing else.
 *
 * Threading: none.  All functions for one dfws_ws_t must be called from the
 * same thread (the loop thread).
 */
#ifndef DFWS_WEBSOCKET_H
#define DFWS_WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------
 * Error codes (all functions return 0 or one of these).
 */
enum {
    DFWS_WS_E_INVAL = -1,   /* bad argument (code, length, header text) */
    DFWS_WS_E_NOMEM = -2,   /* out of memory */
    DFWS_WS_E_WRITE = -3,   /* the write callback failed */
    DFWS_WS_E_CLOSED = -4,  /* the connection is closed (handshake done
                                   or failed): no more frames either way */
    DFWS_WS_E_CLOSING = -5, /* we already sent a close frame: no more
                                   messages, pings or close frames */
    DFWS_WS_E_FATAL = -6,   /* connection is dead (see on_fatal) */
    DFWS_WS_E_BUSY = -7,    /* dfws_ws_feed called from a callback */

    /* Opening handshake checks (dfws_ws_handshake_check & co). */
    DFWS_WS_HS_E_METHOD = -20,     /* method is not GET              -> 400 */
    DFWS_WS_HS_E_UPGRADE = -21,    /* no "Upgrade: websocket"        -> 400 */
    DFWS_WS_HS_E_CONNECTION = -22, /* "Connection" lacks "upgrade"   -> 400 */
    DFWS_WS_HS_E_VERSION = -23,    /* Sec-WebSocket-Version missing or not
                                       13 -> 426 + "Sec-WebSocket-Version: 13" */
    DFWS_WS_HS_E_KEY = -24,        /* Sec-WebSocket-Key missing, repeated or
                                       not base64 of 16 bytes         -> 400 */
    DFWS_WS_HS_E_PROTOCOL = -25,   /* bad Sec-WebSocket-Protocol token
                                       (or chosen subprotocol)        -> 400 */
    DFWS_WS_HS_E_HEADER = -26      /* extra response header has a bad name or
                                       a CR/LF/NUL in its value */
};

/* Static English text for any code above (never NULL). */
const char *dfws_ws_strerror(int err);

/* ---------------------------------------------------------------------
 * Opening handshake helpers.  Pure functions, no state, no allocation.
 */

/* One HTTP header as slices of the request buffer (not NUL-terminated).
 * Names are compared case-insensitively; values may carry surrounding
 * spaces/tabs (they are trimmed). */
typedef struct dfws_ws_header_s {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} dfws_ws_header_t;

/* A token (slice of a header value; owned by the caller's buffer). */
typedef struct dfws_ws_token_s {
    const char *ptr;
    size_t len;
} dfws_ws_token_t;

/* Validates an upgrade request: method GET, Upgrade contains the token
 * "websocket", Connection contains the token "upgrade" (both
 * case-insensitive, over every occurrence of the header),
 * Sec-WebSocket-Version is 13, exactly one Sec-WebSocket-Key that is
 * base64 of 16 bytes.  Checks run in that order; the first failure is
 * returned (DFWS_WS_HS_E_*), see dfws_ws_handshake_status() for the HTTP
 * status to answer.  On success, returns 0 and, if key is not NULL, points
 * *key and *key_len at the trimmed key inside `headers` (caller-owned). */
int dfws_ws_handshake_check(const char *method, size_t method_len, const dfws_ws_header_t *headers,
                            size_t nheaders, const char **key, size_t *key_len);

/* HTTP status for a dfws_ws_handshake_check() failure: 426 for
 * DFWS_WS_HS_E_VERSION (the response must then carry
 * "Sec-WebSocket-Version: 13"), 400 for everything else. */
int dfws_ws_handshake_status(int err);

/* Computes Sec-WebSocket-Accept for `key` (as sent by the client, trimmed):
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
 * Writes 28 characters + NUL into out.  Returns 0 or DFWS_WS_E_INVAL. */
#define DFWS_WS_ACCEPT_LEN 28
int dfws_ws_accept_key(const char *key, size_t key_len, char out[DFWS_WS_ACCEPT_LEN + 1]);

/* Parses every Sec-WebSocket-Protocol header of the request into a list of
 * tokens (comma separated, whitespace trimmed, empty elements skipped).
 * Stores at most `max` tokens in out[] (slices into the header values).
 * Returns the number of tokens found (may be > max: like snprintf, only
 * the first max are stored), or DFWS_WS_HS_E_PROTOCOL if an element is not
 * an RFC 7230 token. */
int dfws_ws_parse_protocols(const dfws_ws_header_t *headers, size_t nheaders, dfws_ws_token_t *out,
                            size_t max);

/* Builds the "101 Switching Protocols" response:
 *   HTTP/1.1 101 Switching Protocols / Upgrade: websocket /
 *   Connection: Upgrade / Sec-WebSocket-Accept: ... /
 *   [Sec-WebSocket-Protocol: <subprotocol>] / <extra headers> / empty line
 * `subprotocol` may be NULL (none); it must be a token.  `extra` are
 * additional headers (e.g. from the ASGI accept message; names must be
 * tokens, values must not contain CR, LF or NUL).
 * Like snprintf: returns the length of the full response (no NUL is
 * written) and writes it into buf only if it fits in cap (call with
 * cap = 0 to size the buffer).  Returns DFWS_WS_E_INVAL (bad key),
 * DFWS_WS_HS_E_PROTOCOL or DFWS_WS_HS_E_HEADER on bad input. */
int dfws_ws_build_response(const char *key, size_t key_len, const char *subprotocol,
                           size_t subprotocol_len, const dfws_ws_header_t *extra, size_t nextra,
                           char *buf, size_t cap);

/* ---------------------------------------------------------------------
 * Connection (frame layer).
 */

/* Who started the close (dfws_ws_close_info_t.origin). */
typedef enum dfws_ws_close_origin_e {
    DFWS_WS_CLOSE_BY_PEER = 1, /* peer sent close; we echoed it */
    DFWS_WS_CLOSE_BY_US = 2,   /* we sent close (dfws_ws_close); peer
                                   answered */
    DFWS_WS_CLOSE_BY_ERROR = 3 /* the peer broke the protocol; we sent a
                                   close frame with code_sent (1002, 1007
                                   or 1009) without waiting for a reply */
} dfws_ws_close_origin_t;

typedef struct dfws_ws_close_info_s {
    dfws_ws_close_origin_t origin;
    /* Code in the peer's close frame; 1005 if its close frame had no
     * payload; 1006 if no close frame was received (BY_ERROR). */
    uint16_t code_received;
    /* Code in the close frame we sent; 1005 if we sent an empty close. */
    uint16_t code_sent;
    /* Peer's close reason, valid UTF-8, NOT NUL-terminated, valid only
     * during the callback (len 0 if none). */
    const char *reason;
    size_t reason_len;
    /* BY_ERROR: static text describing the violation (log it); else NULL. */
    const char *error;
} dfws_ws_close_info_t;

/* Callbacks.  `owner` is the pointer given to dfws_ws_init.  From inside
 * on_message/on_pong/on_close the owner may call dfws_ws_send,
 * dfws_ws_ping and dfws_ws_close, but never dfws_ws_feed nor
 * dfws_ws_cleanup (do those after dfws_ws_feed returns). */
typedef struct dfws_ws_callbacks_s {
    /* Required.  Copy len bytes to the socket's output; return 0, or a
     * negative value on failure (the connection then becomes fatal).
     * One frame may be written in two calls (header, then payload). */
    int (*write)(void *owner, const uint8_t *data, size_t len);
    /* Required.  A complete message.  data is owned by the module and valid
     * only during the call; text messages are valid UTF-8 (not
     * NUL-terminated).  binary is 0 for text, 1 for binary. */
    void (*on_message)(void *owner, int binary, const uint8_t *data, size_t len);
    /* Optional.  A pong arrived (payload valid only during the call). */
    void (*on_pong)(void *owner, const uint8_t *data, size_t len);
    /* Optional.  A ping arrived while OPEN (payload valid only during the
     * call).  Without it the module answers with a pong at once; with it
     * the owner answers when it chooses (dfws_ws_pong), which lets it hold
     * back pongs while its output is backed up and keep only the latest. */
    void (*on_ping)(void *owner, const uint8_t *data, size_t len);
    /* Required.  The close handshake finished or the connection failed;
     * called exactly once, after the close frame (if any) was written.
     * The owner should flush its output and then close the TCP connection
     * (RFC 6455: the server closes TCP first).  If we initiated the close
     * and the peer never answers, the owner's own timer must drop it. */
    void (*on_close)(void *owner, const dfws_ws_close_info_t *info);
    /* Required.  The connection must be dropped now (write callback
     * failure or out of memory); no close frame can be sent.  err is a
     * DFWS_WS_E_* code, what a static description. */
    void (*on_fatal)(void *owner, int err, const char *what);
} dfws_ws_callbacks_t;

/* permessage-deflate (RFC 7692) state shared by every connection of a
 * config: see "permessage-deflate" below. */
typedef struct dfws_ws_deflate_s dfws_ws_deflate_t;

/* Shared by every connection of a server (caller-owned; must outlive them
 * all; not copied). */
typedef struct dfws_ws_config_s {
    dfws_ws_callbacks_t cb;
    /* Limits in payload bytes; 0 = unlimited.  Exceeding either fails the
     * connection with close code 1009.  On a compressed message,
     * max_frame_size applies to each frame as received (compressed) and
     * max_message_size to the message once inflated, checked as it grows. */
    size_t max_message_size;
    size_t max_frame_size;
    /* permessage-deflate: NULL (the default) = never negotiated; else
     * created by dfws_ws_deflate_new (owned by the caller). */
    dfws_ws_deflate_t *deflate;
} dfws_ws_config_t;

#define DFWS_WS_DEFAULT_MAX_SIZE ((size_t)1 << 20)

/* Zeroes cfg and sets both limits to DFWS_WS_DEFAULT_MAX_SIZE (1 MiB). */
void dfws_ws_config_init(dfws_ws_config_t *cfg);

/* Connection state (dfws_ws_t.state). */
enum {
    DFWS_WS_OPEN = 0,    /* messages flow both ways */
    DFWS_WS_CLOSING = 1, /* we sent close, waiting for the peer's */
    DFWS_WS_CLOSED = 2,  /* on_close was called; input is ignored */
    DFWS_WS_DEAD = 3     /* on_fatal was called */
};

/* Per-connection state.  Embed it in the connection struct; fields are
 * private (read `state` if you like).  sizeof is 104 bytes on x86-64. */
typedef struct dfws_ws_s {
    const dfws_ws_config_t *cfg;
    void *owner;
    struct wslay_frame_context *fc; /* only while a frame is in flight */
    uint8_t *msg;                   /* reassembly buffer or NULL */
    size_t msg_len;
    size_t msg_cap;
    uint8_t *ctl;      /* split control frame payload or NULL */
    const uint8_t *in; /* feed cursor, only inside feed */
    size_t in_len;
    uint64_t frame_left; /* payload bytes left in current frame */
    uint32_t buffered;   /* bytes held in wslay's input buffer */
    uint16_t code_sent;  /* code of the close we sent */
    uint8_t state;
    uint8_t msg_op; /* 0, 1 (text) or 2 (binary) */
    uint8_t frame_op;
    uint8_t flags;
    uint8_t utf8; /* UTF-8 validator state */
    uint8_t ctl_len;
    uint8_t pmd_server_bits; /* permessage-deflate agreed: our window
                                       bits (9-15), 0 = not negotiated */
    uint8_t pmd_client_bits; /* the client's window bits (8-15) */
    void *zin;               /* inflater, only while a compressed
                                       message is being received */
} dfws_ws_t;

/* Initialises ws (no allocation, cannot fail).  cfg and owner are
 * borrowed. */
void dfws_ws_init(dfws_ws_t *ws, const dfws_ws_config_t *cfg, void *owner);

/* Frees whatever ws holds (safe in any state, idempotent).  Never call it
 * from inside a callback of the same ws. */
void dfws_ws_cleanup(dfws_ws_t *ws);

/* Feeds bytes received from the peer (any chunking; data is borrowed for
 * the call only).  Callbacks fire from inside this call.  Returns:
 *   0                  keep reading (OPEN or CLOSING);
 *   DFWS_WS_E_CLOSED   on_close was called (now or before): stop reading,
 *                      flush, close TCP; further bytes are ignored;
 *   DFWS_WS_E_FATAL    on_fatal was called: drop the connection;
 *   DFWS_WS_E_BUSY     called from inside a callback (nothing done). */
int dfws_ws_feed(dfws_ws_t *ws, const uint8_t *data, size_t len);

/* Sends one unfragmented, unmasked message (binary = 0: text, the caller
 * guarantees valid UTF-8; 1: binary).  data is borrowed.
 * Returns 0, DFWS_WS_E_CLOSING, DFWS_WS_E_CLOSED, DFWS_WS_E_FATAL, or
 * DFWS_WS_E_WRITE (write failed; on_fatal was called). */
int dfws_ws_send(dfws_ws_t *ws, int binary, const uint8_t *data, size_t len);

/* Sends a ping (payload <= 125 bytes, else DFWS_WS_E_INVAL), e.g. for
 * keep-alive; the peer's pong comes back through on_pong.  Same returns
 * as dfws_ws_send. */
int dfws_ws_ping(dfws_ws_t *ws, const uint8_t *data, size_t len);

/* Sends a pong (payload <= 125 bytes), the answer to a ping the owner
 * took through on_ping.  Same returns as dfws_ws_ping. */
int dfws_ws_pong(dfws_ws_t *ws, const uint8_t *data, size_t len);

/* Starts the close handshake: sends a close frame and enters CLOSING
 * (messages received from now on are dropped; on_close fires when the
 * peer's close frame arrives).  code 0 sends a close frame without
 * payload; otherwise code must be 1000-1003, 1007-1014 or 3000-4999
 * (else DFWS_WS_E_INVAL).  reason (may be NULL) is truncated to 123 bytes
 * on a UTF-8 character boundary.  Returns like dfws_ws_send. */
int dfws_ws_close(dfws_ws_t *ws, uint16_t code, const char *reason, size_t reason_len);

/* 1 if a close frame received from the peer may carry this code
 * (RFC 6455 7.4 + IANA registry), else 0. */
int dfws_ws_close_code_valid(unsigned code);

/* ---------------------------------------------------------------------
 * permessage-deflate (RFC 7692).
 *
 * Memory is what this design is about.  The server always answers with
 * server_no_context_takeover and client_no_context_takeover (RFC 7692
 * 7.1.1.1 and 7.1.1.2 let a server add both to any accepted offer, and a
 * client must then comply), so every message is compressed and inflated on
 * its own and no zlib state belongs to a connection between messages:
 *   - outgoing messages are compressed by ONE deflate stream per config
 *     (reset before each message), and the last compressed message is kept
 *     with its input: a broadcast sent to N connections with the same
 *     window bits is compressed once and the same bytes are written N
 *     times;
 *   - an incoming compressed message gets an inflater (ws->zin) when its
 *     first frame arrives and gives it back when it ends; the config keeps
 *     one spare so the common case allocates nothing.
 * An idle connection costs the 2 bytes of agreed parameters, nothing more.
 */

/* Creates the shared state.  level: zlib level 1-9; threshold: messages
 * shorter than this many bytes are sent uncompressed; window_bits 9-15:
 * the LZ77 window we compress with (answered as server_max_window_bits
 * when below 15).  Returns NULL on bad arguments or no memory. */
dfws_ws_deflate_t *dfws_ws_deflate_new(int level, size_t threshold, int window_bits);
/* Frees it (after every connection using it is cleaned up). */
void dfws_ws_deflate_free(dfws_ws_deflate_t *d);

typedef struct dfws_ws_deflate_stats_s {
    unsigned long long compressed;  /* messages run through deflate */
    unsigned long long reused;      /* sends served from the last result */
    unsigned long long not_smaller; /* compressed, not smaller: sent plain */
    unsigned long long inflated;    /* compressed messages received */
    unsigned long long bytes_in;    /* bytes before compression */
    unsigned long long bytes_out;   /* bytes after compression */
} dfws_ws_deflate_stats_t;
void dfws_ws_deflate_get_stats(const dfws_ws_deflate_t *d, dfws_ws_deflate_stats_t *st);

/* Parameters agreed for one connection (4 bytes; zero = none). */
typedef struct dfws_ws_pmd_s {
    uint8_t server_bits;     /* 9-15 */
    uint8_t client_bits;     /* 8-15 */
    uint8_t say_server_bits; /* the response names server_max_window_bits */
    uint8_t say_client_bits; /* ... and client_max_window_bits */
} dfws_ws_pmd_t;

/* Longest Sec-WebSocket-Extensions value dfws_ws_pmd_negotiate writes. */
#define DFWS_WS_PMD_RESPONSE_MAX 160

/* Reads every Sec-WebSocket-Extensions header of the request and takes the
 * first permessage-deflate offer it can honour: known parameters only,
 * each at most once, values in range (server_max_window_bits 9-15: zlib
 * has no 8-bit raw window; client_max_window_bits 8-15 or no value).
 * Malformed or unacceptable offers are skipped, never an error: the
 * handshake then goes on without the extension.  On success returns 1,
 * fills *pmd and writes the response value (NUL-terminated, at most
 * DFWS_WS_PMD_RESPONSE_MAX bytes) into resp; returns 0 when nothing was
 * accepted (or d is NULL). */
int dfws_ws_pmd_negotiate(const dfws_ws_deflate_t *d, const dfws_ws_header_t *headers,
                          size_t nheaders, dfws_ws_pmd_t *pmd, char resp[DFWS_WS_PMD_RESPONSE_MAX]);

/* Writes the Sec-WebSocket-Extensions value for agreed parameters (what
 * dfws_ws_pmd_negotiate wrote), NUL-terminated.  Returns its length, or
 * DFWS_WS_E_INVAL if pmd agrees nothing or cap is too small. */
int dfws_ws_pmd_response(const dfws_ws_pmd_t *pmd, char *buf, size_t cap);

/* Switches the extension on for ws with the agreed parameters (call it
 * right after the 101 response is written, before any frame is fed or
 * sent).  The config must have a `deflate`.  From then on frames with
 * RSV1 are inflated, and dfws_ws_send compresses messages of at least the
 * threshold's size (when that makes them smaller). */
void dfws_ws_set_pmd(dfws_ws_t *ws, const dfws_ws_pmd_t *pmd);

/* Incremental UTF-8 validation (exposed for the tests and for callers that
 * want to check outgoing text).  *state starts at 0; returns 0 while the
 * bytes are valid so far (state 0 = at a character boundary), -1 on the
 * first invalid byte (overlongs, surrogates, > U+10FFFF, bad bytes). */
int dfws_ws_utf8_check(uint8_t *state, const uint8_t *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* DFWS_WEBSOCKET_H */
