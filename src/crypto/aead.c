/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>

#include "crypto/rand.h"

static MR_RESULT check_args(mr_slice key, mr_slice aad, size_t len)
{
    MR_ENSURE(key.len == MR_AEAD_KEY_LEN, MR_ERR_USAGE, "AES-256-GCM needs a 32-byte key");
    MR_ENSURE(len <= MR_AEAD_MAX_INPUT && aad.len <= MR_AEAD_MAX_INPUT, MR_ERR_USAGE,
              "AES-256-GCM input too large");
    return MR_SUCCESS;
}

static MR_RESULT gcm_init(EVP_CIPHER_CTX *ctx, mr_slice key, const uint8_t *nonce, int enc,
                          mr_slice aad)
{
    int n = 0;
    MR_GUARD_OSSL(EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key.ptr, nonce, enc),
                  MR_ERR_INTERNAL, "AES-GCM init");
    if (aad.len > 0)
        MR_GUARD_OSSL(EVP_CipherUpdate(ctx, NULL, &n, aad.ptr, (int)aad.len), MR_ERR_INTERNAL,
                      "AES-GCM AAD");
    return MR_SUCCESS;
}

/* Runs the cipher over in into dst (which has room for in.len bytes). */
static MR_RESULT gcm_update(EVP_CIPHER_CTX *ctx, mr_slice in, uint8_t *dst)
{
    int n = 0;
    if (in.len > 0)
        MR_GUARD_OSSL(EVP_CipherUpdate(ctx, dst, &n, in.ptr, (int)in.len), MR_ERR_INTERNAL,
                      "AES-GCM update");
    MR_ENSURE((size_t)n == in.len, MR_ERR_INTERNAL, "AES-GCM: short output");
    return MR_SUCCESS;
}

mr_result mr_aead_seal(mr_slice key, const uint8_t *nonce, mr_slice aad, mr_slice plaintext,
                       mr_buf *out)
{
    mr_result res = MR_FAILURE;
    EVP_CIPHER_CTX *ctx = NULL;
    size_t start = out->len;
    uint8_t *dst = NULL;
    int n = 0;
    MR_GUARD(check_args(key, aad, plaintext.len));
    MR_GUARD(mr_buf_reserve(out, plaintext.len + MR_AEAD_OVERHEAD));
    dst = out->data + start;
    if (nonce != NULL)
        memcpy(dst, nonce, MR_AEAD_NONCE_LEN);
    else
        MR_GUARD(mr_crypto_random(dst, MR_AEAD_NONCE_LEN));
    ctx = EVP_CIPHER_CTX_new();
    MR_ENSURE_ALLOC_OUT(ctx);
    MR_GUARD_OUT(gcm_init(ctx, key, dst, 1, aad));
    MR_GUARD_OUT(gcm_update(ctx, plaintext, dst + MR_AEAD_NONCE_LEN));
    MR_GUARD_OSSL_OUT(EVP_EncryptFinal_ex(ctx, dst, &n), MR_ERR_INTERNAL, "AES-GCM final");
    MR_GUARD_OSSL_OUT(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MR_AEAD_TAG_LEN,
                                          dst + MR_AEAD_NONCE_LEN + plaintext.len),
                      MR_ERR_INTERNAL, "AES-GCM tag");
    out->len = start + plaintext.len + MR_AEAD_OVERHEAD;
    res = MR_SUCCESS;
out:
    EVP_CIPHER_CTX_free(ctx);
    return res;
}

mr_result mr_aead_open(mr_slice key, mr_slice aad, mr_slice sealed, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    EVP_CIPHER_CTX *ctx = NULL;
    size_t start = out->len;
    size_t ct_len = 0;
    uint8_t *dst = NULL;
    uint8_t tag[MR_AEAD_TAG_LEN];
    int n = 0;
    MR_ENSURE(sealed.len >= MR_AEAD_OVERHEAD, MR_ERR_USAGE,
              "AES-GCM: sealed data too short");
    ct_len = sealed.len - MR_AEAD_OVERHEAD;
    MR_GUARD(check_args(key, aad, ct_len));
    MR_GUARD(mr_buf_reserve(out, ct_len + 1));
    dst = out->data + start;
    memcpy(tag, sealed.ptr + MR_AEAD_NONCE_LEN + ct_len, MR_AEAD_TAG_LEN);
    ctx = EVP_CIPHER_CTX_new();
    MR_ENSURE_ALLOC_OUT(ctx);
    MR_GUARD_OUT(gcm_init(ctx, key, sealed.ptr, 0, aad));
    MR_GUARD_OUT(gcm_update(ctx, MR_SLICE(sealed.ptr + MR_AEAD_NONCE_LEN, ct_len), dst));
    MR_GUARD_OSSL_OUT(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MR_AEAD_TAG_LEN, tag),
                      MR_ERR_INTERNAL, "AES-GCM tag");
    if (EVP_DecryptFinal_ex(ctx, dst + ct_len, &n) != 1) {
        ERR_clear_error();
        MR_BAIL_OUT(MR_ERR_AUTH, "message authentication failed");
    }
    out->len = start + ct_len;
    res = MR_SUCCESS;
out:
    if (!mr_ok(res) && out->data != NULL)
        OPENSSL_cleanse(out->data + start, ct_len);
    EVP_CIPHER_CTX_free(ctx);
    return res;
}
