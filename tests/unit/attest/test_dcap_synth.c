/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Synthetic DCAP quotes: a test PCK hierarchy (root named like Intel's but with another key,
 * a PCK CA and a PCK leaf carrying the SGX extension of a real PCK certificate) signs SGX
 * quotes v3, v4 and v5 (no real SGX v4/v5 quote exists). With the real sgx-v3-phala
 * collateral (Intel-signed) and a root set holding both roots, the full algorithm runs.
 */
#include "mr_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "attest/collateral.h"
#include "attest/dcap.h"
#include "attest/ossl.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "crypto/hash.h"
#include "test_dcap.h"

#define WHEN "2025-07-04T10:28:44Z"

typedef struct synth {
    EVP_PKEY *root_key, *ca_key, *leaf_key, *att_key;
    X509 *root, *ca, *leaf;
    mr_buf real_quote;
    mr_dcap_quote real;
    mr_attest_roots *both;       /* Intel root + test root */
    mr_attest_roots *test_only;  /* test root */
    mr_dcap_collateral *col;     /* the template's collateral without the PCK CRL */
    uint8_t body[MR_DCAP_TD15_BODY_LEN]; /* enclave/TD body used by build_quote (editable) */
} synth;

static EVP_PKEY *gen_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext = NULL;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static X509 *mk_cert(const X509_NAME *subj, X509 *issuer, EVP_PKEY *pub, EVP_PKEY *signer,
                     const char *bc, X509_EXTENSION *extra)
{
    X509 *c = X509_new();
    uint8_t serial[16];
    BIGNUM *bn = NULL;

    assert_non_null(c);
    assert_int_equal(X509_set_version(c, 2), 1);
    assert_int_equal(RAND_bytes(serial, sizeof(serial)), 1);
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)));
    BN_free(bn);
    assert_int_equal(ASN1_TIME_set_string(X509_getm_notBefore(c), "20200101000000Z"), 1);
    assert_int_equal(ASN1_TIME_set_string(X509_getm_notAfter(c), "20400101000000Z"), 1);
    assert_int_equal(X509_set_subject_name(c, subj), 1);
    assert_int_equal(X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : subj), 1);
    assert_int_equal(X509_set_pubkey(c, pub), 1);
    add_ext(c, issuer ? issuer : c, NID_subject_key_identifier, "hash");
    if (issuer)
        add_ext(c, issuer, NID_authority_key_identifier, "keyid:always");
    if (bc) {
        add_ext(c, issuer ? issuer : c, NID_basic_constraints, bc);
        add_ext(c, issuer ? issuer : c, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    if (extra)
        assert_int_equal(X509_add_ext(c, extra, -1), 1);
    assert_true(X509_sign(c, signer, EVP_sha256()) > 0);
    return c;
}

static void pem_cert(X509 *c, mr_buf *out)
{
    unsigned char *der = NULL;
    int n = i2d_X509(c, &der);
    assert_true(n > 0);
    MR_ASSERT_OK(mr_pem_encode_buf("CERTIFICATE", der, (size_t)n, out));
    OPENSSL_free(der);
}

static void sign_raw(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t out[64])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t dl = sizeof(der);
    const unsigned char *p = der;
    ECDSA_SIG *sig = NULL;

    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, der, &dl, msg, len), 1);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    assert_non_null(sig);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32), 32);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(ctx);
}

