/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: certificate issuance, parsing, accessors, chain verification, CSR, cache. */
#include "helpers.h"

#include <openssl/x509v3.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "crypto/csr.h"
#include "crypto/hash.h"
#include "crypto/key.h"
#include "crypto/p256.h"
#include "pki.h"

static pki P; /* P-256 hierarchy built once */

static int pki_setup(void **state)
{
    (void)state;
    return mr_ok(pki_build(&P, MR_KEY_EC_P256)) ? 0 : -1;
}

static int pki_teardown(void **state)
{
    (void)state;
    pki_free(&P);
    return 0;
}

static mr_slice ext_value(X509 *x, const char *oid, bool *critical)
{
    mr_slice v = {0};
    bool found = false;
    MR_ASSERT_OK(mr_x509_extension(x, oid, &v, critical, &found));
    assert_true(found);
    return v;
}

/* ---- issuance shape ---- */

static void test_ca_template_shape(void **state)
{
    (void)state;
    bool crit = false;
    /* KeyUsage critical: digitalSignature | keyCertSign */
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(P.root, NID_key_usage, NULL, NULL);
    assert_non_null(ku);
    assert_true(ASN1_BIT_STRING_get_bit(ku, 0) && ASN1_BIT_STRING_get_bit(ku, 5));
    assert_false(ASN1_BIT_STRING_get_bit(ku, 4));
    ASN1_BIT_STRING_free(ku);
    ext_value(P.root, "2.5.29.15", &crit);
    assert_true(crit);
    ext_value(P.root, "2.5.29.37", &crit); /* EKU non-critical */
    assert_false(crit);
    assert_int_equal(X509_get_extended_key_usage(P.root), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    /* BasicConstraints critical CA:TRUE without pathlen */
    mr_slice bc = ext_value(P.root, "2.5.29.19", &crit);
    assert_true(crit);
    assert_hex_equal(bc.ptr, bc.len, "30030101ff");
    assert_true(mr_x509_is_ca(P.root));
    /* SKI = first 20 bytes of SHA-256 over the public key bits */
    const unsigned char *pk = NULL;
    int pk_len = 0;
    assert_int_equal(X509_PUBKEY_get0_param(NULL, &pk, &pk_len, NULL,
                                            X509_get_X509_PUBKEY(P.root)),
                     1);
    uint8_t d[32];
    MR_ASSERT_OK(mr_sha256(pk, (size_t)pk_len, d));
    mr_slice ski = mr_x509_ski(P.root);
    assert_int_equal(ski.len, 20);
    assert_memory_equal(ski.ptr, d, 20);
    /* AKI only on the intermediate, = root SKI; marble root shares the intermediate's SKI */
    assert_int_equal(mr_x509_aki(P.root).len, 0);
    assert_int_equal(mr_x509_aki(P.marble_root).len, 0);
    mr_slice aki = mr_x509_aki(P.inter);
    assert_int_equal(aki.len, 20);
    assert_memory_equal(aki.ptr, ski.ptr, 20);
    assert_memory_equal(mr_x509_ski(P.inter).ptr, mr_x509_ski(P.marble_root).ptr, 20);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(P.inter),
                                   X509_get_subject_name(P.marble_root)),
                     0);
    /* version 3, signature from the signer key */
    assert_int_equal(X509_get_version(P.root), X509_VERSION_3);
    assert_int_equal(X509_get_signature_nid(P.root), NID_ecdsa_with_SHA256);
}

static void test_validity_and_serial(void **state)
{
    (void)state;
    time_t nb = 0, na = 0;
    MR_ASSERT_OK(mr_x509_validity(P.root, &nb, &na));
    assert_int_equal(nb, P.now);
    assert_int_equal(na - nb, INT64_C(9223372036));
    assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(P.root)), V_ASN1_UTCTIME);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(P.root)), V_ASN1_GENERALIZEDTIME);
    assert_int_equal(mr_x509_max_not_after(0), INT64_C(9223372036));
    assert_int_equal(mr_x509_max_not_after((time_t)INT64_MAX - 5), (time_t)INT64_MAX);
    /* 2049 is UTCTime, 2050 GeneralizedTime */
    mr_x509_attr cn = {NID_commonName, (char *)"t"};
    mr_x509_template t = {.subject = {&cn, 1}, .not_before = 2524607999, .not_after = 2524608000};
    X509 *x = NULL;
    MR_ASSERT_OK(mr_x509_issue(&t, P.leaf_key, NULL, P.leaf_key, &x));
    assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(x)), V_ASN1_UTCTIME);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(x)), V_ASN1_GENERALIZEDTIME);
    X509_free(x);
    /* random serial: non-negative, below 2^128 */
    const ASN1_INTEGER *s = X509_get0_serialNumber(P.root);
    BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) <= 128);
    BN_free(bn);
    assert_int_not_equal(ASN1_INTEGER_cmp(s, X509_get0_serialNumber(P.inter)), 0);
}

