/* SPDX-License-Identifier: Apache-2.0 */
/* Raw P-256 points and r||s ECDSA signatures; see p256.h. */
#include "crypto/p256.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <string.h>

#include "crypto/internal.h"
#include "crypto/key.h"

MR_RESULT mr_ecdsa_sig_raw_to_der(mr_slice raw, mr_buf *der)
{
    mr_result res = MR_FAILURE;
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *enc = NULL;
    MR_ENSURE(raw.len > 0 && raw.len % 2 == 0 && raw.len <= 2 * 66, MR_ERR_USAGE,
              "invalid raw ECDSA signature length %zu", raw.len);
    size_t half = raw.len / 2;
    sig = ECDSA_SIG_new();
    r = BN_bin2bn(raw.ptr, (int)half, NULL);
    s = BN_bin2bn(raw.ptr + half, (int)half, NULL);
    MR_ENSURE_OUT(sig != NULL && r != NULL && s != NULL, MR_ERR_INTERNAL, "out of memory");
    MR_GUARD_OSSL_OUT(ECDSA_SIG_set0(sig, r, s), MR_ERR_INTERNAL, "ECDSA signature");
    r = s = NULL;
    int len = i2d_ECDSA_SIG(sig, &enc);
    MR_ENSURE_OUT(len > 0, MR_ERR_INTERNAL, "ECDSA signature encoding failed");
    MR_GUARD_OUT(mr_buf_append(der, enc, (size_t)len));
    res = MR_SUCCESS;
out:
    OPENSSL_free(enc);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return res;
}

MR_RESULT mr_ecdsa_sig_der_to_raw(mr_slice der, size_t coord_len, mr_buf *raw)
{
    mr_result res = MR_FAILURE;
    const unsigned char *p = der.ptr;
    ECDSA_SIG *sig = NULL;
    size_t start = raw->len;
    MR_ENSURE(coord_len > 0 && coord_len <= 66 && der.len <= 256, MR_ERR_USAGE,
              "invalid ECDSA signature");
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der.len);
    MR_ENSURE_OUT(sig != NULL && p == der.ptr + der.len, MR_ERR_USAGE,
                  "invalid ECDSA signature encoding");
    MR_GUARD_OUT(mr_buf_reserve(raw, 2 * coord_len));
    uint8_t *dst = raw->data + start;
    MR_ENSURE_OUT(BN_bn2binpad(ECDSA_SIG_get0_r(sig), dst, (int)coord_len) == (int)coord_len &&
                      BN_bn2binpad(ECDSA_SIG_get0_s(sig), dst + coord_len, (int)coord_len) ==
                          (int)coord_len,
                  MR_ERR_USAGE, "ECDSA signature value too large");
    raw->len = start + 2 * coord_len;
    res = MR_SUCCESS;
out:
    ERR_clear_error();
    ECDSA_SIG_free(sig);
    return res;
}

MR_RESULT mr_key_p256_from_raw(mr_slice xy, EVP_PKEY **out)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    uint8_t point[65];
    MR_ENSURE(xy.len == 64, MR_ERR_USAGE, "raw P-256 public key must be 64 bytes, got %zu",
              xy.len);
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, xy.ptr, 64);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
        OSSL_PARAM_construct_end(),
    };
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    MR_ENSURE_ALLOC_OUT(ctx);
    MR_GUARD_OSSL_OUT(EVP_PKEY_fromdata_init(ctx), MR_ERR_INTERNAL, "EC key import");
    MR_GUARD_OSSL_OUT(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), MR_ERR_USAGE,
                      "invalid P-256 public key");
    *out = key;
    res = MR_SUCCESS;
out:
    EVP_PKEY_CTX_free(ctx);
    return res;
}

MR_RESULT mr_key_p256_to_raw(const EVP_PKEY *key, uint8_t out[MR_P256_RAW_PUB_LEN])
{
    uint8_t pt[1 + MR_P256_RAW_PUB_LEN];
    size_t len = 0;
    MR_ENSURE(mr_key_type_of(key) == MR_KEY_EC_P256, MR_ERR_USAGE,
              "wrong key type: P-256 key needed");
    MR_GUARD_OSSL(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt),
                                                  &len),
                  MR_ERR_INTERNAL, "cannot read an EC public key");
    MR_ENSURE(len == sizeof(pt) && pt[0] == 0x04, MR_ERR_INTERNAL,
              "EC public key is not uncompressed");
    memcpy(out, pt + 1, MR_P256_RAW_PUB_LEN);
    return MR_SUCCESS;
}

MR_RESULT mr_ecdsa_p256_sign_raw(EVP_PKEY *key, mr_slice msg, uint8_t sig[MR_P256_RAW_SIG_LEN])
{
    mr_result res = MR_FAILURE;
    EVP_MD_CTX *ctx = NULL;
    uint8_t der[80]; /* a P-256 DER signature has at most 72 bytes */
    size_t der_len = sizeof(der);
    mr_buf raw;
    mr_buf_init(&raw, MR_P256_RAW_SIG_LEN, 0);
    ctx = EVP_MD_CTX_new();
    MR_ENSURE_ALLOC_OUT(ctx);
    MR_GUARD_OSSL_OUT(EVP_DigestSignInit(ctx, NULL, mr_crypto_md_sha256(), NULL, key),
                      MR_ERR_USAGE, "cannot sign with this key");
    MR_GUARD_OSSL_OUT(EVP_DigestSign(ctx, der, &der_len, msg.ptr, msg.len), MR_ERR_INTERNAL,
                      "signing failed");
    MR_GUARD_OUT(mr_ecdsa_sig_der_to_raw(MR_SLICE(der, der_len), 32, &raw));
    memcpy(sig, raw.data, MR_P256_RAW_SIG_LEN);
    res = MR_SUCCESS;
out:
    mr_buf_free(&raw);
    EVP_MD_CTX_free(ctx);
    return res;
}

MR_RESULT mr_ecdsa_p256_verify_raw(EVP_PKEY *key, mr_slice msg, mr_slice sig)
{
    mr_result res = MR_FAILURE;
    EVP_MD_CTX *ctx = NULL;
    mr_buf der;
    mr_buf_init(&der, 2 * MR_P256_RAW_SIG_LEN, 0);
    MR_ENSURE(sig.len == MR_P256_RAW_SIG_LEN, MR_ERR_USAGE,
              "raw P-256 signature must be 64 bytes, got %zu", sig.len);
    MR_GUARD_OUT(mr_ecdsa_sig_raw_to_der(sig, &der));
    ctx = EVP_MD_CTX_new();
    MR_ENSURE_ALLOC_OUT(ctx);
    MR_GUARD_OSSL_OUT(EVP_DigestVerifyInit(ctx, NULL, mr_crypto_md_sha256(), NULL, key),
                      MR_ERR_USAGE, "cannot verify with this key");
    if (EVP_DigestVerify(ctx, der.data, der.len, msg.ptr, msg.len) != 1) {
        ERR_clear_error();
        MR_BAIL_OUT(MR_ERR_AUTH, "signature verification failed");
    }
    res = MR_SUCCESS;
out:
    EVP_MD_CTX_free(ctx);
    mr_buf_free(&der);
    return res;
}