static void synth_init_from(synth *s, const char *dir)
{
    STACK_OF(X509) *real_chain = NULL;
    X509 *intel = NULL;
    X509_EXTENSION *sgx_ext = NULL;
    ASN1_OBJECT *oid = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    mr_buf pem, coltext;
    json_t *j = NULL;
    json_error_t je;
    char *dump = NULL;

    char rel[256];

    memset(s, 0, sizeof(*s));
    snprintf(rel, sizeof(rel), "%s/quote.bin", dir);
    td_read_vector(rel, &s->real_quote);
    MR_ASSERT_OK(mr_dcap_parse(s->real_quote.data, s->real_quote.len, &s->real));
    memcpy(s->body, s->real.body.ptr, s->real.body.len);
    MR_ASSERT_OK(mr_ossl_pem_certs(s->real.cert_data.ptr, s->real.cert_data.len, &real_chain));
    MR_ASSERT_OK(mr_ossl_der_cert(mr_intel_sgx_root_der, mr_intel_sgx_root_der_len, &intel));
    sgx_ext = X509_get_ext(sk_X509_value(real_chain, 0),
                           X509_get_ext_by_OBJ(sk_X509_value(real_chain, 0), oid, -1));
    assert_non_null(sgx_ext);

    s->root_key = gen_key();
    s->ca_key = gen_key();
    s->leaf_key = gen_key();
    s->att_key = gen_key();
    s->root = mk_cert(X509_get_subject_name(intel), NULL, s->root_key, s->root_key,
                      "critical,CA:TRUE,pathlen:1", NULL);
    s->ca = mk_cert(X509_get_subject_name(sk_X509_value(real_chain, 1)), s->root, s->ca_key,
                    s->root_key, "critical,CA:TRUE,pathlen:0", NULL);
    s->leaf = mk_cert(X509_get_subject_name(sk_X509_value(real_chain, 0)), s->ca, s->leaf_key,
                      s->ca_key, NULL, sgx_ext);

    mr_buf_init(&pem, 0, 0);
    pem_cert(s->root, &pem);
    MR_ASSERT_OK(mr_attest_roots_from_pem((const char *)pem.data, pem.len, &s->test_only));
    assert_false(mr_attest_roots_is_intel(s->test_only));
    MR_ASSERT_OK(mr_pem_encode_buf("CERTIFICATE", mr_intel_sgx_root_der,
                                   mr_intel_sgx_root_der_len, &pem));
    MR_ASSERT_OK(mr_attest_roots_from_pem((const char *)pem.data, pem.len, &s->both));
    assert_true(mr_attest_roots_is_intel(s->both));
    mr_buf_free(&pem);

    snprintf(rel, sizeof(rel), "%s/collateral.json", dir);
    td_read_vector(rel, &coltext);
    j = json_loadb((const char *)coltext.data, coltext.len, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_object_set_new(j, "pck_crl", json_null()), 0);
    dump = json_dumps(j, JSON_COMPACT);
    MR_ASSERT_OK(mr_dcap_collateral_parse_json(dump, strlen(dump), &s->col));
    free(dump); /* check-source: allow alloc -- json_dumps result */
    json_decref(j);
    mr_buf_free(&coltext);

    X509_free(intel);
    ASN1_OBJECT_free(oid);
    sk_X509_pop_free(real_chain, X509_free);
}

static void synth_init(synth *s) { synth_init_from(s, "sgx-v3-phala"); }

static void synth_free(synth *s)
{
    EVP_PKEY_free(s->root_key);
    EVP_PKEY_free(s->ca_key);
    EVP_PKEY_free(s->leaf_key);
    EVP_PKEY_free(s->att_key);
    X509_free(s->root);
    X509_free(s->ca);
    X509_free(s->leaf);
    mr_attest_roots_free(s->both);
    mr_attest_roots_free(s->test_only);
    mr_dcap_collateral_free(s->col);
    mr_buf_free(&s->real_quote);
}

/* Builds an SGX quote of `version` around the real enclave body and QE report. */
static void build_quote(synth *s, int version, uint16_t outer_type, uint16_t cert_type,
                        mr_buf *out)
{
    static const uint8_t vendor[16] = {0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9,
                                       0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07};
    uint8_t att_pub[65], qe[384], sig[64], qe_sig[64], auth[32], zeros[20] = {0};
    size_t publen = 0;
    mr_buf certs, tail;

    for (int i = 0; i < 32; i++)
        auth[i] = (uint8_t)i;
    assert_int_equal(EVP_PKEY_get_octet_string_param(s->att_key, OSSL_PKEY_PARAM_PUB_KEY,
                                                     att_pub, sizeof(att_pub), &publen),
                     1);
    assert_int_equal(publen, 65);
    memcpy(qe, s->real.qe_report.ptr, 384);
    const mr_slice bound[] = {MR_SLICE(att_pub + 1, 64), MR_SLICE(auth, 32)};
    MR_ASSERT_OK(mr_sha256_v(bound, 2, qe + 320));
    memset(qe + 352, 0, 32);
    sign_raw(s->leaf_key, qe, 384, qe_sig);

    mr_buf_init(&certs, 0, 0);
    pem_cert(s->leaf, &certs);
    pem_cert(s->ca, &certs);
    pem_cert(s->root, &certs);
    MR_ASSERT_OK(mr_buf_append_u8(&certs, 0));

    mr_buf_init(out, 0, 0);
    MR_ASSERT_OK(mr_buf_append_u16le(out, (uint16_t)version));
    MR_ASSERT_OK(mr_buf_append_u16le(out, 2));
    MR_ASSERT_OK(mr_buf_append_u32le(out, version == 3 ? 0 : s->real.tee_type));
    MR_ASSERT_OK(mr_buf_append_u16le(out, version == 3 ? 10 : 0));
    MR_ASSERT_OK(mr_buf_append_u16le(out, version == 3 ? 13 : 0));
    MR_ASSERT_OK(mr_buf_append(out, vendor, 16));
    MR_ASSERT_OK(mr_buf_append(out, zeros, 20));
    if (version == 5) {
        MR_ASSERT_OK(mr_buf_append_u16le(out, s->real.body_type));
        MR_ASSERT_OK(mr_buf_append_u32le(out, (uint32_t)s->real.body.len));
    }
    MR_ASSERT_OK(mr_buf_append(out, s->body, s->real.body.len));
    sign_raw(s->att_key, out->data, out->len, sig);

    mr_buf_init(&tail, 0, 0);
    MR_ASSERT_OK(mr_buf_append(&tail, qe, 384));
    MR_ASSERT_OK(mr_buf_append(&tail, qe_sig, 64));
    MR_ASSERT_OK(mr_buf_append_u16le(&tail, 32));
    MR_ASSERT_OK(mr_buf_append(&tail, auth, 32));
    MR_ASSERT_OK(mr_buf_append_u16le(&tail, cert_type));
    MR_ASSERT_OK(mr_buf_append_u32le(&tail, (uint32_t)certs.len));
    MR_ASSERT_OK(mr_buf_append(&tail, certs.data, certs.len));

    if (version == 3) {
        MR_ASSERT_OK(mr_buf_append_u32le(out, (uint32_t)(128 + tail.len)));
        MR_ASSERT_OK(mr_buf_append(out, sig, 64));
        MR_ASSERT_OK(mr_buf_append(out, att_pub + 1, 64));
        MR_ASSERT_OK(mr_buf_append(out, tail.data, tail.len));
    } else {
        MR_ASSERT_OK(mr_buf_append_u32le(out, (uint32_t)(128 + 6 + tail.len)));
        MR_ASSERT_OK(mr_buf_append(out, sig, 64));
        MR_ASSERT_OK(mr_buf_append(out, att_pub + 1, 64));
        MR_ASSERT_OK(mr_buf_append_u16le(out, outer_type));
        MR_ASSERT_OK(mr_buf_append_u32le(out, (uint32_t)tail.len));
        MR_ASSERT_OK(mr_buf_append(out, tail.data, tail.len));
    }
    mr_buf_free(&tail);
    mr_buf_free(&certs);
}

