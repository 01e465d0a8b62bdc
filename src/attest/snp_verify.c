/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP report verification (spec/attestation.md §5.5):
 *
 *   1. parse the report (snp_report.c);
 *   2. load the VEK (VCEK or VLEK) and the caller's intermediates; an ARK copy from the
 *      caller must match a pinned root by public key and carry a valid self-signature, and
 *      is then dropped: the anchor is always the compiled-in certificate;
 *   3. build and verify VEK -> ASK/ASVK -> ARK at time T with OpenSSL (RSASSA-PSS handled
 *      by X509_verify), exactly three certificates, anchor self-signature checked;
 *   4. the VEK's AMD extensions (1.3.6.1.4.1.3704.1.*) against REPORTED_TCB and CHIP_ID;
 *   5. the report signature, ECDSA P-384 / SHA-384 over [0, 0x2A0), R and S little-endian;
 *   6. optionally AMD's CRL, issued by the ARK, over the intermediate.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/snp.h"
#include "attest/snp_roots.h"
#include "common/codec.h"

#define MAX_CHAIN_CERTS 4
#define MAX_ANCHORS 4
#define KDS_OID_PREFIX "1.3.6.1.4.1.3704.1."

typedef struct anchor {
    X509 *ark;
    X509 *ask; /* compiled-in ASK, or NULL */
    mr_snp_product product;
} anchor;

typedef struct vctx {
    const mr_snp_report *report;
    time_t t;
    X509 *vek;
    STACK_OF(X509) *inter; /* intermediates from the caller */
    anchor anchors[MAX_ANCHORS];
    size_t n_anchors;
    STACK_OF(X509) *chain; /* the verified chain: VEK, intermediate, ARK */
    const anchor *used;
} vctx;

/* Re-files the current error (e.g. a cursor or PEM error) as an attestation failure of
 * `step`, keeping its text. mr_error_set, not a macro: the error changes its category, which
 * MR_BAIL and mr_error_prefix cannot do; the callers return the failure. */
