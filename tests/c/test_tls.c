/* Unit tests for server/tls.c: the context loaded from files (good ones,
 * missing, garbage, a key that does not match, a bad cipher list, a client
 * CA), and the sans-I/O engine talking to a real OpenSSL client in memory,
 * every byte in both directions delivered in chunks of 1, 2, 7 and all at
 * once: handshake, ALPN, a request and a gathered response, a response
 * taken out of the engine without copying, close_notify both ways;
 * garbage instead of a ClientHello, an old protocol, client certificates. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"


static char dir[64];
static char ca_pem[128], cert_pem[128], key_pem[128], other_key_pem[128], garbage_pem[128],
    client_cert_pem[128], client_key_pem[128], rogue_cert_pem[128], rogue_key_pem[128];
static EVP_PKEY *ca_key;
static X509 *ca_cert;

/* ---- certificates, made for the run ------------------------------------------ */

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int is_ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                              is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (!is_ca) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (cert)
        PEM_write_X509(f, cert);
    if (key)
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static void make_files(void)
{
    snprintf(dir, sizeof(dir), "/tmp/dfws-test-tls-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
#define PATH(var, name) snprintf(var, sizeof(var), "%s/%s", dir, name)
    PATH(ca_pem, "ca.pem");
    PATH(cert_pem, "cert.pem");
    PATH(key_pem, "key.pem");
    PATH(other_key_pem, "other.pem");
    PATH(garbage_pem, "garbage.pem");
    PATH(client_cert_pem, "client.pem");
    PATH(client_key_pem, "client-key.pem");
    PATH(rogue_cert_pem, "rogue.pem");
    PATH(rogue_key_pem, "rogue-key.pem");
    ca_key = EVP_EC_gen("P-256");
    ca_cert = make_cert(ca_key, "dfws test CA", NULL, NULL, 1);
    write_pem(ca_pem, ca_cert, NULL);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *c = make_cert(k, "localhost", ca_cert, ca_key, 0);
    write_pem(cert_pem, c, NULL);
    write_pem(key_pem, NULL, k);
    X509_free(c);
    EVP_PKEY_free(k);
    k = EVP_EC_gen("P-256");
    write_pem(other_key_pem, NULL, k);
    EVP_PKEY_free(k);
    k = EVP_EC_gen("P-256");
    c = make_cert(k, "client", ca_cert, ca_key, 0);
    write_pem(client_cert_pem, c, NULL);
    write_pem(client_key_pem, NULL, k);
    X509_free(c);
    EVP_PKEY_free(k);
    k = EVP_EC_gen("P-256");
    c = make_cert(k, "rogue", NULL, NULL, 0); /* self-signed */
    write_pem(rogue_cert_pem, c, NULL);
    write_pem(rogue_key_pem, NULL, k);
    X509_free(c);
    EVP_PKEY_free(k);
    FILE *f = fopen(garbage_pem, "w");
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
    fclose(f);
}

static void remove_files(void)
{
    const char *all[] = {ca_pem,         cert_pem,       key_pem,
                         other_key_pem,  garbage_pem,    client_cert_pem,
                         client_key_pem, rogue_cert_pem, rogue_key_pem};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        unlink(all[i]);
    rmdir(dir);
}

static dfws_cli_t cli_for(const char *cert, const char *key)
{
    dfws_cli_t cli;
    memset(&cli, 0, sizeof(cli));
    cli.fd = -1;
    cli.ssl_certfile = cert;
    cli.ssl_keyfile = key;
    return cli;
}

/* ---- context ------------------------------------------------------------------- */

static void ctx_case(const char *name, dfws_cli_t cli, int want_ok)
{
    dfws_tls_ctx_t *ctx = dfws_tls_ctx_new(&cli);
    int ok = ctx != NULL;
    dfws_tls_ctx_free(ctx);
    CHECK_OR_RETURN(, ok == want_ok, "%s: loaded %d, want %d", name, ok, want_ok);
    CHECK_OR_RETURN(, ERR_peek_error() == 0, "%s: OpenSSL error queue left non-empty", name);
    check_pass();
}

static void check_cli_case(const char *name, dfws_cli_t cli, int want_ok)
{
    char err[256] = "";
    int rc = dfws_tls_check_cli(&cli, err, sizeof(err));
    CHECK_OR_RETURN(, (rc == 0) == want_ok, "%s: rc %d (%s)", name, rc, err);
    CHECK_OR_RETURN(, want_ok || err[0], "%s: no reason given", name);
    check_pass();
}

/* ---- a client in memory against the engine --------------------------------- */

typedef struct {
    SSL_CTX *cctx;
    SSL *cl;
    BIO *cin, *cout; /* the client's side of the wire */
    dfws_tls_t *srv;
    size_t chunk;         /* bytes per delivery, both directions */
    char got[256 * 1024]; /* plaintext the server decrypted */
    size_t got_len;
    int srv_eof, srv_err;
} pair_t;

static SSL_CTX *client_ctx(const char *alpn, size_t alpn_len)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(c), ca_cert);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    if (alpn)
        SSL_CTX_set_alpn_protos(c, (const unsigned char *)alpn, (unsigned)alpn_len);
    return c;
}

