/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "crypto/internal.h"

/* The empty-string placeholder for OSSL_PARAM octet strings with no bytes: OpenSSL wants a
 * non-NULL pointer even for length 0. */
static unsigned char empty_octets[1];

static void *octets(mr_slice s) { return s.len == 0 ? empty_octets : (void *)(uintptr_t)s.ptr; }

static MR_RESULT hkdf_derive(EVP_KDF_CTX *kctx, mr_slice ikm, mr_slice salt, mr_slice info,
                             uint8_t *dst, size_t out_len)
{
    OSSL_PARAM params[5];
    size_t i = 0;
    params[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, octets(ikm), ikm.len);
    if (salt.len > 0)
        params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, octets(salt),
                                                        salt.len);
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, octets(info), info.len);
    params[i] = OSSL_PARAM_construct_end();
    MR_GUARD_OSSL(EVP_KDF_derive(kctx, dst, out_len, params), MR_ERR_INTERNAL,
                  "HKDF derivation failed");
    return MR_SUCCESS;
}

MR_RESULT mr_hkdf_sha256_raw(mr_slice ikm, mr_slice salt, mr_slice info, uint8_t *out,
                             size_t out_len)
{
    mr_result res = MR_FAILURE;
    EVP_KDF *kdf = mr_crypto_kdf_hkdf();
    EVP_KDF_CTX *kctx = NULL;
    MR_ENSURE(out_len >= 1 && out_len <= MR_HKDF_SHA256_MAX_OUT, MR_ERR_USAGE,
              "HKDF output length %zu out of range (1..%u)", out_len, MR_HKDF_SHA256_MAX_OUT);
    MR_ENSURE(kdf != NULL, MR_ERR_INTERNAL, "HKDF not available");
    kctx = EVP_KDF_CTX_new(kdf);
    MR_ENSURE_ALLOC_OUT(kctx);
    MR_GUARD_OUT(hkdf_derive(kctx, ikm, salt, info, out, out_len));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        OPENSSL_cleanse(out, out_len);
    EVP_KDF_CTX_free(kctx);
    return res;
}

MR_RESULT mr_hkdf_sha256(mr_slice ikm, mr_slice salt, mr_slice info, size_t out_len,
                         mr_buf *out)
{
    MR_ENSURE(out_len >= 1 && out_len <= MR_HKDF_SHA256_MAX_OUT, MR_ERR_USAGE,
              "HKDF output length %zu out of range (1..%u)", out_len, MR_HKDF_SHA256_MAX_OUT);
    MR_GUARD(mr_buf_reserve(out, out_len));
    MR_GUARD(mr_hkdf_sha256_raw(ikm, salt, info, out->data + out->len, out_len));
    out->len += out_len;
    return MR_SUCCESS;
}
