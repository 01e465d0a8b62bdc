/* SPDX-License-Identifier: Apache-2.0 */
/*
 * softsgx init: builds the TEST PKI, the CRLs and the signed collateral of a softsgx
 * directory (see softsgx.h). Everything here is for tests; nothing is Intel's.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "attest/issuer_io.h"
#include "attest/softsgx.h"
#include "attest/softsgx_int.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/codec.h"
#include "crypto/p256.h"

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

/* FMSPC and PCE-ID of the softsgx platform (the FMSPC is not one of Intel's). */
static const uint8_t FMSPC[6] = {0x5a, 0xf7, 0x5a, 0xf7, 0x00, 0x00};
static const uint8_t PCE_ID[2] = {0x00, 0x00};
enum { PCESVN = 13, TCB_EVAL_NUMBER = 17, QE_ISVPRODID = 1, DEFAULT_VALID_DAYS = 30 };

/* ---- TCB levels -------------------------------------------------------------------------
 * SGX TCB components 01 and 02 carry the "microcode" SVN, component 07 the "configuration"
 * one. Levels are listed in the order Intel's verifier sorts them (component vectors
 * descending), and the PCK certificate gets exactly the SVNs of the level that must match
 * first. TcbNotSupported gets SVNs below every level. */
typedef struct tcb_level {
    const char *status;
    uint8_t micro;  /* components 01 and 02 */
    uint8_t config; /* component 07 */
    const char *date;
    const char *advisories; /* JSON array text, or NULL */
} tcb_level;

static const tcb_level LEVELS[] = {
    {"UpToDate", 14, 1, "2024-11-13T00:00:00Z", NULL},
    {"ConfigurationNeeded", 14, 0, "2024-11-13T00:00:00Z", "[\"INTEL-SA-00289\"]"},
    {"SWHardeningNeeded", 13, 1, "2024-03-13T00:00:00Z", "[\"INTEL-SA-00615\"]"},
    {"ConfigurationAndSWHardeningNeeded", 13, 0, "2024-03-13T00:00:00Z",
     "[\"INTEL-SA-00289\",\"INTEL-SA-00615\"]"},
    {"OutOfDate", 12, 1, "2023-02-15T00:00:00Z", "[\"INTEL-SA-00828\",\"INTEL-SA-00615\"]"},
    {"OutOfDateConfigurationNeeded", 12, 0, "2023-02-15T00:00:00Z",
     "[\"INTEL-SA-00289\",\"INTEL-SA-00828\",\"INTEL-SA-00615\"]"},
    {"Revoked", 11, 0, "2022-11-09T00:00:00Z",
     "[\"INTEL-SA-00657\",\"INTEL-SA-00828\",\"INTEL-SA-00615\"]"},
};

