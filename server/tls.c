#include "tls.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dfws_tls_ctx_s {
    SSL_CTX *ssl;
};

struct dfws_tls_s {
    SSL *ssl;
    BIO *in;           /* ciphertext from the peer; owned by ssl */
    BIO *out;          /* ciphertext for the peer; owned by ssl */
    const char *error; /* why it failed (OpenSSL's static reason string) */
    unsigned failed : 1;
    unsigned eof : 1;           /* close_notify received */
    unsigned shutdown_sent : 1; /* close_notify queued */
};

/* Pieces smaller than one record are gathered before SSL_write: a response
 * head and a short body go out as one record, not two. */
#define GATHER 16384
/* A memory BIO keeps the capacity of the largest data it ever held; one
 * that grew past this is replaced once empty, so an idle connection holds
 * no more than this per direction after a large upload or download. */
#define BIO_KEEP (16 * 1024)

/* ---- context ------------------------------------------------------------ */

int dfws_tls_wanted(const dfws_cli_t *cli)
{
    return cli->ssl_certfile != NULL || cli->ssl_keyfile != NULL;
}

int dfws_tls_check_cli(const dfws_cli_t *cli, char *err, size_t errlen)
{
    if (cli->ssl_keyfile && !cli->ssl_certfile) {
        snprintf(err, errlen, "--ssl-keyfile needs --ssl-certfile (the certificate chain)");
        return -1;
    }
    if (!dfws_tls_wanted(cli) && (cli->ssl_ca_certs || cli->ssl_ciphers)) {
        snprintf(err, errlen, "%s needs --ssl-certfile and --ssl-keyfile",
                 cli->ssl_ca_certs ? "--ssl-ca-certs" : "--ssl-ciphers");
        return -1;
    }
    if (dfws_tls_wanted(cli) && cli->proxy_protocol) {
        /* the PROXY header would arrive in clear before the ClientHello */
        snprintf(err, errlen, "--proxy-protocol cannot be combined with TLS");
        return -1;
    }
    return 0;
}

/* OpenSSL's reason for the last failure, and its queue emptied: the queue
 * is per thread, and an error left in it would be taken for the next
 * connection's. */
static const char *take_error(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    /* "PEM lib" says less than what the caller knows it was reading */
    return why && strcmp(why, "PEM lib") ? why : fallback;
}

/* A file OpenSSL is about to read: a missing or unreadable one is named
 * with the system's reason, clearer than OpenSSL's "system lib". */
static int readable(const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        dfws_log_error("cannot read the TLS %s %s: %s", what, path, strerror(errno));
        return 0;
    }
    fclose(f);
    return 1;
}

/* A key protected by a passphrase is refused at once: OpenSSL would
 * otherwise ask for it on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *ud)
{
    *(int *)ud = 1;
    return -1;
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* e.g. h2 only: go on without ALPN */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Twisted's extraCertChainFile: the intermediate certificates (PEM, one or
 * more) sent after the server's own. 0 or -1 (logged). */
static int add_chain(SSL_CTX *s, const char *path)
{
    if (!readable("certificate chain", path))
        return -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        dfws_log_error("cannot open the TLS certificate chain %s: %s", path, strerror(errno));
        return -1;
    }
    int n = 0;
    X509 *x;
    while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
        int ok = SSL_CTX_add0_chain_cert(s, x) == 1;
        if (!ok) {
            X509_free(x);
            fclose(f);
            dfws_log_error("cannot add the TLS chain certificate %d of %s: %s", n + 1, path,
                           take_error("refused"));
            return -1;
        }
        n++;
    }
    fclose(f);
    ERR_clear_error(); /* the read that ended the loop (no more PEM) */
    if (!n) {
        dfws_log_error("no PEM certificate in the TLS certificate chain %s", path);
        return -1;
    }
    return 0;
}

