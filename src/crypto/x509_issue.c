/* SPDX-License-Identifier: Apache-2.0 */
/* Certificate issuance from a template, following Go's x509.CreateCertificate defaults. */
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "crypto/hash.h"
#include "crypto/internal.h"
#include "crypto/key.h"
#include "crypto/rand.h"

#define MR_SERIAL_MAX 20
#define MR_KEY_ID_LEN 20

/* MaxInt64 nanoseconds in whole seconds. */
#define MR_MAX_DURATION_S INT64_C(9223372036)

time_t mr_x509_max_not_after(time_t not_before)
{
    if (not_before > (time_t)(INT64_MAX - MR_MAX_DURATION_S))
        return (time_t)INT64_MAX;
    return not_before + (time_t)MR_MAX_DURATION_S;
}

static const char *const eku_oids[] = {
    "2.5.29.37.0",            /* any */
    "1.3.6.1.5.5.7.3.1",      /* serverAuth */
    "1.3.6.1.5.5.7.3.2",      /* clientAuth */
    "1.3.6.1.5.5.7.3.3",      /* codeSigning */
    "1.3.6.1.5.5.7.3.4",      /* emailProtection */
    "1.3.6.1.5.5.7.3.5",      /* ipsecEndSystem */
    "1.3.6.1.5.5.7.3.6",      /* ipsecTunnel */
    "1.3.6.1.5.5.7.3.7",      /* ipsecUser */
    "1.3.6.1.5.5.7.3.8",      /* timeStamping */
    "1.3.6.1.5.5.7.3.9",      /* OCSPSigning */
    "1.3.6.1.4.1.311.10.3.3", /* Microsoft server gated crypto */
    "2.16.840.1.113730.4.1",  /* Netscape server gated crypto */
    "1.3.6.1.4.1.311.2.1.22", /* Microsoft commercial code signing */
    "1.3.6.1.4.1.311.61.1.1", /* Microsoft kernel code signing */
};

static MR_RESULT set_serial(X509 *x, mr_slice given)
{
    uint8_t rnd[16];
    mr_slice s = given;
    mr_result res = MR_FAILURE;
    BIGNUM *bn = NULL;
    MR_ENSURE(given.len <= MR_SERIAL_MAX, MR_ERR_USAGE, "serial number too long");
    if (s.len == 0) {
        MR_GUARD(mr_crypto_random(rnd, sizeof(rnd)));
        s = MR_SLICE(rnd, sizeof(rnd));
    }
    bn = BN_bin2bn(s.ptr, (int)s.len, NULL);
    MR_ENSURE_ALLOC(bn);
    MR_ENSURE_OUT(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL, MR_ERR_INTERNAL,
                  "serial number");
    res = MR_SUCCESS;
out:
    BN_free(bn);
    return res;
}

static MR_RESULT set_validity(X509 *x, time_t nb, time_t na)
{
    MR_ENSURE(na >= nb, MR_ERR_USAGE, "certificate notAfter is before notBefore");
    /* ASN1_TIME_set picks UTCTime for 1950..2049 and GeneralizedTime otherwise (RFC 5280). */
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, nb);
    ASN1_TIME *t2 = ASN1_TIME_set(NULL, na);
    int ok = t1 != NULL && t2 != NULL && X509_set1_notBefore(x, t1) == 1 &&
             X509_set1_notAfter(x, t2) == 1;
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    MR_ENSURE(ok, MR_ERR_USAGE, "certificate validity out of range");
    return MR_SUCCESS;
}

/* Adds an extension from its OpenSSL internal structure; takes nothing. */
static MR_RESULT add_ext(X509 *x, int nid, void *value, bool critical)
{
    MR_GUARD_OSSL(X509_add1_ext_i2d(x, nid, value, critical ? 1 : 0, X509V3_ADD_APPEND),
                  MR_ERR_INTERNAL, "cannot add certificate extension");
    return MR_SUCCESS;
}