static void test_leaf_shape(void **state)
{
    (void)state;
    bool crit = true;
    mr_slice v = ext_value(P.leaf, PKI_MARBLE_TYPE_OID, &crit);
    assert_false(crit);
    assert_int_equal(v.len, 7);
    assert_memory_equal(v.ptr, "backend", 7);
    assert_int_equal(mr_x509_ski(P.leaf).len, 0);
    assert_memory_equal(mr_x509_aki(P.leaf).ptr, mr_x509_ski(P.inter).ptr, 20);
    assert_false(mr_x509_is_ca(P.leaf));
    mr_slice bc = ext_value(P.leaf, "2.5.29.19", &crit);
    assert_true(crit);
    assert_hex_equal(bc.ptr, bc.len, "3000");
    mr_buf cn = plain_buf();
    MR_ASSERT_OK(mr_x509_subject_cn(P.leaf, &cn));
    assert_string_equal((char *)cn.data, "8f7a5b6c-1d2e-4f30-9a1b-2c3d4e5f6a7b");
    mr_buf_free(&cn);
    mr_x509_san_list sans = {0};
    MR_ASSERT_OK(mr_x509_sans(P.leaf, &sans));
    assert_int_equal(sans.n_dns, 1);
    assert_string_equal(sans.dns[0], "localhost");
    assert_int_equal(sans.n_ips, 2);
    assert_int_equal(sans.ips[0].len, 4);
    assert_hex_equal(sans.ips[0].addr, 4, "7f000001");
    assert_int_equal(sans.ips[1].len, 16);
    char text[MR_IP_TEXT_MAX];
    MR_ASSERT_OK(mr_ip_format(&sans.ips[1], text, sizeof(text)));
    assert_string_equal(text, "::1");
    mr_x509_san_list_clear(&sans);
    mr_x509_san_list_clear(&sans);
    bool found = true;
    MR_ASSERT_OK(mr_x509_extension(P.leaf, "1.2.3.4", &v, NULL, &found));
    assert_false(found);
    MR_ASSERT_FAIL(mr_x509_extension(P.leaf, "not an oid", &v, NULL, &found), MR_ERR_USAGE,
                   "invalid OID");
}

static void test_subject_go_order(void **state)
{
    (void)state;
    mr_x509_attr attrs[] = {
        {NID_commonName, (char *)"cn"},       {NID_serialNumber, (char *)"42"},
        {NID_organizationName, (char *)"Org"}, {NID_countryName, (char *)"DE"},
        {NID_organizationalUnitName, (char *)"u1"}, {NID_organizationalUnitName, (char *)"u2"},
        {NID_localityName, (char *)"Bochum"},  {NID_stateOrProvinceName, (char *)"NRW"},
        {NID_streetAddress, (char *)"Straße 1"}, {NID_postalCode, (char *)"44801"},
    };
    mr_x509_template t = {.subject = {attrs, MR_ARRAY_LEN(attrs)}, .not_before = P.now,
                          .not_after = P.now + 60};
    X509 *x = NULL;
    MR_ASSERT_OK(mr_x509_issue(&t, P.leaf_key, NULL, P.leaf_key, &x));
    mr_x509_name got = {0};
    MR_ASSERT_OK(mr_x509_subject(x, &got));
    static const int want[] = {NID_countryName, NID_organizationName, NID_organizationalUnitName,
                               NID_organizationalUnitName, NID_localityName,
                               NID_stateOrProvinceName, NID_streetAddress, NID_postalCode,
                               NID_serialNumber, NID_commonName};
    assert_int_equal(got.count, MR_ARRAY_LEN(want));
    for (size_t i = 0; i < got.count; i++)
        assert_int_equal(got.attrs[i].nid, want[i]);
    assert_string_equal(got.attrs[6].value, "Straße 1");
    mr_x509_name_clear(&got);
    /* the two OUs share one RDN; UTF-8 only where needed */
    const X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 2)),
                     X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 3)));
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, 0))),
                     V_ASN1_PRINTABLESTRING);
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, 6))),
                     V_ASN1_UTF8STRING);
    /* no SKI for non-CA certificates, no AKI when self-signed */
    assert_int_equal(mr_x509_ski(x).len, 0);
    assert_int_equal(mr_x509_aki(x).len, 0);
    X509_free(x);
}

