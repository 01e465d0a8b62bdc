/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP verifier tests on a synthetic AMD-like hierarchy generated at run time: an RSA
 * "ARK" (self-signed, RSASSA-PSS SHA-384 salt 48), an "ASK" under it, and P-384 VCEK/VLEK
 * certificates with the KDS extensions, plus reports signed with the VEK key. The verifier
 * takes the ARK through mr_snp_verify_opts.test_root. This reaches the paths that the real
 * vectors cannot: VLEK, MASK_CHIP_KEY, every extension mismatch, CRLs.
 */
#include "snp_test.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/codec.h"

#define T_NOW ((time_t)1893456000)        /* 2030-01-01 */
#define T_NOT_BEFORE ((time_t)1577836800) /* 2020-01-01 */
#define T_NOT_AFTER ((time_t)2208988800)  /* 2040-01-01 */
#define ASK_SERIAL 0x10001

typedef struct pki {
    EVP_PKEY *ark_key;
    EVP_PKEY *ask_key;
    EVP_PKEY *vek_key;
    X509 *ark;
    X509 *ask;
    mr_buf ark_der;
    mr_buf ask_der;
} pki;

static pki g;

/* ---- building blocks ---- */

static EVP_PKEY *gen_rsa(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    assert_non_null(k);
    return k;
}

static EVP_PKEY *gen_ec(const char *curve)
{
    EVP_PKEY *k = EVP_EC_gen(curve);
    assert_non_null(k);
    return k;
}

static EVP_MD_CTX *pss_ctx(EVP_PKEY *signer)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit(md, &pc, EVP_sha384(), NULL, signer), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 48), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha384()), 1);
    return md;
}

static X509_NAME *name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    assert_non_null(n);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                                                (const unsigned char *)"Test Devices", -1, -1, 0),
                     1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
    return n;
}

static void add_v3(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static void add_raw_ext(X509 *x, const char *oid, const uint8_t *der, size_t len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    assert_non_null(o);
    assert_non_null(os);
    assert_int_equal(ASN1_OCTET_STRING_set(os, der, (int)len), 1);
    X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(o);
}

static X509 *new_cert(const char *subject, X509 *issuer, const char *issuer_cn, EVP_PKEY *key,
                      long serial)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    X509_NAME *s = name(subject);
    X509_NAME *i = issuer != NULL ? NULL : name(issuer_cn);
    assert_int_equal(X509_set_subject_name(x, s), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : i), 1);
    X509_NAME_free(s);
    X509_NAME_free(i);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), T_NOT_BEFORE));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), T_NOT_AFTER));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    return x;
}

static void sign_cert(X509 *x, EVP_PKEY *signer)
{
    EVP_MD_CTX *md = pss_ctx(signer);
    assert_true(X509_sign_ctx(x, md) > 0);
    EVP_MD_CTX_free(md);
}

static void to_der(X509 *x, mr_buf *out)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    mr_buf_init(out, 0, 0);
    MR_ASSERT_OK(mr_buf_append(out, der, (size_t)n));
    OPENSSL_free(der);
}

/* ---- VEK certificates ---- */

typedef struct vek_spec {
    bool vlek;
    uint8_t spl[9]; /* .3.1 .. .3.8 */
    int omit_spl;   /* 0 = none, else .3.x left out */
    int dup_spl;    /* 0 = none, else .3.x twice */
    bool spl_not_int;
    bool hwid_wrapped;
    size_t hwid_len; /* 0 = 64 */
    uint8_t hwid[64];
    EVP_PKEY *key;   /* NULL = g.vek_key */
    bool signed_by_ark;
} vek_spec;

static void spl_der(uint8_t v, uint8_t *out, size_t *len)
{
    out[0] = 0x02;
    if (v < 0x80) {
        out[1] = 1;
        out[2] = v;
        *len = 3;
    } else {
        out[1] = 2;
        out[2] = 0;
        out[3] = v;
        *len = 4;
    }
}