static void refile(const char *step)
{
    char msg[MR_ERR_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", mr_error_get()->msg);
    mr_errcat cat = mr_error_get()->cat == MR_ERR_INTERNAL ? MR_ERR_INTERNAL : MR_ERR_ATTESTATION;
    mr_error_set(cat, __FILE__, __LINE__, "%s: %s", step, msg);
}

/* ---- loading certificates ---- */

static bool looks_like_pem(mr_slice in)
{
    static const char begin[] = "-----BEGIN ";
    size_t i = 0;
    while (i < in.len && (in.ptr[i] == ' ' || in.ptr[i] == '\t' || in.ptr[i] == '\r' ||
                          in.ptr[i] == '\n'))
        i++;
    return in.len - i >= sizeof(begin) - 1 && memcmp(in.ptr + i, begin, sizeof(begin) - 1) == 0;
}

static MR_RESULT der_to_x509(mr_slice der, const char *what, X509 **out)
{
    mr_result res = MR_FAILURE;
    const unsigned char *p = der.ptr;
    X509 *x = NULL;
    MR_ENSURE_OUT(der.len > 0 && der.len <= 65536, MR_ERR_ATTESTATION,
                  "SNP certificates: %s: bad size %zu", what, der.len);
    x = d2i_X509(NULL, &p, (long)der.len);
    MR_GUARD_OSSL_OUT(x != NULL ? 1 : 0, MR_ERR_ATTESTATION,
                      "SNP certificates: %s is not a valid X.509 certificate", what);
    MR_ENSURE_OUT((size_t)(p - der.ptr) == der.len, MR_ERR_ATTESTATION,
                  "SNP certificates: %s has trailing bytes", what);
    *out = x;
    x = NULL;
    res = MR_SUCCESS;
out:
    X509_free(x);
    return res;
}

static MR_RESULT push_cert(STACK_OF(X509) *sk, mr_slice der, const char *what)
{
    mr_result res = MR_FAILURE;
    X509 *x = NULL;
    MR_ENSURE_OUT(sk_X509_num(sk) < MAX_CHAIN_CERTS, MR_ERR_ATTESTATION,
                  "SNP certificates: more than %d certificates in %s", MAX_CHAIN_CERTS, what);
    MR_GUARD_OUT(der_to_x509(der, what, &x));
    MR_ENSURE_OUT(sk_X509_push(sk, x) > 0, MR_ERR_INTERNAL, "out of memory");
    x = NULL;
    res = MR_SUCCESS;
out:
    X509_free(x);
    return res;
}

/* Appends the certificates in `in` (concatenated PEM blocks, or one DER certificate). */
static MR_RESULT load_certs(mr_slice in, const char *what, STACK_OF(X509) *sk)
{
    mr_result res = MR_FAILURE;
    mr_pem_block blk;
    mr_buf_init(&blk.der, 65536, 0);
    if (!looks_like_pem(in)) {
        MR_GUARD_OUT(push_cert(sk, in, what));
        res = MR_SUCCESS;
        goto out;
    }
    mr_cursor c;
    mr_cursor_init(&c, in.ptr, in.len);
    for (;;) {
        bool found = false;
        mr_buf_reset(&blk.der);
        if (!mr_ok(mr_pem_next(&c, &blk, &found))) {
            refile("SNP certificates");
            goto out;
        }
        if (!found)
            break;
        MR_ENSURE_OUT(strcmp(blk.label, "CERTIFICATE") == 0, MR_ERR_ATTESTATION,
                      "SNP certificates: unexpected PEM block \"%s\" in %s", blk.label, what);
        MR_GUARD_OUT(push_cert(sk, mr_buf_slice(&blk.der), what));
    }
    MR_ENSURE_OUT(sk_X509_num(sk) > 0, MR_ERR_ATTESTATION, "SNP certificates: no certificate in %s",
                  what);
    res = MR_SUCCESS;
out:
    mr_buf_free(&blk.der);
    return res;
}

static MR_RESULT load_one(mr_slice in, const char *what, X509 **out)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *sk = sk_X509_new_null();
    MR_ENSURE_ALLOC(sk);
    MR_GUARD_OUT(load_certs(in, what, sk));
    MR_ENSURE_OUT(sk_X509_num(sk) == 1, MR_ERR_ATTESTATION,
                  "SNP certificates: %s must be exactly one certificate", what);
    *out = sk_X509_shift(sk);
    res = MR_SUCCESS;
out:
    sk_X509_pop_free(sk, X509_free);
    return res;
}

static bool self_issued(X509 *x)
{
    return X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;
}

static bool same_key(X509 *a, X509 *b)
{
    EVP_PKEY *ka = X509_get0_pubkey(a);
    EVP_PKEY *kb = X509_get0_pubkey(b);
    return ka != NULL && kb != NULL && EVP_PKEY_eq(ka, kb) == 1;
}

/* ---- anchors ---- */

static MR_RESULT spki_sha256(X509 *x, uint8_t out[32])
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    MR_ENSURE(n > 0, MR_ERR_INTERNAL, "internal error: cannot encode a public key");
    unsigned int mdlen = 0;
    int ok = EVP_Digest(der, (size_t)n, out, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    MR_ENSURE(ok == 1 && mdlen == 32, MR_ERR_INTERNAL, "internal error: SHA-256 failed");
    return MR_SUCCESS;
}

static MR_RESULT load_builtin_anchor(const mr_snp_root *r, anchor *a)
{
    uint8_t pin[32];
    MR_GUARD(load_one(MR_SLICE(r->ark_pem, strlen(r->ark_pem)), "compiled-in ARK", &a->ark));
    MR_GUARD(load_one(MR_SLICE(r->ask_pem, strlen(r->ask_pem)), "compiled-in ASK", &a->ask));
    MR_GUARD(spki_sha256(a->ark, pin));
    MR_ENSURE(memcmp(pin, r->ark_spki_sha256, sizeof(pin)) == 0, MR_ERR_INTERNAL,
              "internal error: compiled-in AMD root for %s does not match its pin",
              mr_snp_product_name(r->product));
    a->product = r->product;
    return MR_SUCCESS;
}