static void test_issue_options(void **state)
{
    (void)state;
    static const uint8_t serial[] = {0x01, 0x02, 0x03};
    static const uint8_t ski[] = {0xAA, 0xBB};
    mr_ip ip;
    MR_ASSERT_OK(mr_ip_parse("::ffff:10.0.0.1", &ip)); /* IPv4-mapped becomes 4 bytes */
    assert_int_equal(ip.len, 4);
    mr_x509_template t = {.not_before = P.now, .not_after = P.now + 60, .ips = &ip, .n_ips = 1,
                          .basic_constraints_valid = true, .is_ca = true, .max_path_len = 0,
                          .max_path_len_zero = true, .serial = MR_SLICE(serial, 3),
                          .subject_key_id = MR_SLICE(ski, 2)};
    X509 *x = NULL;
    MR_ASSERT_OK(mr_x509_issue(&t, P.leaf_key, NULL, P.leaf_key, &x));
    bool crit = false;
    mr_slice san = ext_value(x, "2.5.29.17", &crit);
    assert_true(crit); /* empty subject: SAN critical */
    assert_hex_equal(san.ptr, san.len, "300687040a000001");
    mr_slice bc = ext_value(x, "2.5.29.19", &crit);
    assert_hex_equal(bc.ptr, bc.len, "30060101ff020100");
    assert_hex_equal(mr_x509_ski(x).ptr, mr_x509_ski(x).len, "aabb");
    assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(x)), 0x010203);
    X509_free(x);
    t.max_path_len = 2;
    t.max_path_len_zero = false;
    MR_ASSERT_OK(mr_x509_issue(&t, P.leaf_key, NULL, P.leaf_key, &x));
    bc = ext_value(x, "2.5.29.19", &crit);
    assert_hex_equal(bc.ptr, bc.len, "30060101ff020102");
    X509_free(x);
    x = NULL;
    /* errors */
    MR_ASSERT_FAIL(mr_x509_issue(&t, P.leaf_key, NULL, P.root_key, &x), MR_ERR_USAGE,
                   "signer key does not match");
    MR_ASSERT_FAIL(mr_x509_issue(&t, P.leaf_key, P.root, P.inter_key, &x), MR_ERR_USAGE,
                   "signer key does not match");
    mr_x509_ext bad = {"1.2.x", false, MR_SLICE("v", 1)};
    mr_x509_template t2 = {.not_before = P.now, .not_after = P.now, .extra = &bad, .n_extra = 1};
    MR_ASSERT_FAIL(mr_x509_issue(&t2, P.leaf_key, NULL, P.leaf_key, &x), MR_ERR_USAGE,
                   "invalid extension OID");
    mr_x509_template t3 = {.not_before = P.now, .not_after = P.now - 1};
    MR_ASSERT_FAIL(mr_x509_issue(&t3, P.leaf_key, NULL, P.leaf_key, &x), MR_ERR_USAGE,
                   "notAfter is before notBefore");
    static const int bad_eku[] = {14};
    mr_x509_template t4 = {.not_before = P.now, .not_after = P.now, .ext_key_usage = bad_eku,
                           .n_ext_key_usage = 1};
    MR_ASSERT_FAIL(mr_x509_issue(&t4, P.leaf_key, NULL, P.leaf_key, &x), MR_ERR_USAGE,
                   "unsupported extended key usage");
    uint8_t long_serial[21] = {1};
    mr_x509_template t5 = {.not_before = P.now, .not_after = P.now,
                           .serial = MR_SLICE(long_serial, 21)};
    MR_ASSERT_FAIL(mr_x509_issue(&t5, P.leaf_key, NULL, P.leaf_key, &x), MR_ERR_USAGE,
                   "serial number too long");
    const char *bad_dns[] = {"a b"};
    mr_x509_template t6 = {.not_before = P.now, .not_after = P.now, .dns_names = bad_dns,
                           .n_dns_names = 1};
    MR_ASSERT_FAIL(mr_x509_issue(&t6, P.leaf_key, NULL, P.leaf_key, &x), MR_ERR_USAGE,
                   "invalid character in DNS name");
    assert_null(x);
    MR_ASSERT_FAIL(mr_ip_parse("300.1.1.1", &ip), MR_ERR_USAGE, "invalid IP address");
}

/* The DER-only issuer writes the EC subject key itself: same TBS as mr_x509_issue, a valid
 * signature, the right key after parsing. */
static void test_issue_der_matches_issue(void **state)
{
    (void)state;
    static const uint8_t serial[] = {0x42};
    const char *dns[] = {"marble.local"};
    mr_x509_template t = {.not_before = P.now, .not_after = P.now + 60, .serial = MR_SLICE(serial, 1),
                          .dns_names = dns, .n_dns_names = 1, .basic_constraints_valid = true,
                          .is_ca = true};
    X509 *ref = NULL, *got = NULL;
    mr_buf der;
    mr_buf_init(&der, 0, 0);
    MR_ASSERT_OK(mr_x509_issue(&t, P.leaf_key, P.root, P.root_key, &ref));
    MR_ASSERT_OK(mr_x509_issue_der(&t, P.leaf_key, P.root, P.root_key, &der));
    MR_ASSERT_OK(mr_x509_from_der(mr_buf_slice(&der), &got));
    unsigned char *a = NULL, *b = NULL;
    int na = i2d_re_X509_tbs(ref, &a), nb = i2d_re_X509_tbs(got, &b);
    assert_true(na > 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na);
    OPENSSL_free(a);
    OPENSSL_free(b);
    assert_true(mr_key_public_equal(X509_get0_pubkey(got), P.leaf_key));
    assert_int_equal(X509_verify(got, P.root_key), 1);
    assert_int_equal(mr_x509_ski(got).len, mr_x509_ski(ref).len);
    assert_memory_equal(mr_x509_ski(got).ptr, mr_x509_ski(ref).ptr, mr_x509_ski(ref).len);
    X509_free(ref);
    X509_free(got);
    /* errors leave the output untouched */
    size_t len = der.len;
    MR_ASSERT_FAIL(mr_x509_issue_der(&t, P.leaf_key, P.root, P.inter_key, &der), MR_ERR_USAGE,
                   "signer key does not match");
    MR_ASSERT_FAIL(mr_x509_issue_der(&t, NULL, P.root, P.root_key, &der), MR_ERR_USAGE,
                   "subject key");
    assert_int_equal(der.len, len);
    mr_buf_free(&der);
}

