/* SPDX-License-Identifier: Apache-2.0 */
/* Key encodings: PKCS#8, SEC1, PKCS#1, PKIX in DER and PEM. */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>

#include "common/codec.h"
#include "crypto/internal.h"
#include "crypto/key.h"

static const struct {
    mr_key_format fmt;
    bool private_key;
    const char *label;
} pem_labels[] = {
    {MR_KEYFMT_PKCS8, true, "PRIVATE KEY"},
    {MR_KEYFMT_SEC1, true, "EC PRIVATE KEY"},
    {MR_KEYFMT_PKCS1, true, "RSA PRIVATE KEY"},
    {MR_KEYFMT_PKIX, false, "PUBLIC KEY"},
    {MR_KEYFMT_PKCS1, false, "RSA PUBLIC KEY"},
};

static const char *label_for(mr_key_format fmt, bool private_key)
{
    for (size_t i = 0; i < MR_ARRAY_LEN(pem_labels); i++)
        if (pem_labels[i].fmt == fmt && pem_labels[i].private_key == private_key)
            return pem_labels[i].label;
    return NULL;
}

static bool is_ec(mr_key_type t) { return t >= MR_KEY_EC_P224 && t <= MR_KEY_EC_P521; }

/* Checks that fmt can hold a key of type t. */
static MR_RESULT check_fmt(mr_key_type t, mr_key_format fmt, bool private_key)
{
    MR_ENSURE(t != MR_KEY_NONE, MR_ERR_USAGE, "unsupported key type");
    MR_ENSURE(label_for(fmt, private_key) != NULL, MR_ERR_USAGE,
              "key format not available for %s keys", private_key ? "private" : "public");
    MR_ENSURE(fmt != MR_KEYFMT_SEC1 || is_ec(t), MR_ERR_USAGE,
              "wrong key type: SEC1 holds EC keys only, not %s", mr_key_type_name(t));
    MR_ENSURE(fmt != MR_KEYFMT_PKCS1 || t == MR_KEY_RSA, MR_ERR_USAGE,
              "wrong key type: PKCS#1 holds RSA keys only, not %s", mr_key_type_name(t));
    return MR_SUCCESS;
}

/* Appends an OpenSSL-allocated encoding to out, then wipes and frees it. */
static MR_RESULT take_encoding(unsigned char *enc, int len, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    MR_ENSURE_OSSL_OUT(len > 0 && enc != NULL, MR_ERR_INTERNAL, "key encoding failed");
    MR_GUARD_OUT(mr_buf_append(out, enc, (size_t)len));
    res = MR_SUCCESS;
out:
    if (enc != NULL)
        OPENSSL_clear_free(enc, len > 0 ? (size_t)len : 0);
    return res;
}

static int encode_pkcs8(const EVP_PKEY *key, unsigned char **enc)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    int len = p8 == NULL ? -1 : i2d_PKCS8_PRIV_KEY_INFO(p8, enc);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return len;
}

MR_RESULT mr_key_private_to_der(const EVP_PKEY *key, mr_key_format fmt, mr_buf *out)
{
    unsigned char *enc = NULL;
    int len;
    MR_ENSURE((out->flags & MR_BUF_SECRET) != 0, MR_ERR_INTERNAL,
              "private key material needs a secret buffer");
    MR_GUARD(check_fmt(mr_key_type_of(key), fmt, true));
    if (mr_key_ec_der_supported(key))
        return mr_key_ec_private_der(key, fmt == MR_KEYFMT_PKCS8, out);
    if (fmt == MR_KEYFMT_PKCS8)
        len = encode_pkcs8(key, &enc);
    else /* SEC1 for EC, PKCS#1 for RSA: OpenSSL's type-specific form */
        len = i2d_PrivateKey(key, &enc);
    return take_encoding(enc, len, out);
}

MR_RESULT mr_key_public_to_der(const EVP_PKEY *key, mr_key_format fmt, mr_buf *out)
{
    unsigned char *enc = NULL;
    int len;
    MR_GUARD(check_fmt(mr_key_type_of(key), fmt, false));
    if (fmt == MR_KEYFMT_PKIX && mr_key_ec_der_supported(key))
        return mr_key_ec_spki_der(key, out);
    if (fmt == MR_KEYFMT_PKIX)
        len = i2d_PUBKEY(key, &enc);
    else
        len = i2d_PublicKey(key, &enc);
    return take_encoding(enc, len, out);
}