static void verify_synth(int version)
{
    synth s;
    mr_buf q;
    mr_attest_options o;
    mr_attest_claims c, real;

    synth_init(&s);
    build_quote(&s, version, 6, 5, &q);
    memset(&o, 0, sizeof(o));
    o.roots = s.both;
    o.collateral = s.col;
    o.verify_time = td_time(WHEN);
    MR_ASSERT_OK(mr_dcap_verify(q.data, q.len, &o, &c));
    if (getenv("MR_DCAP_WRITE_SEEDS") != NULL) { /* regenerates fuzz/corpus/quote seeds */
        char path[1024];
        FILE *f = NULL;
        snprintf(path, sizeof(path), "%s/synthetic-sgx-v%d.bin", getenv("MR_DCAP_WRITE_SEEDS"),
                 version);
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(q.data, 1, q.len, f), q.len);
        fclose(f);
    }
    assert_int_equal(c.quote_version, version);
    assert_int_equal(c.tee, MR_TEE_SGX);
    assert_true(c.tcb.evaluated);
    assert_int_equal(c.tcb.status, MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
    assert_int_equal(c.tcb.qe_status, MR_TCB_UP_TO_DATE);
    assert_int_equal(c.tcb.advisory_count, 2);
    MR_ASSERT_OK(mr_dcap_quote_claims(&s.real, &real));
    assert_memory_equal(&c.u.sgx, &real.u.sgx, sizeof(c.u.sgx));
    assert_memory_equal(c.report_data, real.report_data, 64);

    /* every signed byte matters here too */
    static const size_t offs[] = {0 + 8, 60, 112, 300, 400};
    for (size_t i = 0; i < MR_ARRAY_LEN(offs); i++) {
        size_t off = offs[i] + (version == 5 && offs[i] >= 48 ? 6 : 0);
        q.data[off] ^= 1;
        assert_false(mr_ok(mr_dcap_verify(q.data, q.len, &o, &c)));
        q.data[off] ^= 1;
    }
    /* the test hierarchy never passes against the Intel root alone */
    o.roots = NULL;
    MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &o, &c), MR_ERR_ATTESTATION, "PCK chain");
    /* with only the test root, the Intel-signed collateral does not verify: first the Root
     * CA CRL (step 4), then, without it, the TCB Info chain (step 5) */
    o.roots = s.test_only;
    MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &o, &c), MR_ERR_ATTESTATION,
                   "PCK revocation: Root CA CRL is not signed by a trusted root");
    {
        mr_dcap_collateral *no_crl = NULL;
        mr_buf text;
        json_error_t je;
        json_t *j = NULL;
        char *dump = NULL;
        td_read_vector("sgx-v3-phala/collateral.json", &text);
        j = json_loadb((const char *)text.data, text.len, 0, &je);
        json_object_set_new(j, "pck_crl", json_null());
        json_object_set_new(j, "root_ca_crl", json_null());
        dump = json_dumps(j, JSON_COMPACT);
        MR_ASSERT_OK(mr_dcap_collateral_parse_json(dump, strlen(dump), &no_crl));
        o.collateral = no_crl;
        MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &o, &c), MR_ERR_ATTESTATION,
                       "collateral: TCB Info signature issuer chain");
        o.collateral = s.col;
        mr_dcap_collateral_free(no_crl);
        free(dump); /* check-source: allow alloc -- json_dumps result */
        json_decref(j);
        mr_buf_free(&text);
    }
    /* ... but the quote's own crypto does when no collateral is asked for */
    o.collateral = NULL;
    o.flags = MR_ATTEST_ALLOW_NO_COLLATERAL;
    MR_ASSERT_OK(mr_dcap_verify(q.data, q.len, &o, &c));
    assert_false(c.tcb.evaluated);
    mr_buf_free(&q);
    synth_free(&s);
}