static void pair_open(pair_t *p, dfws_tls_ctx_t *ctx, SSL_CTX *cctx, size_t chunk)
{
    memset(p, 0, sizeof(*p));
    p->cctx = cctx;
    p->cl = SSL_new(cctx);
    p->cin = BIO_new(BIO_s_mem());
    p->cout = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(p->cin, -1);
    BIO_set_mem_eof_return(p->cout, -1);
    SSL_set_bio(p->cl, p->cin, p->cout);
    SSL_set_tlsext_host_name(p->cl, "localhost");
    SSL_set1_host(p->cl, "localhost");
    SSL_set_connect_state(p->cl);
    p->srv = dfws_tls_new(ctx);
    p->chunk = chunk;
}

static void pair_close(pair_t *p)
{
    SSL_free(p->cl);
    dfws_tls_free(p->srv);
}

/* The server decrypts what it was fed, one read at a time, as the
 * connection does (until the engine asks for more). */
static void server_drain(pair_t *p)
{
    for (;;) {
        char buf[7000]; /* smaller than a record: one record takes several reads */
        long n = dfws_tls_read(p->srv, buf, sizeof(buf));
        if (n > 0) {
            if (p->got_len + (size_t)n <= sizeof(p->got))
                memcpy(p->got + p->got_len, buf, (size_t)n);
            p->got_len += (size_t)n;
            continue;
        }
        if (n == DFWS_TLS_EOF)
            p->srv_eof = 1;
        if (n == DFWS_TLS_ERROR)
            p->srv_err = 1;
        return;
    }
}

/* Moves the client's pending bytes to the server, `chunk` at a time. */
static size_t client_to_server(pair_t *p)
{
    char buf[64 * 1024];
    size_t moved = 0;
    int n;
    while ((n = BIO_read(p->cout, buf, sizeof(buf))) > 0) {
        for (size_t off = 0; off < (size_t)n;) {
            size_t k = (size_t)n - off < p->chunk ? (size_t)n - off : p->chunk;
            dfws_tls_feed(p->srv, buf + off, k);
            server_drain(p);
            off += k;
        }
        moved += (size_t)n;
    }
    return moved;
}

/* Moves the server's pending bytes to the client, `chunk` at a time,
 * letting the client advance its handshake after each. */
static size_t server_to_client(pair_t *p)
{
    const char *data;
    size_t n = dfws_tls_out(p->srv, &data);
    for (size_t off = 0; off < n;) {
        size_t k = n - off < p->chunk ? n - off : p->chunk;
        BIO_write(p->cin, data + off, (int)k);
        off += k;
        if (!SSL_is_init_finished(p->cl))
            SSL_do_handshake(p->cl);
    }
    if (n)
        dfws_tls_out_clear(p->srv);
    return n;
}

