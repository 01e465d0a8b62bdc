/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: mr_x509_der_spki (the SubjectPublicKeyInfo found in a certificate's DER without
 * decoding it) and mr_csr_read_proven (a CSR whose key the caller has seen proven). */
#include "helpers.h"

#include <openssl/x509v3.h>

#include "crypto/csr.h"
#include "crypto/key.h"
#include "crypto/x509.h"
#include "pki.h"

/* A self-signed certificate for key: version 3 with an extension, or version 1 (no [0]
 * version field in its DER). */
static void make_cert(EVP_PKEY *key, bool v1, mr_buf *der)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, v1 ? X509_VERSION_1 : X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 4242), 1);
    X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                                (const unsigned char *)"marble", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, n), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (!v1) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:marble");
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    const EVP_MD *md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    assert_true(X509_sign(x, key, md) > 0);
    MR_ASSERT_OK(mr_x509_to_der(x, der));
    X509_free(x);
}

static void check_spki(const mr_buf *der)
{
    X509 *x = NULL;
    mr_buf want = plain_buf();
    mr_slice got = {0};
    MR_ASSERT_OK(mr_x509_from_der(mr_buf_slice(der), &x));
    MR_ASSERT_OK(mr_x509_spki_der(x, &want));
    MR_ASSERT_OK(mr_x509_der_spki(mr_buf_slice(der), &got));
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.ptr, want.data, want.len);
    /* the view lies inside the certificate */
    assert_true(got.ptr >= der->data && got.ptr + got.len <= der->data + der->len);
    /* every strict prefix is refused (the outer length no longer fits) */
    for (size_t n = 0; n < der->len; n++) {
        mr_slice s = {0};
        assert_false(mr_ok(mr_x509_der_spki(MR_SLICE(der->data, n), &s)));
        mr_error_clear();
    }
    mr_buf_free(&want);
    X509_free(x);
}

static void test_der_spki(void **state)
{
    (void)state;
    static const mr_key_type types[] = {MR_KEY_EC_P256, MR_KEY_EC_P384, MR_KEY_ED25519,
                                        MR_KEY_RSA};
    for (size_t i = 0; i < MR_ARRAY_LEN(types); i++) {
        EVP_PKEY *k = NULL;
        MR_ASSERT_OK(mr_key_generate(types[i], 2048, &k));
        for (int v1 = 0; v1 < 2; v1++) {
            mr_buf der = plain_buf();
            make_cert(k, v1 != 0, &der);
            check_spki(&der);
            mr_buf_free(&der);
        }
        EVP_PKEY_free(k);
    }
    /* the hierarchy the Coordinator issues */
    pki p;
    MR_ASSERT_OK(pki_build(&p, MR_KEY_EC_P256));
    X509 *certs[] = {p.root, p.inter, p.marble_root, p.leaf};
    for (size_t i = 0; i < MR_ARRAY_LEN(certs); i++) {
        mr_buf der = plain_buf();
        MR_ASSERT_OK(mr_x509_to_der(certs[i], &der));
        check_spki(&der);
        mr_buf_free(&der);
    }
    pki_free(&p);
}

