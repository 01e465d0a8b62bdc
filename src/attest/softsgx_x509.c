/* SPDX-License-Identifier: Apache-2.0 */
/*
 * softsgx init, the TEST certificate hierarchy (softsgx_int.h): a root CA, a PCK Platform or
 * Processor CA, the TCB signing certificate and a PCK certificate with Intel's SGX extension,
 * and CRLs. Everything here is for tests; nothing is Intel's.
 */
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/softsgx_int.h"
#include "common/buf.h"

#define TEST_ORG "MarbleRun-C softsgx TEST (not Intel Corporation)"
#define TEST_OU "TEST ONLY - never trust quotes chaining to this CA"
#define ROOT_CN "MarbleRun-C softsgx TEST Root CA - not Intel"
/* The verifier classifies certificates by Intel's common names, so the non-root
 * certificates carry them; organisation and unit say TEST. */
#define PROCESSOR_CA_CN "Intel SGX PCK Processor CA"
#define PLATFORM_CA_CN "Intel SGX PCK Platform CA"
#define PCK_CN "Intel SGX PCK Certificate"
#define TCB_SIGNING_CN "Intel SGX TCB Signing"
#define PCK_CRL_URL "https://softsgx.invalid/sgx/certification/v4/pckcrl?ca="
#define ROOT_CRL_URL "https://softsgx.invalid/SoftSGXTestRootCA.der"
#define SGX_EXT_OID "1.2.840.113741.1.13.1"

/* ---- small DER writer (for the SGX extension; all lengths are short) ------------------ */

static MR_RESULT der_tlv(mr_buf *out, uint8_t tag, const uint8_t *content, size_t len)
{
    MR_GUARD(mr_buf_append_u8(out, tag));
    if (len < 0x80) {
        MR_GUARD(mr_buf_append_u8(out, (uint8_t)len));
    } else if (len <= 0xff) {
        MR_GUARD(mr_buf_append_u8(out, 0x81));
        MR_GUARD(mr_buf_append_u8(out, (uint8_t)len));
    } else {
        MR_ENSURE(len <= 0xffff, MR_ERR_INTERNAL, "DER element too long");
        MR_GUARD(mr_buf_append_u8(out, 0x82));
        MR_GUARD(mr_buf_append_u8(out, (uint8_t)(len >> 8)));
        MR_GUARD(mr_buf_append_u8(out, (uint8_t)len));
    }
    return mr_buf_append(out, content, len);
}

/* DER of OID `prefix.arc` (prefix given as text). */
static MR_RESULT der_oid(mr_buf *out, const char *prefix, int arc)
{
    char txt[64];
    unsigned char der[64];
    ASN1_OBJECT *obj = NULL;
    int n = arc > 0 ? snprintf(txt, sizeof(txt), "%s.%d", prefix, arc)
                    : snprintf(txt, sizeof(txt), "%s", prefix);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(txt), MR_ERR_INTERNAL, "OID too long");
    obj = OBJ_txt2obj(txt, 1);
    MR_ENSURE(obj != NULL, MR_ERR_INTERNAL, "bad OID %s", txt);
    size_t len = OBJ_length(obj);
    mr_result res = MR_FAILURE;
    MR_ENSURE_OUT(len > 0 && len <= sizeof(der), MR_ERR_INTERNAL, "bad OID %s", txt);
    memcpy(der, OBJ_get0_data(obj), len);
    MR_GUARD_OUT(der_tlv(out, 0x06, der, len));
    res = MR_SUCCESS;
out:
    ASN1_OBJECT_free(obj);
    return res;
}