void test_synth_sgx_v3_roundtrip(void **state)
{
    (void)state;
    verify_synth(3);
}

void test_synth_sgx_v4(void **state)
{
    (void)state;
    verify_synth(4);
}

void test_synth_sgx_v5(void **state)
{
    (void)state;
    verify_synth(5);
}

void test_synth_other_root_rejected(void **state)
{
    synth s;
    mr_buf q;
    mr_attest_options o;
    mr_attest_claims c;
    (void)state;

    synth_init(&s);
    build_quote(&s, 3, 6, 5, &q);
    memset(&o, 0, sizeof(o));
    o.verify_time = td_time(WHEN);
    o.flags = MR_ATTEST_ALLOW_NO_COLLATERAL;
    /* same subject as the Intel root, other key: matched by key, so rejected */
    MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &o, &c), MR_ERR_ATTESTATION, "PCK chain");
    /* and the real Intel-rooted quote fails against the test root */
    o.roots = s.test_only;
    MR_ASSERT_FAIL(mr_dcap_verify(s.real_quote.data, s.real_quote.len, &o, &c),
                   MR_ERR_ATTESTATION, "PCK chain");
    mr_buf_free(&q);
    synth_free(&s);
}

void test_synth_bad_cert_types(void **state)
{
    synth s;
    mr_buf q;
    mr_attest_options o;
    mr_attest_claims c;
    (void)state;

    synth_init(&s);
    memset(&o, 0, sizeof(o));
    o.roots = s.both;
    o.collateral = s.col;
    o.verify_time = td_time(WHEN);
    build_quote(&s, 3, 6, 3, &q);
    MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &o, &c), MR_ERR_ATTESTATION,
                   "certification data type 3 not supported");
    mr_buf_free(&q);
    build_quote(&s, 4, 5, 5, &q);
    MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &o, &c), MR_ERR_ATTESTATION, "want 6");
    mr_buf_free(&q);
    build_quote(&s, 4, 6, 4, &q);
    MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &o, &c), MR_ERR_ATTESTATION,
                   "certification data type 4 not supported");
    mr_buf_free(&q);
    synth_free(&s);
}

/* ---------------------------------------------------------------------------------------- */
/* Re-signed collateral: a test "TCB Signing" certificate under the test root signs edited
 * TCB Info / QE Identity texts for the real tdx-v4-phala quote (whose PCK chain still goes
 * to the Intel root), to exercise the convergence rules of §2 step 13 that no real vector
 * reaches. */

typedef struct resigner {
    synth s;
    EVP_PKEY *tcb_key;
    X509 *tcb_cert;
    mr_buf chain_pem;
    mr_buf quote;
    const char *coldir, *when;
    bool drop_pck_crl;
} resigner;

static void resigner_init_from(resigner *r, const char *template_dir)
{
    X509_NAME *n = X509_NAME_new();
    memset(r, 0, sizeof(*r));
    synth_init_from(&r->s, template_dir);
    assert_non_null(n);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"Intel SGX TCB Signing",
                                                -1, -1, 0),
                     1);
    r->tcb_key = gen_key();
    r->tcb_cert = mk_cert(n, r->s.root, r->tcb_key, r->s.root_key, NULL, NULL);
    X509_NAME_free(n);
    mr_buf_init(&r->chain_pem, 0, 0);
    pem_cert(r->tcb_cert, &r->chain_pem);
    pem_cert(r->s.root, &r->chain_pem);
    MR_ASSERT_OK(mr_buf_nul_terminate(&r->chain_pem));
}

/* The real tdx-v4-phala quote with re-signed collateral. */
static void resigner_init(resigner *r)
{
    resigner_init_from(r, "sgx-v3-phala");
    td_read_vector("tdx-v4-phala/quote.bin", &r->quote);
    r->coldir = "tdx-v4-phala";
    r->when = "2025-07-04T10:16:31Z";
}

static void resigner_free(resigner *r)
{
    EVP_PKEY_free(r->tcb_key);
    X509_free(r->tcb_cert);
    mr_buf_free(&r->chain_pem);
    mr_buf_free(&r->quote);
    synth_free(&r->s);
}

typedef void (*edit_fn)(json_t *doc);

