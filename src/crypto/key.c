/* SPDX-License-Identifier: Apache-2.0 */
/* Key generation, type policy, signatures. Encodings: key_codec.c; raw P-256 forms: p256.c. */
#include "crypto/key.h"

#include "crypto/internal.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <string.h>

static const struct {
    mr_key_type type;
    const char *group; /* OpenSSL group name as reported by EVP_PKEY_get_group_name */
    const char *name;
} curves[] = {
    {MR_KEY_EC_P224, "secp224r1", "P-224"},
    {MR_KEY_EC_P256, "prime256v1", "P-256"},
    {MR_KEY_EC_P384, "secp384r1", "P-384"},
    {MR_KEY_EC_P521, "secp521r1", "P-521"},
};

static mr_key_type ec_type(const EVP_PKEY *key)
{
    char group[32];
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1)
        return MR_KEY_NONE;
    for (size_t i = 0; i < MR_ARRAY_LEN(curves); i++)
        if (strcmp(group, curves[i].group) == 0)
            return curves[i].type;
    return MR_KEY_NONE;
}

mr_key_type mr_key_type_of(const EVP_PKEY *key)
{
    if (key == NULL)
        return MR_KEY_NONE;
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC:
        return ec_type(key);
    case EVP_PKEY_RSA:
        return MR_KEY_RSA;
    case EVP_PKEY_ED25519:
        return MR_KEY_ED25519;
    default:
        return MR_KEY_NONE;
    }
}

const char *mr_key_type_name(mr_key_type type)
{
    for (size_t i = 0; i < MR_ARRAY_LEN(curves); i++)
        if (curves[i].type == type)
            return curves[i].name;
    if (type == MR_KEY_RSA)
        return "RSA";
    return type == MR_KEY_ED25519 ? "Ed25519" : "unsupported";
}

static MR_RESULT check_rsa(const EVP_PKEY *key)
{
    int bits = EVP_PKEY_get_bits(key);
    BIGNUM *e = NULL;
    MR_ENSURE(bits >= MR_RSA_MIN_BITS, MR_ERR_USAGE,
              "RSA key too small: %d bits (minimum %d)", bits, MR_RSA_MIN_BITS);
    MR_ENSURE(bits <= MR_RSA_MAX_BITS, MR_ERR_USAGE, "RSA key too large: %d bits", bits);
    MR_GUARD_OSSL(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e), MR_ERR_USAGE,
                  "invalid RSA key");
    bool odd = BN_is_odd(e) && !BN_is_one(e);
    BN_free(e);
    MR_ENSURE(odd, MR_ERR_USAGE, "invalid RSA key: bad public exponent");
    return MR_SUCCESS;
}

MR_RESULT mr_key_check(const EVP_PKEY *key)
{
    mr_key_type t = mr_key_type_of(key);
    MR_ENSURE(t != MR_KEY_NONE, MR_ERR_USAGE, "unsupported key type");
    if (t == MR_KEY_RSA)
        MR_GUARD(check_rsa(key));
    return MR_SUCCESS;
}

bool mr_key_public_equal(const EVP_PKEY *a, const EVP_PKEY *b)
{
    bool eq = a != NULL && b != NULL && EVP_PKEY_eq(a, b) == 1;
    ERR_clear_error();
    return eq;
}

MR_RESULT mr_key_generate(mr_key_type type, unsigned rsa_bits, EVP_PKEY **out)
{
    EVP_PKEY *key = NULL;
    if (type == MR_KEY_RSA) {
        MR_ENSURE(rsa_bits >= MR_RSA_MIN_BITS && rsa_bits <= MR_RSA_MAX_BITS, MR_ERR_USAGE,
                  "unsupported RSA key size %u (allowed %d..%d)", rsa_bits, MR_RSA_MIN_BITS,
                  MR_RSA_MAX_BITS);
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits);
    } else if (type == MR_KEY_ED25519) {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    } else {
        const char *group = NULL;
        for (size_t i = 0; i < MR_ARRAY_LEN(curves); i++)
            if (curves[i].type == type)
                group = curves[i].group;
        MR_ENSURE(group != NULL, MR_ERR_USAGE, "unsupported key type");
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    }
    MR_ENSURE_OSSL(key != NULL, MR_ERR_INTERNAL, "key generation failed");
    *out = key;
    return MR_SUCCESS;
}