/* SEQUENCE { OID prefix.arc, <value TLV> } */
static MR_RESULT der_pair(mr_buf *out, const char *prefix, int arc, uint8_t tag,
                          const uint8_t *val, size_t len)
{
    mr_buf inner;
    mr_buf_init(&inner, 4096, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(der_oid(&inner, prefix, arc));
    MR_GUARD_OUT(der_tlv(&inner, tag, val, len));
    MR_GUARD_OUT(der_tlv(out, 0x30, inner.data, inner.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&inner);
    return res;
}

/* The content octets of a DER INTEGER holding v (0..65535): minimal big-endian, with a
 * leading zero octet when the top bit would otherwise make it negative. */
static size_t int_content(uint16_t v, uint8_t out[3])
{
    uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    size_t skip = be[0] == 0 ? 1 : 0; /* keep at least one octet */
    size_t n = 0;
    if (be[skip] & 0x80)
        out[n++] = 0;
    for (size_t i = skip; i < 2; i++)
        out[n++] = be[i];
    return n;
}

/* The value of the SGX extension, laid out like Intel's PCK certificates: PPID, TCB (16
 * component SVNs, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX Type; certificates of the Platform CA
 * add PlatformInstanceID and Configuration (dynamicPlatform, cachedKeys, SMTEnabled). */
static MR_RESULT sgx_config_der(mr_buf *out)
{
    mr_buf cfg, seq;
    mr_buf_init(&cfg, 4096, 0);
    mr_buf_init(&seq, 4096, 0);
    mr_result res = MR_FAILURE;
    char prefix[] = SGX_EXT_OID ".7";
    const uint8_t yes = 0xff;
    for (int i = 1; i <= 3; i++)
        MR_GUARD_OUT(der_pair(&cfg, prefix, i, 0x01, &yes, 1));
    MR_GUARD_OUT(der_oid(&seq, SGX_EXT_OID, 7));
    MR_GUARD_OUT(der_tlv(&seq, 0x30, cfg.data, cfg.len));
    MR_GUARD_OUT(der_tlv(out, 0x30, seq.data, seq.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&cfg);
    mr_buf_free(&seq);
    return res;
}

static MR_RESULT sgx_extension_der(const uint8_t comps[16], uint16_t pcesvn,
                                   const uint8_t ppid[16], const uint8_t *instance_id,
                                   mr_buf *out)
{
    mr_buf seq, tcb, tcbseq;
    mr_buf_init(&seq, 8192, 0);
    mr_buf_init(&tcb, 8192, 0);
    mr_buf_init(&tcbseq, 8192, 0);
    mr_result res = MR_FAILURE;
    char tcb_prefix[] = SGX_EXT_OID ".2";
    uint8_t iv[3];

    MR_GUARD_OUT(der_pair(&seq, SGX_EXT_OID, 1, 0x04, ppid, 16));
    for (int i = 0; i < 16; i++) {
        size_t n = int_content(comps[i], iv);
        MR_GUARD_OUT(der_pair(&tcb, tcb_prefix, i + 1, 0x02, iv, n));
    }
    size_t n = int_content(pcesvn, iv);
    MR_GUARD_OUT(der_pair(&tcb, tcb_prefix, 17, 0x02, iv, n));
    MR_GUARD_OUT(der_pair(&tcb, tcb_prefix, 18, 0x04, comps, 16));
    /* SEQUENCE { OID .2, SEQUENCE { ...tcb... } } */
    MR_GUARD_OUT(der_oid(&tcbseq, SGX_EXT_OID, 2));
    MR_GUARD_OUT(der_tlv(&tcbseq, 0x30, tcb.data, tcb.len));
    MR_GUARD_OUT(der_tlv(&seq, 0x30, tcbseq.data, tcbseq.len));
    MR_GUARD_OUT(der_pair(&seq, SGX_EXT_OID, 3, 0x04, mr_softsgx_pce_id_, 2));
    MR_GUARD_OUT(der_pair(&seq, SGX_EXT_OID, 4, 0x04, mr_softsgx_fmspc_, 6));
    const uint8_t sgx_type = instance_id != NULL ? 1 : 0; /* Scalable : Standard */
    MR_GUARD_OUT(der_pair(&seq, SGX_EXT_OID, 5, 0x0a, &sgx_type, 1));
    if (instance_id != NULL) {
        MR_GUARD_OUT(der_pair(&seq, SGX_EXT_OID, 6, 0x04, instance_id, 16));
        MR_GUARD_OUT(sgx_config_der(&seq));
    }
    MR_GUARD_OUT(der_tlv(out, 0x30, seq.data, seq.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&seq);
    mr_buf_free(&tcb);
    mr_buf_free(&tcbseq);
    return res;
}

/* ---- keys and certificates -------------------------------------------------------------- */

static MR_RESULT gen_key(EVP_PKEY **out)
{
    *out = EVP_EC_gen("P-256");
    MR_ENSURE(*out != NULL, MR_ERR_INTERNAL, "cannot generate an EC P-256 key");
    return MR_SUCCESS;
}

static MR_RESULT make_name(const char *cn, X509_NAME **out)
{
    X509_NAME *n = X509_NAME_new();
    MR_ENSURE_ALLOC(n);
    if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)TEST_ORG, -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8, (const unsigned char *)TEST_OU, -1,
                                   -1, 0) != 1) {
        X509_NAME_free(n);
        MR_BAIL(MR_ERR_INTERNAL, "cannot build a certificate name");
    }
    *out = n;
    return MR_SUCCESS;
}

static MR_RESULT random_serial(ASN1_INTEGER *serial)
{
    uint8_t b[20];
    BIGNUM *bn = NULL;
    mr_result res = MR_FAILURE;
    MR_GUARD_OSSL_OUT(RAND_bytes(b, sizeof(b)), MR_ERR_INTERNAL, "RAND_bytes failed");
    b[0] &= 0x7f; /* positive */
    b[0] |= 0x01; /* and 20 bytes long, like Intel's */
    bn = BN_bin2bn(b, sizeof(b), NULL);
    MR_ENSURE_ALLOC_OUT(bn);
    MR_ENSURE_OUT(BN_to_ASN1_INTEGER(bn, serial) != NULL, MR_ERR_INTERNAL,
                  "cannot set a serial number");
    res = MR_SUCCESS;
out:
    BN_free(bn);
    return res;
}

static MR_RESULT add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    MR_ENSURE(ext != NULL, MR_ERR_INTERNAL, "cannot build extension %s", OBJ_nid2sn(nid));
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    MR_ENSURE(ok == 1, MR_ERR_INTERNAL, "cannot add extension %s", OBJ_nid2sn(nid));
    return MR_SUCCESS;
}