static MR_RESULT load_anchors(vctx *v, const mr_snp_verify_opts *o)
{
    if (o->test_root.len > 0) {
        MR_GUARD(load_one(o->test_root, "test root", &v->anchors[0].ark));
        v->anchors[0].product = MR_SNP_PRODUCT_ANY;
        v->n_anchors = 1;
        return MR_SUCCESS;
    }
    for (size_t i = 0; i < mr_snp_roots_count && v->n_anchors < MAX_ANCHORS; i++) {
        if (o->product != MR_SNP_PRODUCT_ANY && mr_snp_roots[i].product != o->product)
            continue;
        /* counted first, so that vctx_free releases a half-loaded slot */
        anchor *a = &v->anchors[v->n_anchors++];
        MR_GUARD(load_builtin_anchor(&mr_snp_roots[i], a));
    }
    MR_ENSURE(v->n_anchors > 0, MR_ERR_ATTESTATION, "SNP VCEK chain: no AMD root for product %s",
              mr_snp_product_name(o->product));
    return MR_SUCCESS;
}

static const anchor *anchor_for_key(const vctx *v, X509 *x)
{
    for (size_t i = 0; i < v->n_anchors; i++)
        if (same_key(v->anchors[i].ark, x))
            return &v->anchors[i];
    return NULL;
}

/* Sorts the caller's chain certificates: ARK copies are checked and dropped, the rest
 * become untrusted intermediates. */
static MR_RESULT sort_chain(vctx *v, STACK_OF(X509) *given)
{
    mr_result res = MR_FAILURE;
    X509 *x = NULL;
    while (sk_X509_num(given) > 0) {
        x = sk_X509_shift(given);
        if (!self_issued(x)) {
            MR_ENSURE_OUT(sk_X509_push(v->inter, x) > 0, MR_ERR_INTERNAL, "out of memory");
            x = NULL;
            continue;
        }
        MR_ENSURE_OUT(anchor_for_key(v, x) != NULL, MR_ERR_ATTESTATION,
                      "SNP VCEK chain: the ARK in the chain does not match the pinned AMD root key");
        EVP_PKEY *k = X509_get0_pubkey(x);
        MR_ENSURE_OUT(k != NULL && X509_verify(x, k) == 1, MR_ERR_ATTESTATION,
                      "SNP VCEK chain: the ARK in the chain has an invalid self-signature");
        X509_free(x); /* checked; the compiled-in copy is the anchor */
        x = NULL;
    }
    res = MR_SUCCESS;
out:
    X509_free(x);
    ERR_clear_error();
    return res;
}

/* ---- chain ---- */

static MR_RESULT run_x509_verify(vctx *v, X509_STORE *store, STACK_OF(X509) *untrusted)
{
    mr_result res = MR_FAILURE;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    MR_ENSURE_ALLOC_OUT(ctx);
    MR_GUARD_OSSL_OUT(X509_STORE_CTX_init(ctx, store, v->vek, untrusted), MR_ERR_INTERNAL,
                      "SNP VCEK chain: setup failed");
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, v->t);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CHECK_SS_SIGNATURE);
    X509_VERIFY_PARAM_set_depth(param, 2);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        static const char *const names[] = {"VCEK/VLEK", "ASK/ASVK", "ARK"};
        MR_BAIL_OUT(MR_ERR_ATTESTATION, "SNP VCEK chain: %s (at the %s certificate)",
                    X509_verify_cert_error_string(err),
                    depth >= 0 && depth < 3 ? names[depth] : "chain");
    }
    v->chain = X509_STORE_CTX_get1_chain(ctx);
    MR_ENSURE_ALLOC_OUT(v->chain);
    res = MR_SUCCESS;