/* Runs the handshake; 1 when both sides finished it. */
static int handshake(pair_t *p)
{
    for (int round = 0; round < 50; round++) {
        if (!SSL_is_init_finished(p->cl))
            SSL_do_handshake(p->cl);
        size_t a = client_to_server(p);
        size_t b = server_to_client(p);
        if (p->srv_err)
            return 0;
        if (SSL_is_init_finished(p->cl) && dfws_tls_established(p->srv) && !a && !b)
            return 1;
    }
    return 0;
}

static size_t client_read_all(pair_t *p, char *out, size_t cap)
{
    size_t have = 0;
    int n;
    while (have < cap && (n = SSL_read(p->cl, out + have, (int)(cap - have))) > 0)
        have += (size_t)n;
    return have;
}

static void session_case(dfws_tls_ctx_t *ctx, size_t chunk)
{
    pair_t *p = malloc(sizeof(*p));
    static const char alpn[] = "\x02h2\x08http/1.1";
    SSL_CTX *cctx = client_ctx(alpn, sizeof(alpn) - 1);
    pair_open(p, ctx, cctx, chunk);

    uv_buf_t early = uv_buf_init("x", 1);
    CHECK_OR_RETURN(, dfws_tls_write(p->srv, &early, 1) == DFWS_TLS_ERROR,
                    "chunk %zu: a write before the handshake", chunk);
    CHECK_OR_RETURN(, handshake(p), "chunk %zu: handshake (server error: %s)", chunk,
                    dfws_tls_error(p->srv));
    size_t alen;
    const char *a = dfws_tls_alpn(p->srv, &alen);
    CHECK_OR_RETURN(, alen == 8 && !memcmp(a, "http/1.1", 8), "chunk %zu: ALPN %.*s", chunk,
                    (int)alen, a);
    CHECK_OR_RETURN(, !strncmp(dfws_tls_version(p->srv), "TLSv1.", 6), "chunk %zu: %s", chunk,
                    dfws_tls_version(p->srv));

    /* a request with a body of several records */
    static char req[100000];
    size_t head = (size_t)snprintf(req, sizeof(req),
                                   "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
                                   sizeof(req) - 60);
    for (size_t i = head; i < sizeof(req); i++)
        req[i] = (char)('a' + i % 26);
    CHECK_OR_RETURN(, SSL_write(p->cl, req, (int)sizeof(req)) == (int)sizeof(req), "chunk %zu",
                    chunk);
    client_to_server(p);
    CHECK_OR_RETURN(, p->got_len == sizeof(req) && !memcmp(p->got, req, sizeof(req)),
                    "chunk %zu: server got %zu bytes of %zu", chunk, p->got_len, sizeof(req));

    /* a response in pieces: the small ones gathered, then a large one */
    static char big[50000];
    memset(big, 'z', sizeof(big));
    uv_buf_t resp[] = {uv_buf_init("HTTP/1.1 200 OK\r\n", 17),
                       uv_buf_init("Content-Length: 50005\r\n\r\n", 25), uv_buf_init("hello", 5),
                       uv_buf_init(big, sizeof(big))};
    CHECK_OR_RETURN(, dfws_tls_write(p->srv, resp, 4) == 0, "chunk %zu: %s", chunk,
                    dfws_tls_error(p->srv));
    server_to_client(p);
    static char back[60000];
    size_t n = client_read_all(p, back, sizeof(back));
    CHECK_OR_RETURN(
        ,
        n == 47 + sizeof(big) &&
            !memcmp(back, "HTTP/1.1 200 OK\r\nContent-Length: 50005\r\n\r\nhello", 47) &&
            back[n - 1] == 'z',
        "chunk %zu: client got %zu bytes", chunk, n);

    /* a write whose ciphertext is taken out of the engine (a queued write) */
    uv_buf_t more = uv_buf_init("queued", 6);
    CHECK_OR_RETURN(, dfws_tls_write(p->srv, &more, 1) == 0, "chunk %zu", chunk);
    char *data;
    size_t len;
    void *owner = dfws_tls_out_take(p->srv, &data, &len);
    const char *left;
    CHECK_OR_RETURN(, owner && len > 6 && dfws_tls_out(p->srv, &left) == 0, "chunk %zu: take",
                    chunk);
    BIO_write(p->cin, data, (int)len);
    dfws_tls_out_release(owner);
    n = client_read_all(p, back, sizeof(back));
    CHECK_OR_RETURN(, n == 6 && !memcmp(back, "queued", 6), "chunk %zu: got %zu", chunk, n);

    /* close_notify from the client, then ours */
    SSL_shutdown(p->cl);
    client_to_server(p);
    CHECK_OR_RETURN(, p->srv_eof && !p->srv_err, "chunk %zu: no EOF after close_notify", chunk);
    dfws_tls_shutdown(p->srv);
    dfws_tls_shutdown(p->srv); /* once only */
    server_to_client(p);
    CHECK_OR_RETURN(
        , SSL_read(p->cl, back, 1) == 0 && SSL_get_error(p->cl, 0) == SSL_ERROR_ZERO_RETURN,
        "chunk %zu: client saw no close_notify", chunk);
    CHECK_OR_RETURN(, dfws_tls_write(p->srv, &more, 1) == DFWS_TLS_ERROR,
                    "chunk %zu: write after shutdown", chunk);
    pair_close(p);
    SSL_CTX_free(cctx);
    free(p);
    ERR_clear_error();
    check_pass();
}