/* Which (micro, config) the PCK gets for each requested status. */
static const struct {
    const char *name;
    uint8_t micro;
    uint8_t config;
} PLATFORM[MR_SOFTSGX_TCB__COUNT] = {
    [MR_SOFTSGX_TCB_UP_TO_DATE] = {"UpToDate", 14, 1},
    [MR_SOFTSGX_TCB_SW_HARDENING_NEEDED] = {"SWHardeningNeeded", 13, 1},
    [MR_SOFTSGX_TCB_CONFIGURATION_NEEDED] = {"ConfigurationNeeded", 14, 0},
    [MR_SOFTSGX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = {"ConfigurationAndSWHardeningNeeded",
                                                              13, 0},
    [MR_SOFTSGX_TCB_OUT_OF_DATE] = {"OutOfDate", 12, 1},
    [MR_SOFTSGX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = {"OutOfDateConfigurationNeeded", 12, 0},
    [MR_SOFTSGX_TCB_REVOKED] = {"Revoked", 11, 1},
    [MR_SOFTSGX_TCB_NOT_SUPPORTED] = {"TcbNotSupported", 10, 1},
};

/* QE Identity levels and the QE ISVSVN for each QE status. */
static const struct {
    const char *status;
    uint16_t isvsvn;
    const char *date;
    const char *advisories;
} QE_LEVELS[MR_SOFTSGX_QE__COUNT] = {
    [MR_SOFTSGX_QE_UP_TO_DATE] = {"UpToDate", 8, "2024-03-13T00:00:00Z", NULL},
    [MR_SOFTSGX_QE_OUT_OF_DATE] = {"OutOfDate", 6, "2021-11-10T00:00:00Z",
                                   "[\"INTEL-SA-00615\"]"},
    [MR_SOFTSGX_QE_REVOKED] = {"Revoked", 4, "2019-11-13T00:00:00Z",
                               "[\"INTEL-SA-00334\",\"INTEL-SA-00477\",\"INTEL-SA-00615\"]"},
};

const char *mr_softsgx_tcb_name(mr_softsgx_tcb t)
{
    return (unsigned)t < MR_SOFTSGX_TCB__COUNT ? PLATFORM[t].name : "?";
}

MR_RESULT mr_softsgx_tcb_parse(const char *name, mr_softsgx_tcb *out)
{
    for (unsigned i = 0; i < MR_SOFTSGX_TCB__COUNT; i++) {
        if (name != NULL && strcasecmp(name, PLATFORM[i].name) == 0) {
            *out = (mr_softsgx_tcb)i;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_USAGE,
            "unknown TCB status \"%s\" (want UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
            "ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, "
            "Revoked or TcbNotSupported)",
            name != NULL ? name : "");
}

const char *mr_softsgx_qe_tcb_name(mr_softsgx_qe_tcb t)
{
    return (unsigned)t < MR_SOFTSGX_QE__COUNT ? QE_LEVELS[t].status : "?";
}

MR_RESULT mr_softsgx_qe_tcb_parse(const char *name, mr_softsgx_qe_tcb *out)
{
    for (unsigned i = 0; i < MR_SOFTSGX_QE__COUNT; i++) {
        if (name != NULL && strcasecmp(name, QE_LEVELS[i].status) == 0) {
            *out = (mr_softsgx_qe_tcb)i;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_USAGE, "unknown QE TCB status \"%s\" (want UpToDate, OutOfDate or Revoked)",
            name != NULL ? name : "");
}

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
    MR_GUARD_OUT(der_pair(&seq, SGX_EXT_OID, 3, 0x04, PCE_ID, sizeof(PCE_ID)));
    MR_GUARD_OUT(der_pair(&seq, SGX_EXT_OID, 4, 0x04, FMSPC, sizeof(FMSPC)));
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

static MR_RESULT make_crl(X509 *issuer, EVP_PKEY *issuer_key, const ASN1_INTEGER *revoke,
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

/* ---- output helpers ---------------------------------------------------------------------- */

static MR_RESULT cert_pem(X509 *c, mr_buf *out)
{
    unsigned char *der = NULL;
    int len = i2d_X509(c, &der);
    MR_ENSURE(len > 0, MR_ERR_INTERNAL, "cannot encode a certificate");
    mr_result r = mr_pem_encode_buf("CERTIFICATE", der, (size_t)len, out);
    OPENSSL_free(der);
    return r;
}

static MR_RESULT write_key(const char *dir, const char *name, EVP_PKEY *key)
{
    mr_result res = MR_FAILURE;
    char path[4096];
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data = NULL;
    MR_ENSURE_ALLOC_OUT(bio);
    MR_GUARD_OSSL_OUT(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL),
                      MR_ERR_INTERNAL, "cannot encode a private key");
    long len = BIO_get_mem_data(bio, &data);
    MR_ENSURE_OUT(len > 0 && data != NULL, MR_ERR_INTERNAL, "cannot encode a private key");
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_GUARD_OUT(mr_issuer_io_write_new(path, data, (size_t)len, 0600));
    res = MR_SUCCESS;
out:
    BIO_free(bio); /* secure-heap memory BIO: cleansed on free */
    return res;
}

static MR_RESULT write_public(const char *dir, const char *name, const mr_buf *content)
{
    char path[4096];
    MR_GUARD(mr_issuer_io_path(path, sizeof(path), dir, name));
    return mr_issuer_io_write_new(path, content->data, content->len, 0644);
}

static MR_RESULT rfc3339(time_t t, char out[32])
{
    struct tm tm;
    MR_ENSURE(gmtime_r(&t, &tm) != NULL, MR_ERR_INTERNAL, "time out of range");
    MR_ENSURE(strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0, MR_ERR_INTERNAL,
              "time out of range");
    return MR_SUCCESS;
}

static MR_RESULT hex_upper(const uint8_t *b, size_t n, mr_buf *out)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        char two[2] = {digits[b[i] >> 4], digits[b[i] & 15]};
        MR_GUARD(mr_buf_append(out, two, 2));
    }
    return MR_SUCCESS;
}

/* The exact tcbInfo text that gets signed (compact, field order as Intel's PCS v4). */
static MR_RESULT tcb_info_json(const char *issue, const char *next, mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out, "{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"%s\","
                                "\"nextUpdate\":\"%s\",\"fmspc\":\"",
                           issue, next));
    MR_GUARD(hex_upper(FMSPC, sizeof(FMSPC), out));
    MR_GUARD(mr_buf_append_str(out, "\",\"pceId\":\""));
    MR_GUARD(hex_upper(PCE_ID, sizeof(PCE_ID), out));
    MR_GUARD(mr_buf_printf(out, "\",\"tcbType\":0,\"tcbEvaluationDataNumber\":%d,\"tcbLevels\":[",
                           TCB_EVAL_NUMBER));
    for (size_t i = 0; i < MR_ARRAY_LEN(LEVELS); i++) {
        const tcb_level *l = &LEVELS[i];
        MR_GUARD(mr_buf_append_str(out, i ? ",{\"tcb\":{\"sgxtcbcomponents\":["
                                          : "{\"tcb\":{\"sgxtcbcomponents\":["));
        uint8_t comps[16] = {l->micro, l->micro, 3, 3, 255, 255, l->config};
        for (int c = 0; c < 16; c++)
            MR_GUARD(mr_buf_printf(out, "%s{\"svn\":%u}", c ? "," : "", comps[c]));
        MR_GUARD(mr_buf_printf(out, "],\"pcesvn\":%d},\"tcbDate\":\"%s\",\"tcbStatus\":\"%s\"",
                               PCESVN, l->date, l->status));
        if (l->advisories != NULL)
            MR_GUARD(mr_buf_printf(out, ",\"advisoryIDs\":%s", l->advisories));
        MR_GUARD(mr_buf_append_str(out, "}"));
    }
    return mr_buf_append_str(out, "]}");
}

