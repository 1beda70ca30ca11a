/* TLS: the server's context and a sans-I/O engine per connection.
 *
 * The context (certificate chain, key, optional client CA, ciphers) is
 * loaded once, in the process that opens the listening socket, before any
 * worker forks: every worker shares it (and its session ticket keys, so a
 * client resumes its session on any worker), and a bad path or a key that
 * does not match the certificate stops dfws-asgi at start with a clear
 * message instead of failing in each worker.
 *
 * The engine never touches a socket. The connection feeds it the
 * ciphertext it read (dfws_tls_feed), takes plaintext out (dfws_tls_read),
 * hands it plaintext to send (dfws_tls_write, dfws_tls_shutdown) and sends
 * whatever ciphertext the engine has for the peer (dfws_tls_out): handshake
 * messages, records, alerts, close_notify. OpenSSL runs over two memory
 * BIOs: it never blocks and never sees the file descriptor.
 */
#ifndef DFWS_TLS_H
#define DFWS_TLS_H

#include <stddef.h>
#include <uv.h>

#include "cli.h"
#include "transport.h"

typedef struct dfws_tls_ctx_s dfws_tls_ctx_t;
typedef struct dfws_tls_s dfws_tls_t;

/* Results of dfws_tls_read (negative) */
enum { DFWS_TLS_EOF = -1, DFWS_TLS_ERROR = -2 };

/* 1 when the command line asks for TLS (a certificate or a key). */
int dfws_tls_wanted(const dfws_cli_t *cli);
/* Checks the TLS options against each other and the rest of the command
 * line; returns 0, or -1 after writing the reason (one line, no newline)
 * into err. */
int dfws_tls_check_cli(const dfws_cli_t *cli, char *err, size_t errlen);
/* Loads the context the command line describes: TLS 1.2 and 1.3, ALPN
 * "http/1.1". With --ssl-ca-certs, clients are asked for a certificate and
 * one they present must chain to that CA (a client without one is still
 * served; see docs/tls.md). Returns the context (the caller owns it:
 * dfws_tls_ctx_free), or NULL after logging which file is wrong and why. */
dfws_tls_ctx_t *dfws_tls_ctx_new(const dfws_cli_t *cli);
void dfws_tls_ctx_free(dfws_tls_ctx_t *ctx);

/* A connection's engine, server side, waiting for a ClientHello. NULL when
 * out of memory. The caller owns it: dfws_tls_free. */
dfws_tls_t *dfws_tls_new(dfws_tls_ctx_t *ctx);
void dfws_tls_free(dfws_tls_t *t);

/* Ciphertext received from the peer (copied). 0, or DFWS_TLS_ERROR when out
 * of memory. */
int dfws_tls_feed(dfws_tls_t *t, const char *data, size_t len);
/* Advances the handshake and decrypts into out: the number of plaintext
 * bytes (> 0); 0 when more ciphertext is needed; DFWS_TLS_EOF when the peer
 * sent close_notify; DFWS_TLS_ERROR when the handshake failed or a record is
 * bad (dfws_tls_error says why; an alert for the peer may be waiting in
 * dfws_tls_out). Call it until it returns <= 0: after that no decrypted
 * byte is left inside the engine, so a reader that pauses loses nothing. */
long dfws_tls_read(dfws_tls_t *t, char *out, size_t cap);
/* Encrypts the buffers, in order, as few records as it can (small pieces
 * are gathered into one record). 0, or DFWS_TLS_ERROR (handshake not
 * complete, engine failed or out of memory). */
int dfws_tls_write(dfws_tls_t *t, const uv_buf_t *bufs, unsigned nbufs);
/* Queues close_notify (once; nothing before the handshake completed). */
void dfws_tls_shutdown(dfws_tls_t *t);
/* dfws_tls_shutdown was called (whether or not it queued anything). */
int dfws_tls_shutdown_sent(const dfws_tls_t *t);

/* Ciphertext waiting to be sent: its length, and *data pointing at it
 * (valid until the next call on t). */
size_t dfws_tls_out(dfws_tls_t *t, const char **data);
/* The waiting ciphertext was sent: forget it. */
void dfws_tls_out_clear(dfws_tls_t *t);
/* Takes the waiting ciphertext out of the engine without copying it, for a
 * write that completes later: returns an owner token (NULL when out of
 * memory; the ciphertext then stays waiting) to release with
 * dfws_tls_out_release once the bytes at *data..*data+*len are sent. */
void *dfws_tls_out_take(dfws_tls_t *t, char **data, size_t *len);
void dfws_tls_out_release(void *owner);

/* The handshake completed. */
int dfws_tls_established(const dfws_tls_t *t);
/* Why the engine failed (a static string; "" when it did not). */
const char *dfws_tls_error(const dfws_tls_t *t);
/* The negotiated protocol version ("TLSv1.3") and ALPN protocol ("" when
 * none was agreed). */
const char *dfws_tls_version(const dfws_tls_t *t);
const char *dfws_tls_alpn(const dfws_tls_t *t, size_t *len);

/* The TLS transport (transport_tls.c): a listener's transport with its
 * dfws_tls_ctx_t as transport_ctx. */
extern const dfws_transport_vt_t dfws_transport_tls;

#endif
