/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: key generation, encodings, signatures, raw ECDSA helpers. */
#include "helpers.h"

#include <openssl/core_names.h>
#include <openssl/x509.h>

#include "common/alloc.h"
#include "crypto/internal.h"
#include "crypto/key.h"
#include "crypto/p256.h"

static const mr_key_type all_types[] = {MR_KEY_EC_P224, MR_KEY_EC_P256, MR_KEY_EC_P384,
                                        MR_KEY_EC_P521, MR_KEY_RSA,     MR_KEY_ED25519};
static EVP_PKEY *keys[MR_ARRAY_LEN(all_types)];

static int keys_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < MR_ARRAY_LEN(all_types); i++)
        if (!mr_ok(mr_key_generate(all_types[i], 2048, &keys[i])))
            return -1;
    return 0;
}

static int keys_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < MR_ARRAY_LEN(all_types); i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

static void test_generate_and_type(void **state)
{
    (void)state;
    static const int bits[] = {224, 256, 384, 521, 2048, 256};
    for (size_t i = 0; i < MR_ARRAY_LEN(all_types); i++) {
        assert_int_equal(mr_key_type_of(keys[i]), all_types[i]);
        assert_int_equal(EVP_PKEY_get_bits(keys[i]), bits[i]);
        MR_ASSERT_OK(mr_key_check(keys[i]));
    }
    assert_string_equal(mr_key_type_name(MR_KEY_EC_P384), "P-384");
    assert_string_equal(mr_key_type_name(MR_KEY_ED25519), "Ed25519");
    assert_string_equal(mr_key_type_name(MR_KEY_NONE), "unsupported");
    assert_int_equal(mr_key_type_of(NULL), MR_KEY_NONE);
    EVP_PKEY *k = NULL;
    MR_ASSERT_FAIL(mr_key_generate(MR_KEY_RSA, 1024, &k), MR_ERR_USAGE,
                   "unsupported RSA key size 1024");
    MR_ASSERT_FAIL(mr_key_generate(MR_KEY_NONE, 0, &k), MR_ERR_USAGE, "unsupported key type");
    assert_null(k);
    /* unsupported types are rejected by the policy */
    EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_non_null(x25519);
    MR_ASSERT_FAIL(mr_key_check(x25519), MR_ERR_USAGE, "unsupported key type");
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    MR_ASSERT_FAIL(mr_key_check(k1), MR_ERR_USAGE, "unsupported key type");
    EVP_PKEY_free(k1);
    EVP_PKEY_free(x25519);
}

/* Encodes key i with fmt (private and/or public), decodes, compares public parts. */
static void round_trip(size_t i, mr_key_format fmt, bool priv, bool pem)
{
    mr_buf enc = secret_buf();
    EVP_PKEY *back = NULL;
    if (priv) {
        MR_ASSERT_OK(pem ? mr_key_private_to_pem(keys[i], fmt, &enc)
                         : mr_key_private_to_der(keys[i], fmt, &enc));
        MR_ASSERT_OK(pem ? mr_key_private_from_pem(mr_buf_slice(&enc), &back)
                         : mr_key_private_from_der(mr_buf_slice(&enc), fmt, &back));
    } else {
        MR_ASSERT_OK(pem ? mr_key_public_to_pem(keys[i], fmt, &enc)
                         : mr_key_public_to_der(keys[i], fmt, &enc));
        MR_ASSERT_OK(pem ? mr_key_public_from_pem(mr_buf_slice(&enc), &back)
                         : mr_key_public_from_der(mr_buf_slice(&enc), fmt, &back));
    }
    assert_true(mr_key_public_equal(keys[i], back));
    assert_int_equal(mr_key_type_of(back), all_types[i]);
    if (priv) { /* the decoded private key signs like the original */
        mr_buf sig = plain_buf();
        MR_ASSERT_OK(mr_key_sign(back, MR_SLICE_STR("m"), &sig));
        MR_ASSERT_OK(mr_key_verify(keys[i], MR_SLICE_STR("m"), mr_buf_slice(&sig)));
        mr_buf_free(&sig);
    }
    /* truncated DER is rejected */
    if (!pem) {
        EVP_PKEY *bad = NULL;
        mr_slice cut = MR_SLICE(enc.data, enc.len - 1);
        MR_ASSERT_FAIL(priv ? mr_key_private_from_der(cut, fmt, &bad)
                            : mr_key_public_from_der(cut, fmt, &bad),
                       MR_ERR_USAGE, "invalid");
        assert_null(bad);
    }
    EVP_PKEY_free(back);
    mr_buf_free(&enc);
}