static void garbage_case(dfws_tls_ctx_t *ctx, size_t chunk)
{
    static const char plain[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    dfws_tls_t *t = dfws_tls_new(ctx);
    long rc = 0;
    for (size_t off = 0; off < sizeof(plain) - 1 && rc == 0;) {
        size_t k = sizeof(plain) - 1 - off < chunk ? sizeof(plain) - 1 - off : chunk;
        dfws_tls_feed(t, plain + off, k);
        char buf[256];
        rc = dfws_tls_read(t, buf, sizeof(buf));
        off += k;
    }
    CHECK_OR_RETURN(, rc == DFWS_TLS_ERROR && dfws_tls_error(t)[0],
                    "chunk %zu: plain HTTP gave %ld", chunk, rc);
    char buf[16];
    CHECK_OR_RETURN(, dfws_tls_read(t, buf, sizeof(buf)) == DFWS_TLS_ERROR,
                    "chunk %zu: failure not kept", chunk);
    CHECK_OR_RETURN(, !dfws_tls_established(t), "chunk %zu", chunk);
    CHECK_OR_RETURN(, ERR_peek_error() == 0, "chunk %zu: OpenSSL error queue left non-empty",
                    chunk);
    dfws_tls_free(t);
    check_pass();
}

static void old_protocol_case(dfws_tls_ctx_t *ctx)
{
    pair_t *p = malloc(sizeof(*p));
    SSL_CTX *cctx = client_ctx(NULL, 0);
    SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION);
    SSL_CTX_set_security_level(cctx, 0);
    pair_open(p, ctx, cctx, SIZE_MAX);
    CHECK_OR_RETURN(, !handshake(p) && p->srv_err, "TLS 1.1 accepted");
    pair_close(p);
    SSL_CTX_free(cctx);
    free(p);
    ERR_clear_error();
    check_pass();
}

/* --ssl-ca-certs: no certificate is fine, one from the CA is fine, a
 * self-signed one is refused. */