dfws_tls_ctx_t *dfws_tls_ctx_new(const dfws_cli_t *cli)
{
    const char *cert = cli->ssl_certfile;
    const char *key = cli->ssl_keyfile ? cli->ssl_keyfile : cli->ssl_certfile;
    int asked = 0;
    dfws_tls_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return NULL;
    ERR_clear_error();
    SSL_CTX *s = ctx->ssl = SSL_CTX_new(TLS_server_method());
    if (!s) {
        dfws_log_error("cannot create the TLS context: %s", take_error("out of memory"));
        goto fail;
    }
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
    /* idle connections give their record buffers back */
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(s, no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(s, &asked);

    if (!readable("certificate chain", cert))
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(s, cert) != 1) {
        dfws_log_error("cannot load the TLS certificate chain %s: %s", cert,
                       take_error("no PEM certificate in it, or a broken one"));
        goto fail;
    }
    if (cli->ssl_chain && add_chain(s, cli->ssl_chain))
        goto fail;
    if (!readable("private key", key))
        goto fail;
    if (SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            dfws_log_error("the TLS private key %s does not match the certificate %s", key, cert);
        else if (asked)
            dfws_log_error("cannot load the TLS private key %s: it is protected by a passphrase; "
                           "dfws-asgi needs the key without one",
                           key);
        else
            dfws_log_error("cannot load the TLS private key %s: %s", key,
                           take_error("no PEM private key in it, or a broken one"));
        ERR_clear_error();
        goto fail;
    }
    if (SSL_CTX_check_private_key(s) != 1) {
        dfws_log_error("the TLS private key %s does not match the certificate %s: %s", key, cert,
                       take_error("mismatch"));
        goto fail;
    }
    if (cli->ssl_ca_certs) {
        if (!readable("CA bundle", cli->ssl_ca_certs))
            goto fail;
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cli->ssl_ca_certs);
        if (!names || SSL_CTX_load_verify_locations(s, cli->ssl_ca_certs, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            dfws_log_error("cannot load the TLS CA bundle %s: %s", cli->ssl_ca_certs,
                           take_error("no PEM certificate in it"));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(s, names);
        /* Ask for a client certificate and refuse one that does not chain
         * to the bundle; a client without one is served (the application
         * decides what it may do), as uvicorn's CERT_OPTIONAL. */
        SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
    }
    if (cli->ssl_ciphers && SSL_CTX_set_cipher_list(s, cli->ssl_ciphers) != 1) {
        dfws_log_error("--ssl-ciphers %s: %s", cli->ssl_ciphers, take_error("no cipher matches"));
        goto fail;
    }
    /* Sessions resumed by id must come from this server's cache (required
     * once client certificates are verified). */
    static const unsigned char sid_ctx[] = "dfws-asgi";
    SSL_CTX_set_session_id_context(s, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_alpn_select_cb(s, select_alpn, NULL);
    SSL_CTX_set_default_passwd_cb_userdata(s, NULL);
    ERR_clear_error();
    return ctx;
fail:
    ERR_clear_error();
    dfws_tls_ctx_free(ctx);
    return NULL;
}

void dfws_tls_ctx_free(dfws_tls_ctx_t *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

/* ---- engine ------------------------------------------------------------- */

static BIO *new_bio(void)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b)
        BIO_set_mem_eof_return(b, -1); /* empty means "wait", not end of stream */
    return b;
}

dfws_tls_t *dfws_tls_new(dfws_tls_ctx_t *ctx)
{
    dfws_tls_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ssl = SSL_new(ctx->ssl);
    t->in = new_bio();
    t->out = new_bio();
    if (!t->ssl || !t->in || !t->out) {
        BIO_free(t->in);
        BIO_free(t->out);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(t->ssl, t->in, t->out);
    SSL_set_accept_state(t->ssl);
    return t;
}

void dfws_tls_free(dfws_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

static void fail(dfws_tls_t *t, const char *fallback)
{
    t->failed = 1;
    t->error = take_error(fallback);
}

int dfws_tls_feed(dfws_tls_t *t, const char *data, size_t len)
{
    while (len) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (BIO_write(t->in, data, n) != n) {
            fail(t, "out of memory");
            return DFWS_TLS_ERROR;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Replaces an empty memory BIO that grew large by a fresh one. */
static void shrink(dfws_tls_t *t, int in)
{
    BIO *b = in ? t->in : t->out;
    BUF_MEM *bm = NULL;
    BIO_get_mem_ptr(b, &bm);
    if (!bm || bm->max <= BIO_KEEP || bm->length)
        return;
    BIO *fresh = new_bio();
    if (!fresh)
        return; /* keep the large one */
    if (in) {
        SSL_set0_rbio(t->ssl, fresh);
        t->in = fresh;
    } else {
        SSL_set0_wbio(t->ssl, fresh);
        t->out = fresh;
    }
}

long dfws_tls_read(dfws_tls_t *t, char *out, size_t cap)
{
    if (t->failed)
        return DFWS_TLS_ERROR;
    if (t->eof)
        return DFWS_TLS_EOF;
    ERR_clear_error();
    int n = SSL_read(t->ssl, out, cap > INT_MAX ? INT_MAX : (int)cap);
    if (n > 0)
        return n;
    switch (SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        ERR_clear_error();
        shrink(t, 1); /* every byte fed is consumed: OpenSSL keeps a partial record */
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        t->eof = 1;
        return DFWS_TLS_EOF;
    default:
        fail(t, "protocol error");
        return DFWS_TLS_ERROR;
    }
}

static int write_all(dfws_tls_t *t, const char *data, size_t len)
{
    while (len) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        ERR_clear_error();
        /* A memory BIO takes everything: SSL_write is complete or fails. */
        if (SSL_write(t->ssl, data, n) != n) {
            fail(t, "cannot encrypt");
            return DFWS_TLS_ERROR;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int dfws_tls_write(dfws_tls_t *t, const uv_buf_t *bufs, unsigned nbufs)
{
    if (t->failed || t->shutdown_sent || !SSL_is_init_finished(t->ssl))
        return DFWS_TLS_ERROR;
    unsigned i = 0;
    while (i < nbufs) {
        /* how many of the next buffers fit in one gathered record */
        size_t g = 0;
        unsigned j = i;
        while (j < nbufs && g + bufs[j].len <= GATHER)
            g += bufs[j++].len;
        if (j - i > 1) {
            char gather[GATHER];
            size_t off = 0;
            for (unsigned k = i; k < j; k++) {
                memcpy(gather + off, bufs[k].base, bufs[k].len);
                off += bufs[k].len;
            }
            if (write_all(t, gather, off))
                return DFWS_TLS_ERROR;
            i = j;
            continue;
        }
        if (write_all(t, bufs[i].base, bufs[i].len))
            return DFWS_TLS_ERROR;
        i++;
    }
    return 0;
}

void dfws_tls_shutdown(dfws_tls_t *t)
{
    if (t->shutdown_sent)
        return;
    t->shutdown_sent = 1;
    if (t->failed || !SSL_is_init_finished(t->ssl))
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* queues close_notify; the peer's is not waited for */
    ERR_clear_error();
}

int dfws_tls_shutdown_sent(const dfws_tls_t *t)
{
    return t->shutdown_sent;
}

size_t dfws_tls_out(dfws_tls_t *t, const char **data)
{
    char *p = NULL;
    long n = BIO_get_mem_data(t->out, &p);
    *data = p;
    return n > 0 ? (size_t)n : 0;
}

void dfws_tls_out_clear(dfws_tls_t *t)
{
    BUF_MEM *bm = NULL;
    BIO_get_mem_ptr(t->out, &bm);
    if (bm && bm->max > BIO_KEEP) {
        BIO *fresh = new_bio();
        if (fresh) {
            SSL_set0_wbio(t->ssl, fresh); /* frees the old BIO and its buffer */
            t->out = fresh;
            return;
        }
    }
    (void)BIO_reset(t->out);
}

void *dfws_tls_out_take(dfws_tls_t *t, char **data, size_t *len)
{
    BUF_MEM *bm = NULL;
    BIO *fresh = new_bio();
    if (!fresh)
        return NULL;
    BIO_get_mem_ptr(t->out, &bm);
    if (!bm) {
        BIO_free(fresh);
        return NULL;
    }
    /* The old BIO goes, its buffer stays with the caller (BIO_NOCLOSE). */
    BIO_set_close(t->out, BIO_NOCLOSE);
    SSL_set0_wbio(t->ssl, fresh);
    t->out = fresh;
    *data = bm->data;
    *len = bm->length;
    return bm;
}

void dfws_tls_out_release(void *owner)
{
    BUF_MEM_free(owner);
}

int dfws_tls_established(const dfws_tls_t *t)
{
    return SSL_is_init_finished(t->ssl);
}

const char *dfws_tls_error(const dfws_tls_t *t)
{
    return t->error ? t->error : "";
}

const char *dfws_tls_version(const dfws_tls_t *t)
{
    return SSL_get_version(t->ssl);
}

const char *dfws_tls_alpn(const dfws_tls_t *t, size_t *len)
{
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    *len = n;
    return p ? (const char *)p : "";
}