static void test_encode_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < MR_ARRAY_LEN(all_types); i++) {
        bool ec = all_types[i] <= MR_KEY_EC_P521, rsa = all_types[i] == MR_KEY_RSA;
        for (int pem = 0; pem < 2; pem++) {
            round_trip(i, MR_KEYFMT_PKCS8, true, pem);
            round_trip(i, MR_KEYFMT_PKIX, false, pem);
            if (ec)
                round_trip(i, MR_KEYFMT_SEC1, true, pem);
            if (rsa) {
                round_trip(i, MR_KEYFMT_PKCS1, true, pem);
                round_trip(i, MR_KEYFMT_PKCS1, false, pem);
            }
        }
    }
}

static void test_encode_labels_and_misuse(void **state)
{
    (void)state;
    mr_buf pem = secret_buf(), plain = plain_buf();
    MR_ASSERT_OK(mr_key_private_to_pem(keys[1], MR_KEYFMT_SEC1, &pem));
    MR_ASSERT_OK(mr_buf_nul_terminate(&pem));
    assert_non_null(strstr((char *)pem.data, "-----BEGIN EC PRIVATE KEY-----"));
    mr_buf_reset(&pem);
    MR_ASSERT_OK(mr_key_private_to_pem(keys[4], MR_KEYFMT_PKCS1, &pem));
    assert_memory_equal(pem.data, "-----BEGIN RSA PRIVATE KEY-----", 31);
    mr_buf_reset(&pem);
    MR_ASSERT_OK(mr_key_public_to_pem(keys[5], MR_KEYFMT_PKIX, &pem));
    assert_memory_equal(pem.data, "-----BEGIN PUBLIC KEY-----", 26);
    /* private material into a non-secret buffer */
    MR_ASSERT_FAIL(mr_key_private_to_der(keys[1], MR_KEYFMT_PKCS8, &plain), MR_ERR_INTERNAL,
                   "secret buffer");
    MR_ASSERT_FAIL(mr_key_private_to_pem(keys[1], MR_KEYFMT_PKCS8, &plain), MR_ERR_INTERNAL,
                   "secret buffer");
    /* wrong key type for a format */
    MR_ASSERT_FAIL(mr_key_private_to_der(keys[4], MR_KEYFMT_SEC1, &pem), MR_ERR_USAGE,
                   "wrong key type");
    MR_ASSERT_FAIL(mr_key_private_to_der(keys[1], MR_KEYFMT_PKCS1, &pem), MR_ERR_USAGE,
                   "wrong key type");
    MR_ASSERT_FAIL(mr_key_private_to_der(keys[5], MR_KEYFMT_SEC1, &pem), MR_ERR_USAGE,
                   "wrong key type");
    MR_ASSERT_FAIL(mr_key_public_to_der(keys[1], MR_KEYFMT_PKCS1, &pem), MR_ERR_USAGE,
                   "wrong key type");
    MR_ASSERT_FAIL(mr_key_private_to_der(keys[1], MR_KEYFMT_PKIX, &pem), MR_ERR_USAGE,
                   "not available");
    /* decoding with the wrong format */
    mr_buf der = secret_buf();
    EVP_PKEY *k = NULL;
    MR_ASSERT_OK(mr_key_private_to_der(keys[4], MR_KEYFMT_PKCS1, &der));
    MR_ASSERT_FAIL(mr_key_private_from_der(mr_buf_slice(&der), MR_KEYFMT_SEC1, &k), MR_ERR_USAGE,
                   "invalid private key");
    MR_ASSERT_FAIL(mr_key_public_from_der(mr_buf_slice(&der), MR_KEYFMT_PKIX, &k), MR_ERR_USAGE,
                   "invalid public key");
    /* trailing data */
    MR_ASSERT_OK(mr_buf_append_u8(&der, 0));
    MR_ASSERT_FAIL(mr_key_private_from_der(mr_buf_slice(&der), MR_KEYFMT_PKCS1, &k),
                   MR_ERR_USAGE, "trailing data");
    /* PEM with the wrong label kind, or none */
    MR_ASSERT_FAIL(mr_key_private_from_pem(mr_buf_slice(&pem), &k), MR_ERR_USAGE,
                   "unexpected PEM block type \"PUBLIC KEY\"");
    MR_ASSERT_FAIL(mr_key_public_from_pem(MR_SLICE_STR("no pem here"), &k), MR_ERR_USAGE,
                   "no PEM block");
    MR_ASSERT_FAIL(mr_key_private_from_der(MR_SLICE(NULL, 0), MR_KEYFMT_PKCS8, &k), MR_ERR_USAGE,
                   "bad length");
    static uint8_t big[MR_KEY_DER_MAX + 1];
    MR_ASSERT_FAIL(mr_key_public_from_der(MR_SLICE(big, sizeof(big)), MR_KEYFMT_PKIX, &k),
                   MR_ERR_USAGE, "bad length");
    assert_null(k);
    mr_buf_free(&der);
    mr_buf_free(&pem);
}

