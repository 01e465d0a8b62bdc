/* SPDX-License-Identifier: Apache-2.0 */
/* Test PKI and MARBLE_TTLS_CONFIG builders for the TTLS unit tests. */
#ifndef TTLS_TEST_UTIL_H
#define TTLS_TEST_UTIL_H

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <time.h>

#include "common/buf.h"
#include "common/text.h"
#include "crypto/key.h"
#include "crypto/x509.h"
#include "mr_test.h"
#include "ttls/ttls.h"

typedef struct tpki {
    EVP_PKEY *ca_key;
    X509 *ca;
    mr_buf ca_pem;
} tpki;

typedef struct tleaf {
    mr_buf cert_pem;
    mr_buf key_pem; /* secret */
} tleaf;

static inline void tpki_new(tpki *p)
{
    memset(p, 0, sizeof(*p));
    mr_buf_init(&p->ca_pem, 0, 0);
    MR_ASSERT_OK(mr_key_generate(MR_KEY_EC_P256, 0, &p->ca_key));
    mr_x509_attr cn = {NID_commonName, (char *)"test marble root"};
    mr_x509_template t = {0};
    t.subject.attrs = &cn;
    t.subject.count = 1;
    t.not_before = time(NULL) - 60;
    t.not_after = time(NULL) + 86400;
    t.key_usage = MR_KU_DIGITAL_SIGNATURE | MR_KU_CERT_SIGN;
    t.basic_constraints_valid = true;
    t.is_ca = true;
    MR_ASSERT_OK(mr_x509_issue(&t, p->ca_key, NULL, p->ca_key, &p->ca));
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, p->ca), 1);
    char *d = NULL;
    long n = BIO_get_mem_data(b, &d);
    MR_ASSERT_OK(mr_buf_append(&p->ca_pem, d, (size_t)n));
    MR_ASSERT_OK(mr_buf_nul_terminate(&p->ca_pem));
    BIO_free(b);
}

static inline void tpki_free(tpki *p)
{
    EVP_PKEY_free(p->ca_key);
    X509_free(p->ca);
    mr_buf_free(&p->ca_pem);
}

/* A marble certificate: SANs localhost and 127.0.0.1, the marble-type extension when type. */
static inline void tleaf_new(const tpki *p, const char *type, tleaf *l)
{
    EVP_PKEY *k = NULL;
    X509 *c = NULL;
    mr_buf_init(&l->cert_pem, 0, 0);
    mr_buf_init(&l->key_pem, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_key_generate(MR_KEY_EC_P384, 0, &k));
    mr_x509_attr cn = {NID_commonName, (char *)"0b6f1c1e-3f7d-4f0c-9d5a-5e0f1c2b3a4d"};
    static const char *const dns[] = {"localhost"};
    mr_ip ip = {0};
    MR_ASSERT_OK(mr_ip_parse("127.0.0.1", &ip));
    static const int eku[] = {MR_EKU_SERVER_AUTH, MR_EKU_CLIENT_AUTH};
    mr_x509_ext ext = {MR_TTLS_MARBLE_TYPE_OID, false, MR_SLICE(type, type != NULL ? strlen(type) : 0)};
    mr_x509_template t = {0};
    t.subject.attrs = &cn;
    t.subject.count = 1;
    t.dns_names = dns;
    t.n_dns_names = 1;
    t.ips = &ip;
    t.n_ips = 1;
    t.not_before = time(NULL) - 60;
    t.not_after = time(NULL) + 86400;
    t.key_usage = MR_KU_DIGITAL_SIGNATURE | MR_KU_KEY_AGREEMENT;
    t.ext_key_usage = eku;
    t.n_ext_key_usage = 2;
    t.basic_constraints_valid = true;
    t.extra = type != NULL ? &ext : NULL;
    t.n_extra = type != NULL ? 1 : 0;
    MR_ASSERT_OK(mr_x509_issue(&t, k, p->ca, p->ca_key, &c));
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, c), 1);
    char *d = NULL;
    long n = BIO_get_mem_data(b, &d);
    MR_ASSERT_OK(mr_buf_append(&l->cert_pem, d, (size_t)n));
    MR_ASSERT_OK(mr_buf_nul_terminate(&l->cert_pem));
    BIO_free(b);
    MR_ASSERT_OK(mr_key_private_to_pem(k, MR_KEYFMT_PKCS8, &l->key_pem));
    MR_ASSERT_OK(mr_buf_nul_terminate(&l->key_pem));
    X509_free(c);
    EVP_PKEY_free(k);
}

static inline void tleaf_free(tleaf *l)
{
    mr_buf_free(&l->cert_pem);
    mr_buf_free(&l->key_pem);
}

/* Appends "key":{"cacrt":..,"clicrt":..,"clikey":..[,"clientAuth":b][,"allowedTypes":[t]]} */
static inline void tcfg_entry(mr_buf *out, bool first, const char *key, const mr_buf *ca,
                              const tleaf *l, int client_auth, const char *type)
{
    if (!first)
        MR_ASSERT_OK(mr_buf_append_u8(out, ','));
    MR_ASSERT_OK(mr_json_quote(out, key, strlen(key)));
    MR_ASSERT_OK(mr_buf_append_str(out, ":{\"cacrt\":"));
    MR_ASSERT_OK(mr_json_quote(out, (const char *)ca->data, ca->len));
    MR_ASSERT_OK(mr_buf_append_str(out, ",\"clicrt\":"));
    MR_ASSERT_OK(mr_json_quote(out, (const char *)l->cert_pem.data, l->cert_pem.len));
    MR_ASSERT_OK(mr_buf_append_str(out, ",\"clikey\":"));
    MR_ASSERT_OK(mr_json_quote(out, (const char *)l->key_pem.data, l->key_pem.len));
    if (client_auth >= 0)
        MR_ASSERT_OK(mr_buf_append_str(out, client_auth ? ",\"clientAuth\":true" : ",\"clientAuth\":false"));
    if (type != NULL) {
        MR_ASSERT_OK(mr_buf_append_str(out, ",\"allowedTypes\":["));
        MR_ASSERT_OK(mr_json_quote(out, type, strlen(type)));
        MR_ASSERT_OK(mr_buf_append_u8(out, ']'));
    }
    MR_ASSERT_OK(mr_buf_append_u8(out, '}'));
}

#endif