static void test_signature_algorithms(void **state)
{
    (void)state;
    static const struct {
        mr_key_type type;
        int nid;
    } cases[] = {
        {MR_KEY_EC_P224, NID_ecdsa_with_SHA256}, {MR_KEY_EC_P384, NID_ecdsa_with_SHA384},
        {MR_KEY_EC_P521, NID_ecdsa_with_SHA512}, {MR_KEY_RSA, NID_sha256WithRSAEncryption},
        {MR_KEY_ED25519, NID_ED25519},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        pki p;
        MR_ASSERT_OK(pki_build(&p, cases[i].type));
        assert_int_equal(X509_get_signature_nid(p.root), cases[i].nid);
        assert_int_equal(X509_get_signature_nid(p.leaf), cases[i].nid);
        mr_x509_verify_opts o = {.intermediates = sk_X509_new_null()};
        assert_true(sk_X509_push(o.intermediates, p.inter) > 0);
        MR_ASSERT_OK(mr_x509_verify(p.leaf, p.root, &o));
        sk_X509_free(o.intermediates);
        pki_free(&p);
    }
}

/* ---- parsing ---- */

static void test_parse_round_trip(void **state)
{
    (void)state;
    mr_buf der = plain_buf(), pem = plain_buf();
    X509 *x = NULL;
    MR_ASSERT_OK(mr_x509_to_der(P.leaf, &der));
    MR_ASSERT_OK(mr_x509_from_der(mr_buf_slice(&der), &x));
    assert_int_equal(X509_cmp(x, P.leaf), 0);
    uint8_t d1[32], d2[32];
    MR_ASSERT_OK(mr_x509_sha256(x, d1));
    MR_ASSERT_OK(mr_sha256(der.data, der.len, d2));
    assert_memory_equal(d1, d2, 32);
    EVP_PKEY *pk = NULL;
    MR_ASSERT_OK(mr_x509_pubkey(x, &pk));
    assert_true(mr_key_public_equal(pk, P.leaf_key));
    X509_free(x);
    x = NULL;
    /* truncated, trailing data, empty */
    MR_ASSERT_FAIL(mr_x509_from_der(MR_SLICE(der.data, der.len - 1), &x), MR_ERR_USAGE,
                   "invalid certificate encoding");
    MR_ASSERT_OK(mr_buf_append_u8(&der, 0));
    MR_ASSERT_FAIL(mr_x509_from_der(mr_buf_slice(&der), &x), MR_ERR_USAGE, "trailing data");
    MR_ASSERT_FAIL(mr_x509_from_der(MR_SLICE(NULL, 0), &x), MR_ERR_USAGE, "bad length");
    /* oversized input is rejected before parsing */
    static uint8_t big[MR_X509_DER_MAX + 1];
    memcpy(big, der.data, der.len);
    MR_ASSERT_FAIL(mr_x509_from_der(MR_SLICE(big, sizeof(big)), &x), MR_ERR_USAGE, "bad length");
    assert_null(x);
    /* PEM and chains */
    MR_ASSERT_OK(mr_x509_to_pem(P.leaf, &pem));
    MR_ASSERT_OK(mr_x509_to_pem(P.inter, &pem));
    MR_ASSERT_OK(mr_x509_to_pem(P.root, &pem));
    MR_ASSERT_OK(mr_x509_from_pem(mr_buf_slice(&pem), &x));
    assert_int_equal(X509_cmp(x, P.leaf), 0);
    X509_free(x);
    STACK_OF(X509) *chain = NULL;
    MR_ASSERT_OK(mr_x509_chain_from_pem(mr_buf_slice(&pem), &chain));
    assert_int_equal(sk_X509_num(chain), 3);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 2), P.root), 0);
    sk_X509_pop_free(chain, X509_free);
    chain = NULL;
    MR_ASSERT_FAIL(mr_x509_chain_from_pem(MR_SLICE_STR("nothing"), &chain), MR_ERR_USAGE,
                   "no certificate found");
    /* bad base64 inside a later block: an error, and nothing leaks */
    mr_buf bad = plain_buf();
    MR_ASSERT_OK(mr_buf_append(&bad, pem.data, pem.len));
    MR_ASSERT_OK(mr_buf_append_str(&bad, "-----BEGIN CERTIFICATE-----\nA*AA\n"
                                         "-----END CERTIFICATE-----\n"));
    MR_ASSERT_FAIL(mr_x509_chain_from_pem(mr_buf_slice(&bad), &chain), MR_ERR_USAGE,
                   "invalid PEM block CERTIFICATE");
    mr_buf_free(&bad);
    MR_ASSERT_OK(mr_buf_append_str(&pem, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                         "-----END PRIVATE KEY-----\n"));
    MR_ASSERT_FAIL(mr_x509_chain_from_pem(mr_buf_slice(&pem), &chain), MR_ERR_USAGE,
                   "unexpected PEM block type \"PRIVATE KEY\"");
    MR_ASSERT_FAIL(mr_x509_from_pem(MR_SLICE_STR("-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                                 "-----END PUBLIC KEY-----\n"),
                                    &x),
                   MR_ERR_USAGE, "unexpected PEM block type");
    assert_null(chain);
    /* allocation failure in the chain parser */
    for (long n = 0; n < 4; n++) {
        mr_alloc_fail_after(n);
        mr_result r = mr_x509_chain_from_pem(mr_buf_slice(&pem), &chain);
        mr_alloc_fail_reset();
        assert_false(mr_ok(r));
    }
    mr_buf_free(&der);
    mr_buf_free(&pem);
}