static void make_vek(const vek_spec *s, mr_buf *out)
{
    EVP_PKEY *key = s->key != NULL ? s->key : g.vek_key;
    X509 *issuer = s->signed_by_ark ? g.ark : g.ask;
    X509 *x = new_cert(s->vlek ? "SEV-VLEK" : "SEV-VCEK", issuer, NULL, key, 0);
    static const uint8_t struct_ver[] = {0x02, 0x01, 0x00};
    static const uint8_t product[] = {0x16, 0x08, 'M', 'i', 'l', 'a', 'n', '-', 'B', '0'};
    add_raw_ext(x, "1.3.6.1.4.1.3704.1.1", struct_ver, sizeof(struct_ver));
    add_raw_ext(x, "1.3.6.1.4.1.3704.1.2", product, sizeof(product));
    for (int i = 1; i <= 8; i++) {
        if (i == s->omit_spl)
            continue;
        uint8_t der[4];
        size_t n = 0;
        spl_der(s->spl[i], der, &n);
        if (s->spl_not_int && i == 3)
            der[0] = 0x04;
        char oid[40];
        snprintf(oid, sizeof(oid), "1.3.6.1.4.1.3704.1.3.%d", i);
        add_raw_ext(x, oid, der, n);
        if (i == s->dup_spl)
            add_raw_ext(x, oid, der, n);
    }
    if (s->vlek) {
        static const uint8_t csp[] = {0x16, 0x04, 'T', 'e', 's', 't'};
        add_raw_ext(x, "1.3.6.1.4.1.3704.1.5", csp, sizeof(csp));
    } else {
        uint8_t hw[66];
        size_t n = s->hwid_len != 0 ? s->hwid_len : 64;
        size_t off = 0;
        if (s->hwid_wrapped) {
            hw[0] = 0x04;
            hw[1] = (uint8_t)n;
            off = 2;
        }
        memcpy(hw + off, s->hwid, n);
        add_raw_ext(x, "1.3.6.1.4.1.3704.1.4", hw, n + off);
    }
    sign_cert(x, s->signed_by_ark ? g.ark_key : g.ask_key);
    to_der(x, out);
    X509_free(x);
}

/* ---- reports ---- */

typedef struct rep_spec {
    uint32_t version;
    uint64_t policy;
    uint8_t signing_key;
    bool mask_chip_key;
    uint8_t tcb[8]; /* bytes of REPORTED_TCB */
    uint8_t chip_id[64];
    EVP_PKEY *signer; /* NULL = g.vek_key */
} rep_spec;

static void le_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void make_report(const rep_spec *s, uint8_t out[MR_SNP_REPORT_SIZE])
{
    memset(out, 0, MR_SNP_REPORT_SIZE);
    le_put(out + 0x000, s->version, 4);
    le_put(out + 0x008, s->policy, 8);
    le_put(out + 0x034, 1, 4);
    le_put(out + 0x048, (uint32_t)(s->mask_chip_key ? 2u : 0u) | ((uint32_t)s->signing_key << 2), 4);
    for (int i = 0; i < 64; i++)
        out[0x050 + i] = (uint8_t)i;       /* report data */
    memset(out + 0x090, 0x5a, 48);         /* measurement */
    for (int t = 0; t < 4; t++)            /* current, reported, committed, launch */
        memcpy(out + (t == 0 ? 0x038 : t == 1 ? 0x180 : t == 2 ? 0x1E0 : 0x1F0), s->tcb, 8);
    if (s->version >= 3)
        out[0x188] = 0x19;
    if (!s->mask_chip_key)
        memcpy(out + 0x1A0, s->chip_id, 64);

    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL,
                                        s->signer != NULL ? s->signer : g.vek_key),
                     1);
    uint8_t der[128];
    size_t dlen = sizeof(der);
    assert_int_equal(EVP_DigestSign(md, der, &dlen, out, MR_SNP_SIGNED_SIZE), 1);
    EVP_MD_CTX_free(md);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    assert_non_null(sig);
    assert_int_equal(BN_bn2lebinpad(ECDSA_SIG_get0_r(sig), out + 0x2A0, 72), 72);
    assert_int_equal(BN_bn2lebinpad(ECDSA_SIG_get0_s(sig), out + 0x2A0 + 72, 72), 72);
    ECDSA_SIG_free(sig);
}

/* A matching pair: report TCB bl=3 tee=1 snp=20 ucode=200, chip id 0x11.. */
static void default_specs(vek_spec *v, rep_spec *r)
{
    memset(v, 0, sizeof(*v));
    memset(r, 0, sizeof(*r));
    r->version = 3;
    r->policy = 0x30000;
    r->tcb[0] = 3;
    r->tcb[1] = 1;
    r->tcb[6] = 20;
    r->tcb[7] = 200;
    memset(r->chip_id, 0x11, 64);
    v->spl[1] = 3;
    v->spl[2] = 1;
    v->spl[3] = 20;
    v->spl[8] = 200;
    memset(v->hwid, 0x11, 64);
}

typedef struct run {
    uint8_t report[MR_SNP_REPORT_SIZE];
    mr_buf vek;
    mr_snp_evidence ev;
    mr_snp_verify_opts o;
    mr_snp_claims c;
} run;