static MR_RESULT add_sgx_ext(X509 *cert, const mr_buf *value)
{
    mr_result res = MR_FAILURE;
    ASN1_OBJECT *obj = OBJ_txt2obj(SGX_EXT_OID, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    MR_ENSURE_ALLOC_OUT(obj);
    MR_ENSURE_ALLOC_OUT(os);
    MR_GUARD_OSSL_OUT(ASN1_OCTET_STRING_set(os, value->data, (int)value->len), MR_ERR_INTERNAL,
                      "cannot build the SGX extension");
    ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os); /* non-critical, as Intel's */
    MR_ENSURE_ALLOC_OUT(ext);
    MR_GUARD_OSSL_OUT(X509_add_ext(cert, ext, -1), MR_ERR_INTERNAL,
                      "cannot add the SGX extension");
    res = MR_SUCCESS;
out:
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    return res;
}

typedef struct cert_spec {
    const char *cn;
    EVP_PKEY *key;        /* subject key */
    X509 *issuer;         /* NULL = self-signed */
    EVP_PKEY *issuer_key; /* signing key */
    const char *basic_constraints;
    const char *key_usage;
    const char *crl_dp; /* NULL = none */
    const mr_buf *sgx_ext;
    time_t not_before, not_after;
} cert_spec;

static MR_RESULT make_cert(const cert_spec *s, X509 **out)
{
    mr_result res = MR_FAILURE;
    X509 *c = X509_new();
    X509_NAME *name = NULL;
    X509V3_CTX ctx;
    MR_ENSURE_ALLOC_OUT(c);
    MR_GUARD_OSSL_OUT(X509_set_version(c, X509_VERSION_3), MR_ERR_INTERNAL, "X509_set_version");
    MR_GUARD_OUT(random_serial(X509_get_serialNumber(c)));
    MR_GUARD_OUT(make_name(s->cn, &name));
    MR_GUARD_OSSL_OUT(X509_set_subject_name(c, name), MR_ERR_INTERNAL, "set subject");
    MR_GUARD_OSSL_OUT(
        X509_set_issuer_name(c, s->issuer ? X509_get_subject_name(s->issuer) : name),
        MR_ERR_INTERNAL, "set issuer");
    MR_ENSURE_OUT(ASN1_TIME_set(X509_getm_notBefore(c), s->not_before) != NULL &&
                      ASN1_TIME_set(X509_getm_notAfter(c), s->not_after) != NULL,
                  MR_ERR_INTERNAL, "cannot set the validity");
    MR_GUARD_OSSL_OUT(X509_set_pubkey(c, s->key), MR_ERR_INTERNAL, "set public key");
    X509V3_set_ctx(&ctx, s->issuer ? s->issuer : c, c, NULL, NULL, 0);
    MR_GUARD_OUT(add_ext(c, &ctx, NID_subject_key_identifier, "hash"));
    MR_GUARD_OUT(add_ext(c, &ctx, NID_authority_key_identifier, "keyid:always"));
    if (s->crl_dp != NULL) {
        char dp[256];
        int n = snprintf(dp, sizeof(dp), "URI:%s", s->crl_dp);
        MR_ENSURE_OUT(n > 0 && (size_t)n < sizeof(dp), MR_ERR_INTERNAL, "CRL URL too long");
        MR_GUARD_OUT(add_ext(c, &ctx, NID_crl_distribution_points, dp));
    }
    MR_GUARD_OUT(add_ext(c, &ctx, NID_key_usage, s->key_usage));
    MR_GUARD_OUT(add_ext(c, &ctx, NID_basic_constraints, s->basic_constraints));
    if (s->sgx_ext != NULL)
        MR_GUARD_OUT(add_sgx_ext(c, s->sgx_ext));
    MR_ENSURE_OUT(X509_sign(c, s->issuer_key, EVP_sha256()) > 0, MR_ERR_INTERNAL,
                  "cannot sign the certificate %s", s->cn);
    *out = c;
    c = NULL;
    res = MR_SUCCESS;
out:
    X509_NAME_free(name);
    X509_free(c);
    return res;
}