static void test_rsa_1024_rejected(void **state)
{
    (void)state;
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(small);
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(small, &der);
    assert_true(len > 0);
    EVP_PKEY *k = NULL;
    MR_ASSERT_FAIL(mr_key_public_from_der(MR_SLICE(der, (size_t)len), MR_KEYFMT_PKIX, &k),
                   MR_ERR_USAGE, "RSA key too small: 1024 bits");
    OPENSSL_free(der);
    der = NULL;
    len = i2d_PrivateKey(small, &der);
    MR_ASSERT_FAIL(mr_key_private_from_der(MR_SLICE(der, (size_t)len), MR_KEYFMT_PKCS1, &k),
                   MR_ERR_USAGE, "RSA key too small");
    OPENSSL_clear_free(der, (size_t)len);
    MR_ASSERT_FAIL(mr_key_check(small), MR_ERR_USAGE, "too small");
    mr_buf sig = plain_buf();
    assert_null(k);
    EVP_PKEY_free(small);
    mr_buf_free(&sig);
}

static void test_sign_verify(void **state)
{
    (void)state;
    mr_slice msg = MR_SLICE_STR("the quick brown fox");
    for (size_t i = 0; i < MR_ARRAY_LEN(all_types); i++) {
        mr_buf sig = plain_buf();
        MR_ASSERT_OK(mr_key_sign(keys[i], msg, &sig));
        MR_ASSERT_OK(mr_key_verify(keys[i], msg, mr_buf_slice(&sig)));
        MR_ASSERT_FAIL(mr_key_verify(keys[i], MR_SLICE_STR("the quick brown fix"),
                                     mr_buf_slice(&sig)),
                       MR_ERR_AUTH, "signature verification failed");
        sig.data[sig.len / 2] ^= 1;
        MR_ASSERT_FAIL(mr_key_verify(keys[i], msg, mr_buf_slice(&sig)), MR_ERR_AUTH,
                       "signature verification failed");
        /* a signature by another key */
        size_t other = (i + 1) % MR_ARRAY_LEN(all_types);
        sig.data[sig.len / 2] ^= 1;
        MR_ASSERT_FAIL(mr_key_verify(keys[other], msg, mr_buf_slice(&sig)), MR_ERR_AUTH,
                       "signature verification failed");
        mr_buf_free(&sig);
    }
    /* a public-only key cannot sign */
    mr_buf der = plain_buf(), sig = plain_buf();
    EVP_PKEY *pub = NULL;
    MR_ASSERT_OK(mr_key_public_to_der(keys[1], MR_KEYFMT_PKIX, &der));
    MR_ASSERT_OK(mr_key_public_from_der(mr_buf_slice(&der), MR_KEYFMT_PKIX, &pub));
    assert_false(mr_ok(mr_key_sign(pub, msg, &sig)));
    EVP_PKEY_free(pub);
    mr_buf_free(&der);
    mr_buf_free(&sig);
}