static void resign_field(resigner *r, json_t *col, const char *text_key, const char *sig_key,
                         const char *chain_key, edit_fn edit, size_t flags)
{
    json_error_t je;
    json_t *doc = json_loads(json_string_value(json_object_get(col, text_key)), 0, &je);
    char *text = NULL;
    uint8_t sig[64];
    mr_buf hex;

    assert_non_null(doc);
    edit(doc);
    text = json_dumps(doc, flags);
    assert_non_null(text);
    sign_raw(r->tcb_key, (const uint8_t *)text, strlen(text), sig);
    mr_buf_init(&hex, 0, 0);
    MR_ASSERT_OK(mr_hex_encode_buf(sig, 64, &hex));
    assert_int_equal(json_object_set_new(col, text_key, json_string(text)), 0);
    assert_int_equal(json_object_set_new(col, sig_key, json_stringn((const char *)hex.data,
                                                                     hex.len)),
                     0);
    assert_int_equal(json_object_set_new(col, chain_key,
                                         json_string((const char *)r->chain_pem.data)),
                     0);
    mr_buf_free(&hex);
    free(text); /* check-source: allow alloc -- json_dumps result */
    json_decref(doc);
}

static void no_edit(json_t *doc) { (void)doc; }

/* Verifies the phala TDX quote against collateral with the given edits. */
static mr_result run_resigned(resigner *r, edit_fn tcb_edit, edit_fn qe_edit, size_t flags,
                              mr_attest_claims *c)
{
    mr_buf text;
    json_error_t je;
    json_t *col = NULL;
    char *dump = NULL;
    mr_dcap_collateral *dc = NULL;
    mr_attest_options o;
    mr_result res = MR_FAILURE;

    char rel[256];
    snprintf(rel, sizeof(rel), "%s/collateral.json", r->coldir);
    td_read_vector(rel, &text);
    col = json_loadb((const char *)text.data, text.len, 0, &je);
    assert_non_null(col);
    if (r->drop_pck_crl)
        assert_int_equal(json_object_set_new(col, "pck_crl", json_null()), 0);
    resign_field(r, col, "tcb_info", "tcb_info_signature", "tcb_info_issuer_chain",
                 tcb_edit ? tcb_edit : no_edit, flags);
    resign_field(r, col, "qe_identity", "qe_identity_signature", "qe_identity_issuer_chain",
                 qe_edit ? qe_edit : no_edit, flags);
    dump = json_dumps(col, JSON_COMPACT);
    MR_ASSERT_OK(mr_dcap_collateral_parse_json(dump, strlen(dump), &dc));
    memset(&o, 0, sizeof(o));
    o.roots = r->s.both;
    o.collateral = dc;
    o.verify_time = td_time(r->when);
    mr_error_clear();
    res = mr_dcap_verify(r->quote.data, r->quote.len, &o, c);
    mr_dcap_collateral_free(dc);
    free(dump); /* check-source: allow alloc -- json_dumps result */
    json_decref(col);
    mr_buf_free(&text);
    return res;
}

static json_t *module01(json_t *tcb)
{
    json_t *ids = json_object_get(tcb, "tdxModuleIdentities");
    for (size_t i = 0; i < json_array_size(ids); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(ids, i), "id")), "TDX_01") ==
            0)
            return json_array_get(ids, i);
    fail_msg("no TDX_01");
    return NULL;
}

static json_t *level(const char *status, int isvsvn, const char *adv)
{
    json_t *l = json_pack("{s:{s:i}, s:s, s:s}", "tcb", "isvsvn", isvsvn, "tcbDate",
                          "2024-03-13T00:00:00Z", "tcbStatus", status);
    if (adv)
        json_object_set_new(l, "advisoryIDs", json_pack("[s]", adv));
    return l;
}

static void set_levels(json_t *obj, json_t *a, json_t *b)
{
    json_t *arr = json_array();
    json_array_append_new(arr, a);
    if (b)
        json_array_append_new(arr, b);
    json_object_set_new(obj, "tcbLevels", arr);
}

