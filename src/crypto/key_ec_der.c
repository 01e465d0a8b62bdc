/* SPDX-License-Identifier: Apache-2.0 */
/* EC key encodings written directly from the key's parameters.
 *
 * OpenSSL 3.0 encodes a provider key through OSSL_ENCODER, and building an encoder context
 * searches every provider's encoders: in a profile of one activation that search cost more
 * than the signatures. The structures for named-curve EC keys are fixed, so they are written
 * here from the raw scalar and point. The output is byte-identical to OpenSSL's own encoders
 * (the unit tests compare them for every supported curve):
 *
 *   SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { id-ecPublicKey, namedCurve }, BIT STRING }
 *   ECPrivateKey ::= SEQUENCE { INTEGER 1, OCTET STRING d, [0] namedCurve, [1] BIT STRING Q }
 *   PrivateKeyInfo ::= SEQUENCE { INTEGER 0, SEQUENCE { id-ecPublicKey, namedCurve },
 *                                 OCTET STRING ECPrivateKey-without-[0] }
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <string.h>

#include "crypto/internal.h"
#include "crypto/key.h"

/* DER of the OBJECT IDENTIFIERs, tag and length included. */
static const uint8_t oid_ec_public_key[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};

static const struct {
    mr_key_type type;
    int nid;
    size_t scalar_len;
    uint8_t oid[10];
    size_t oid_len;
} ec_curves[] = {
    {MR_KEY_EC_P224, NID_secp224r1, 28, {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21}, 7},
    {MR_KEY_EC_P256, NID_X9_62_prime256v1, 32,
     {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, 10},
    {MR_KEY_EC_P384, NID_secp384r1, 48, {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}, 7},
    {MR_KEY_EC_P521, NID_secp521r1, 66, {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}, 7},
};

#define EC_POINT_MAX (1 + 2 * 66)

static int curve_index(mr_key_type t)
{
    for (size_t i = 0; i < MR_ARRAY_LEN(ec_curves); i++)
        if (ec_curves[i].type == t)
            return (int)i;
    return -1;
}

/* Tag and definite length; contents follow. */
static MR_RESULT der_head(mr_buf *out, uint8_t tag, size_t len)
{
    uint8_t h[4] = {tag, 0, 0, 0};
    size_t n = 2;
    MR_ENSURE(len <= 0xffff, MR_ERR_INTERNAL, "DER element too long");
    if (len < 0x80) {
        h[1] = (uint8_t)len;
    } else if (len <= 0xff) {
        h[1] = 0x81;
        h[2] = (uint8_t)len;
        n = 3;
    } else {
        h[1] = 0x82;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    }
    return mr_buf_append(out, h, n);
}

static size_t der_size(size_t len) { return len + (len < 0x80 ? 2 : len <= 0xff ? 3 : 4); }

static MR_RESULT public_point(const EVP_PKEY *key, uint8_t *pt, size_t *len)
{
    MR_GUARD_OSSL(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt,
                                                  EC_POINT_MAX, len),
                  MR_ERR_USAGE, "EC key has no public point");
    MR_ENSURE(*len > 1 && pt[0] == 0x04, MR_ERR_INTERNAL, "EC point is not uncompressed");
    return MR_SUCCESS;
}

static MR_RESULT write_algorithm(mr_buf *out, int ci)
{
    MR_GUARD(der_head(out, 0x30, sizeof(oid_ec_public_key) + ec_curves[ci].oid_len));
    MR_GUARD(mr_buf_append(out, oid_ec_public_key, sizeof(oid_ec_public_key)));
    return mr_buf_append(out, ec_curves[ci].oid, ec_curves[ci].oid_len);
}

bool mr_key_ec_der_supported(const EVP_PKEY *key)
{
    return curve_index(mr_key_type_of(key)) >= 0;
}

/* A failed encoding leaves out as it was (partial output wiped). */
static MR_RESULT rollback(mr_buf *out, size_t len0, mr_result r)
{
    if (!mr_ok(r) && out->len > len0) {
        OPENSSL_cleanse(out->data + len0, out->len - len0);
        out->len = len0;
    }
    return r;
}

static MR_RESULT write_spki(const EVP_PKEY *key, mr_buf *out)
{
    uint8_t pt[EC_POINT_MAX];
    size_t plen = 0;
    int ci = curve_index(mr_key_type_of(key));
    MR_ENSURE(ci >= 0, MR_ERR_USAGE, "wrong key type: EC key needed");
    MR_GUARD(public_point(key, pt, &plen));
    size_t alg = der_size(sizeof(oid_ec_public_key) + ec_curves[ci].oid_len);
    MR_GUARD(der_head(out, 0x30, alg + der_size(plen + 1)));
    MR_GUARD(write_algorithm(out, ci));
    MR_GUARD(der_head(out, 0x03, plen + 1));
    MR_GUARD(mr_buf_append_u8(out, 0)); /* no unused bits */
    return mr_buf_append(out, pt, plen);
}