static MR_RESULT add_key_usage(X509 *x, unsigned ku)
{
    mr_result res = MR_FAILURE;
    ASN1_BIT_STRING *bs = NULL;
    if (ku == 0)
        return MR_SUCCESS;
    MR_ENSURE(ku < (1u << 9), MR_ERR_USAGE, "invalid key usage %u", ku);
    bs = ASN1_BIT_STRING_new();
    MR_ENSURE_ALLOC(bs);
    for (int i = 0; i < 9; i++)
        if (ku & (1u << i))
            MR_GUARD_OSSL_OUT(ASN1_BIT_STRING_set_bit(bs, i, 1), MR_ERR_INTERNAL, "key usage");
    MR_GUARD_OUT(add_ext(x, NID_key_usage, bs, true));
    res = MR_SUCCESS;
out:
    ASN1_BIT_STRING_free(bs);
    return res;
}

static MR_RESULT add_ext_key_usage(X509 *x, const int *eku, size_t n)
{
    mr_result res = MR_FAILURE;
    EXTENDED_KEY_USAGE *list = NULL;
    if (n == 0)
        return MR_SUCCESS;
    list = sk_ASN1_OBJECT_new_null();
    MR_ENSURE_ALLOC(list);
    for (size_t i = 0; i < n; i++) {
        MR_ENSURE_OUT(eku[i] >= 0 && (size_t)eku[i] < MR_ARRAY_LEN(eku_oids), MR_ERR_USAGE,
                      "unsupported extended key usage %d", eku[i]);
        ASN1_OBJECT *obj = OBJ_txt2obj(eku_oids[eku[i]], 1);
        MR_ENSURE_ALLOC_OUT(obj);
        if (sk_ASN1_OBJECT_push(list, obj) <= 0) {
            ASN1_OBJECT_free(obj);
            MR_BAIL_OUT(MR_ERR_INTERNAL, "out of memory");
        }
    }
    MR_GUARD_OUT(add_ext(x, NID_ext_key_usage, list, false));
    res = MR_SUCCESS;
out:
    sk_ASN1_OBJECT_pop_free(list, ASN1_OBJECT_free);
    return res;
}

static MR_RESULT add_basic_constraints(X509 *x, const mr_x509_template *t)
{
    mr_result res = MR_FAILURE;
    BASIC_CONSTRAINTS *bc = NULL;
    if (!t->basic_constraints_valid)
        return MR_SUCCESS;
    bc = BASIC_CONSTRAINTS_new();
    MR_ENSURE_ALLOC(bc);
    bc->ca = t->is_ca ? 0xFF : 0;
    if (t->is_ca && (t->max_path_len > 0 || (t->max_path_len == 0 && t->max_path_len_zero))) {
        bc->pathlen = ASN1_INTEGER_new();
        MR_ENSURE_ALLOC_OUT(bc->pathlen);
        MR_GUARD_OSSL_OUT(ASN1_INTEGER_set(bc->pathlen, t->max_path_len), MR_ERR_INTERNAL,
                          "path length");
    }
    MR_GUARD_OUT(add_ext(x, NID_basic_constraints, bc, true));
    res = MR_SUCCESS;
out:
    BASIC_CONSTRAINTS_free(bc);
    return res;
}

static MR_RESULT add_octets_ext(X509 *x, int nid, mr_slice id)
{
    mr_result res = MR_FAILURE;
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    MR_ENSURE_ALLOC(os);
    MR_GUARD_OSSL_OUT(ASN1_OCTET_STRING_set(os, id.ptr, (int)id.len), MR_ERR_INTERNAL,
                      "key identifier");
    MR_GUARD_OUT(add_ext(x, nid, os, false));
    res = MR_SUCCESS;
out:
    ASN1_OCTET_STRING_free(os);
    return res;
}

/* RFC 7093 method 1 (Go 1.25 default): first 20 bytes of SHA-256(subjectPublicKey bits). */
static MR_RESULT auto_ski(X509 *x, uint8_t out[MR_SHA256_LEN])
{
    const unsigned char *pk = NULL;
    int pk_len = 0;
    MR_GUARD_OSSL(X509_PUBKEY_get0_param(NULL, &pk, &pk_len, NULL, X509_get_X509_PUBKEY(x)),
                  MR_ERR_INTERNAL, "public key bits");
    return mr_sha256(pk, (size_t)pk_len, out);
}

