/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/hash.h"

#include <openssl/evp.h>

static MR_RESULT digest_v(const EVP_MD *md, const mr_slice *parts, size_t count, uint8_t *out)
{
    mr_result res = MR_FAILURE;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    MR_ENSURE_ALLOC(ctx);
    MR_GUARD_OSSL_OUT(EVP_DigestInit_ex(ctx, md, NULL), MR_ERR_INTERNAL, "digest init");
    for (size_t i = 0; i < count; i++)
        MR_GUARD_OSSL_OUT(EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].len), MR_ERR_INTERNAL,
                          "digest update");
    MR_GUARD_OSSL_OUT(EVP_DigestFinal_ex(ctx, out, NULL), MR_ERR_INTERNAL, "digest final");
    res = MR_SUCCESS;
out:
    EVP_MD_CTX_free(ctx);
    return res;
}

mr_result mr_sha256_v(const mr_slice *parts, size_t count, uint8_t out[MR_SHA256_LEN])
{
    return digest_v(EVP_sha256(), parts, count, out);
}

mr_result mr_sha256(const void *data, size_t len, uint8_t out[MR_SHA256_LEN])
{
    mr_slice s = MR_SLICE(data, len);
    return digest_v(EVP_sha256(), &s, 1, out);
}

mr_result mr_sha384(const void *data, size_t len, uint8_t out[MR_SHA384_LEN])
{
    mr_slice s = MR_SLICE(data, len);
    return digest_v(EVP_sha384(), &s, 1, out);
}