out:
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return res;
}

static MR_RESULT verify_chain(vctx *v)
{
    mr_result res = MR_FAILURE;
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_dup(v->inter);
    MR_ENSURE_ALLOC_OUT(store);
    MR_ENSURE_ALLOC_OUT(untrusted);
    for (size_t i = 0; i < v->n_anchors; i++) {
        MR_GUARD_OSSL_OUT(X509_STORE_add_cert(store, v->anchors[i].ark), MR_ERR_INTERNAL,
                          "SNP VCEK chain: cannot load the root");
        /* The compiled-in ASK stands in only when the caller gave no intermediate. */
        if (sk_X509_num(v->inter) == 0 && v->anchors[i].ask != NULL &&
            sk_X509_push(untrusted, v->anchors[i].ask) <= 0)
            MR_BAIL_OUT(MR_ERR_INTERNAL, "out of memory");
    }
    MR_GUARD_OUT(run_x509_verify(v, store, untrusted));
    MR_ENSURE_OUT(sk_X509_num(v->chain) == 3, MR_ERR_ATTESTATION,
                  "SNP VCEK chain: %d certificates, want VEK, ASK and ARK", sk_X509_num(v->chain));
    v->used = anchor_for_key(v, sk_X509_value(v->chain, 2));
    MR_ENSURE_OUT(v->used != NULL, MR_ERR_INTERNAL, "internal error: SNP chain anchor unknown");
    res = MR_SUCCESS;
out:
    sk_X509_free(untrusted); /* the certificates belong to v */
    X509_STORE_free(store);
    return res;
}

/* ---- VEK key and extensions ---- */

static MR_RESULT check_vek_key(const vctx *v)
{
    EVP_PKEY *k = X509_get0_pubkey(v->vek);
    char group[32] = "";
    size_t glen = 0;
    MR_ENSURE(k != NULL && EVP_PKEY_get_base_id(k) == EVP_PKEY_EC, MR_ERR_ATTESTATION,
              "SNP VCEK key: the signing key is not an EC key");
    MR_ENSURE(EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                             &glen) == 1 &&
                  strcmp(group, "secp384r1") == 0,
              MR_ERR_ATTESTATION, "SNP VCEK key: the signing key is not on P-384");
    return MR_SUCCESS;
}

typedef struct kds_ext {
    bool seen_spl[9]; /* index = x in .3.x */
    uint8_t spl[9];
    bool seen_hwid;
    bool seen_csp;
    bool seen_product;
    char product[32];
} kds_ext;

static MR_RESULT ext_uint8(const ASN1_OCTET_STRING *os, const char *what, uint8_t *out)
{
    const unsigned char *p = ASN1_STRING_get0_data(os);
    int n = ASN1_STRING_length(os);
    const unsigned char *start = p;
    int64_t val = -1;
    ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &p, n);
    bool ok = ai != NULL && p - start == n && ASN1_INTEGER_get_int64(&val, ai) == 1;
    ASN1_INTEGER_free(ai);
    ERR_clear_error();
    MR_ENSURE(ok && val >= 0 && val <= 255, MR_ERR_ATTESTATION,
              "SNP VCEK extensions: %s is not an integer in 0..255", what);
    *out = (uint8_t)val;
    return MR_SUCCESS;
}

static MR_RESULT ext_product(const ASN1_OCTET_STRING *os, kds_ext *k)
{
    const unsigned char *p = ASN1_STRING_get0_data(os);
    int n = ASN1_STRING_length(os);
    const unsigned char *start = p;
    ASN1_IA5STRING *s = d2i_ASN1_IA5STRING(NULL, &p, n);
    bool ok = s != NULL && p - start == n && ASN1_STRING_length(s) > 0 &&
              (size_t)ASN1_STRING_length(s) < sizeof(k->product);
    if (ok) {
        const unsigned char *d = ASN1_STRING_get0_data(s);
        for (int i = 0; i < ASN1_STRING_length(s); i++)
            ok = ok && d[i] >= 0x20 && d[i] < 0x7f;
        if (ok)
            memcpy(k->product, d, (size_t)ASN1_STRING_length(s));
    }
    ASN1_IA5STRING_free(s);
    ERR_clear_error();
    MR_ENSURE(ok, MR_ERR_ATTESTATION, "SNP VCEK extensions: productName is not a short IA5String");
    return MR_SUCCESS;
}

