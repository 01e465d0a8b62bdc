/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <string.h>

#include "crypto/internal.h"

#define CHUNK ((size_t)1 << 30) /* EVP takes int lengths */

static MR_RESULT check_args(mr_slice key, mr_slice aad, size_t len)
{
    MR_ENSURE(key.len == MR_AEAD_KEY_LEN, MR_ERR_USAGE, "AES-256-GCM needs a 32-byte key");
    MR_ENSURE(len <= MR_AEAD_MAX_INPUT && aad.len <= MR_AEAD_MAX_INPUT, MR_ERR_TOO_LARGE,
              "AES-256-GCM input too large");
    return MR_SUCCESS;
}

/* Sets up ctx for one message and runs the cipher over aad and in (into out). */
static MR_RESULT gcm_run(EVP_CIPHER_CTX *ctx, int enc, mr_slice key, const uint8_t *nonce,
                         mr_slice aad, mr_slice in, uint8_t *out)
{
    int n = 0;
    MR_GUARD_OSSL(EVP_CipherInit_ex(ctx, mr_crypto_cipher_aes256gcm(), NULL, key.ptr, nonce,
                                    enc),
                  MR_ERR_INTERNAL, "AES-GCM init failed");
    for (size_t off = 0; off < aad.len; off += CHUNK) {
        size_t chunk = aad.len - off > CHUNK ? CHUNK : aad.len - off;
        MR_GUARD_OSSL(EVP_CipherUpdate(ctx, NULL, &n, aad.ptr + off, (int)chunk),
                      MR_ERR_INTERNAL, "AES-GCM AAD failed");
    }
    for (size_t off = 0; off < in.len; off += CHUNK) {
        size_t chunk = in.len - off > CHUNK ? CHUNK : in.len - off;
        MR_GUARD_OSSL(EVP_CipherUpdate(ctx, out + off, &n, in.ptr + off, (int)chunk),
                      MR_ERR_INTERNAL, "AES-GCM failed");
        MR_ENSURE((size_t)n == chunk, MR_ERR_INTERNAL, "AES-GCM: short output");
    }
    return MR_SUCCESS;
}

MR_RESULT mr_aead_encrypt(mr_slice key, const uint8_t nonce[MR_AEAD_NONCE_LEN], mr_slice aad,
                          mr_slice in, uint8_t *out, uint8_t tag[MR_AEAD_TAG_LEN])
{
    mr_result res = MR_FAILURE;
    EVP_CIPHER_CTX *ctx = NULL;
    int n = 0;
    MR_GUARD(check_args(key, aad, in.len));
    ctx = EVP_CIPHER_CTX_new();
    MR_ENSURE_ALLOC(ctx);
    MR_GUARD_OUT(gcm_run(ctx, 1, key, nonce, aad, in, out));
    MR_GUARD_OSSL_OUT(EVP_EncryptFinal_ex(ctx, out + in.len, &n), MR_ERR_INTERNAL,
                      "AES-GCM final failed");
    MR_GUARD_OSSL_OUT(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MR_AEAD_TAG_LEN, tag),
                      MR_ERR_INTERNAL, "AES-GCM tag failed");
    res = MR_SUCCESS;
out:
    EVP_CIPHER_CTX_free(ctx);
    return res;
}

MR_RESULT mr_aead_decrypt(mr_slice key, const uint8_t nonce[MR_AEAD_NONCE_LEN], mr_slice aad,
                          mr_slice in, const uint8_t tag[MR_AEAD_TAG_LEN], uint8_t *out)
{
    mr_result res = MR_FAILURE;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t t[MR_AEAD_TAG_LEN];
    int n = 0;
    MR_GUARD(check_args(key, aad, in.len));
    memcpy(t, tag, sizeof(t)); /* OpenSSL wants a writable tag; tag may lie in `in` */
    ctx = EVP_CIPHER_CTX_new();
    MR_ENSURE_ALLOC_OUT(ctx);
    MR_GUARD_OUT(gcm_run(ctx, 0, key, nonce, aad, in, out));
    MR_GUARD_OSSL_OUT(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MR_AEAD_TAG_LEN, t),
                      MR_ERR_INTERNAL, "AES-GCM tag failed");
    if (EVP_DecryptFinal_ex(ctx, out + in.len, &n) != 1) {
        ERR_clear_error();
        MR_BAIL_OUT(MR_ERR_AUTH, "message authentication failed");
    }
    res = MR_SUCCESS;
out:
    if (!mr_ok(res) && in.len > 0)
        OPENSSL_cleanse(out, in.len);
    EVP_CIPHER_CTX_free(ctx);
    return res;
}
