/*
 * Fernet tokens (https://github.com/fernet/spec) as channels_redis uses
 * them: key = SHA256(secret); signing key = key[0:16], AES-128 key =
 * key[16:32]; token = base64url(0x80 | u64be time | iv16 | AES-128-CBC(PKCS7)
 * | HMAC-SHA256). OpenSSL libcrypto does the primitives.
 */
#ifndef DFWS_FERNET_H
#define DFWS_FERNET_H

#include <stddef.h>
#include <stdint.h>

#include "layer.h"

/* Fernet tokens are rejected when their time is this far in the future. */
#define DFWS_FERNET_MAX_CLOCK_SKEW 60

/* SHA256(secret) into key->sha. */
void dfws_fernet_key_from_secret(dfws_layer_key_t *key, const void *secret, size_t len);

/* Encrypt in[0:inlen] with key at time now (unix seconds); a random IV
 * unless iv is non-NULL (16 bytes, for tests). *out is malloc'ed (caller
 * frees), *outlen its length (the token is ASCII, not NUL-terminated).
 * Returns 0, DFWS_LAYER_ENOMEM or DFWS_LAYER_EIO (OpenSSL failure). */
int dfws_fernet_encrypt(const dfws_layer_key_t *key, const void *in, size_t inlen, uint64_t now,
                        const unsigned char *iv, char **out, size_t *outlen);

/* Decrypt a token with the first of keys[0..nkeys) whose HMAC matches.
 * ttl <= 0 disables the age check. *out is malloc'ed (caller frees).
 * Returns 0, DFWS_LAYER_EINVAL (bad token, bad HMAC, expired, too far in the
 * future) or DFWS_LAYER_ENOMEM. */
int dfws_fernet_decrypt(const dfws_layer_key_t *keys, size_t nkeys, const char *token,
                        size_t toklen, uint64_t now, int ttl, unsigned char **out, size_t *outlen);

/* base64 decode accepting both alphabets (+/ and -_), '=' padding optional.
 * *out malloc'ed. Returns 0 or DFWS_LAYER_EINVAL / DFWS_LAYER_ENOMEM. */
int dfws_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);
/* base64url encode with '=' padding; *out malloc'ed and NUL-terminated. */
int dfws_base64url_encode(const void *in, size_t len, char **out, size_t *outlen);

#endif