static MR_RESULT qe_identity_json(const char *issue, const char *next, const uint8_t mrsigner[32],
                                  mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out,
                           "{\"id\":\"QE\",\"version\":2,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
                           "\"tcbEvaluationDataNumber\":%d,\"miscselect\":\"00000000\","
                           "\"miscselectMask\":\"FFFFFFFF\","
                           "\"attributes\":\"11000000000000000000000000000000\","
                           "\"attributesMask\":\"FBFFFFFFFFFFFFFF0000000000000000\",\"mrsigner\":\"",
                           issue, next, TCB_EVAL_NUMBER));
    MR_GUARD(hex_upper(mrsigner, 32, out));
    MR_GUARD(mr_buf_printf(out, "\",\"isvprodid\":%d,\"tcbLevels\":[", QE_ISVPRODID));
    for (unsigned i = 0; i < MR_SOFTSGX_QE__COUNT; i++) {
        MR_GUARD(mr_buf_printf(out, "%s{\"tcb\":{\"isvsvn\":%u},\"tcbDate\":\"%s\",\"tcbStatus\":\"%s\"",
                               i ? "," : "", QE_LEVELS[i].isvsvn, QE_LEVELS[i].date,
                               QE_LEVELS[i].status));
        if (QE_LEVELS[i].advisories != NULL)
            MR_GUARD(mr_buf_printf(out, ",\"advisoryIDs\":%s", QE_LEVELS[i].advisories));
        MR_GUARD(mr_buf_append_str(out, "}"));
    }
    return mr_buf_append_str(out, "]}");
}