static void mod_outofdate(json_t *t)
{
    set_levels(module01(t), level("UpToDate", 7, NULL), level("OutOfDate", 2, "INTEL-SA-00001"));
}
static void mod_revoked(json_t *t)
{
    set_levels(module01(t), level("UpToDate", 7, NULL), level("Revoked", 6, NULL));
}
static void mod_unsupported(json_t *t) { set_levels(module01(t), level("UpToDate", 7, NULL), NULL); }
static void mod_renamed(json_t *t) { json_object_set_new(module01(t), "id", json_string("TDX_02")); }
static void mod_mrsigner(json_t *t)
{
    json_object_set_new(module01(t), "mrsigner",
                        json_string("01000000000000000000000000000000000000000000000000000000"
                                    "0000000000000000000000000000000000000000"));
}
static void qe_outofdate(json_t *q)
{
    set_levels(q, level("UpToDate", 7, NULL), level("OutOfDate", 4, "INTEL-SA-00999"));
}
static void qe_revoked(json_t *q) { set_levels(q, level("UpToDate", 7, NULL), level("Revoked", 6, NULL)); }
static void qe_unsupported(json_t *q) { set_levels(q, level("UpToDate", 7, NULL), NULL); }
static void qe_mrsigner(json_t *q)
{
    json_object_set_new(q, "mrsigner", json_string("00000000000000000000000000000000000000"
                                                   "00000000000000000000000000"));
}
static void qe_prodid(json_t *q) { json_object_set_new(q, "isvprodid", json_integer(3)); }
static void qe_wrong_id(json_t *q) { json_object_set_new(q, "id", json_string("QE")); }
static void platform_config_and_mod_ood(json_t *t)
{
    json_object_set_new(json_array_get(json_object_get(t, "tcbLevels"), 0), "tcbStatus",
                        json_string("ConfigurationNeeded"));
    mod_outofdate(t);
}
static void advisories(json_t *t)
{
    json_object_set_new(json_array_get(json_object_get(t, "tcbLevels"), 0), "advisoryIDs",
                        json_pack("[s,s]", "INTEL-SA-00615", "INTEL-SA-00289"));
    set_levels(module01(t), level("UpToDate", 6, "INTEL-SA-00289"), NULL);
}
static void wrong_fmspc(json_t *t) { json_object_set_new(t, "fmspc", json_string("B0C06F000001")); }
static void wrong_id(json_t *t) { json_object_set_new(t, "id", json_string("SGX")); }
static void reversed_levels(json_t *t)
{
    json_t *lv = json_object_get(t, "tcbLevels"), *rev = json_array();
    for (size_t i = json_array_size(lv); i > 0; i--)
        json_array_append(rev, json_array_get(lv, i - 1));
    json_object_set_new(t, "tcbLevels", rev);
}

void test_resigned_convergence(void **state)
{
    resigner r;
    mr_attest_claims c;
    (void)state;

    resigner_init(&r);
    /* unchanged texts re-signed by the test signer, pretty-printed: verifies as is */
    MR_ASSERT_OK(run_resigned(&r, NULL, NULL, JSON_INDENT(2), &c));
    assert_int_equal(c.tcb.status, MR_TCB_UP_TO_DATE);
    MR_ASSERT_OK(run_resigned(&r, reversed_levels, NULL, JSON_COMPACT, &c));
    assert_int_equal(c.tcb.status, MR_TCB_UP_TO_DATE);

    MR_ASSERT_OK(run_resigned(&r, mod_outofdate, NULL, JSON_COMPACT, &c));
    assert_int_equal(c.tcb.module_status, MR_TCB_OUT_OF_DATE);
    assert_int_equal(c.tcb.platform_status, MR_TCB_UP_TO_DATE);
    assert_int_equal(c.tcb.status, MR_TCB_OUT_OF_DATE);
    assert_int_equal(c.tcb.advisory_count, 1);
    assert_string_equal(c.tcb.advisories[0], "INTEL-SA-00001");
    MR_ASSERT_OK(run_resigned(&r, mod_revoked, NULL, JSON_COMPACT, &c));
    assert_int_equal(c.tcb.status, MR_TCB_REVOKED);
    MR_ASSERT_FAIL(run_resigned(&r, mod_unsupported, NULL, JSON_COMPACT, &c), MR_ERR_ATTESTATION,
                   "TCB_NOT_SUPPORTED");
    MR_ASSERT_FAIL(run_resigned(&r, mod_renamed, NULL, JSON_COMPACT, &c), MR_ERR_ATTESTATION,
                   "TDX module identity: TDX_MODULE_MISMATCH: TCB Info has no module identity "
                   "TDX_01");
    MR_ASSERT_FAIL(run_resigned(&r, mod_mrsigner, NULL, JSON_COMPACT, &c), MR_ERR_ATTESTATION,
                   "MRSIGNERSEAM");
    MR_ASSERT_OK(run_resigned(&r, platform_config_and_mod_ood, NULL, JSON_COMPACT, &c));
    assert_int_equal(c.tcb.status, MR_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);

    MR_ASSERT_OK(run_resigned(&r, NULL, qe_outofdate, JSON_COMPACT, &c));
    assert_int_equal(c.tcb.qe_status, MR_TCB_OUT_OF_DATE);
    assert_int_equal(c.tcb.status, MR_TCB_OUT_OF_DATE);
    assert_int_equal(c.tcb.advisory_count, 1);
    assert_string_equal(c.tcb.advisories[0], "INTEL-SA-00999");
    MR_ASSERT_OK(run_resigned(&r, NULL, qe_revoked, JSON_COMPACT, &c));
    assert_int_equal(c.tcb.status, MR_TCB_REVOKED);
    MR_ASSERT_FAIL(run_resigned(&r, NULL, qe_unsupported, JSON_COMPACT, &c), MR_ERR_ATTESTATION,
                   "QE identity: ISVSVN_NOT_SUPPORTED");
    MR_ASSERT_FAIL(run_resigned(&r, NULL, qe_mrsigner, JSON_COMPACT, &c), MR_ERR_ATTESTATION,
                   "QE identity: QE_IDENTITY_MISMATCH: MRSIGNER");
    MR_ASSERT_FAIL(run_resigned(&r, NULL, qe_prodid, JSON_COMPACT, &c), MR_ERR_ATTESTATION,
                   "QE_IDENTITY_MISMATCH: ISVPRODID");
    MR_ASSERT_FAIL(run_resigned(&r, NULL, qe_wrong_id, JSON_COMPACT, &c), MR_ERR_ATTESTATION,
                   "the quote needs \"TD_QE\"");

    MR_ASSERT_OK(run_resigned(&r, advisories, NULL, JSON_COMPACT, &c));
    assert_int_equal(c.tcb.advisory_count, 2);
    assert_string_equal(c.tcb.advisories[0], "INTEL-SA-00289");
    assert_string_equal(c.tcb.advisories[1], "INTEL-SA-00615");
    MR_ASSERT_FAIL(run_resigned(&r, wrong_fmspc, NULL, JSON_COMPACT, &c), MR_ERR_ATTESTATION,
                   "TCB Info: FMSPC does not match");
    MR_ASSERT_FAIL(run_resigned(&r, wrong_id, NULL, JSON_COMPACT, &c), MR_ERR_ATTESTATION,
                   "TCB Info: collateral is for SGX");
    resigner_free(&r);
}