/* ---- verification ---- */

static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *key, X509 *revoked, time_t now)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, now - 60), *t2 = ASN1_TIME_set(NULL, now + 3600);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t1), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, t2), 1);
    if (revoked != NULL) {
        X509_REVOKED *r = X509_REVOKED_new();
        assert_int_equal(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked)), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(r, t1), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
    }
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    return crl;
}

static void test_verify_chain(void **state)
{
    (void)state;
    mr_x509_verify_opts o = {.intermediates = sk_X509_new_null()};
    assert_true(sk_X509_push(o.intermediates, P.inter) > 0);
    MR_ASSERT_OK(mr_x509_verify(P.leaf, P.marble_root, NULL));
    MR_ASSERT_OK(mr_x509_verify(P.leaf, P.root, &o));
    MR_ASSERT_OK(mr_x509_verify(P.inter, P.root, NULL));
    mr_x509_verify_opts strict = {.strict = true, .intermediates = o.intermediates};
    MR_ASSERT_OK(mr_x509_verify(P.leaf, P.root, &strict));
    /* without the intermediate the root cannot be reached */
    MR_ASSERT_FAIL(mr_x509_verify(P.leaf, P.root, NULL), MR_ERR_AUTH,
                   "certificate verification failed: unable to get local issuer");
    /* wrong anchor */
    pki other;
    MR_ASSERT_OK(pki_build(&other, MR_KEY_EC_P256));
    MR_ASSERT_FAIL(mr_x509_verify(P.leaf, other.root, &o), MR_ERR_AUTH,
                   "certificate verification failed");
    MR_ASSERT_FAIL(mr_x509_verify(other.leaf, P.marble_root, NULL), MR_ERR_AUTH,
                   "certificate verification failed");
    /* the chosen failure category */
    mr_x509_verify_opts oa = {.fail_cat = MR_ERR_ATTESTATION};
    MR_ASSERT_FAIL(mr_x509_verify(other.leaf, P.marble_root, &oa), MR_ERR_ATTESTATION,
                   "certificate verification failed");
    pki_free(&other);
    sk_X509_free(o.intermediates);
}

static void test_verify_time(void **state)
{
    (void)state;
    mr_x509_attr cn = {NID_commonName, (char *)"short"};
    static const int eku[] = {MR_EKU_SERVER_AUTH};
    mr_x509_template t = {.subject = {&cn, 1}, .not_before = P.now, .not_after = P.now + 3600,
                          .ext_key_usage = eku, .n_ext_key_usage = 1,
                          .basic_constraints_valid = true};
    X509 *x = NULL;
    MR_ASSERT_OK(mr_x509_issue(&t, P.leaf_key, P.marble_root, P.inter_key, &x));
    mr_x509_verify_opts o = {.at = P.now + 10};
    MR_ASSERT_OK(mr_x509_verify(x, P.marble_root, &o));
    o.at = P.now + 3601;
    MR_ASSERT_FAIL(mr_x509_verify(x, P.marble_root, &o), MR_ERR_AUTH, "certificate has expired");
    o.at = P.now - 10;
    MR_ASSERT_FAIL(mr_x509_verify(x, P.marble_root, &o), MR_ERR_AUTH,
                   "certificate is not yet valid");
    X509_free(x);
}

static void test_verify_purpose(void **state)
{
    (void)state;
    mr_x509_attr cn = {NID_commonName, (char *)"client only"};
    static const int eku[] = {MR_EKU_CLIENT_AUTH};
    mr_x509_template t = {.subject = {&cn, 1}, .not_before = P.now, .not_after = P.now + 3600,
                          .ext_key_usage = eku, .n_ext_key_usage = 1};
    X509 *x = NULL;
    MR_ASSERT_OK(mr_x509_issue(&t, P.leaf_key, P.marble_root, P.inter_key, &x));
    MR_ASSERT_FAIL(mr_x509_verify(x, P.marble_root, NULL), MR_ERR_AUTH,
                   "unsuitable certificate purpose");
    mr_x509_verify_opts o = {.purpose = MR_X509_PURPOSE_CLIENT};
    MR_ASSERT_OK(mr_x509_verify(x, P.marble_root, &o));
    o.purpose = MR_X509_PURPOSE_ANY;
    MR_ASSERT_OK(mr_x509_verify(x, P.marble_root, &o));
    X509_free(x);
}

/* A CA allowed to sign CRLs and a leaf under it. */
static void crl_pki(X509 **ca, X509 **leaf)
{
    mr_x509_template t;
    mr_x509_attr cn;
    mr_ip ips[2];
    pki_ca_template(&t, "CRL CA", P.now, &cn, ips);
    t.key_usage |= MR_KU_CRL_SIGN;
    MR_ASSERT_OK(mr_x509_issue(&t, P.root_key, NULL, P.root_key, ca));
    mr_x509_attr leaf_cn = {NID_commonName, (char *)"leaf"};
    mr_x509_template lt = {.subject = {&leaf_cn, 1}, .not_before = P.now,
                           .not_after = P.now + 3600};
    MR_ASSERT_OK(mr_x509_issue(&lt, P.leaf_key, *ca, P.root_key, leaf));
}