static MR_RESULT sign_hex(EVP_PKEY *key, const mr_buf *msg, char hex[129])
{
    uint8_t sig[64];
    mr_buf h;
    mr_buf_init(&h, 256, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(mr_ecdsa_p256_sign_raw(key, mr_buf_slice(msg), sig));
    MR_GUARD_OUT(mr_hex_encode_buf(sig, sizeof(sig), &h));
    MR_ENSURE_OUT(h.len == 128, MR_ERR_INTERNAL, "bad signature length");
    memcpy(hex, h.data, 128);
    hex[128] = '\0';
    res = MR_SUCCESS;
out:
    mr_buf_free(&h);
    return res;
}

static MR_RESULT set_str(json_t *obj, const char *key, const char *data, size_t len)
{
    json_t *v = json_stringn(data, len);
    MR_ENSURE(v != NULL, MR_ERR_INTERNAL, "cannot build JSON for %s", key);
    MR_ENSURE(json_object_set_new(obj, key, v) == 0, MR_ERR_INTERNAL, "cannot build JSON");
    return MR_SUCCESS;
}

static MR_RESULT set_hex(json_t *obj, const char *key, const uint8_t *b, size_t n)
{
    mr_buf h;
    mr_buf_init(&h, 0, 0);
    mr_result r = mr_hex_encode_buf(b, n, &h);
    if (mr_ok(r))
        r = set_str(obj, key, (const char *)h.data, h.len);
    mr_buf_free(&h);
    return r;
}

static MR_RESULT write_json(const char *dir, const char *name, json_t *obj, mode_t mode)
{
    mr_result res = MR_FAILURE;
    char path[4096];
    const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
    size_t len = json_dumpb(obj, NULL, 0, flags);
    char *text = len > 0 ? mr_alloc(len) : NULL;
    MR_ENSURE_ALLOC_OUT(text);
    MR_ENSURE_OUT(json_dumpb(obj, text, len, flags) == len, MR_ERR_INTERNAL,
                  "cannot encode JSON");
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_GUARD_OUT(mr_issuer_io_write_new(path, text, len, mode));
    res = MR_SUCCESS;
out:
    mr_free_wipe(text, len);
    return res;
}

/* ---- init ---------------------------------------------------------------------------------- */

typedef struct pki {
    EVP_PKEY *root_key, *ca_key, *tcb_key, *pck_key, *att_key;
    X509 *root, *ca, *tcb, *pck;
} pki;

static void pki_free(pki *p)
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

static MR_RESULT make_dirs(const char *dir)
{
    char path[4096];
    MR_ENSURE(mkdir(dir, 0700) == 0 || errno == EEXIST, MR_ERR_IO, "cannot create %s: %s", dir,
              strerror(errno));
    MR_GUARD(mr_issuer_io_path(path, sizeof(path), dir, SOFTSGX_PRIVATE));
    MR_ENSURE(mkdir(path, 0700) == 0 || errno == EEXIST, MR_ERR_IO, "cannot create %s: %s",
              path, strerror(errno));
    MR_ENSURE(chmod(path, 0700) == 0, MR_ERR_IO, "cannot chmod %s: %s", path, strerror(errno));
    return MR_SUCCESS;
}

static MR_RESULT make_pki(pki *p, const softsgx_platform *plat, const uint8_t comps[16],
                          bool platform_ca, time_t nb, time_t na)
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

static MR_RESULT write_certs(const char *dir, const pki *p)
{
    mr_buf root, ca, tcb, pck, chain;
    mr_buf_init(&root, 0, 0);
    mr_buf_init(&ca, 0, 0);
    mr_buf_init(&tcb, 0, 0);
    mr_buf_init(&pck, 0, 0);
    mr_buf_init(&chain, 0, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(cert_pem(p->root, &root));
    MR_GUARD_OUT(cert_pem(p->ca, &ca));
    MR_GUARD_OUT(cert_pem(p->tcb, &tcb));
    MR_GUARD_OUT(cert_pem(p->pck, &pck));
    MR_GUARD_OUT(mr_buf_append(&chain, pck.data, pck.len));
    MR_GUARD_OUT(mr_buf_append(&chain, ca.data, ca.len));
    MR_GUARD_OUT(mr_buf_append(&chain, root.data, root.len));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_ROOT_CA, &root));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_PCK_CA, &ca));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_TCB_SIGNING, &tcb));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_PCK, &pck));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_PCK_CHAIN, &chain));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_ROOT_CA_KEY, p->root_key));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_PCK_CA_KEY, p->ca_key));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_TCB_SIGNING_KEY, p->tcb_key));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_PCK_KEY, p->pck_key));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_ATTESTATION_KEY, p->att_key));
    res = MR_SUCCESS;
