/*
 * Fernet for the channel layer's symmetric_encryption_keys.
 * Written from the Fernet spec; the primitives come from OpenSSL.
 */
#include "fernet.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define FERNET_VERSION 0x80
#define HDR_LEN (1 + 8 + 16) /* version, timestamp, IV */
#define MAC_LEN 32

void dfws_fernet_key_from_secret(dfws_layer_key_t *key, const void *secret, size_t len)
{
    unsigned int n = 0;
    EVP_Digest(secret, len, key->sha, &n, EVP_sha256(), NULL);
}

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int dfws_base64url_encode(const void *in, size_t len, char **out, size_t *outlen)
{
    const unsigned char *p = in;
    size_t n = 4 * ((len + 2) / 3);
    char *o = malloc(n + 1);
    size_t i, j = 0;

    if (o == NULL)
        return DFWS_LAYER_ENOMEM;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        o[j++] = b64url_chars[v >> 18 & 63];
        o[j++] = b64url_chars[v >> 12 & 63];
        o[j++] = b64url_chars[v >> 6 & 63];
        o[j++] = b64url_chars[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        o[j++] = b64url_chars[v >> 18 & 63];
        o[j++] = b64url_chars[v >> 12 & 63];
        o[j++] = i + 1 < len ? b64url_chars[v >> 6 & 63] : '=';
        o[j++] = '=';
    }
    o[j] = '\0';
    *out = o;
    *outlen = j;
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int dfws_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    unsigned char *o;
    uint32_t acc = 0;
    int bits = 0;
    size_t i, j = 0;

    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return DFWS_LAYER_EINVAL;
    o = malloc(len * 3 / 4 + 1);
    if (o == NULL)
        return DFWS_LAYER_ENOMEM;
    for (i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            free(o);
            return DFWS_LAYER_EINVAL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[j++] = (unsigned char)(acc >> bits);
        }
    }
    *out = o;
    *outlen = j;
    return 0;
}

int dfws_fernet_encrypt(const dfws_layer_key_t *key, const void *in, size_t inlen, uint64_t now,
                        const unsigned char *iv, char **out, size_t *outlen)
{
    size_t cap = HDR_LEN + inlen + 16 + MAC_LEN;
    unsigned char *raw = malloc(cap);
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned int maclen = 0;
    int n1 = 0, n2 = 0, rc = DFWS_LAYER_EIO, i;

    if (raw == NULL)
        return DFWS_LAYER_ENOMEM;
    if (inlen > (size_t)INT32_MAX)
        goto fail;
    raw[0] = FERNET_VERSION;
    for (i = 0; i < 8; i++)
        raw[1 + i] = (unsigned char)(now >> (56 - 8 * i));
    if (iv != NULL)
        memcpy(raw + 9, iv, 16);
    else if (RAND_bytes(raw + 9, 16) != 1)
        goto fail;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        goto fail;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key->sha + 16, raw + 9) != 1 ||
        EVP_EncryptUpdate(ctx, raw + HDR_LEN, &n1, in, (int)inlen) != 1 ||
        EVP_EncryptFinal_ex(ctx, raw + HDR_LEN + n1, &n2) != 1)
        goto fail;
    if (HMAC(EVP_sha256(), key->sha, 16, raw, HDR_LEN + (size_t)n1 + (size_t)n2,
             raw + HDR_LEN + n1 + n2, &maclen) == NULL ||
        maclen != MAC_LEN)
        goto fail;
    rc = dfws_base64url_encode(raw, HDR_LEN + (size_t)n1 + (size_t)n2 + MAC_LEN, out, outlen);
fail:
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    return rc;
}

static int decrypt_with(const dfws_layer_key_t *key, const unsigned char *raw, size_t rawlen,
                        unsigned char **out, size_t *outlen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t clen = rawlen - HDR_LEN - MAC_LEN;
    EVP_CIPHER_CTX *ctx;
    unsigned char *o;
    int n1 = 0, n2 = 0;

    if (HMAC(EVP_sha256(), key->sha, 16, raw, rawlen - MAC_LEN, mac, &maclen) == NULL ||
        maclen != MAC_LEN || CRYPTO_memcmp(mac, raw + rawlen - MAC_LEN, MAC_LEN) != 0)
        return DFWS_LAYER_EINVAL;
    o = malloc(clen + 16);
    if (o == NULL)
        return DFWS_LAYER_ENOMEM;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL ||
        EVP_DecryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key->sha + 16, raw + 9) != 1 ||
        EVP_DecryptUpdate(ctx, o, &n1, raw + HDR_LEN, (int)clen) != 1 ||
        EVP_DecryptFinal_ex(ctx, o + n1, &n2) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        free(o);
        return DFWS_LAYER_EINVAL;
    }
    EVP_CIPHER_CTX_free(ctx);
    *out = o;
    *outlen = (size_t)n1 + (size_t)n2;
    return 0;
}

int dfws_fernet_decrypt(const dfws_layer_key_t *keys, size_t nkeys, const char *token,
                        size_t toklen, uint64_t now, int ttl, unsigned char **out, size_t *outlen)
{
    unsigned char *raw = NULL;
    size_t rawlen = 0, k;
    uint64_t ts = 0;
    int rc, i;

    rc = dfws_base64_decode(token, toklen, &raw, &rawlen);
    if (rc != 0)
        return rc;
    rc = DFWS_LAYER_EINVAL;
    if (rawlen < HDR_LEN + 16 + MAC_LEN || raw[0] != FERNET_VERSION ||
        (rawlen - HDR_LEN - MAC_LEN) % 16 != 0 || rawlen > (size_t)INT32_MAX)
        goto done;
    for (i = 0; i < 8; i++)
        ts = ts << 8 | raw[1 + i];
    if (ttl > 0 && ts + (uint64_t)ttl < now)
        goto done;
    if (now + DFWS_FERNET_MAX_CLOCK_SKEW < ts)
        goto done;
    for (k = 0; k < nkeys; k++) {
        rc = decrypt_with(&keys[k], raw, rawlen, out, outlen);
        if (rc != DFWS_LAYER_EINVAL)
            break;
    }
done:
    free(raw);
    return rc;
}