static MR_RESULT add_ski(X509 *x, const mr_x509_template *t)
{
    uint8_t digest[MR_SHA256_LEN];
    mr_slice id = t->subject_key_id;
    if (id.len == 0 && !t->is_ca)
        return MR_SUCCESS;
    if (id.len == 0) {
        MR_GUARD(auto_ski(x, digest));
        id = MR_SLICE(digest, MR_KEY_ID_LEN);
    }
    return add_octets_ext(x, NID_subject_key_identifier, id);
}

static MR_RESULT add_aki(X509 *x, const mr_x509_template *t, X509 *parent)
{
    mr_result res = MR_FAILURE;
    AUTHORITY_KEYID *aki = NULL;
    mr_slice id = t->authority_key_id;
    if (parent != NULL && X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(x)) != 0 &&
        mr_x509_ski(parent).len > 0)
        id = mr_x509_ski(parent);
    if (id.len == 0)
        return MR_SUCCESS;
    aki = AUTHORITY_KEYID_new();
    MR_ENSURE_ALLOC(aki);
    aki->keyid = ASN1_OCTET_STRING_new();
    MR_ENSURE_ALLOC_OUT(aki->keyid);
    MR_GUARD_OSSL_OUT(ASN1_OCTET_STRING_set(aki->keyid, id.ptr, (int)id.len), MR_ERR_INTERNAL,
                      "authority key identifier");
    MR_GUARD_OUT(add_ext(x, NID_authority_key_identifier, aki, false));
    res = MR_SUCCESS;
out:
    AUTHORITY_KEYID_free(aki);
    return res;
}

static MR_RESULT add_sans(X509 *x, const mr_x509_template *t)
{
    GENERAL_NAMES *gens = NULL;
    MR_GUARD(mr_x509_gens_build(t->dns_names, t->n_dns_names, t->ips, t->n_ips, &gens));
    if (gens == NULL)
        return MR_SUCCESS;
    /* Critical only when the subject is empty (RFC 5280 §4.2.1.6, Go). */
    mr_result r = add_ext(x, NID_subject_alt_name, gens,
                          X509_NAME_entry_count(X509_get_subject_name(x)) == 0);
    GENERAL_NAMES_free(gens);
    return r;
}

static MR_RESULT add_extra(X509 *x, const mr_x509_ext *e)
{
    mr_result res = MR_FAILURE;
    ASN1_OBJECT *obj = NULL;
    ASN1_OCTET_STRING *os = NULL;
    X509_EXTENSION *ext = NULL;
    MR_ENSURE(e->oid != NULL, MR_ERR_USAGE, "extension without OID");
    obj = OBJ_txt2obj(e->oid, 1);
    MR_ENSURE_OUT(obj != NULL, MR_ERR_USAGE, "invalid extension OID \"%.64s\"", e->oid);
    os = ASN1_OCTET_STRING_new();
    MR_ENSURE_ALLOC_OUT(os);
    MR_GUARD_OSSL_OUT(ASN1_OCTET_STRING_set(os, e->value.ptr, (int)e->value.len),
                      MR_ERR_INTERNAL, "extension value");
    ext = X509_EXTENSION_create_by_OBJ(NULL, obj, e->critical ? 1 : 0, os);
    MR_ENSURE_ALLOC_OUT(ext);
    MR_GUARD_OSSL_OUT(X509_add_ext(x, ext, -1), MR_ERR_INTERNAL, "cannot add extension");
    res = MR_SUCCESS;
out:
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    return res;
}

/* Extensions in Go's order: KU, EKU, BC, SKI, AKI, SAN, then the extra ones. */
static MR_RESULT add_extensions(X509 *x, const mr_x509_template *t, X509 *parent)
{
    MR_GUARD(add_key_usage(x, t->key_usage));
    MR_GUARD(add_ext_key_usage(x, t->ext_key_usage, t->n_ext_key_usage));
    MR_GUARD(add_basic_constraints(x, t));
    MR_GUARD(add_ski(x, t));
    MR_GUARD(add_aki(x, t, parent));
    MR_GUARD(add_sans(x, t));
    MR_ENSURE(t->n_extra <= 64, MR_ERR_USAGE, "too many extensions");
    for (size_t i = 0; i < t->n_extra; i++)
        MR_GUARD(add_extra(x, &t->extra[i]));
    return MR_SUCCESS;
}