out:
    mr_buf_free(&root);
    mr_buf_free(&ca);
    mr_buf_free(&tcb);
    mr_buf_free(&pck);
    mr_buf_free(&chain);
    return res;
}

static MR_RESULT write_collateral(const char *dir, const pki *p, const softsgx_platform *plat,
                                  const mr_softsgx_init_opts *o, time_t nb, time_t na)
{
    mr_result res = MR_FAILURE;
    char issue[32], next[32], tcb_sig[129], qe_sig[129];
    mr_buf ca_chain, tcb_chain, root_crl, pck_crl, tcb_info, qe_id;
    mr_buf_init(&ca_chain, 0, 0);
    mr_buf_init(&tcb_chain, 0, 0);
    mr_buf_init(&root_crl, 0, 0);
    mr_buf_init(&pck_crl, 0, 0);
    mr_buf_init(&tcb_info, 0, 0);
    mr_buf_init(&qe_id, 0, 0);
    json_t *obj = json_object();
    MR_ENSURE_ALLOC_OUT(obj);
    MR_GUARD_OUT(rfc3339(nb, issue));
    MR_GUARD_OUT(rfc3339(na, next));
    MR_GUARD_OUT(cert_pem(p->ca, &ca_chain));
    MR_GUARD_OUT(cert_pem(p->root, &ca_chain));
    MR_GUARD_OUT(cert_pem(p->tcb, &tcb_chain));
    MR_GUARD_OUT(cert_pem(p->root, &tcb_chain));
    MR_GUARD_OUT(make_crl(p->root, p->root_key, NULL, nb, na, &root_crl));
    MR_GUARD_OUT(make_crl(p->ca, p->ca_key, o->revoke_pck ? X509_get0_serialNumber(p->pck) : NULL,
                          nb, na, &pck_crl));
    MR_GUARD_OUT(tcb_info_json(issue, next, &tcb_info));
    MR_GUARD_OUT(qe_identity_json(issue, next, plat->qe_mrsigner, &qe_id));
    MR_GUARD_OUT(sign_hex(p->tcb_key, &tcb_info, tcb_sig));
    MR_GUARD_OUT(sign_hex(p->tcb_key, &qe_id, qe_sig));
    MR_GUARD_OUT(set_str(obj, "pck_crl_issuer_chain", (const char *)ca_chain.data, ca_chain.len));
    MR_GUARD_OUT(set_hex(obj, "root_ca_crl", root_crl.data, root_crl.len));
    MR_GUARD_OUT(set_hex(obj, "pck_crl", pck_crl.data, pck_crl.len));
    MR_GUARD_OUT(set_str(obj, "tcb_info_issuer_chain", (const char *)tcb_chain.data, tcb_chain.len));
    MR_GUARD_OUT(set_str(obj, "tcb_info", (const char *)tcb_info.data, tcb_info.len));
    MR_GUARD_OUT(set_str(obj, "tcb_info_signature", tcb_sig, 128));
    MR_GUARD_OUT(set_str(obj, "qe_identity_issuer_chain", (const char *)tcb_chain.data,
                         tcb_chain.len));
    MR_GUARD_OUT(set_str(obj, "qe_identity", (const char *)qe_id.data, qe_id.len));
    MR_GUARD_OUT(set_str(obj, "qe_identity_signature", qe_sig, 128));
    MR_GUARD_OUT(write_json(dir, SOFTSGX_COLLATERAL, obj, 0644));
    res = MR_SUCCESS;
out:
    json_decref(obj);
    mr_buf_free(&ca_chain);
    mr_buf_free(&tcb_chain);
    mr_buf_free(&root_crl);
    mr_buf_free(&pck_crl);
    mr_buf_free(&tcb_info);
    mr_buf_free(&qe_id);
    return res;
}