static void test_verify_crl(void **state)
{
    (void)state;
    X509 *ca = NULL, *leaf = NULL;
    crl_pki(&ca, &leaf);
    X509_CRL *revoking = make_crl(ca, P.root_key, leaf, P.now);
    X509_CRL *clean = make_crl(ca, P.root_key, NULL, P.now);
    /* CRL round trip through DER parsing */
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(revoking, &der);
    X509_CRL *parsed = NULL;
    MR_ASSERT_OK(mr_x509_crl_from_der(MR_SLICE(der, (size_t)len), &parsed));
    MR_ASSERT_FAIL(mr_x509_crl_from_der(MR_SLICE(der, (size_t)len - 3), &parsed), MR_ERR_USAGE,
                   "invalid CRL");
    OPENSSL_free(der);
    mr_x509_verify_opts o = {.crls = sk_X509_CRL_new_null()};
    assert_true(sk_X509_CRL_push(o.crls, clean) > 0);
    MR_ASSERT_OK(mr_x509_verify(leaf, ca, &o));
    sk_X509_CRL_pop_free(o.crls, X509_CRL_free);
    o.crls = sk_X509_CRL_new_null();
    assert_true(sk_X509_CRL_push(o.crls, parsed) > 0);
    MR_ASSERT_FAIL(mr_x509_verify(leaf, ca, &o), MR_ERR_AUTH, "certificate revoked");
    sk_X509_CRL_pop_free(o.crls, X509_CRL_free);
    /* a missing CRL for the leaf's issuer fails when CRLs are checked */
    o.crls = sk_X509_CRL_new_null();
    MR_ASSERT_FAIL(mr_x509_verify(leaf, ca, &o), MR_ERR_AUTH, "unable to get certificate CRL");
    sk_X509_CRL_free(o.crls);
    X509_free(ca);
    X509_free(leaf);
    X509_CRL_free(revoking);
}

/* ---- CSR ---- */

static void test_csr(void **state)
{
    (void)state;
    mr_x509_attr attrs[] = {{NID_commonName, (char *)"marble"}, {NID_countryName, (char *)"US"}};
    mr_x509_name subject = {attrs, 2};
    const char *dns[] = {"marble.local", "db"};
    mr_ip ips[1];
    MR_ASSERT_OK(mr_ip_parse("10.1.2.3", &ips[0]));
    mr_buf der = plain_buf();
    MR_ASSERT_OK(mr_csr_create(P.leaf_key, &subject, dns, 2, ips, 1, &der));
    X509_REQ *req = NULL;
    MR_ASSERT_OK(mr_csr_from_der(mr_buf_slice(&der), &req));
    EVP_PKEY *pk = NULL;
    MR_ASSERT_OK(mr_csr_pubkey(req, &pk));
    assert_true(mr_key_public_equal(pk, P.leaf_key));
    mr_x509_name got = {0};
    MR_ASSERT_OK(mr_csr_subject(req, &got));
    assert_int_equal(got.count, 2);
    assert_int_equal(got.attrs[0].nid, NID_countryName);
    assert_string_equal(got.attrs[1].value, "marble");
    mr_x509_name_clear(&got);
    mr_x509_san_list sans = {0};
    MR_ASSERT_OK(mr_csr_sans(req, &sans));
    assert_int_equal(sans.n_dns, 2);
    assert_string_equal(sans.dns[1], "db");
    assert_int_equal(sans.n_ips, 1);
    assert_hex_equal(sans.ips[0].addr, 4, "0a010203");
    mr_x509_san_list_clear(&sans);
    X509_REQ_free(req);
    req = NULL;
    /* a flipped bit in the signature (last byte of the DER) */
    der.data[der.len - 1] ^= 0x01;
    MR_ASSERT_FAIL(mr_csr_from_der(mr_buf_slice(&der), &req), MR_ERR_AUTH,
                   "CSR signature verification failed");
    der.data[der.len - 1] ^= 0x01;
    MR_ASSERT_FAIL(mr_csr_from_der(MR_SLICE(der.data, der.len - 2), &req), MR_ERR_USAGE,
                   "invalid CSR encoding");
    assert_null(req);
    mr_buf_free(&der);
}

static void test_csr_empty_and_types(void **state)
{
    (void)state;
    static const mr_key_type types[] = {MR_KEY_EC_P384, MR_KEY_ED25519, MR_KEY_RSA};
    for (size_t i = 0; i < MR_ARRAY_LEN(types); i++) {
        EVP_PKEY *k = NULL;
        MR_ASSERT_OK(mr_key_generate(types[i], 2048, &k));
        mr_buf der = plain_buf();
        MR_ASSERT_OK(mr_csr_create(k, NULL, NULL, 0, NULL, 0, &der));
        X509_REQ *req = NULL;
        MR_ASSERT_OK(mr_csr_from_der(mr_buf_slice(&der), &req));
        mr_x509_san_list sans = {0};
        MR_ASSERT_OK(mr_csr_sans(req, &sans));
        assert_int_equal(sans.n_dns + sans.n_ips, 0);
        mr_x509_name got = {0};
        MR_ASSERT_OK(mr_csr_subject(req, &got));
        assert_int_equal(got.count, 0);
        mr_x509_name_clear(&got);
        mr_x509_san_list_clear(&sans);
        X509_REQ_free(req);
        EVP_PKEY_free(k);
        mr_buf_free(&der);
    }
}