static void client_cert_case(dfws_tls_ctx_t *ctx, const char *cert, const char *key, int want_ok)
{
    pair_t *p = malloc(sizeof(*p));
    SSL_CTX *cctx = client_ctx(NULL, 0);
    if (cert) {
        SSL_CTX_use_certificate_file(cctx, cert, SSL_FILETYPE_PEM);
        SSL_CTX_use_PrivateKey_file(cctx, key, SSL_FILETYPE_PEM);
    }
    pair_open(p, ctx, cctx, 7);
    int ok = handshake(p);
    if (ok) { /* TLS 1.3: the server checks the client's certificate after the client finished */
        SSL_write(p->cl, "ping", 4);
        client_to_server(p);
        ok = !p->srv_err && p->got_len == 4;
    }
    CHECK_OR_RETURN(, ok == want_ok, "client certificate %s: handshake %d (%s)",
                    cert ? cert : "none", ok, dfws_tls_error(p->srv));
    pair_close(p);
    SSL_CTX_free(cctx);
    free(p);
    ERR_clear_error();
    check_pass();
}

int main(void)
{
    make_files();

    ctx_case("good", cli_for(cert_pem, key_pem), 1);
    ctx_case("missing certificate", cli_for("/nonexistent/cert.pem", key_pem), 0);
    ctx_case("missing key", cli_for(cert_pem, "/nonexistent/key.pem"), 0);
    ctx_case("garbage certificate", cli_for(garbage_pem, key_pem), 0);
    ctx_case("key as certificate", cli_for(key_pem, key_pem), 0);
    ctx_case("key of another certificate", cli_for(cert_pem, other_key_pem), 0);
    dfws_cli_t cli = cli_for(cert_pem, key_pem);
    cli.ssl_ciphers = "NO-SUCH-CIPHER";
    ctx_case("bad cipher list", cli, 0);
    cli.ssl_ciphers = "ECDHE+AESGCM";
    ctx_case("cipher list", cli, 1);
    cli = cli_for(cert_pem, key_pem);
    cli.ssl_ca_certs = "/nonexistent/ca.pem";
    ctx_case("missing CA bundle", cli, 0);
    cli.ssl_ca_certs = garbage_pem;
    ctx_case("garbage CA bundle", cli, 0);

    check_cli_case("certificate and key", cli_for(cert_pem, key_pem), 1);
    check_cli_case("certificate with its key inside", cli_for(cert_pem, NULL), 1);
    check_cli_case("key alone", cli_for(NULL, key_pem), 0);
    check_cli_case("no TLS", cli_for(NULL, NULL), 1);
    cli = cli_for(NULL, NULL);
    cli.ssl_ca_certs = ca_pem;
    check_cli_case("CA without certificate", cli, 0);
    cli = cli_for(cert_pem, key_pem);
    cli.proxy_protocol = 1;
    check_cli_case("PROXY protocol", cli, 0);

    cli = cli_for(cert_pem, key_pem);
    dfws_tls_ctx_t *ctx = dfws_tls_ctx_new(&cli);
    if (!ctx) {
        fprintf(stderr, "cannot load the test certificate\n");
        return 1;
    }
    size_t chunks[] = {1, 2, 7, SIZE_MAX};
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        session_case(ctx, chunks[i]);
        garbage_case(ctx, chunks[i]);
    }
    old_protocol_case(ctx);
    dfws_tls_ctx_free(ctx);

    cli.ssl_ca_certs = ca_pem;
    ctx = dfws_tls_ctx_new(&cli);
    if (!ctx) {
        fprintf(stderr, "cannot load the test CA\n");
        return 1;
    }
    client_cert_case(ctx, NULL, NULL, 1);
    client_cert_case(ctx, client_cert_pem, client_key_pem, 1);
    client_cert_case(ctx, rogue_cert_pem, rogue_key_pem, 0);
    dfws_tls_ctx_free(ctx);

    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    remove_files();
    return check_summary();
}