MR_RESULT mr_key_ec_spki_der(const EVP_PKEY *key, mr_buf *out)
{
    size_t len0 = out->len;
    return rollback(out, len0, write_spki(key, out));
}

/* ECPrivateKey; with_params adds the [0] namedCurve element (SEC1 on its own, not in PKCS#8). */
static MR_RESULT write_ec_private_key(const EVP_PKEY *key, int ci, bool with_params, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    uint8_t pt[EC_POINT_MAX];
    size_t plen = 0;
    mr_buf d;
    mr_buf_init(&d, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(public_point(key, pt, &plen));
    MR_GUARD_OUT(mr_key_ec_private_scalar(key, true, &d));
    MR_ENSURE_OUT(d.len == ec_curves[ci].scalar_len, MR_ERR_INTERNAL, "EC scalar length");
    size_t params = with_params ? der_size(ec_curves[ci].oid_len) : 0;
    size_t pub = der_size(der_size(plen + 1));
    size_t body = 3 + der_size(d.len) + params + pub;
    MR_GUARD_OUT(der_head(out, 0x30, body));
    MR_GUARD_OUT(mr_buf_append(out, (const uint8_t[]){0x02, 0x01, 0x01}, 3));
    MR_GUARD_OUT(der_head(out, 0x04, d.len));
    MR_GUARD_OUT(mr_buf_append(out, d.data, d.len));
    if (with_params) {
        MR_GUARD_OUT(der_head(out, 0xa0, ec_curves[ci].oid_len));
        MR_GUARD_OUT(mr_buf_append(out, ec_curves[ci].oid, ec_curves[ci].oid_len));
    }
    MR_GUARD_OUT(der_head(out, 0xa1, der_size(plen + 1)));
    MR_GUARD_OUT(der_head(out, 0x03, plen + 1));
    MR_GUARD_OUT(mr_buf_append_u8(out, 0));
    MR_GUARD_OUT(mr_buf_append(out, pt, plen));
    res = MR_SUCCESS;
out:
    mr_buf_free(&d);
    return res;
}

static MR_RESULT write_private(const EVP_PKEY *key, bool pkcs8, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf inner;
    int ci = curve_index(mr_key_type_of(key));
    MR_ENSURE(ci >= 0, MR_ERR_USAGE, "wrong key type: EC key needed");
    MR_ENSURE((out->flags & MR_BUF_SECRET) != 0, MR_ERR_INTERNAL,
              "private key material needs a secret buffer");
    if (!pkcs8)
        return write_ec_private_key(key, ci, true, out);
    mr_buf_init(&inner, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(write_ec_private_key(key, ci, false, &inner));
    size_t alg = der_size(sizeof(oid_ec_public_key) + ec_curves[ci].oid_len);
    MR_GUARD_OUT(der_head(out, 0x30, 3 + alg + der_size(inner.len)));
    MR_GUARD_OUT(mr_buf_append(out, (const uint8_t[]){0x02, 0x01, 0x00}, 3));
    MR_GUARD_OUT(write_algorithm(out, ci));
    MR_GUARD_OUT(der_head(out, 0x04, inner.len));
    MR_GUARD_OUT(mr_buf_append(out, inner.data, inner.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&inner);
    return res;
}

MR_RESULT mr_key_ec_private_der(const EVP_PKEY *key, bool pkcs8, mr_buf *out)
{
    size_t len0 = out->len;
    return rollback(out, len0, write_private(key, pkcs8, out));
}

MR_RESULT mr_key_ec_set_x509_pubkey(X509_PUBKEY *pub, const EVP_PKEY *key)
{
    uint8_t pt[EC_POINT_MAX];
    size_t plen = 0;
    int ci = curve_index(mr_key_type_of(key));
    MR_ENSURE(ci >= 0, MR_ERR_USAGE, "wrong key type: EC key needed");
    MR_GUARD(public_point(key, pt, &plen));
    unsigned char *copy = OPENSSL_memdup(pt, plen);
    MR_ENSURE_ALLOC(copy);
    /* The algorithm objects are OpenSSL's static table entries; the point is handed over. */
    int set = X509_PUBKEY_set0_param(pub, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                                     OBJ_nid2obj(ec_curves[ci].nid), copy, (int)plen);
    if (set != 1)
        OPENSSL_free(copy); /* handed over only on success; the error queue stays */
    MR_GUARD_OSSL(set, MR_ERR_INTERNAL, "setting the subject key");
    return MR_SUCCESS;
}