static void test_raw_ecdsa(void **state)
{
    (void)state;
    EVP_PKEY *p256 = keys[1];
    mr_slice msg = MR_SLICE_STR("quote body");
    mr_buf sig = plain_buf(), raw = plain_buf(), der = plain_buf();
    MR_ASSERT_OK(mr_key_sign(p256, msg, &sig));
    MR_ASSERT_OK(mr_ecdsa_sig_der_to_raw(mr_buf_slice(&sig), 32, &raw));
    assert_int_equal(raw.len, 64);
    MR_ASSERT_OK(mr_ecdsa_sig_raw_to_der(mr_buf_slice(&raw), &der));
    assert_int_equal(der.len, sig.len);
    assert_memory_equal(der.data, sig.data, sig.len);
    /* r||s with leading zero bytes */
    uint8_t small[64] = {0};
    small[31] = 1;
    small[63] = 2;
    mr_buf d2 = plain_buf(), r2 = plain_buf();
    MR_ASSERT_OK(mr_ecdsa_sig_raw_to_der(MR_SLICE(small, 64), &d2));
    assert_hex_equal(d2.data, d2.len, "3006020101020102");
    MR_ASSERT_OK(mr_ecdsa_sig_der_to_raw(mr_buf_slice(&d2), 32, &r2));
    assert_memory_equal(r2.data, small, 64);
    MR_ASSERT_FAIL(mr_ecdsa_sig_der_to_raw(mr_buf_slice(&sig), 8, &r2), MR_ERR_USAGE,
                   "too large");
    MR_ASSERT_FAIL(mr_ecdsa_sig_der_to_raw(MR_SLICE(sig.data, sig.len - 1), 32, &r2),
                   MR_ERR_USAGE, "invalid ECDSA signature");
    MR_ASSERT_FAIL(mr_ecdsa_sig_raw_to_der(MR_SLICE(small, 63), &d2), MR_ERR_USAGE,
                   "invalid raw ECDSA signature length");
    /* a P-256 key from the raw point verifies the signature */
    uint8_t point[65];
    size_t plen = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(p256, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                     sizeof(point), &plen),
                     1);
    assert_int_equal(plen, 65);
    EVP_PKEY *pub = NULL;
    MR_ASSERT_OK(mr_key_p256_from_raw(MR_SLICE(point + 1, 64), &pub));
    assert_true(mr_key_public_equal(pub, p256));
    MR_ASSERT_OK(mr_key_verify(pub, msg, mr_buf_slice(&sig)));
    EVP_PKEY_free(pub);
    pub = NULL;
    point[40] ^= 1; /* off the curve */
    MR_ASSERT_FAIL(mr_key_p256_from_raw(MR_SLICE(point + 1, 64), &pub), MR_ERR_USAGE,
                   "invalid P-256 public key");
    MR_ASSERT_FAIL(mr_key_p256_from_raw(MR_SLICE(point + 1, 63), &pub), MR_ERR_USAGE,
                   "64 bytes");
    assert_null(pub);
    mr_buf_free(&sig);
    mr_buf_free(&raw);
    mr_buf_free(&der);
    mr_buf_free(&d2);
    mr_buf_free(&r2);
}

/* The fixed-width forms of DCAP quotes: raw public point out and back in, raw signatures. */
static void test_raw_p256_sign_verify(void **state)
{
    (void)state;
    EVP_PKEY *p256 = keys[1], *pub = NULL;
    uint8_t xy[MR_P256_RAW_PUB_LEN], sig[MR_P256_RAW_SIG_LEN];
    mr_slice msg = MR_SLICE_STR("quote body");
    MR_ASSERT_OK(mr_key_p256_to_raw(p256, xy));
    MR_ASSERT_OK(mr_key_p256_from_raw(MR_SLICE(xy, sizeof(xy)), &pub));
    assert_true(mr_key_public_equal(pub, p256));
    MR_ASSERT_OK(mr_ecdsa_p256_sign_raw(p256, msg, sig));
    MR_ASSERT_OK(mr_ecdsa_p256_verify_raw(pub, msg, MR_SLICE(sig, sizeof(sig))));
    /* the DER form of the same signature verifies with the generic call */
    mr_buf der = plain_buf();
    MR_ASSERT_OK(mr_ecdsa_sig_raw_to_der(MR_SLICE(sig, sizeof(sig)), &der));
    MR_ASSERT_OK(mr_key_verify(pub, msg, mr_buf_slice(&der)));
    MR_ASSERT_FAIL(mr_ecdsa_p256_verify_raw(pub, MR_SLICE_STR("quote bodY"),
                                            MR_SLICE(sig, sizeof(sig))),
                   MR_ERR_AUTH, "signature verification failed");
    sig[5] ^= 0x40;
    MR_ASSERT_FAIL(mr_ecdsa_p256_verify_raw(pub, msg, MR_SLICE(sig, sizeof(sig))), MR_ERR_AUTH,
                   "signature verification failed");
    MR_ASSERT_FAIL(mr_ecdsa_p256_verify_raw(pub, msg, MR_SLICE(sig, 63)), MR_ERR_USAGE,
                   "64 bytes");
    memset(sig, 0, sizeof(sig)); /* r = s = 0 */
    MR_ASSERT_FAIL(mr_ecdsa_p256_verify_raw(pub, msg, MR_SLICE(sig, sizeof(sig))), MR_ERR_AUTH,
                   "signature verification failed");
    /* keys that are not P-256 */
    for (size_t i = 0; i < MR_ARRAY_LEN(all_types); i++)
        if (all_types[i] != MR_KEY_EC_P256)
            MR_ASSERT_FAIL(mr_key_p256_to_raw(keys[i], xy), MR_ERR_USAGE, "P-256 key needed");
    EVP_PKEY_free(pub);
    mr_buf_free(&der);
}