MR_RESULT mr_softsgx_crl_der_(X509 *issuer, EVP_PKEY *issuer_key, const ASN1_INTEGER *revoke,
                              time_t last, time_t next, mr_buf *der_out)
{
    mr_result res = MR_FAILURE;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509_REVOKED *rv = NULL;
    ASN1_INTEGER *fake = NULL;
    AUTHORITY_KEYID *akid = NULL;
    unsigned char *der = NULL;
    MR_ENSURE_ALLOC_OUT(crl);
    MR_ENSURE_ALLOC_OUT(t);
    MR_ENSURE_ALLOC_OUT(num);
    MR_GUARD_OSSL_OUT(X509_CRL_set_version(crl, X509_CRL_VERSION_2), MR_ERR_INTERNAL, "CRL");
    MR_GUARD_OSSL_OUT(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)),
                      MR_ERR_INTERNAL, "CRL issuer");
    MR_ENSURE_OUT(ASN1_TIME_set(t, last) != NULL, MR_ERR_INTERNAL, "CRL time");
    MR_GUARD_OSSL_OUT(X509_CRL_set1_lastUpdate(crl, t), MR_ERR_INTERNAL, "CRL lastUpdate");
    MR_ENSURE_OUT(ASN1_TIME_set(t, next) != NULL, MR_ERR_INTERNAL, "CRL time");
    MR_GUARD_OSSL_OUT(X509_CRL_set1_nextUpdate(crl, t), MR_ERR_INTERNAL, "CRL nextUpdate");
    MR_ENSURE_OUT(ASN1_TIME_set(t, last) != NULL, MR_ERR_INTERNAL, "CRL time");
    /* Real CRLs are never empty: list two serials nobody holds, plus `revoke` if given. */
    for (int i = 0; i < 3; i++) {
        if (i < 2) {
            fake = ASN1_INTEGER_new();
            MR_ENSURE_ALLOC_OUT(fake);
            MR_GUARD_OUT(random_serial(fake));
        } else if (revoke != NULL) {
            fake = ASN1_INTEGER_dup(revoke);
            MR_ENSURE_ALLOC_OUT(fake);
        } else {
            break;
        }
        rv = X509_REVOKED_new();
        MR_ENSURE_ALLOC_OUT(rv);
        MR_GUARD_OSSL_OUT(X509_REVOKED_set_serialNumber(rv, fake), MR_ERR_INTERNAL, "CRL");
        MR_GUARD_OSSL_OUT(X509_REVOKED_set_revocationDate(rv, t), MR_ERR_INTERNAL, "CRL");
        MR_GUARD_OSSL_OUT(X509_CRL_add0_revoked(crl, rv), MR_ERR_INTERNAL, "CRL");
        rv = NULL;
        ASN1_INTEGER_free(fake);
        fake = NULL;
    }
    MR_GUARD_OSSL_OUT(ASN1_INTEGER_set(num, 1), MR_ERR_INTERNAL, "CRL number");
    MR_GUARD_OSSL_OUT(X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0), MR_ERR_INTERNAL,
                      "CRL number");
    akid = AUTHORITY_KEYID_new();
    MR_ENSURE_ALLOC_OUT(akid);
    akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(issuer));
    MR_ENSURE_ALLOC_OUT(akid->keyid);
    MR_GUARD_OSSL_OUT(X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0),
                      MR_ERR_INTERNAL, "CRL authority key identifier");
    MR_GUARD_OSSL_OUT(X509_CRL_sort(crl), MR_ERR_INTERNAL, "CRL sort");
    MR_ENSURE_OUT(X509_CRL_sign(crl, issuer_key, EVP_sha256()) > 0, MR_ERR_INTERNAL,
                  "cannot sign the CRL");
    int len = i2d_X509_CRL(crl, &der);
    MR_ENSURE_OUT(len > 0, MR_ERR_INTERNAL, "cannot encode the CRL");
    MR_GUARD_OUT(mr_buf_append(der_out, der, (size_t)len));
    res = MR_SUCCESS;