/* ---- TD relaunch (TD report 1.5): a synthetic TDX v5 quote from the test hierarchy ---- */

static int relaunch_sgx_config;

static json_t *tdx_level(const char *status, int tdx2)
{
    json_t *sgx = json_array(), *tdx = json_array();
    for (int i = 0; i < 16; i++) {
        json_array_append_new(sgx, json_pack("{s:i}", "svn", 0));
        json_array_append_new(tdx, json_pack("{s:i}", "svn", i == 2 ? tdx2 : 0));
    }
    return json_pack("{s:{s:o,s:i,s:o}, s:s, s:s}", "tcb", "sgxtcbcomponents", sgx, "pcesvn", 0,
                     "tdxtcbcomponents", tdx, "tcbDate", "2024-03-13T00:00:00Z", "tcbStatus",
                     status);
}

/* Levels: [tdx[2] >= 3: UpToDate (or ConfigurationNeeded), tdx[2] >= 2: OutOfDate];
 * module TDX_01: [isvsvn 13 UpToDate, isvsvn 2 OutOfDate]. */
static void relaunch_levels(json_t *t)
{
    json_t *arr = json_array();
    json_array_append_new(arr, tdx_level(relaunch_sgx_config ? "ConfigurationNeeded" : "UpToDate",
                                         3));
    json_array_append_new(arr, tdx_level("OutOfDate", 2));
    json_object_set_new(t, "tcbLevels", arr);
    set_levels(module01(t), level("UpToDate", 13, NULL), level("OutOfDate", 2, NULL));
}

static mr_result run_relaunch(resigner *r, uint8_t svn2_2, mr_attest_claims *c)
{
    mr_buf_free(&r->quote);
    /* TEE_TCB_SVN = 07 01 02 ..., TEE_TCB_SVN2 (body offset 584) = 0d 01 <svn2_2> ... */
    memset(r->s.body, 0, 16);
    r->s.body[0] = 7;
    r->s.body[1] = 1;
    r->s.body[2] = 2;
    memset(r->s.body + 584, 0, 16);
    r->s.body[584] = 13;
    r->s.body[585] = 1;
    r->s.body[586] = svn2_2;
    build_quote(&r->s, 5, 6, 5, &r->quote);
    return run_resigned(r, relaunch_levels, NULL, JSON_COMPACT, c);
}

void test_td_relaunch(void **state)
{
    resigner r;
    mr_attest_claims c;
    (void)state;

    resigner_init_from(&r, "tdx-v5-phala-no-tcb-match");
    r.coldir = "tdx-v5-phala-no-tcb-match";
    r.when = "2026-03-05T10:50:03Z";
    r.drop_pck_crl = true;

    relaunch_sgx_config = 0;
    MR_ASSERT_OK(run_relaunch(&r, 3, &c));
    assert_int_equal(c.tee, MR_TEE_TDX);
    assert_int_equal(c.quote_version, 5);
    assert_true(c.u.tdx.has_td15);
    assert_int_equal(c.tcb.platform_status, MR_TCB_OUT_OF_DATE);
    assert_int_equal(c.tcb.module_status, MR_TCB_OUT_OF_DATE);
    assert_int_equal(c.tcb.status, MR_TCB_TD_RELAUNCH_ADVISED);
    relaunch_sgx_config = 1;
    MR_ASSERT_OK(run_relaunch(&r, 3, &c));
    assert_int_equal(c.tcb.status, MR_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED);
    /* TEE_TCB_SVN2 below the newest level: no relaunch advice, the module makes it OutOfDate */
    relaunch_sgx_config = 0;
    MR_ASSERT_OK(run_relaunch(&r, 2, &c));
    assert_int_equal(c.tcb.status, MR_TCB_OUT_OF_DATE);
    resigner_free(&r);
}

