/* SPDX-License-Identifier: Apache-2.0 */
/* mr_csr_read: the CSR of an activation, parsed and verified without OpenSSL 3.0's key decoder.
 *
 * d2i_X509_REQ decodes the request's SubjectPublicKeyInfo through OSSL_DECODER, and building a
 * decoder context costs more than verifying the signature. Here OpenSSL's ASN.1 template
 * engine parses the same structure with the key left as raw bytes; a named-curve EC key is
 * imported from its point with EVP_PKEY_fromdata and the signature is checked over the
 * received CertificationRequestInfo bytes, as X509_REQ_verify does. Anything outside that
 * path (other key types or signature algorithms, compressed points, explicit curves, and every
 * error) goes through mr_csr_from_der, so results and error texts stay those of the general
 * path; the fuzz target compares the two on every input.
 *
 * mr_csr_read_proven skips the signature when the request's SubjectPublicKeyInfo is byte for
 * byte a key whose possession the caller has already seen proven (the Activate handler: the
 * marble's TLS client certificate, whose CertificateVerify the handshake checked). The
 * signature is a proof of possession of that same key and adds nothing then.
 */
#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "crypto/csr.h"
#include "crypto/internal.h"
#include "crypto/key.h"

typedef struct {
    ASN1_ENCODING enc; /* the received DER: compared with a key the caller has seen proven */
    X509_ALGOR *algor;
    ASN1_BIT_STRING *public_key;
} MR_CSR_SPKI;

typedef struct {
    ASN1_ENCODING enc; /* the received DER of this SEQUENCE: the signed bytes */
    ASN1_INTEGER *version;
    X509_NAME *subject;
    MR_CSR_SPKI *pubkey;
    STACK_OF(X509_ATTRIBUTE) *attributes;
} MR_CSR_INFO;

typedef struct {
    MR_CSR_INFO *info;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
} MR_CSR;

/* The layout of X509_PUBKEY, X509_REQ_INFO and X509_REQ (RFC 2986), element for element.
 * (cppcheck does not see OpenSSL's template macros, hence the suppressions.) */
// cppcheck-suppress unknownMacro
ASN1_SEQUENCE_enc(MR_CSR_SPKI, enc, NULL) = {
    ASN1_SIMPLE(MR_CSR_SPKI, algor, X509_ALGOR),
    ASN1_SIMPLE(MR_CSR_SPKI, public_key, ASN1_BIT_STRING),
    // cppcheck-suppress unknownMacro
} static_ASN1_SEQUENCE_END_ref(MR_CSR_SPKI, MR_CSR_SPKI)