static MR_RESULT to_pem(const EVP_PKEY *key, mr_key_format fmt, bool private_key, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    mr_buf_init(&der, 0, MR_BUF_SECRET);
    if (private_key)
        MR_GUARD_OUT(mr_key_private_to_der(key, fmt, &der));
    else
        MR_GUARD_OUT(mr_key_public_to_der(key, fmt, &der));
    MR_GUARD_OUT(mr_pem_encode_buf(label_for(fmt, private_key), der.data, der.len, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    return res;
}

MR_RESULT mr_key_private_to_pem(const EVP_PKEY *key, mr_key_format fmt, mr_buf *out)
{
    MR_ENSURE((out->flags & MR_BUF_SECRET) != 0, MR_ERR_INTERNAL,
              "private key material needs a secret buffer");
    return to_pem(key, fmt, true, out);
}

MR_RESULT mr_key_public_to_pem(const EVP_PKEY *key, mr_key_format fmt, mr_buf *out)
{
    return to_pem(key, fmt, false, out);
}

/* ---- decoding ---- */

static EVP_PKEY *decode_pkcs8(const unsigned char **p, long len)
{
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, p, len);
    EVP_PKEY *key = p8 == NULL ? NULL : EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return key;
}

static EVP_PKEY *decode_der(mr_key_format fmt, bool private_key, const unsigned char **p,
                            long len)
{
    if (private_key) {
        if (fmt == MR_KEYFMT_PKCS8)
            return decode_pkcs8(p, len);
        return d2i_PrivateKey(fmt == MR_KEYFMT_SEC1 ? EVP_PKEY_EC : EVP_PKEY_RSA, NULL, p, len);
    }
    if (fmt == MR_KEYFMT_PKIX)
        return d2i_PUBKEY(NULL, p, len);
    return d2i_PublicKey(EVP_PKEY_RSA, NULL, p, len);
}

/* The format-specific type constraint after decoding (d2i_PrivateKey is lenient). */
static MR_RESULT check_decoded(const EVP_PKEY *key, mr_key_format fmt, bool private_key)
{
    MR_GUARD(mr_key_check(key));
    MR_GUARD(check_fmt(mr_key_type_of(key), fmt, private_key));
    return MR_SUCCESS;
}

static MR_RESULT key_from_der(mr_slice der, mr_key_format fmt, bool private_key, EVP_PKEY **out)
{
    mr_result res = MR_FAILURE;
    const unsigned char *p = der.ptr;
    EVP_PKEY *key = NULL;
    const char *what = private_key ? "private" : "public";
    MR_ENSURE(label_for(fmt, private_key) != NULL, MR_ERR_USAGE, "unsupported %s key format",
              what);
    MR_ENSURE(der.len > 0 && der.len <= MR_KEY_DER_MAX, MR_ERR_USAGE,
              "invalid %s key: bad length %zu", what, der.len);
    key = decode_der(fmt, private_key, &p, (long)der.len);
    MR_ENSURE_OUT(key != NULL, MR_ERR_USAGE, "invalid %s key encoding", what);
    MR_ENSURE_OUT(p == der.ptr + der.len, MR_ERR_USAGE, "invalid %s key: trailing data", what);
    MR_GUARD_OUT(check_decoded(key, fmt, private_key));
    /* A point given compressed or hybrid (02/03/06/07) is kept in that form by OpenSSL; our
     * encoders write it uncompressed, as every consumer of our keys expects (found by
     * fuzz-der_key: a decoded key that did not encode again). */
    if (is_ec(mr_key_type_of(key)))
        MR_GUARD_OSSL_OUT(EVP_PKEY_set_utf8_string_param(
                              key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                              OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED),
                          MR_ERR_USAGE, "invalid EC key: cannot use its point uncompressed");
    *out = key;
    key = NULL;
    res = MR_SUCCESS;
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    return res;
}

MR_RESULT mr_key_private_from_der(mr_slice der, mr_key_format fmt, EVP_PKEY **out)
{
    return key_from_der(der, fmt, true, out);
}

MR_RESULT mr_key_public_from_der(mr_slice der, mr_key_format fmt, EVP_PKEY **out)
{
    return key_from_der(der, fmt, false, out);
}

static MR_RESULT key_from_pem(mr_slice pem, bool private_key, EVP_PKEY **out)
{
    mr_result res = MR_FAILURE;
    mr_cursor c;
    mr_pem_block blk;
    bool found = false;
    mr_key_format fmt = 0;
    mr_cursor_init(&c, pem.ptr, pem.len);
    mr_buf_init(&blk.der, MR_KEY_DER_MAX, MR_BUF_SECRET);
    MR_GUARD_OUT(mr_pem_next(&c, &blk, &found));
    MR_ENSURE_OUT(found, MR_ERR_USAGE, "no PEM block found");
    for (size_t i = 0; i < MR_ARRAY_LEN(pem_labels); i++)
        if (pem_labels[i].private_key == private_key && strcmp(blk.label, pem_labels[i].label) == 0)
            fmt = pem_labels[i].fmt;
    MR_ENSURE_OUT(fmt != 0, MR_ERR_USAGE, "unexpected PEM block type \"%s\"", blk.label);
    MR_GUARD_OUT(key_from_der(mr_buf_slice(&blk.der), fmt, private_key, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&blk.der);
    return res;
}

MR_RESULT mr_key_private_from_pem(mr_slice pem, EVP_PKEY **out)
{
    return key_from_pem(pem, true, out);
}

MR_RESULT mr_key_public_from_pem(mr_slice pem, EVP_PKEY **out)
{
    return key_from_pem(pem, false, out);
}