static void run_build(run *r, const vek_spec *vs, const rep_spec *rs)
{
    make_report(rs, r->report);
    make_vek(vs, &r->vek);
    r->ev = (mr_snp_evidence){.report = MR_SLICE(r->report, sizeof(r->report)),
                              .vek = mr_buf_slice(&r->vek),
                              .chain = mr_buf_slice(&g.ask_der)};
    r->o = (mr_snp_verify_opts){.time = T_NOW, .test_root = mr_buf_slice(&g.ark_der)};
}

static mr_result run_verify(run *r) { return mr_snp_verify(&r->ev, &r->o, &r->c); }

static void run_free(run *r) { mr_buf_free(&r->vek); }

/* ---- group setup ---- */

static int setup(void **state)
{
    (void)state;
    g.ark_key = gen_rsa();
    g.ask_key = gen_rsa();
    g.vek_key = gen_ec("P-384");
    g.ark = new_cert("ARK-Test", NULL, "ARK-Test", g.ark_key, 0x10000);
    add_v3(g.ark, g.ark, NID_basic_constraints, "critical,CA:TRUE");
    add_v3(g.ark, g.ark, NID_key_usage, "critical,keyCertSign,cRLSign");
    sign_cert(g.ark, g.ark_key);
    g.ask = new_cert("SEV-Test", g.ark, NULL, g.ask_key, ASK_SERIAL);
    add_v3(g.ask, g.ark, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_v3(g.ask, g.ark, NID_key_usage, "critical,keyCertSign");
    sign_cert(g.ask, g.ark_key);
    to_der(g.ark, &g.ark_der);
    to_der(g.ask, &g.ask_der);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509_free(g.ark);
    X509_free(g.ask);
    EVP_PKEY_free(g.ark_key);
    EVP_PKEY_free(g.ask_key);
    EVP_PKEY_free(g.vek_key);
    mr_buf_free(&g.ark_der);
    mr_buf_free(&g.ask_der);
    return 0;
}

/* ---- tests ---- */

static void test_synth_vcek(void **state)
{
    (void)state;
    vek_spec vs;
    rep_spec rs;
    default_specs(&vs, &rs);
    run r;
    run_build(&r, &vs, &rs);
    MR_ASSERT_OK(run_verify(&r));
    assert_int_equal(r.c.key, MR_SNP_KEY_VCEK);
    assert_int_equal(r.c.product, MR_SNP_PRODUCT_ANY);
    assert_string_equal(r.c.product_name, "Milan-B0");
    assert_int_equal(r.c.report.reported_tcb.snp, 20);
    assert_int_equal(r.c.vek_not_after, T_NOT_AFTER);
    /* the ARK copy may accompany the chain */
    mr_buf chain;
    mr_buf_init(&chain, 0, 0);
    MR_ASSERT_OK(mr_pem_encode_buf("CERTIFICATE", g.ask_der.data, g.ask_der.len, &chain));
    MR_ASSERT_OK(mr_pem_encode_buf("CERTIFICATE", g.ark_der.data, g.ark_der.len, &chain));
    r.ev.chain = mr_buf_slice(&chain);
    MR_ASSERT_OK(run_verify(&r));
    /* no ASK: there is no compiled-in one for a test root */
    r.ev.chain = (mr_slice){0};
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "SNP VCEK chain: unable to get local issuer");
    /* the real AMD roots do not accept the test hierarchy */
    r.ev.chain = mr_buf_slice(&chain);
    r.o.test_root = (mr_slice){0};
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "does not match the pinned AMD root key");
    r.ev.chain = mr_buf_slice(&g.ask_der);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "SNP VCEK chain:");
    mr_buf_free(&chain);
    run_free(&r);
}

static void test_synth_vlek(void **state)
{
    (void)state;
    vek_spec vs;
    rep_spec rs;
    default_specs(&vs, &rs);
    vs.vlek = true;
    rs.signing_key = MR_SNP_KEY_VLEK;
    run r;
    run_build(&r, &vs, &rs);
    MR_ASSERT_OK(run_verify(&r));
    assert_int_equal(r.c.key, MR_SNP_KEY_VLEK);
    run_free(&r);

    /* a VLEK-signed report with a VCEK certificate, and the other way round */
    vs.vlek = false;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "is not a VLEK");
    run_free(&r);
    vs.vlek = true;
    rs.signing_key = MR_SNP_KEY_VCEK;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "has no hwID");
    run_free(&r);
}

static void test_synth_mask_chip_key(void **state)
{
    (void)state;
    vek_spec vs;
    rep_spec rs;
    default_specs(&vs, &rs);
    rs.mask_chip_key = true;
    run r;
    run_build(&r, &vs, &rs);
    MR_ASSERT_OK(run_verify(&r));
    assert_true(r.c.report.mask_chip_key);
    run_free(&r);
}