ASN1_SEQUENCE_enc(MR_CSR_INFO, enc, NULL) = {
    ASN1_SIMPLE(MR_CSR_INFO, version, ASN1_INTEGER),
    ASN1_SIMPLE(MR_CSR_INFO, subject, X509_NAME),
    ASN1_SIMPLE(MR_CSR_INFO, pubkey, MR_CSR_SPKI),
    /* optional as in OpenSSL's X509_REQ_INFO, which tolerates requests without it */
    ASN1_IMP_SET_OF_OPT(MR_CSR_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(MR_CSR_INFO, MR_CSR_INFO)

ASN1_SEQUENCE(MR_CSR) = {
    ASN1_SIMPLE(MR_CSR, info, MR_CSR_INFO),
    ASN1_SIMPLE(MR_CSR, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(MR_CSR, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(MR_CSR)

static const struct {
    int curve_nid;
    const char *group;
} fast_curves[] = {
    {NID_X9_62_prime256v1, "prime256v1"},
    {NID_secp384r1, "secp384r1"},
    {NID_secp521r1, "secp521r1"},
    {NID_secp224r1, "secp224r1"},
};

static const struct {
    int sig_nid;
    const char *md;
} fast_sigs[] = {
    {NID_ecdsa_with_SHA256, "SHA256"},
    {NID_ecdsa_with_SHA384, "SHA384"},
    {NID_ecdsa_with_SHA512, "SHA512"},
};

static void csr_free(MR_CSR *c) { ASN1_item_free((ASN1_VALUE *)c, ASN1_ITEM_rptr(MR_CSR)); }

/* The curve of an id-ecPublicKey algorithm with a named-curve parameter, or NULL. */
static const char *named_curve(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *oid = NULL;
    int ptype = 0;
    const void *pval = NULL;
    X509_ALGOR_get0(&oid, &ptype, &pval, alg);
    if (OBJ_obj2nid(oid) != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT)
        return NULL;
    int nid = OBJ_obj2nid(pval);
    for (size_t i = 0; i < MR_ARRAY_LEN(fast_curves); i++)
        if (fast_curves[i].curve_nid == nid)
            return fast_curves[i].group;
    return NULL;
}

static const char *sig_digest(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *oid = NULL;
    X509_ALGOR_get0(&oid, NULL, NULL, alg);
    int nid = OBJ_obj2nid(oid);
    for (size_t i = 0; i < MR_ARRAY_LEN(fast_sigs); i++)
        if (fast_sigs[i].sig_nid == nid)
            return fast_sigs[i].md;
    return NULL;
}

/* EC public key from an uncompressed point; NULL if the point is not on the curve. */
static EVP_PKEY *import_ec(const char *group, const ASN1_BIT_STRING *bits)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    const unsigned char *pt = ASN1_STRING_get0_data(bits);
    int len = ASN1_STRING_length(bits);
    if ((bits->flags & 0x7) != 0 || len < 1 || pt[0] != 0x04)
        return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)(uintptr_t)group, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(uintptr_t)pt, (size_t)len),
        OSSL_PARAM_END,
    };
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static bool signature_ok(EVP_PKEY *key, const char *md, const MR_CSR *c)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && (c->signature->flags & 0x7) == 0 &&
              EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, key, NULL) == 1 &&
              EVP_DigestVerify(ctx, ASN1_STRING_get0_data(c->signature),
                               (size_t)ASN1_STRING_length(c->signature), c->info->enc.enc,
                               (size_t)c->info->enc.len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* What X509_REQ_get_extensions returns for these attributes (an empty stack when none). */
static STACK_OF(X509_EXTENSION) *request_extensions(const STACK_OF(X509_ATTRIBUTE) *attrs)
{
    static const int nids[] = {NID_ext_req, NID_ms_ext_req};
    ASN1_TYPE *ext = NULL;
    for (size_t i = 0; i < MR_ARRAY_LEN(nids) && ext == NULL; i++) {
        int idx = X509at_get_attr_by_NID(attrs, nids[i], -1);
        if (idx >= 0)
            ext = X509_ATTRIBUTE_get0_type(X509at_get_attr(attrs, idx), 0);
        if (idx >= 0 && ext == NULL)
            return NULL;
    }
    if (ext == NULL)
        return sk_X509_EXTENSION_new_null();
    if (ext->type != V_ASN1_SEQUENCE)
        return NULL;
    const unsigned char *p = ext->value.sequence->data;
    return (STACK_OF(X509_EXTENSION) *)ASN1_item_d2i(NULL, &p, ext->value.sequence->length,
                                                      ASN1_ITEM_rptr(X509_EXTENSIONS));
}

/* Subject and SANs of a request whose signature has been checked; false: let the general
 * path decide (it produces the error). */
static bool read_fields(const MR_CSR *c, mr_x509_name *subject, mr_x509_san_list *sans)
{
    STACK_OF(X509_EXTENSION) *exts = request_extensions(c->info->attributes);
    if (exts == NULL)
        return false;
    int crit = -1;
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    bool ok = (gens != NULL || crit == -1) && mr_ok(mr_x509_gens_read(gens, sans)) &&
              mr_ok(mr_x509_name_read(c->info->subject, subject));
    GENERAL_NAMES_free(gens);
    if (!ok) {
        mr_x509_san_list_clear(sans);
        mr_x509_name_clear(subject);
    }
    return ok;
}

/* The request's key is byte for byte the one the caller has seen proven. */
static bool key_is_proven(const MR_CSR_SPKI *k, mr_slice proven)
{
    return proven.len > 0 && k->enc.enc != NULL && k->enc.len == (long)proven.len &&
           memcmp(k->enc.enc, proven.ptr, proven.len) == 0; /* check-source: allow memcmp -- public keys */
}

static bool read_fast(mr_slice der, mr_slice proven, mr_x509_name *subject,
                      mr_x509_san_list *sans)
{
    const unsigned char *p = der.ptr;
    MR_CSR *c = (MR_CSR *)ASN1_item_d2i(NULL, &p, (long)der.len, ASN1_ITEM_rptr(MR_CSR));
    bool ok = false;
    EVP_PKEY *key = NULL;
    if (c == NULL || p != der.ptr + der.len || c->info->enc.enc == NULL)
        goto out;
    const char *group = named_curve(c->info->pubkey->algor);
    const char *md = sig_digest(c->sig_alg);
    if (group == NULL || md == NULL)
        goto out;
    if (!key_is_proven(c->info->pubkey, proven)) {
        key = import_ec(group, c->info->pubkey->public_key);
        if (key == NULL || !signature_ok(key, md, c))
            goto out;
    }
    ok = read_fields(c, subject, sans);
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    csr_free(c);
    return ok;
}

MR_RESULT mr_csr_read(mr_slice der, mr_x509_name *subject, mr_x509_san_list *sans)
{
    return mr_csr_read_proven(der, MR_SLICE(NULL, 0), subject, sans);
}

MR_RESULT mr_csr_read_proven(mr_slice der, mr_slice proven_spki, mr_x509_name *subject,
                             mr_x509_san_list *sans)
{
    mr_result res = MR_FAILURE;
    X509_REQ *req = NULL;
    MR_ENSURE(der.len > 0 && der.len <= MR_CSR_DER_MAX, MR_ERR_USAGE,
              "invalid CSR: bad length %zu", der.len);
    if (read_fast(der, proven_spki, subject, sans))
        return MR_SUCCESS;
    MR_GUARD(mr_csr_from_der(der, &req));
    MR_GUARD_OUT(mr_csr_sans(req, sans));
    if (!mr_ok(mr_csr_subject(req, subject))) {
        mr_x509_san_list_clear(sans);
        goto out;
    }
    res = MR_SUCCESS;
out:
    X509_REQ_free(req);
    return res;
}