/* hwID: KDS has served both the 64 raw bytes and a DER OCTET STRING around them. */
static MR_RESULT ext_hwid(const ASN1_OCTET_STRING *os, const mr_snp_report *r)
{
    const unsigned char *p = ASN1_STRING_get0_data(os);
    int n = ASN1_STRING_length(os);
    mr_cursor c;
    mr_cursor_init(&c, p, (size_t)n);
    mr_slice id = {0};
    if (n == 66 && p[0] == 0x04 && p[1] == 64)
        MR_GUARD(mr_cursor_skip(&c, 2));
    MR_ENSURE(mr_cursor_remaining(&c) == sizeof(r->chip_id), MR_ERR_ATTESTATION,
              "SNP VCEK extensions: hwID is not 64 bytes");
    MR_GUARD(mr_cursor_view(&c, sizeof(r->chip_id), &id));
    if (r->mask_chip_key)
        return MR_SUCCESS; /* the report's CHIP_ID is masked; nothing to compare */
    MR_ENSURE(memcmp(id.ptr, r->chip_id, sizeof(r->chip_id)) == 0, MR_ERR_ATTESTATION,
              "SNP VCEK extensions: hwID does not match the report's CHIP_ID");
    return MR_SUCCESS;
}

static MR_RESULT one_ext(X509_EXTENSION *e, const mr_snp_report *r, kds_ext *k)
{
    char oid[64];
    int n = OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(e), 1);
    if (n <= 0 || (size_t)n >= sizeof(oid) || strncmp(oid, KDS_OID_PREFIX, strlen(KDS_OID_PREFIX)) != 0)
        return MR_SUCCESS;
    const char *sub = oid + strlen(KDS_OID_PREFIX);
    const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(e);
    if (strlen(sub) == 3 && sub[0] == '3' && sub[1] == '.' && sub[2] >= '1' && sub[2] <= '8') {
        int i = sub[2] - '0';
        MR_ENSURE(!k->seen_spl[i], MR_ERR_ATTESTATION, "SNP VCEK extensions: duplicate %s", oid);
        k->seen_spl[i] = true;
        return ext_uint8(os, oid, &k->spl[i]);
    }
    if (strcmp(sub, "2") == 0) {
        MR_ENSURE(!k->seen_product, MR_ERR_ATTESTATION, "SNP VCEK extensions: duplicate productName");
        k->seen_product = true;
        return ext_product(os, k);
    }
    if (strcmp(sub, "4") == 0) {
        MR_ENSURE(!k->seen_hwid, MR_ERR_ATTESTATION, "SNP VCEK extensions: duplicate hwID");
        k->seen_hwid = true;
        return ext_hwid(os, r);
    }
    if (strcmp(sub, "5") == 0) {
        MR_ENSURE(!k->seen_csp, MR_ERR_ATTESTATION, "SNP VCEK extensions: duplicate CSP_ID");
        k->seen_csp = true;
    }
    return MR_SUCCESS;
}