static MR_RESULT set_names(X509 *x, const mr_x509_template *t, X509 *parent)
{
    X509_NAME *subject = NULL;
    MR_GUARD(mr_x509_name_build(&t->subject, &subject));
    int ok = X509_set_subject_name(x, subject) == 1 &&
             X509_set_issuer_name(x, parent != NULL ? X509_get_subject_name(parent) : subject) == 1;
    X509_NAME_free(subject);
    MR_ENSURE(ok, MR_ERR_INTERNAL, "cannot set certificate names");
    return MR_SUCCESS;
}

/* The signer must own the key that the issuer (parent, or the subject when self-signed)
 * certifies, as Go checks. */
static MR_RESULT check_signer(EVP_PKEY *subject_key, X509 *parent, EVP_PKEY *signer)
{
    EVP_PKEY *issuer_key = subject_key;
    if (parent != NULL)
        MR_GUARD(mr_x509_pubkey(parent, &issuer_key));
    MR_GUARD(mr_key_check(signer));
    MR_ENSURE(mr_key_public_equal(issuer_key, signer), MR_ERR_USAGE,
              "signer key does not match the issuer's public key");
    return MR_SUCCESS;
}

static MR_RESULT sign_cert(X509 *x, EVP_PKEY *signer)
{
    const EVP_MD *md = NULL;
    MR_GUARD(mr_key_sig_md(signer, &md));
    MR_ENSURE(X509_sign(x, signer, md) > 0, MR_ERR_INTERNAL, "certificate signing failed");
    return MR_SUCCESS;
}

/* Builds and signs the certificate. direct_key sets an EC subject key from its point (no
 * OpenSSL encoder); such an X509 has no cached EVP_PKEY, so it must not leave this file. */
static MR_RESULT build(const mr_x509_template *t, EVP_PKEY *subject_key, X509 *parent,
                       EVP_PKEY *signer, bool direct_key, X509 **out)
{
    mr_result res = MR_FAILURE;
    X509 *x = NULL;
    MR_ENSURE(t != NULL && subject_key != NULL && signer != NULL, MR_ERR_USAGE,
              "certificate template, subject key and signer are required");
    MR_GUARD(mr_key_check(subject_key));
    MR_GUARD(check_signer(subject_key, parent, signer));
    x = X509_new();
    MR_ENSURE_ALLOC(x);
    MR_GUARD_OSSL_OUT(X509_set_version(x, X509_VERSION_3), MR_ERR_INTERNAL, "version");
    MR_GUARD_OUT(set_serial(x, t->serial));
    MR_GUARD_OUT(set_names(x, t, parent));
    MR_GUARD_OUT(set_validity(x, t->not_before, t->not_after));
    if (direct_key)
        MR_GUARD_OUT(mr_key_ec_set_x509_pubkey(X509_get_X509_PUBKEY(x), subject_key));
    else
        MR_GUARD_OSSL_OUT(X509_set_pubkey(x, subject_key), MR_ERR_USAGE, "invalid subject key");
    MR_GUARD_OUT(add_extensions(x, t, parent));
    MR_GUARD_OUT(sign_cert(x, signer));
    *out = x;
    x = NULL;
    res = MR_SUCCESS;
out:
    ERR_clear_error();
    X509_free(x);
    return res;
}

MR_RESULT mr_x509_issue(const mr_x509_template *t, EVP_PKEY *subject_key, X509 *parent,
                        EVP_PKEY *signer, X509 **out)
{
    return build(t, subject_key, parent, signer, false, out);
}

MR_RESULT mr_x509_issue_der(const mr_x509_template *t, EVP_PKEY *subject_key, X509 *parent,
                            EVP_PKEY *signer, mr_buf *der)
{
    X509 *x = NULL;
    MR_ENSURE(subject_key != NULL, MR_ERR_USAGE,
              "certificate template, subject key and signer are required");
    MR_GUARD(build(t, subject_key, parent, signer, mr_key_ec_der_supported(subject_key), &x));
    mr_result r = mr_x509_to_der(x, der);
    X509_free(x);
    return r;
}