/* ---- revocation: CRLs from the test hierarchy that list the PCK leaf or the PCK CA ---- */

static char *crl_hex(X509 *issuer, EVP_PKEY *key, X509 *revoked)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    unsigned char *der = NULL;
    int n = 0;
    mr_buf hex;
    char *out = NULL;

    assert_non_null(crl);
    assert_non_null(t);
    assert_int_equal(X509_CRL_set_version(crl, 1), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
    assert_int_equal(ASN1_TIME_set_string(t, "20250101000000Z"), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
    assert_int_equal(ASN1_TIME_set_string(t, "20260101000000Z"), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
    if (revoked) {
        X509_REVOKED *r = X509_REVOKED_new();
        assert_int_equal(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked)), 1);
        assert_int_equal(ASN1_TIME_set_string(t, "20250201000000Z"), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
    }
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    n = i2d_X509_CRL(crl, &der);
    assert_true(n > 0);
    mr_buf_init(&hex, 0, 0);
    MR_ASSERT_OK(mr_hex_encode_buf(der, (size_t)n, &hex));
    MR_ASSERT_OK(mr_buf_nul_terminate(&hex));
    out = mr_strdup((const char *)hex.data);
    mr_buf_free(&hex);
    OPENSSL_free(der);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    return out;
}

static mr_result verify_with_crls(synth *s, const mr_buf *q, char *pck_crl, char *root_crl)
{
    mr_buf text;
    json_error_t je;
    json_t *col = NULL;
    char *dump = NULL;
    mr_dcap_collateral *dc = NULL;
    mr_attest_options o;
    mr_attest_claims c;
    mr_result res;

    td_read_vector("sgx-v3-phala/collateral.json", &text);
    col = json_loadb((const char *)text.data, text.len, 0, &je);
    assert_non_null(col);
    json_object_set_new(col, "pck_crl", pck_crl ? json_string(pck_crl) : json_null());
    if (root_crl)
        json_object_set_new(col, "root_ca_crl", json_string(root_crl));
    dump = json_dumps(col, JSON_COMPACT);
    MR_ASSERT_OK(mr_dcap_collateral_parse_json(dump, strlen(dump), &dc));
    memset(&o, 0, sizeof(o));
    o.roots = s->both;
    o.collateral = dc;
    o.verify_time = td_time(WHEN);
    mr_error_clear();
    res = mr_dcap_verify(q->data, q->len, &o, &c);
    mr_dcap_collateral_free(dc);
    free(dump); /* check-source: allow alloc -- json_dumps result */
    json_decref(col);
    mr_buf_free(&text);
    mr_free(pck_crl);
    mr_free(root_crl);
    return res;
}

void test_synth_revocation(void **state)
{
    synth s;
    mr_buf q;
    (void)state;

    synth_init(&s);
    build_quote(&s, 3, 6, 5, &q);
    /* CRLs that list nobody */
    MR_ASSERT_OK(verify_with_crls(&s, &q, crl_hex(s.ca, s.ca_key, NULL),
                                  crl_hex(s.root, s.root_key, NULL)));
    /* the PCK leaf is revoked */
    MR_ASSERT_FAIL(verify_with_crls(&s, &q, crl_hex(s.ca, s.ca_key, s.leaf), NULL),
                   MR_ERR_ATTESTATION, "PCK revocation: the PCK certificate is revoked");
    /* the PCK CA is revoked by the root */
    MR_ASSERT_FAIL(verify_with_crls(&s, &q, NULL, crl_hex(s.root, s.root_key, s.ca)),
                   MR_ERR_ATTESTATION, "PCK revocation: the PCK CA certificate is revoked");
    /* a PCK CRL signed by someone else (the root key, with the CA's name) */
    MR_ASSERT_FAIL(verify_with_crls(&s, &q, crl_hex(s.ca, s.root_key, NULL), NULL),
                   MR_ERR_ATTESTATION, "PCK CRL is not signed by the PCK CA");
    /* a Root CA CRL signed by a non-root key */
    MR_ASSERT_FAIL(verify_with_crls(&s, &q, NULL, crl_hex(s.root, s.ca_key, NULL)),
                   MR_ERR_ATTESTATION, "Root CA CRL is not signed by a trusted root");
    /* a PCK CRL of another CA */
    MR_ASSERT_FAIL(verify_with_crls(&s, &q, crl_hex(s.root, s.root_key, NULL), NULL),
                   MR_ERR_ATTESTATION, "PCK CRL issuer differs");
    mr_buf_free(&q);
    synth_free(&s);
}