static void test_ec_scalar(void **state)
{
    (void)state;
    mr_buf d = secret_buf(), fixed = secret_buf(), plain = plain_buf();
    MR_ASSERT_OK(mr_key_ec_private_scalar(keys[3], false, &d));
    MR_ASSERT_OK(mr_key_ec_private_scalar(keys[3], true, &fixed));
    assert_int_equal(fixed.len, 66);
    assert_true(d.len <= 66 && d.len > 0);
    assert_int_not_equal(d.data[0], 0);
    assert_memory_equal(fixed.data + (66 - d.len), d.data, d.len);
    MR_ASSERT_FAIL(mr_key_ec_private_scalar(keys[4], false, &d), MR_ERR_USAGE, "wrong key type");
    MR_ASSERT_FAIL(mr_key_ec_private_scalar(keys[1], false, &plain), MR_ERR_INTERNAL,
                   "secret buffer");
    mr_buf_free(&d);
    mr_buf_free(&fixed);
}

/* The direct EC encodings are byte-identical to OpenSSL's encoders, and a certificate issued
 * for an EC key carries exactly that key. */
static void test_ec_der_matches_openssl(void **state)
{
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        EVP_PKEY *k = keys[i];
        unsigned char *ref = NULL;
        mr_buf der = secret_buf(), pub = plain_buf();
        /* PKCS#8 */
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
        assert_non_null(p8);
        int n = i2d_PKCS8_PRIV_KEY_INFO(p8, &ref);
        PKCS8_PRIV_KEY_INFO_free(p8);
        MR_ASSERT_OK(mr_key_private_to_der(k, MR_KEYFMT_PKCS8, &der));
        assert_int_equal(der.len, n);
        assert_memory_equal(der.data, ref, der.len);
        OPENSSL_clear_free(ref, (size_t)n);
        /* SEC1 */
        ref = NULL;
        mr_buf_reset(&der);
        n = i2d_PrivateKey(k, &ref);
        MR_ASSERT_OK(mr_key_private_to_der(k, MR_KEYFMT_SEC1, &der));
        assert_int_equal(der.len, n);
        assert_memory_equal(der.data, ref, der.len);
        OPENSSL_clear_free(ref, (size_t)n);
        /* SubjectPublicKeyInfo */
        ref = NULL;
        n = i2d_PUBKEY(k, &ref);
        MR_ASSERT_OK(mr_key_public_to_der(k, MR_KEYFMT_PKIX, &pub));
        assert_int_equal(pub.len, n);
        assert_memory_equal(pub.data, ref, pub.len);
        OPENSSL_free(ref);
        /* the same key in a certificate's subject public key */
        X509_PUBKEY *xp = X509_PUBKEY_new();
        assert_non_null(xp);
        MR_ASSERT_OK(mr_key_ec_set_x509_pubkey(xp, k));
        ref = NULL;
        n = i2d_X509_PUBKEY(xp, &ref);
        assert_int_equal(pub.len, n);
        assert_memory_equal(pub.data, ref, pub.len);
        OPENSSL_free(ref);
        X509_PUBKEY_free(xp);
        mr_buf_free(&der);
        mr_buf_free(&pub);
    }
    /* not an EC key: the direct path refuses, the general path still encodes */
    mr_buf der = secret_buf();
    MR_ASSERT_FAIL(mr_key_ec_private_der(keys[4], true, &der), MR_ERR_USAGE, "EC key needed");
    assert_int_equal(der.len, 0);
    MR_ASSERT_OK(mr_key_private_to_der(keys[5], MR_KEYFMT_PKCS8, &der));
    mr_buf_free(&der);
    /* a failure half-way leaves the output as it was */
    mr_buf part = secret_buf();
    MR_ASSERT_OK(mr_buf_append(&part, "ab", 2));
    for (long f = 0; f < 4; f++) {
        mr_alloc_fail_after(f);
        mr_result r = mr_key_ec_private_der(keys[1], true, &part);
        mr_alloc_fail_reset();
        if (!mr_ok(r))
            assert_int_equal(part.len, 2);
        part.len = 2;
    }
    mr_buf_free(&part);
}