/* mr_csr_read: the same subject, SANs and errors as the general path, for EC requests (read
 * without OpenSSL's key decoder) and for the key types that take the general path. */
static void check_read_matches(mr_slice der)
{
    X509_REQ *req = NULL;
    mr_x509_name a = {0}, b = {0};
    mr_x509_san_list sa = {0}, sb = {0};
    MR_ASSERT_OK(mr_csr_from_der(der, &req));
    MR_ASSERT_OK(mr_csr_subject(req, &a));
    MR_ASSERT_OK(mr_csr_sans(req, &sa));
    MR_ASSERT_OK(mr_csr_read(der, &b, &sb));
    assert_int_equal(a.count, b.count);
    for (size_t i = 0; i < a.count; i++) {
        assert_int_equal(a.attrs[i].nid, b.attrs[i].nid);
        assert_string_equal(a.attrs[i].value, b.attrs[i].value);
    }
    assert_int_equal(sa.n_dns, sb.n_dns);
    for (size_t i = 0; i < sa.n_dns; i++)
        assert_string_equal(sa.dns[i], sb.dns[i]);
    assert_int_equal(sa.n_ips, sb.n_ips);
    for (size_t i = 0; i < sa.n_ips; i++)
        assert_memory_equal(sa.ips[i].addr, sb.ips[i].addr, sa.ips[i].len);
    mr_x509_name_clear(&a);
    mr_x509_name_clear(&b);
    mr_x509_san_list_clear(&sa);
    mr_x509_san_list_clear(&sb);
    X509_REQ_free(req);
}

static void test_csr_read(void **state)
{
    (void)state;
    static const mr_key_type types[] = {MR_KEY_EC_P256, MR_KEY_EC_P384, MR_KEY_EC_P521,
                                        MR_KEY_ED25519, MR_KEY_RSA};
    mr_x509_attr attrs[] = {{NID_commonName, (char *)"marble"}, {NID_countryName, (char *)"US"},
                            {NID_organizationalUnitName, (char *)"ou"}};
    mr_x509_name subject = {attrs, 3};
    const char *dns[] = {"marble.local", "db"};
    mr_ip ips[2];
    MR_ASSERT_OK(mr_ip_parse("10.1.2.3", &ips[0]));
    MR_ASSERT_OK(mr_ip_parse("::1", &ips[1]));
    for (size_t i = 0; i < MR_ARRAY_LEN(types); i++) {
        EVP_PKEY *k = NULL;
        MR_ASSERT_OK(mr_key_generate(types[i], 2048, &k));
        mr_buf der = plain_buf(), bare = plain_buf();
        MR_ASSERT_OK(mr_csr_create(k, &subject, dns, 2, ips, 2, &der));
        MR_ASSERT_OK(mr_csr_create(k, NULL, NULL, 0, NULL, 0, &bare));
        check_read_matches(mr_buf_slice(&der));
        check_read_matches(mr_buf_slice(&bare));
        /* errors: the general path's texts; outputs untouched */
        mr_x509_name n = {0};
        mr_x509_san_list l = {0};
        der.data[der.len - 1] ^= 0x01;
        MR_ASSERT_FAIL(mr_csr_read(mr_buf_slice(&der), &n, &l), MR_ERR_AUTH,
                       "CSR signature verification failed");
        der.data[der.len - 1] ^= 0x01;
        MR_ASSERT_FAIL(mr_csr_read(MR_SLICE(der.data, der.len - 2), &n, &l), MR_ERR_USAGE,
                       "invalid CSR encoding");
        MR_ASSERT_OK(mr_buf_append_u8(&der, 0));
        MR_ASSERT_FAIL(mr_csr_read(mr_buf_slice(&der), &n, &l), MR_ERR_USAGE,
                       "trailing data");
        MR_ASSERT_FAIL(mr_csr_read(MR_SLICE(der.data, 0), &n, &l), MR_ERR_USAGE, "bad length");
        assert_int_equal(n.count, 0);
        assert_null(l.dns);
        assert_null(l.ips);
        /* a changed subject byte: parsed, but the signature no longer covers it */
        bare.data[bare.len / 3] ^= 0x01;
        mr_result r = mr_csr_read(mr_buf_slice(&bare), &n, &l);
        assert_false(mr_ok(r));
        mr_buf_free(&der);
        mr_buf_free(&bare);
        EVP_PKEY_free(k);
    }
}

/* ---- real Intel SGX collateral (tests/data/attestation) ---- */

#define INTEL_VERIFY_AT ((time_t)1751624924) /* 2025-07-04T10:28:44Z, inside the window */

static mr_buf read_vector(const char *rel)
{
    char path[1024];
    FILE *f = fopen(mr_test_vector_path(path, sizeof(path), rel), "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    mr_buf b = plain_buf();
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        MR_ASSERT_OK(mr_buf_append(&b, chunk, n));
    fclose(f);
    return b;
}

static const char *json_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    assert_non_null(v);
    return v;
}