/* The product name says "Milan-B0", "Genoa", ...; it must agree with the root. */
static MR_RESULT check_product(const kds_ext *k, mr_snp_product used)
{
    static const struct {
        const char *prefix;
        mr_snp_product p;
    } known[] = {{"Milan", MR_SNP_PRODUCT_MILAN}, {"Genoa", MR_SNP_PRODUCT_GENOA}};
    if (used == MR_SNP_PRODUCT_ANY)
        return MR_SUCCESS;
    for (size_t i = 0; i < MR_ARRAY_LEN(known); i++)
        if (strncmp(k->product, known[i].prefix, strlen(known[i].prefix)) == 0)
            MR_ENSURE(known[i].p == used, MR_ERR_ATTESTATION,
                      "SNP VCEK extensions: productName \"%s\" but the chain ends at ARK-%s",
                      k->product, mr_snp_product_name(used));
    return MR_SUCCESS;
}

static MR_RESULT check_extensions(const vctx *v, mr_snp_claims *cl)
{
    const mr_snp_report *r = v->report;
    kds_ext k;
    memset(&k, 0, sizeof(k));
    for (int i = 0; i < X509_get_ext_count(v->vek); i++)
        MR_GUARD(one_ext(X509_get_ext(v->vek, i), r, &k));
    if (r->signing_key == MR_SNP_KEY_VCEK)
        MR_ENSURE(k.seen_hwid, MR_ERR_ATTESTATION,
                  "SNP VCEK extensions: the report is signed by a VCEK but the certificate has no hwID");
    else
        MR_ENSURE(k.seen_csp && !k.seen_hwid, MR_ERR_ATTESTATION,
                  "SNP VCEK extensions: the report is signed by a VLEK but the certificate is not a VLEK");
    /* TCB byte i of REPORTED_TCB corresponds to .3.x: bl=.1, tee=.2, spl4..7=.4..7,
     * snp=.3, ucode=.8. */
    static const struct {
        int ext;
        int byte;
        const char *name;
        bool required;
    } map[] = {{1, 0, "blSPL", true},  {2, 1, "teeSPL", true},   {4, 2, "spl4", false},
               {5, 3, "spl5", false},  {6, 4, "spl6", false},    {7, 5, "spl7", false},
               {3, 6, "snpSPL", true}, {8, 7, "ucodeSPL", true}};
    for (size_t i = 0; i < MR_ARRAY_LEN(map); i++) {
        uint8_t want = (uint8_t)((r->reported_tcb.raw >> (8 * map[i].byte)) & 0xff);
        if (!k.seen_spl[map[i].ext]) {
            MR_ENSURE(!map[i].required, MR_ERR_ATTESTATION, "SNP VCEK extensions: %s is missing",
                      map[i].name);
            continue;
        }
        MR_ENSURE(k.spl[map[i].ext] == want, MR_ERR_ATTESTATION,
                  "SNP VCEK extensions: %s is %u but the report's REPORTED_TCB says %u",
                  map[i].name, k.spl[map[i].ext], want);
    }
    MR_GUARD(check_product(&k, v->used->product));
    memcpy(cl->product_name, k.product, sizeof(cl->product_name));
    return MR_SUCCESS;
}

/* ---- report signature ---- */

static MR_RESULT check_signature(const vctx *v, const uint8_t *report)
{
    mr_result res = MR_FAILURE;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_lebin2bn(v->report->sig_r, MR_SNP_SIG_COMPONENT_SIZE, NULL);
    BIGNUM *s = BN_lebin2bn(v->report->sig_s, MR_SNP_SIG_COMPONENT_SIZE, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    MR_ENSURE_OUT(v->report->sig_algo == 1, MR_ERR_ATTESTATION,
                  "SNP report signature: unsupported algorithm %u (want 1, ECDSA P-384 SHA-384)",
                  v->report->sig_algo);
    MR_ENSURE_OUT(sig != NULL && r != NULL && s != NULL && md != NULL, MR_ERR_INTERNAL,
                  "out of memory");
    MR_GUARD_OSSL_OUT(ECDSA_SIG_set0(sig, r, s), MR_ERR_INTERNAL, "ECDSA_SIG_set0");
    r = s = NULL;
    int dlen = i2d_ECDSA_SIG(sig, &der);
    MR_ENSURE_OUT(dlen > 0, MR_ERR_INTERNAL, "internal error: cannot encode the signature");
    MR_GUARD_OSSL_OUT(EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, X509_get0_pubkey(v->vek)),
                      MR_ERR_INTERNAL, "SNP report signature: setup failed");
    int ok = EVP_DigestVerify(md, der, (size_t)dlen, report, MR_SNP_SIGNED_SIZE);
    ERR_clear_error();
    MR_ENSURE_OUT(ok == 1, MR_ERR_ATTESTATION,
                  "SNP report signature: does not verify with the VCEK/VLEK key");
    res = MR_SUCCESS;
out:
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return res;
}