static void test_synth_hwid(void **state)
{
    (void)state;
    vek_spec vs;
    rep_spec rs;
    run r;
    default_specs(&vs, &rs);
    vs.hwid_wrapped = true;
    run_build(&r, &vs, &rs);
    MR_ASSERT_OK(run_verify(&r));
    run_free(&r);

    default_specs(&vs, &rs);
    vs.hwid[63] ^= 1;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "hwID does not match the report's CHIP_ID");
    run_free(&r);

    default_specs(&vs, &rs);
    vs.hwid_len = 63;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "hwID is not 64 bytes");
    run_free(&r);
}

static void test_synth_tcb_mismatch(void **state)
{
    (void)state;
    static const struct {
        int ext;
        const char *name;
    } cases[] = {{1, "blSPL is 4"}, {2, "teeSPL is 2"}, {3, "snpSPL is 21"},
                 {8, "ucodeSPL is 201"}, {4, "spl4 is 1"},  {7, "spl7 is 1"}};
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        vek_spec vs;
        rep_spec rs;
        run r;
        default_specs(&vs, &rs);
        vs.spl[cases[i].ext]++;
        run_build(&r, &vs, &rs);
        MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, cases[i].name);
        run_free(&r);
    }
    /* a reserved TCB byte in the report that the VCEK does not certify */
    vek_spec vs;
    rep_spec rs;
    run r;
    default_specs(&vs, &rs);
    rs.tcb[3] = 9;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "spl5 is 0 but the report's REPORTED_TCB says 9");
    run_free(&r);
}

static void test_synth_bad_extensions(void **state)
{
    (void)state;
    vek_spec vs;
    rep_spec rs;
    run r;
    default_specs(&vs, &rs);
    vs.omit_spl = 3;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "snpSPL is missing");
    run_free(&r);

    default_specs(&vs, &rs);
    vs.omit_spl = 5; /* optional */
    run_build(&r, &vs, &rs);
    MR_ASSERT_OK(run_verify(&r));
    run_free(&r);

    default_specs(&vs, &rs);
    vs.dup_spl = 1;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "duplicate");
    run_free(&r);

    default_specs(&vs, &rs);
    vs.spl_not_int = true;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "not an integer");
    run_free(&r);
}

static void test_synth_keys(void **state)
{
    (void)state;
    vek_spec vs;
    rep_spec rs;
    run r;
    /* P-256 VEK */
    EVP_PKEY *p256 = gen_ec("P-256");
    default_specs(&vs, &rs);
    vs.key = p256;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "not on P-384");
    run_free(&r);
    EVP_PKEY_free(p256);

    /* report signed by another P-384 key */
    EVP_PKEY *other = gen_ec("P-384");
    default_specs(&vs, &rs);
    rs.signer = other;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "SNP report signature: does not verify");
    run_free(&r);
    EVP_PKEY_free(other);

    /* VEK issued by the root directly: two certificates only */
    default_specs(&vs, &rs);
    vs.signed_by_ark = true;
    run_build(&r, &vs, &rs);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "want VEK, ASK and ARK");
    run_free(&r);

    /* another root */
    default_specs(&vs, &rs);
    run_build(&r, &vs, &rs);
    r.o.test_root = mr_buf_slice(&g.ask_der); /* not self-signed, not the issuer of the ASK */
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "SNP VCEK chain:");
    run_free(&r);
}

/* ---- CRL ---- */

typedef struct crl_spec {
    bool revoke_ask;
    time_t this_update;
    time_t next_update; /* 0 = none */
    EVP_PKEY *signer;   /* NULL = ARK key */
    const char *issuer_cn; /* NULL = ARK name */
} crl_spec;