static MR_RESULT write_state(const char *dir, const softsgx_platform *plat,
                             const mr_softsgx_init_opts *o)
{
    mr_result res = MR_FAILURE;
    json_t *obj = json_object();
    MR_ENSURE_ALLOC_OUT(obj);
    MR_ENSURE_OUT(json_object_set_new(obj, "warning",
                                      json_string("softsgx TEST material: quotes made from this "
                                                  "directory prove nothing")) == 0 &&
                      json_object_set_new(obj, "version", json_integer(1)) == 0 &&
                      json_object_set_new(obj, "tcb_status",
                                          json_string(mr_softsgx_tcb_name(o->tcb_status))) == 0 &&
                      json_object_set_new(obj, "qe_tcb_status",
                                          json_string(mr_softsgx_qe_tcb_name(o->qe_status))) == 0 &&
                      json_object_set_new(obj, "qe_isvprodid", json_integer(plat->qe_isvprodid)) ==
                          0 &&
                      json_object_set_new(obj, "qe_isvsvn", json_integer(plat->qe_isvsvn)) == 0 &&
                      json_object_set_new(obj, "pcesvn", json_integer(plat->pcesvn)) == 0,
                  MR_ERR_INTERNAL, "cannot build JSON");
    MR_GUARD_OUT(set_hex(obj, "qe_mrenclave", plat->qe_mrenclave, 32));
    MR_GUARD_OUT(set_hex(obj, "qe_mrsigner", plat->qe_mrsigner, 32));
    MR_GUARD_OUT(set_hex(obj, "qe_id", plat->qe_id, 16));
    MR_GUARD_OUT(set_hex(obj, "cpusvn", plat->cpusvn, 16));
    MR_GUARD_OUT(set_hex(obj, "fmspc", FMSPC, sizeof(FMSPC)));
    MR_GUARD_OUT(write_json(dir, SOFTSGX_STATE, obj, 0600));
    res = MR_SUCCESS;
out:
    json_decref(obj);
    return res;
}

MR_RESULT mr_softsgx_init(const char *dir, const mr_softsgx_init_opts *opts)
{
    mr_softsgx_init_opts o = {0};
    softsgx_platform plat = {0};
    pki p = {0};
    mr_result res = MR_FAILURE;
    if (opts != NULL)
        o = *opts;
    MR_ENSURE_OUT(dir != NULL && dir[0] != '\0', MR_ERR_USAGE, "softsgx: no directory given");
    MR_ENSURE_OUT((unsigned)o.tcb_status < MR_SOFTSGX_TCB__COUNT &&
                      (unsigned)o.qe_status < MR_SOFTSGX_QE__COUNT,
                  MR_ERR_USAGE, "softsgx: bad TCB status");
    if (o.valid_days == 0)
        o.valid_days = DEFAULT_VALID_DAYS;
    MR_ENSURE_OUT(o.valid_days <= 36500, MR_ERR_USAGE, "softsgx: --valid-days must be <= 36500");
    time_t now = o.now != 0 ? o.now : time(NULL);
    time_t nb = now - 3600;
    time_t na = now + (time_t)o.valid_days * 86400;

    uint8_t comps[16] = {PLATFORM[o.tcb_status].micro, PLATFORM[o.tcb_status].micro, 3, 3, 255,
                         255, PLATFORM[o.tcb_status].config};
    memcpy(plat.cpusvn, comps, 16);
    plat.pcesvn = PCESVN;
    plat.qe_isvprodid = QE_ISVPRODID;
    plat.qe_isvsvn = QE_LEVELS[o.qe_status].isvsvn;
    MR_GUARD_OSSL_OUT(RAND_bytes(plat.qe_mrenclave, 32), MR_ERR_INTERNAL, "RAND_bytes failed");
    MR_GUARD_OSSL_OUT(RAND_bytes(plat.qe_mrsigner, 32), MR_ERR_INTERNAL, "RAND_bytes failed");
    MR_GUARD_OSSL_OUT(RAND_bytes(plat.qe_id, 16), MR_ERR_INTERNAL, "RAND_bytes failed");

    MR_GUARD_OUT(make_dirs(dir));
    MR_GUARD_OUT(make_pki(&p, &plat, comps, o.platform_ca, nb, na));
    MR_GUARD_OUT(write_certs(dir, &p));
    MR_GUARD_OUT(write_collateral(dir, &p, &plat, &o, nb, na));
    MR_GUARD_OUT(write_state(dir, &plat, &o));
    res = MR_SUCCESS;
out:
    pki_free(&p);
    return res;
}