/* ---- CRL ---- */

static MR_RESULT load_crl(mr_slice in, X509_CRL **out)
{
    mr_result res = MR_FAILURE;
    X509_CRL *crl = NULL;
    mr_pem_block blk;
    mr_buf_init(&blk.der, 1u << 20, 0);
    mr_slice der = in;
    if (looks_like_pem(in)) {
        mr_cursor c;
        mr_cursor_init(&c, in.ptr, in.len);
        bool found = false;
        if (!mr_ok(mr_pem_next(&c, &blk, &found))) {
            refile("SNP CRL");
            goto out;
        }
        MR_ENSURE_OUT(found && strcmp(blk.label, "X509 CRL") == 0, MR_ERR_ATTESTATION,
                      "SNP CRL: no X509 CRL PEM block");
        der = mr_buf_slice(&blk.der);
    }
    const unsigned char *p = der.ptr;
    crl = d2i_X509_CRL(NULL, &p, (long)der.len);
    MR_GUARD_OSSL_OUT(crl != NULL ? 1 : 0, MR_ERR_ATTESTATION, "SNP CRL: not a valid CRL");
    MR_ENSURE_OUT((size_t)(p - der.ptr) == der.len, MR_ERR_ATTESTATION,
                  "SNP CRL: trailing bytes after the CRL");
    *out = crl;
    crl = NULL;
    res = MR_SUCCESS;
out:
    X509_CRL_free(crl);
    mr_buf_free(&blk.der);
    return res;
}

static MR_RESULT check_crl(const vctx *v, mr_slice in)
{
    mr_result res = MR_FAILURE;
    X509_CRL *crl = NULL;
    X509 *ark = sk_X509_value(v->chain, 2);
    X509 *ask = sk_X509_value(v->chain, 1);
    X509_REVOKED *rev = NULL;
    time_t t = v->t;
    MR_GUARD_OUT(load_crl(in, &crl));
    MR_ENSURE_OUT(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ark)) == 0,
                  MR_ERR_ATTESTATION, "SNP CRL: not issued by the ARK");
    int ok = X509_CRL_verify(crl, X509_get0_pubkey(ark));
    ERR_clear_error();
    MR_ENSURE_OUT(ok == 1, MR_ERR_ATTESTATION, "SNP CRL: signature does not verify with the ARK key");
    const ASN1_TIME *this_upd = X509_CRL_get0_lastUpdate(crl);
    const ASN1_TIME *next_upd = X509_CRL_get0_nextUpdate(crl);
    MR_ENSURE_OUT(this_upd != NULL && X509_cmp_time(this_upd, &t) < 0, MR_ERR_ATTESTATION,
                  "SNP CRL: not yet valid at the verification time");
    MR_ENSURE_OUT(next_upd != NULL && X509_cmp_time(next_upd, &t) > 0, MR_ERR_ATTESTATION,
                  "SNP CRL: expired at the verification time");
    MR_ENSURE_OUT(X509_CRL_get0_by_cert(crl, &rev, ask) != 1, MR_ERR_ATTESTATION,
                  "SNP CRL: the ASK/ASVK certificate is revoked");
    res = MR_SUCCESS;
out:
    X509_CRL_free(crl);
    return res;
}

/* ---- top level ---- */