static void test_der_spki_bad(void **state)
{
    (void)state;
    mr_slice s = {0};
    /* not a SEQUENCE; a SEQUENCE holding a non-SEQUENCE; a high tag number; a 5-byte length */
    static const uint8_t not_seq[] = {0x02, 0x01, 0x00};
    static const uint8_t inner_int[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    static const uint8_t high_tag[] = {0x30, 0x03, 0x1f, 0x01, 0x00};
    static const uint8_t long_len[] = {0x30, 0x85, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00};
    MR_ASSERT_FAIL(mr_x509_der_spki(MR_SLICE(not_seq, sizeof(not_seq)), &s), MR_ERR_USAGE,
                   "unexpected DER tag");
    MR_ASSERT_FAIL(mr_x509_der_spki(MR_SLICE(inner_int, sizeof(inner_int)), &s), MR_ERR_USAGE,
                   "unexpected DER tag");
    MR_ASSERT_FAIL(mr_x509_der_spki(MR_SLICE(high_tag, sizeof(high_tag)), &s), MR_ERR_USAGE,
                   "unsupported DER tag");
    MR_ASSERT_FAIL(mr_x509_der_spki(MR_SLICE(long_len, sizeof(long_len)), &s), MR_ERR_USAGE,
                   "unsupported DER length");
    MR_ASSERT_FAIL(mr_x509_der_spki(MR_SLICE(NULL, 0), &s), MR_ERR_PROTOCOL, "truncated");
}

static void read_ok(mr_slice csr, mr_slice proven, const char *want_cn)
{
    mr_x509_name n = {0};
    mr_x509_san_list l = {0};
    MR_ASSERT_OK(mr_csr_read_proven(csr, proven, &n, &l));
    assert_int_equal(n.count, 1);
    assert_string_equal(n.attrs[0].value, want_cn);
    assert_int_equal(l.n_dns, 1);
    assert_string_equal(l.dns[0], "marble.local");
    mr_x509_name_clear(&n);
    mr_x509_san_list_clear(&l);
}

static void test_csr_read_proven(void **state)
{
    (void)state;
    static const mr_key_type types[] = {MR_KEY_EC_P256, MR_KEY_EC_P384, MR_KEY_EC_P521};
    mr_x509_attr attrs[] = {{NID_commonName, (char *)"marble"}};
    mr_x509_name subject = {attrs, 1};
    const char *dns[] = {"marble.local"};
    for (size_t i = 0; i < MR_ARRAY_LEN(types); i++) {
        EVP_PKEY *k = NULL, *other = NULL;
        MR_ASSERT_OK(mr_key_generate(types[i], 0, &k));
        MR_ASSERT_OK(mr_key_generate(types[i], 0, &other));
        mr_buf csr = plain_buf(), cert = plain_buf(), other_cert = plain_buf();
        MR_ASSERT_OK(mr_csr_create(k, &subject, dns, 1, NULL, 0, &csr));
        make_cert(k, false, &cert);
        make_cert(other, false, &other_cert);
        mr_slice mine = {0}, theirs = {0};
        MR_ASSERT_OK(mr_x509_der_spki(mr_buf_slice(&cert), &mine));
        MR_ASSERT_OK(mr_x509_der_spki(mr_buf_slice(&other_cert), &theirs));
        /* a sound request: the same result with the proven key, another key or none */
        read_ok(mr_buf_slice(&csr), mine, "marble");
        read_ok(mr_buf_slice(&csr), theirs, "marble");
        read_ok(mr_buf_slice(&csr), MR_SLICE(NULL, 0), "marble");
        /* a broken signature: refused unless the request's key is the proven one, whose
         * possession the caller has already seen proven */
        csr.data[csr.len - 1] ^= 0x01;
        mr_x509_name n = {0};
        mr_x509_san_list l = {0};
        MR_ASSERT_FAIL(mr_csr_read_proven(mr_buf_slice(&csr), theirs, &n, &l), MR_ERR_AUTH,
                       "CSR signature verification failed");
        MR_ASSERT_FAIL(mr_csr_read_proven(mr_buf_slice(&csr), MR_SLICE(NULL, 0), &n, &l),
                       MR_ERR_AUTH, "CSR signature verification failed");
        MR_ASSERT_FAIL(mr_csr_read(mr_buf_slice(&csr), &n, &l), MR_ERR_AUTH,
                       "CSR signature verification failed");
        /* a prefix of the proven key is not the proven key */
        MR_ASSERT_FAIL(mr_csr_read_proven(mr_buf_slice(&csr), MR_SLICE(mine.ptr, mine.len - 1),
                                          &n, &l),
                       MR_ERR_AUTH, "CSR signature verification failed");
        assert_int_equal(n.count, 0);
        assert_null(l.dns);
        read_ok(mr_buf_slice(&csr), mine, "marble");
        /* malformed requests are refused whatever key is proven */
        MR_ASSERT_FAIL(mr_csr_read_proven(MR_SLICE(csr.data, csr.len - 2), mine, &n, &l),
                       MR_ERR_USAGE, "invalid CSR encoding");
        mr_buf_free(&csr);
        mr_buf_free(&cert);
        mr_buf_free(&other_cert);
        EVP_PKEY_free(k);
        EVP_PKEY_free(other);
    }
}

/* Keys outside the fast path (Ed25519, RSA) always have their signature checked. */
static void test_csr_read_proven_other_keys(void **state)
{
    (void)state;
    static const mr_key_type types[] = {MR_KEY_ED25519, MR_KEY_RSA};
    mr_x509_attr attrs[] = {{NID_commonName, (char *)"marble"}};
    mr_x509_name subject = {attrs, 1};
    const char *dns[] = {"marble.local"};
    for (size_t i = 0; i < MR_ARRAY_LEN(types); i++) {
        EVP_PKEY *k = NULL;
        MR_ASSERT_OK(mr_key_generate(types[i], 2048, &k));
        mr_buf csr = plain_buf(), cert = plain_buf();
        MR_ASSERT_OK(mr_csr_create(k, &subject, dns, 1, NULL, 0, &csr));
        make_cert(k, false, &cert);
        mr_slice mine = {0};
        MR_ASSERT_OK(mr_x509_der_spki(mr_buf_slice(&cert), &mine));
        read_ok(mr_buf_slice(&csr), mine, "marble");
        csr.data[csr.len - 1] ^= 0x01;
        mr_x509_name n = {0};
        mr_x509_san_list l = {0};
        MR_ASSERT_FAIL(mr_csr_read_proven(mr_buf_slice(&csr), mine, &n, &l), MR_ERR_AUTH,
                       "CSR signature verification failed");
        mr_buf_free(&csr);
        mr_buf_free(&cert);
        EVP_PKEY_free(k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_der_spki),
        cmocka_unit_test(test_der_spki_bad),
        cmocka_unit_test(test_csr_read_proven),
        cmocka_unit_test(test_csr_read_proven_other_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