static void test_intel_collateral(void **state)
{
    (void)state;
    mr_buf root_der = read_vector("intel-sgx-root-ca/Intel_SGX_Provisioning_Certification_RootCA.der");
    mr_buf coll = read_vector("sgx-v3-phala/collateral.json");
    json_t *j = json_loadb((const char *)coll.data, coll.len, 0, NULL);
    assert_non_null(j);
    X509 *root = NULL;
    MR_ASSERT_OK(mr_x509_from_der(mr_buf_slice(&root_der), &root));
    uint8_t d[32];
    MR_ASSERT_OK(mr_x509_sha256(root, d));
    assert_hex_equal(d, 32, "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
    EVP_PKEY *root_key = NULL;
    MR_ASSERT_OK(mr_x509_pubkey(root, &root_key));
    mr_buf spki = plain_buf();
    MR_ASSERT_OK(mr_key_public_to_der(root_key, MR_KEYFMT_PKIX, &spki));
    MR_ASSERT_OK(mr_sha256(spki.data, spki.len, d));
    assert_hex_equal(d, 32, "a0af031289f5d5d4132f9186068a7fc13628633ba235777472e29b6b6c67a49e");
    mr_buf spki2 = plain_buf();
    MR_ASSERT_OK(mr_x509_spki_der(root, &spki2));
    assert_int_equal(spki2.len, spki.len);
    assert_memory_equal(spki2.data, spki.data, spki.len);
    mr_buf_free(&spki2);
    mr_buf cn = plain_buf();
    MR_ASSERT_OK(mr_x509_subject_cn(root, &cn));
    assert_string_equal((char *)cn.data, "Intel SGX Root CA");
    /* TCB signing chain + Root CA CRL, at a time inside the collateral window */
    STACK_OF(X509) *chain = NULL;
    MR_ASSERT_OK(mr_x509_chain_from_pem(MR_SLICE_STR(json_str(j, "tcb_info_issuer_chain")), &chain));
    assert_int_equal(sk_X509_num(chain), 2);
    mr_buf crl_der = hexbuf(json_str(j, "root_ca_crl"));
    X509_CRL *crl = NULL;
    MR_ASSERT_OK(mr_x509_crl_from_der(mr_buf_slice(&crl_der), &crl));
    mr_x509_verify_opts o = {.at = INTEL_VERIFY_AT, .intermediates = chain,
                             .crls = sk_X509_CRL_new_null(), .purpose = MR_X509_PURPOSE_ANY,
                             .fail_cat = MR_ERR_ATTESTATION, .strict = true};
    assert_true(sk_X509_CRL_push(o.crls, crl) > 0);
    X509 *signer = sk_X509_value(chain, 0);
    MR_ASSERT_OK(mr_x509_verify(signer, root, &o));
    o.at = (time_t)2208988800; /* 2040: the signing certificate has expired */
    MR_ASSERT_FAIL(mr_x509_verify(signer, root, &o), MR_ERR_ATTESTATION,
                   "certificate verification failed");
    /* the TCB Info signature: raw r||s over the exact JSON text */
    mr_buf raw = hexbuf(json_str(j, "tcb_info_signature")), sig = plain_buf();
    MR_ASSERT_OK(mr_ecdsa_sig_raw_to_der(mr_buf_slice(&raw), &sig));
    EVP_PKEY *signer_key = NULL;
    MR_ASSERT_OK(mr_x509_pubkey(signer, &signer_key));
    const char *tcb_info = json_str(j, "tcb_info");
    MR_ASSERT_OK(mr_key_verify(signer_key, MR_SLICE_STR(tcb_info), mr_buf_slice(&sig)));
    MR_ASSERT_OK(mr_ecdsa_p256_verify_raw(signer_key, MR_SLICE_STR(tcb_info), mr_buf_slice(&raw)));
    MR_ASSERT_FAIL(mr_key_verify(signer_key, MR_SLICE(tcb_info, strlen(tcb_info) - 1),
                                 mr_buf_slice(&sig)),
                   MR_ERR_AUTH, "signature verification failed");
    sk_X509_CRL_pop_free(o.crls, X509_CRL_free);
    sk_X509_pop_free(chain, X509_free);
    X509_free(root);
    json_decref(j);
    mr_buf_free(&root_der);
    mr_buf_free(&coll);
    mr_buf_free(&spki);
    mr_buf_free(&cn);
    mr_buf_free(&crl_der);
    mr_buf_free(&raw);
    mr_buf_free(&sig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_template_shape),
        cmocka_unit_test(test_validity_and_serial),
        cmocka_unit_test(test_leaf_shape),
        cmocka_unit_test(test_subject_go_order),
        cmocka_unit_test(test_issue_options),
        cmocka_unit_test(test_issue_der_matches_issue),
        cmocka_unit_test(test_signature_algorithms),
        cmocka_unit_test(test_parse_round_trip),
        cmocka_unit_test(test_verify_chain),
        cmocka_unit_test(test_verify_time),
        cmocka_unit_test(test_verify_purpose),
        cmocka_unit_test(test_verify_crl),
        cmocka_unit_test(test_csr),
        cmocka_unit_test(test_csr_empty_and_types),
        cmocka_unit_test(test_csr_read),
        cmocka_unit_test(test_intel_collateral),
    };
    return cmocka_run_group_tests_name("crypto-x509", tests, pki_setup, pki_teardown);
}