out:
    OPENSSL_free(der);
    AUTHORITY_KEYID_free(akid);
    X509_REVOKED_free(rv);
    ASN1_INTEGER_free(fake);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    return res;
}

/* ---- the hierarchy ---------------------------------------------------------------------- */

void mr_softsgx_pki_free_(softsgx_pki *p)
{
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->ca_key);
    EVP_PKEY_free(p->tcb_key);
    EVP_PKEY_free(p->pck_key);
    EVP_PKEY_free(p->att_key);
    X509_free(p->root);
    X509_free(p->ca);
    X509_free(p->tcb);
    X509_free(p->pck);
}

MR_RESULT mr_softsgx_pki_make_(softsgx_pki *p, const softsgx_platform *plat,
                               const uint8_t comps[16], bool platform_ca, time_t nb, time_t na)
{
    uint8_t ppid[16], instance_id[16];
    char crl_url[128];
    mr_buf ext;
    mr_buf_init(&ext, 8192, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(gen_key(&p->root_key));
    MR_GUARD_OUT(gen_key(&p->ca_key));
    MR_GUARD_OUT(gen_key(&p->tcb_key));
    MR_GUARD_OUT(gen_key(&p->pck_key));
    MR_GUARD_OUT(gen_key(&p->att_key));
    const cert_spec root = {ROOT_CN, p->root_key, NULL, p->root_key,
                            "critical,CA:TRUE,pathlen:1", "critical,keyCertSign,cRLSign",
                            ROOT_CRL_URL, NULL, nb, na};
    MR_GUARD_OUT(make_cert(&root, &p->root));
    int n = snprintf(crl_url, sizeof(crl_url), "%s%s&encoding=der", PCK_CRL_URL,
                     platform_ca ? "platform" : "processor");
    MR_ENSURE_OUT(n > 0 && (size_t)n < sizeof(crl_url), MR_ERR_INTERNAL, "CRL URL too long");
    const cert_spec ca = {platform_ca ? PLATFORM_CA_CN : PROCESSOR_CA_CN, p->ca_key, p->root, p->root_key,
                          "critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign",
                          ROOT_CRL_URL, NULL, nb, na};
    MR_GUARD_OUT(make_cert(&ca, &p->ca));
    const cert_spec tcb = {TCB_SIGNING_CN, p->tcb_key, p->root, p->root_key, "critical,CA:FALSE",
                           "critical,digitalSignature,nonRepudiation", ROOT_CRL_URL, NULL,
                           nb, na};
    MR_GUARD_OUT(make_cert(&tcb, &p->tcb));
    MR_GUARD_OSSL_OUT(RAND_bytes(ppid, sizeof(ppid)), MR_ERR_INTERNAL, "RAND_bytes failed");
    MR_GUARD_OSSL_OUT(RAND_bytes(instance_id, sizeof(instance_id)), MR_ERR_INTERNAL,
                      "RAND_bytes failed");
    MR_GUARD_OUT(sgx_extension_der(comps, plat->pcesvn, ppid, platform_ca ? instance_id : NULL,
                                   &ext));
    const cert_spec pck = {PCK_CN, p->pck_key, p->ca, p->ca_key, "critical,CA:FALSE",
                           "critical,digitalSignature,nonRepudiation", crl_url, &ext,
                           nb, na};
    MR_GUARD_OUT(make_cert(&pck, &p->pck));
    res = MR_SUCCESS;
out:
    mr_buf_free(&ext);
    return res;
}