static void make_crl(const crl_spec *s, mr_buf *out)
{
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, 1), 1);
    X509_NAME *n = s->issuer_cn != NULL ? name(s->issuer_cn) : NULL;
    assert_int_equal(X509_CRL_set_issuer_name(crl, n != NULL ? n : X509_get_subject_name(g.ark)), 1);
    X509_NAME_free(n);
    ASN1_TIME *t = ASN1_TIME_set(NULL, s->this_update);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
    ASN1_TIME_free(t);
    if (s->next_update != 0) {
        t = ASN1_TIME_set(NULL, s->next_update);
        assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
        ASN1_TIME_free(t);
    }
    for (int i = 0; i < 2; i++) {
        long serial = i == 0 ? 0x4242 : ASK_SERIAL;
        if (i == 1 && !s->revoke_ask)
            break;
        X509_REVOKED *rv = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        ASN1_TIME *rt = ASN1_TIME_set(NULL, T_NOT_BEFORE);
        assert_int_equal(ASN1_INTEGER_set(sn, serial), 1);
        assert_int_equal(X509_REVOKED_set_serialNumber(rv, sn), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(rv, rt), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, rv), 1);
        ASN1_INTEGER_free(sn);
        ASN1_TIME_free(rt);
    }
    assert_int_equal(X509_CRL_sort(crl), 1);
    EVP_MD_CTX *md = pss_ctx(s->signer != NULL ? s->signer : g.ark_key);
    assert_true(X509_CRL_sign_ctx(crl, md) > 0);
    EVP_MD_CTX_free(md);
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    assert_true(len > 0);
    mr_buf_init(out, 0, 0);
    MR_ASSERT_OK(mr_buf_append(out, der, (size_t)len));
    OPENSSL_free(der);
    X509_CRL_free(crl);
}

static void crl_case(const crl_spec *cs, bool pem, const char *want_fail)
{
    vek_spec vs;
    rep_spec rs;
    run r;
    default_specs(&vs, &rs);
    run_build(&r, &vs, &rs);
    mr_buf crl, enc;
    make_crl(cs, &crl);
    mr_buf_init(&enc, 0, 0);
    if (pem)
        MR_ASSERT_OK(mr_pem_encode_buf("X509 CRL", crl.data, crl.len, &enc));
    r.ev.crl = pem ? mr_buf_slice(&enc) : mr_buf_slice(&crl);
    r.o.require_crl = true;
    if (want_fail == NULL)
        MR_ASSERT_OK(run_verify(&r));
    else
        MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, want_fail);
    mr_buf_free(&crl);
    mr_buf_free(&enc);
    run_free(&r);
}

static void test_synth_crl(void **state)
{
    (void)state;
    crl_spec ok = {.this_update = T_NOW - 86400, .next_update = T_NOW + 86400};
    crl_case(&ok, false, NULL);
    crl_case(&ok, true, NULL);

    crl_spec c = ok;
    c.revoke_ask = true;
    crl_case(&c, false, "SNP CRL: the ASK/ASVK certificate is revoked");
    c = ok;
    c.next_update = T_NOW - 1;
    crl_case(&c, false, "SNP CRL: expired");
    c = ok;
    c.next_update = 0;
    crl_case(&c, false, "SNP CRL: expired");
    c = ok;
    c.this_update = T_NOW + 10;
    crl_case(&c, false, "SNP CRL: not yet valid");
    c = ok;
    c.signer = g.ask_key;
    crl_case(&c, false, "SNP CRL: signature does not verify");
    c = ok;
    c.issuer_cn = "Someone Else";
    crl_case(&c, false, "SNP CRL: not issued by the ARK");

    /* required but missing; garbage */
    vek_spec vs;
    rep_spec rs;
    run r;
    default_specs(&vs, &rs);
    run_build(&r, &vs, &rs);
    r.o.require_crl = true;
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "a CRL is required");
    r.ev.crl = MR_SLICE("\x30\x00", 2);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "SNP CRL: not a valid CRL");
    r.ev.crl = MR_SLICE("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 58);
    MR_ASSERT_FAIL(run_verify(&r), MR_ERR_ATTESTATION, "SNP CRL: no X509 CRL PEM block");
    run_free(&r);
}

/* A report that is version 2 or 5 signs and verifies the same way. */
static void test_synth_versions(void **state)
{
    (void)state;
    for (uint32_t ver = 2; ver <= 5; ver++) {
        vek_spec vs;
        rep_spec rs;
        run r;
        default_specs(&vs, &rs);
        rs.version = ver;
        run_build(&r, &vs, &rs);
        MR_ASSERT_OK(run_verify(&r));
        assert_int_equal(r.c.report.version, ver);
        assert_int_equal(r.c.report.has_cpuid, ver >= 3);
        run_free(&r);
    }
}

int snp_run_synth_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synth_vcek),
        cmocka_unit_test(test_synth_vlek),
        cmocka_unit_test(test_synth_mask_chip_key),
        cmocka_unit_test(test_synth_hwid),
        cmocka_unit_test(test_synth_tcb_mismatch),
        cmocka_unit_test(test_synth_bad_extensions),
        cmocka_unit_test(test_synth_keys),
        cmocka_unit_test(test_synth_crl),
        cmocka_unit_test(test_synth_versions),
    };
    return cmocka_run_group_tests_name("snp-synthetic", tests, setup, teardown);
}