/* A SEC1 key or SPKI whose point is compressed or hybrid decodes, and encodes again with the
 * point uncompressed: the same bytes as the key in its usual form (found by fuzz-der_key). */
static void test_ec_point_forms_decode_uncompressed(void **state)
{
    (void)state;
    static const char *const forms[] = {OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED,
                                        OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_HYBRID};
    for (size_t i = 0; i < 4; i++) {
        for (size_t f = 0; f < MR_ARRAY_LEN(forms); f++) {
            EVP_PKEY *k = EVP_PKEY_dup(keys[i]), *back = NULL, *pback = NULL;
            assert_non_null(k);
            assert_int_equal(EVP_PKEY_set_utf8_string_param(
                                 k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, forms[f]), 1);
            unsigned char *sec1 = NULL, *spki = NULL;
            int n = i2d_PrivateKey(k, &sec1), m = i2d_PUBKEY(k, &spki);
            assert_true(n > 0 && m > 0);
            mr_buf der = secret_buf(), want = secret_buf(), pub = plain_buf(), wpub = plain_buf();
            MR_ASSERT_OK(mr_key_private_from_der(MR_SLICE(sec1, (size_t)n), MR_KEYFMT_SEC1, &back));
            MR_ASSERT_OK(mr_key_private_to_der(back, MR_KEYFMT_SEC1, &der));
            MR_ASSERT_OK(mr_key_private_to_der(keys[i], MR_KEYFMT_SEC1, &want));
            assert_int_equal(der.len, want.len);
            assert_memory_equal(der.data, want.data, der.len);
            MR_ASSERT_OK(mr_key_public_from_der(MR_SLICE(spki, (size_t)m), MR_KEYFMT_PKIX, &pback));
            MR_ASSERT_OK(mr_key_public_to_der(pback, MR_KEYFMT_PKIX, &pub));
            MR_ASSERT_OK(mr_key_public_to_der(keys[i], MR_KEYFMT_PKIX, &wpub));
            assert_int_equal(pub.len, wpub.len);
            assert_memory_equal(pub.data, wpub.data, pub.len);
            assert_true(mr_key_public_equal(pback, keys[i]));
            OPENSSL_clear_free(sec1, (size_t)n);
            OPENSSL_free(spki);
            mr_buf_free(&der);
            mr_buf_free(&want);
            mr_buf_free(&pub);
            mr_buf_free(&wpub);
            EVP_PKEY_free(back);
            EVP_PKEY_free(pback);
            EVP_PKEY_free(k);
        }
    }
}

static void test_key_alloc_failures(void **state)
{
    (void)state;
    mr_buf der = secret_buf();
    mr_alloc_fail_after(0);
    MR_ASSERT_FAIL(mr_key_private_to_der(keys[1], MR_KEYFMT_PKCS8, &der), MR_ERR_INTERNAL,
                   "out of memory");
    mr_alloc_fail_reset();
    MR_ASSERT_OK(mr_key_private_to_pem(keys[1], MR_KEYFMT_PKCS8, &der));
    /* the PEM path allocates a temporary DER buffer, then the PEM output */
    for (long n = 0; n < 3; n++) {
        mr_buf pem = secret_buf();
        mr_alloc_fail_after(n);
        mr_result r = mr_key_private_to_pem(keys[1], MR_KEYFMT_SEC1, &pem);
        mr_alloc_fail_reset();
        if (!mr_ok(r))
            assert_int_equal(pem.len, 0);
        mr_buf_free(&pem);
    }
    EVP_PKEY *k = NULL;
    mr_alloc_fail_after(0);
    MR_ASSERT_FAIL(mr_key_private_from_pem(mr_buf_slice(&der), &k), MR_ERR_INTERNAL,
                   "out of memory");
    mr_alloc_fail_reset();
    assert_null(k);
    mr_buf_free(&der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_type),
        cmocka_unit_test(test_encode_round_trips),
        cmocka_unit_test(test_encode_labels_and_misuse),
        cmocka_unit_test(test_rsa_1024_rejected),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_raw_ecdsa),
        cmocka_unit_test(test_raw_p256_sign_verify),
        cmocka_unit_test(test_ec_scalar),
        cmocka_unit_test(test_ec_der_matches_openssl),
        cmocka_unit_test(test_ec_point_forms_decode_uncompressed),
        cmocka_unit_test(test_key_alloc_failures),
    };
    return cmocka_run_group_tests_name("crypto-keys", tests, keys_setup, keys_teardown);
}