/* The digest for signatures by this key; *md = NULL for Ed25519. */
MR_RESULT mr_key_sig_md(const EVP_PKEY *key, const EVP_MD **md)
{
    switch (mr_key_type_of(key)) {
    case MR_KEY_EC_P224:
    case MR_KEY_EC_P256:
    case MR_KEY_RSA:
        *md = mr_crypto_md_sha256();
        return MR_SUCCESS;
    case MR_KEY_EC_P384:
        *md = mr_crypto_md_sha384();
        return MR_SUCCESS;
    case MR_KEY_EC_P521:
        *md = EVP_sha512();
        return MR_SUCCESS;
    case MR_KEY_ED25519:
        *md = NULL;
        return MR_SUCCESS;
    default:
        MR_BAIL(MR_ERR_USAGE, "unsupported key type");
    }
}

MR_RESULT mr_key_sign(EVP_PKEY *key, mr_slice msg, mr_buf *sig)
{
    mr_result res = MR_FAILURE;
    EVP_MD_CTX *ctx = NULL;
    const EVP_MD *md = NULL;
    size_t len = 0;
    MR_GUARD(mr_key_sig_md(key, &md));
    ctx = EVP_MD_CTX_new();
    MR_ENSURE_ALLOC(ctx);
    MR_GUARD_OSSL_OUT(EVP_DigestSignInit(ctx, NULL, md, NULL, key), MR_ERR_USAGE,
                      "cannot sign with this key");
    MR_GUARD_OSSL_OUT(EVP_DigestSign(ctx, NULL, &len, msg.ptr, msg.len), MR_ERR_INTERNAL,
                      "signing failed");
    MR_GUARD_OUT(mr_buf_reserve(sig, len));
    MR_GUARD_OSSL_OUT(EVP_DigestSign(ctx, sig->data + sig->len, &len, msg.ptr, msg.len),
                      MR_ERR_INTERNAL, "signing failed");
    sig->len += len;
    res = MR_SUCCESS;
out:
    EVP_MD_CTX_free(ctx);
    return res;
}

MR_RESULT mr_key_verify(EVP_PKEY *key, mr_slice msg, mr_slice sig)
{
    mr_result res = MR_FAILURE;
    EVP_MD_CTX *ctx = NULL;
    const EVP_MD *md = NULL;
    MR_GUARD(mr_key_sig_md(key, &md));
    ctx = EVP_MD_CTX_new();
    MR_ENSURE_ALLOC(ctx);
    MR_GUARD_OSSL_OUT(EVP_DigestVerifyInit(ctx, NULL, md, NULL, key), MR_ERR_USAGE,
                      "cannot verify with this key");
    if (EVP_DigestVerify(ctx, sig.ptr, sig.len, msg.ptr, msg.len) != 1) {
        ERR_clear_error();
        MR_BAIL_OUT(MR_ERR_AUTH, "signature verification failed");
    }
    res = MR_SUCCESS;
out:
    EVP_MD_CTX_free(ctx);
    return res;
}

MR_RESULT mr_key_ec_private_scalar(const EVP_PKEY *key, bool fixed_width, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    BIGNUM *d = NULL;
    mr_key_type t = mr_key_type_of(key);
    MR_ENSURE(t >= MR_KEY_EC_P224 && t <= MR_KEY_EC_P521, MR_ERR_USAGE,
              "wrong key type: EC private key needed");
    MR_ENSURE((out->flags & MR_BUF_SECRET) != 0, MR_ERR_INTERNAL,
              "private key material needs a secret buffer");
    MR_GUARD_OSSL(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d), MR_ERR_USAGE,
                  "wrong key type: EC private key needed");
    int len = fixed_width ? (EVP_PKEY_get_bits(key) + 7) / 8 : BN_num_bytes(d);
    MR_GUARD_OUT(mr_buf_reserve(out, (size_t)len));
    MR_ENSURE_OUT(BN_bn2binpad(d, out->data + out->len, len) == len, MR_ERR_INTERNAL,
                  "EC scalar encoding");
    out->len += (size_t)len;
    res = MR_SUCCESS;
out:
    BN_clear_free(d);
    return res;
}