static void vctx_free(vctx *v)
{
    X509_free(v->vek);
    sk_X509_pop_free(v->inter, X509_free);
    sk_X509_pop_free(v->chain, X509_free);
    for (size_t i = 0; i < v->n_anchors; i++) {
        X509_free(v->anchors[i].ark);
        X509_free(v->anchors[i].ask);
    }
}

static time_t asn1_to_time(const ASN1_TIME *a)
{
    struct tm tm;
    if (a == NULL || ASN1_TIME_to_tm(a, &tm) != 1)
        return 0;
    return timegm(&tm);
}

static MR_RESULT load_evidence(vctx *v, const mr_snp_evidence *ev, const mr_snp_verify_opts *o)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *given = sk_X509_new_null();
    MR_ENSURE_ALLOC_OUT(given);
    v->inter = sk_X509_new_null();
    MR_ENSURE_ALLOC_OUT(v->inter);
    MR_ENSURE_OUT(ev->vek.len > 0, MR_ERR_ATTESTATION, "SNP certificates: no VCEK/VLEK given");
    MR_GUARD_OUT(load_one(ev->vek, "VCEK/VLEK", &v->vek));
    MR_GUARD_OUT(load_anchors(v, o));
    if (ev->chain.len > 0)
        MR_GUARD_OUT(load_certs(ev->chain, "the chain", given));
    if (ev->chain2.len > 0)
        MR_GUARD_OUT(load_certs(ev->chain2, "the chain", given));
    MR_GUARD_OUT(sort_chain(v, given));
    res = MR_SUCCESS;
out:
    sk_X509_pop_free(given, X509_free);
    return res;
}

MR_RESULT mr_snp_verify(const mr_snp_evidence *ev, const mr_snp_verify_opts *opts,
                        mr_snp_claims *out)
{
    mr_result res = MR_FAILURE;
    vctx v;
    mr_snp_report rep;
    mr_snp_claims cl;
    memset(&v, 0, sizeof(v));
    memset(&cl, 0, sizeof(cl));
    MR_ENSURE_REF(ev);
    MR_ENSURE_REF(opts);
    MR_ENSURE_REF(out);

    MR_GUARD(mr_snp_report_parse(ev->report.ptr, ev->report.len, &rep));
    MR_ENSURE(rep.signing_key != MR_SNP_KEY_NONE, MR_ERR_ATTESTATION,
              "SNP report: the report is not signed (SIGNING_KEY none)");
    MR_ENSURE(!opts->require_crl || ev->crl.len > 0, MR_ERR_ATTESTATION,
              "SNP CRL: a CRL is required but none was given");
    v.report = &rep;
    v.t = opts->time != 0 ? opts->time : time(NULL);

    MR_GUARD_OUT(load_evidence(&v, ev, opts));
    MR_GUARD_OUT(verify_chain(&v));
    MR_GUARD_OUT(check_vek_key(&v));
    MR_GUARD_OUT(check_extensions(&v, &cl));
    MR_GUARD_OUT(check_signature(&v, ev->report.ptr));
    if (ev->crl.len > 0)
        MR_GUARD_OUT(check_crl(&v, ev->crl));

    cl.report = rep;
    cl.product = v.used->product;
    cl.key = (mr_snp_signing_key)rep.signing_key;
    cl.debug = (rep.policy & MR_SNP_POLICY_DEBUG) != 0;
    cl.vek_not_before = asn1_to_time(X509_get0_notBefore(v.vek));
    cl.vek_not_after = asn1_to_time(X509_get0_notAfter(v.vek));
    *out = cl;
    res = MR_SUCCESS;
out:
    vctx_free(&v);
    return res;
}

const char *mr_snp_product_name(mr_snp_product p)
{
    switch (p) {
    case MR_SNP_PRODUCT_MILAN:
        return "Milan";
    case MR_SNP_PRODUCT_GENOA:
        return "Genoa";
    case MR_SNP_PRODUCT_ANY:
        break;
    }
    return "any";
}
