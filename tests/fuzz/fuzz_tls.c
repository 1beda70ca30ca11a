/* libFuzzer driver for the TLS engine (server/tls.c): the bytes a client
 * sends before and during the handshake, fed in chunks of the size the
 * first byte picks (0: all at once). Whatever comes in:
 *   - dfws_tls_read never returns more than asked, and once it failed or
 *     saw close_notify it keeps saying so;
 *   - OpenSSL's per-thread error queue is empty after every call (an error
 *     left there would be taken for the next connection's);
 *   - a write before the handshake completed is refused;
 *   - everything the engine queued for the peer can be taken and released.
 * The seeds (tests/fuzz/corpus/fuzz_tls) are ClientHellos of real clients. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dfws_tls_ctx_t *ctx; /* one for the process, as in dfws-asgi */

/* A self-signed certificate for the run, in a temporary directory that is
 * gone once the context is loaded. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/dfws-fuzz-tls-XXXXXX", cert[64], key[64];
    if (!mkdtemp(dir))
        abort();
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, k, EVP_sha256());
    FILE *f = fopen(cert, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
    dfws_cli_t cli;
    memset(&cli, 0, sizeof(cli));
    cli.ssl_certfile = cert;
    cli.ssl_keyfile = key;
    ctx = dfws_tls_ctx_new(&cli);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    if (!ctx)
        abort();
    return 0;
}

static void drain_out(dfws_tls_t *t, int take)
{
    const char *data;
    size_t n = dfws_tls_out(t, &data);
    if (!n)
        return;
    if (take) {
        char *p;
        size_t len;
        void *owner = dfws_tls_out_take(t, &p, &len);
        if (!owner || len != n || dfws_tls_out(t, &data) != 0)
            abort();
        dfws_tls_out_release(owner);
    } else {
        dfws_tls_out_clear(t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 1)
        return 0;
    size_t chunk = d[0] ? d[0] : n;
    d++, n--;
    dfws_tls_t *t = dfws_tls_new(ctx);
    if (!t)
        return 0;
    long last = 0;
    int ended = 0;
    for (size_t off = 0; off < n && !ended;) {
        size_t k = n - off < chunk ? n - off : chunk;
        if (dfws_tls_feed(t, (const char *)d + off, k))
            abort();
        off += k;
        for (;;) {
            char buf[4096];
            long got = dfws_tls_read(t, buf, sizeof(buf));
            if (got > (long)sizeof(buf) || ERR_peek_error())
                abort();
            drain_out(t, off & 1);
            if (got > 0)
                continue;
            if (got < 0) {
                ended = 1;
                last = got;
                if (dfws_tls_read(t, buf, sizeof(buf)) != got) /* it keeps saying so */
                    abort();
            }
            break;
        }
    }
    uv_buf_t b = uv_buf_init("x", 1);
    if (!dfws_tls_established(t) && dfws_tls_write(t, &b, 1) != DFWS_TLS_ERROR)
        abort();
    if (last == DFWS_TLS_ERROR && !dfws_tls_error(t)[0])
        abort(); /* a failure says why */
    dfws_tls_shutdown(t);
    drain_out(t, 0);
    if (ERR_peek_error())
        abort();
    dfws_tls_free(t);
    return 0;
}
