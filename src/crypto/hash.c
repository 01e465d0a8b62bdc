/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/hash.h"

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "common/alloc.h"
#include "crypto/internal.h"

struct mr_hmac_sha256 {
    EVP_MAC_CTX *ctx;
};

MR_RESULT mr_sha256(const void *data, size_t len, uint8_t out[MR_SHA256_LEN])
{
    static const uint8_t empty[1];
    MR_GUARD_OSSL(EVP_Digest(len > 0 ? data : empty, len, out, NULL, mr_crypto_md_sha256(),
                             NULL),
                  MR_ERR_INTERNAL, "SHA-256 failed");
    return MR_SUCCESS;
}

MR_RESULT mr_sha256_v(const mr_slice *parts, size_t count, uint8_t out[MR_SHA256_LEN])
{
    mr_result res = MR_FAILURE;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    MR_ENSURE_ALLOC(ctx);
    MR_GUARD_OSSL_OUT(EVP_DigestInit_ex(ctx, mr_crypto_md_sha256(), NULL), MR_ERR_INTERNAL,
                      "SHA-256 failed");
    for (size_t i = 0; i < count; i++)
        MR_GUARD_OSSL_OUT(EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].len), MR_ERR_INTERNAL,
                          "SHA-256 failed");
    MR_GUARD_OSSL_OUT(EVP_DigestFinal_ex(ctx, out, NULL), MR_ERR_INTERNAL, "SHA-256 failed");
    res = MR_SUCCESS;
out:
    EVP_MD_CTX_free(ctx);
    return res;
}

MR_RESULT mr_hmac_sha256_new(mr_slice key, mr_hmac_sha256 **out)
{
    mr_result res = MR_FAILURE;
    mr_hmac_sha256 *h = NULL;
    EVP_MAC *mac = mr_crypto_mac_hmac();
    MR_ENSURE(mac != NULL, MR_ERR_INTERNAL, "HMAC unavailable");
    h = mr_calloc(1, sizeof(*h));
    MR_ENSURE_ALLOC(h);
    h->ctx = EVP_MAC_CTX_new(mac);
    MR_ENSURE_ALLOC_OUT(h->ctx);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    MR_GUARD_OSSL_OUT(EVP_MAC_init(h->ctx, key.ptr, key.len, params), MR_ERR_INTERNAL,
                      "HMAC key setup failed");
    *out = h;
    h = NULL;
    res = MR_SUCCESS;
out:
    mr_hmac_sha256_free(h);
    return res;
}

MR_RESULT mr_hmac_sha256_mac(mr_hmac_sha256 *h, mr_slice data, uint8_t out[MR_SHA256_LEN])
{
    size_t len = 0;
    /* A NULL key re-initialises with the key given to mr_hmac_sha256_new. */
    MR_GUARD_OSSL(EVP_MAC_init(h->ctx, NULL, 0, NULL), MR_ERR_INTERNAL, "HMAC failed");
    MR_GUARD_OSSL(EVP_MAC_update(h->ctx, data.ptr, data.len), MR_ERR_INTERNAL, "HMAC failed");
    MR_GUARD_OSSL(EVP_MAC_final(h->ctx, out, &len, MR_SHA256_LEN), MR_ERR_INTERNAL,
                  "HMAC failed");
    return MR_SUCCESS;
}

void mr_hmac_sha256_free(mr_hmac_sha256 *h)
{
    if (h == NULL)
        return;
    EVP_MAC_CTX_free(h->ctx);
    mr_free(h);
}
