/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/rsa.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "crypto/key.h"

static MR_RESULT need_rsa(const EVP_PKEY *key)
{
    MR_ENSURE(mr_key_type_of(key) == MR_KEY_RSA, MR_ERR_USAGE,
              "wrong key type: RSA key needed, got %s", mr_key_type_name(mr_key_type_of(key)));
    return mr_key_check(key);
}

static MR_RESULT oaep_ctx(EVP_PKEY *key, bool encrypt, EVP_PKEY_CTX **out)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    MR_ENSURE_ALLOC(ctx);
    MR_GUARD_OSSL_OUT(encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx),
                      MR_ERR_USAGE, "cannot use key for RSA-OAEP");
    MR_GUARD_OSSL_OUT(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), MR_ERR_USAGE,
                      "cannot use key for RSA-OAEP");
    MR_GUARD_OSSL_OUT(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), MR_ERR_USAGE,
                      "cannot use key for RSA-OAEP");
    MR_GUARD_OSSL_OUT(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), MR_ERR_USAGE,
                      "cannot use key for RSA-OAEP");
    *out = ctx;
    ctx = NULL;
    res = MR_SUCCESS;
out:
    EVP_PKEY_CTX_free(ctx);
    return res;
}

MR_RESULT mr_rsa_oaep_encrypt(EVP_PKEY *pub, mr_slice plaintext, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY_CTX *ctx = NULL;
    size_t len = 0;
    MR_GUARD(need_rsa(pub));
    MR_GUARD(oaep_ctx(pub, true, &ctx));
    MR_GUARD_OSSL_OUT(EVP_PKEY_encrypt(ctx, NULL, &len, plaintext.ptr, plaintext.len),
                      MR_ERR_INTERNAL, "RSA-OAEP");
    MR_GUARD_OUT(mr_buf_reserve(out, len));
    MR_GUARD_OSSL_OUT(EVP_PKEY_encrypt(ctx, out->data + out->len, &len, plaintext.ptr,
                                       plaintext.len),
                      MR_ERR_USAGE, "RSA-OAEP encryption failed");
    out->len += len;
    res = MR_SUCCESS;
out:
    EVP_PKEY_CTX_free(ctx);
    return res;
}

MR_RESULT mr_rsa_oaep_decrypt(EVP_PKEY *priv, mr_slice ciphertext, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY_CTX *ctx = NULL;
    size_t len = 0;
    MR_ENSURE((out->flags & MR_BUF_SECRET) != 0, MR_ERR_INTERNAL,
              "decrypted data needs a secret buffer");
    MR_GUARD(need_rsa(priv));
    MR_GUARD(oaep_ctx(priv, false, &ctx));
    MR_GUARD_OSSL_OUT(EVP_PKEY_decrypt(ctx, NULL, &len, ciphertext.ptr, ciphertext.len),
                      MR_ERR_USAGE, "cannot decrypt with this key");
    MR_GUARD_OUT(mr_buf_reserve(out, len));
    if (EVP_PKEY_decrypt(ctx, out->data + out->len, &len, ciphertext.ptr, ciphertext.len) != 1) {
        ERR_clear_error();
        OPENSSL_cleanse(out->data + out->len, out->cap - out->len);
        MR_BAIL_OUT(MR_ERR_AUTH, "decryption failed");
    }
    out->len += len;
    res = MR_SUCCESS;
out:
    EVP_PKEY_CTX_free(ctx);
    return res;
}

MR_RESULT mr_rsa_sign_pkcs1_sha256(EVP_PKEY *priv, mr_slice msg, mr_buf *sig)
{
    MR_GUARD(need_rsa(priv));
    return mr_key_sign(priv, msg, sig); /* RSA keys sign with PKCS#1 v1.5 + SHA-256 */
}

MR_RESULT mr_rsa_verify_pkcs1_sha256(EVP_PKEY *pub, mr_slice msg, mr_slice sig)
{
    MR_GUARD(need_rsa(pub));
    return mr_key_verify(pub, msg, sig);
}
