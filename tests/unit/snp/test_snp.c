/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP verifier tests against the real vectors in tests/data/attestation
 * (snp-v2-gosevguest: Milan report v2 from go-sev-guest; snp-v5-gcp-teekit: Milan report v5
 * from a Google Cloud CVM), each at a fixed time inside its VCEK's validity.
 */
#include "snp_test.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/snp_roots.h"
#include "common/alloc.h"
#include "common/codec.h"

#define V2_DIR "snp-v2-gosevguest"
#define V5_DIR "snp-v5-gcp-teekit"
#define T_V2 ((time_t)1685577600)        /* 2023-06-01; VCEK 2022-09-24 .. 2029-09-24 */
#define T_V5 ((time_t)1768435200)        /* 2026-01-15; VCEK 2025-12-05 .. 2032-12-05 */
#define T_V2_EARLY ((time_t)1663977600)  /* 2022-09-24 00:00, before notBefore 00:55:28 */
#define T_V2_LATE ((time_t)1884906000)   /* 2029-09-24 01:00, after notAfter 00:55:28 */
#define T_V5_EARLY ((time_t)1764914400)  /* 2025-12-05 06:00, before notBefore 06:04:27 */
#define T_V5_LATE ((time_t)1985842800)   /* 2032-12-05 07:00, after notAfter */

void snp_read_vector(const char *dir, const char *file, mr_buf *out)
{
    char rel[512], path[1024];
    (void)snprintf(rel, sizeof(rel), "%s/%s", dir, file);
    FILE *f = fopen(mr_test_vector_path(path, sizeof(path), rel), "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    mr_buf_init(out, 1u << 20, 0);
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        MR_ASSERT_OK(mr_buf_append(out, chunk, n));
    assert_int_equal(fclose(f), 0);
}

typedef struct vec {
    mr_buf report;
    mr_buf vcek;
    mr_buf chain;
} vec;

static void vec_load(vec *v, const char *dir)
{
    snp_read_vector(dir, "report.bin", &v->report);
    snp_read_vector(dir, strcmp(dir, V2_DIR) == 0 ? "vcek.der" : "vcek.pem", &v->vcek);
    snp_read_vector(dir, "ask_ark_milan.pem", &v->chain);
}

static void vec_free(vec *v)
{
    mr_buf_free(&v->report);
    mr_buf_free(&v->vcek);
    mr_buf_free(&v->chain);
}

static mr_snp_evidence vec_ev(const vec *v)
{
    mr_snp_evidence ev = {.report = mr_buf_slice(&v->report),
                          .vek = mr_buf_slice(&v->vcek),
                          .chain = mr_buf_slice(&v->chain)};
    return ev;
}

static void assert_hex(const uint8_t *p, size_t n, const char *want)
{
    mr_buf h;
    mr_buf_init(&h, 0, 0);
    MR_ASSERT_OK(mr_hex_encode_buf(p, n, &h));
    MR_ASSERT_OK(mr_buf_nul_terminate(&h));
    assert_string_equal((const char *)h.data, want);
    mr_buf_free(&h);
}

static bool is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* ---- the vectors verify, with the values from expected.json ---- */

static void test_v2_verifies(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    mr_snp_evidence ev = vec_ev(&v);
    mr_snp_verify_opts o = {.time = T_V2};
    mr_snp_claims c;
    MR_ASSERT_OK(mr_snp_verify(&ev, &o, &c));
    const mr_snp_report *r = &c.report;
    assert_int_equal(r->version, 2);
    assert_int_equal(r->guest_svn, 0);
    assert_int_equal(r->policy, 0xb0000);
    assert_true(c.debug);
    assert_true(is_zero(r->family_id, 16) && is_zero(r->image_id, 16));
    assert_int_equal(r->vmpl, 0);
    assert_int_equal(r->sig_algo, 1);
    assert_int_equal(r->current_tcb.raw, 0x4405000000000002ull);
    assert_int_equal(r->platform_info, 1);
    assert_int_equal(r->signer_info, 0);
    assert_int_equal(c.key, MR_SNP_KEY_VCEK);
    assert_hex(r->report_data, 5, "0102030405");
    assert_true(is_zero(r->report_data + 5, 59));
    assert_hex(r->measurement, 48,
               "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01");
    assert_true(is_zero(r->host_data, 32));
    assert_true(is_zero(r->id_key_digest, 48) && is_zero(r->author_key_digest, 48));
    assert_hex(r->report_id, 32, "8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a");
    assert_int_equal(r->reported_tcb.bl, 2);
    assert_int_equal(r->reported_tcb.tee, 0);
    assert_int_equal(r->reported_tcb.snp, 5);
    assert_int_equal(r->reported_tcb.ucode, 68);
    assert_false(r->has_cpuid);
    assert_false(r->has_mit_vectors);
    assert_hex(r->chip_id, 64,
               "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b7"
               "6a1936776b564ea464cdce40c05f63c9b610c5068b006b5d");
    assert_int_equal(r->committed_tcb.raw, 0x4405000000000002ull);
    assert_int_equal(r->launch_tcb.raw, 0x4405000000000002ull);
    assert_int_equal(r->current_major, 1);
    assert_int_equal(r->current_minor, 49);
    assert_int_equal(r->current_build, 3);
    assert_int_equal(c.product, MR_SNP_PRODUCT_MILAN);
    assert_string_equal(c.product_name, "Milan-B0");
    assert_int_equal(c.vek_not_before, 1663980928); /* 2022-09-24T00:55:28Z */

    mr_attest_claims ac;
    mr_snp_claims_to_attest(&c, &ac);
    assert_int_equal(ac.tee, MR_TEE_SNP);
    assert_int_equal(ac.quote_version, 2);
    assert_true(ac.debug);
    assert_memory_equal(ac.u.snp.measurement, r->measurement, 48);
    assert_memory_equal(ac.report_data, r->report_data, 64);
    assert_string_equal(ac.u.snp.product, "Milan");
    assert_int_equal(ac.u.snp.reported_tcb, r->reported_tcb.raw);
    vec_free(&v);
}

static void test_v5_verifies(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V5_DIR);
    mr_snp_evidence ev = vec_ev(&v);
    mr_snp_verify_opts o = {.time = T_V5, .product = MR_SNP_PRODUCT_MILAN};
    mr_snp_claims c;
    MR_ASSERT_OK(mr_snp_verify(&ev, &o, &c));
    const mr_snp_report *r = &c.report;
    assert_int_equal(r->version, 5);
    assert_int_equal(r->policy, 0x30000);
    assert_false(c.debug);
    assert_int_equal(r->vmpl, 0);
    assert_int_equal(r->platform_info, 0x25);
    assert_true(is_zero(r->report_data, 64));
    assert_hex(r->measurement, 48,
               "b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3");
    assert_hex(r->report_id, 32, "9a0603343e711e1ec9b6b046023da5378e7c4cac6182e35d4f3ebeb46aef6c80");
    assert_true(r->has_cpuid);
    assert_int_equal(r->cpuid_fam_id, 0x19);
    assert_int_equal(r->cpuid_mod_id, 0x01);
    assert_int_equal(r->cpuid_step, 0x01);
    assert_int_equal(r->reported_tcb.raw, 0xde1b000000000004ull);
    assert_int_equal(r->reported_tcb.bl, 4);
    assert_int_equal(r->reported_tcb.tee, 0);
    assert_int_equal(r->reported_tcb.snp, 27);
    assert_int_equal(r->reported_tcb.ucode, 222);
    assert_hex(r->chip_id, 64,
               "980cf7b61876cb37fd517cd44ce11c72d43c5408e66ab39138370ec59bc195e063254cb501d87d82"
               "f0b8b8dc774bcfe28019447711598f007390e4accc405361");
    assert_int_equal(r->current_major, 1);
    assert_int_equal(r->current_minor, 55);
    assert_int_equal(r->current_build, 35);
    assert_int_equal(r->committed_major, 1);
    assert_int_equal(r->committed_minor, 55);
    assert_int_equal(r->committed_build, 35);
    assert_true(r->has_mit_vectors);
    assert_int_equal(r->launch_mit_vector, 0xb);
    assert_int_equal(r->current_mit_vector, 0xb);
    assert_int_equal(c.product, MR_SNP_PRODUCT_MILAN);
    assert_string_equal(c.product_name, "Milan-B0");
    assert_int_equal(c.key, MR_SNP_KEY_VCEK);
    vec_free(&v);
}

/* The intermediate may come as DER, the VCEK as PEM, or be left to the compiled-in ASK. */
static void test_cert_forms(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    mr_snp_verify_opts o = {.time = T_V2};
    mr_snp_claims c;

    mr_snp_evidence ev = vec_ev(&v);
    ev.chain = (mr_slice){0};
    MR_ASSERT_OK(mr_snp_verify(&ev, &o, &c));

    /* VCEK as PEM, ASK alone as DER */
    mr_buf pem, ask_der;
    mr_buf_init(&pem, 0, 0);
    mr_buf_init(&ask_der, 0, 0);
    MR_ASSERT_OK(mr_pem_encode_buf("CERTIFICATE", v.vcek.data, v.vcek.len, &pem));
    mr_cursor cur;
    mr_cursor_init(&cur, v.chain.data, v.chain.len);
    mr_pem_block blk;
    mr_buf_init(&blk.der, 0, 0);
    bool found = false;
    MR_ASSERT_OK(mr_pem_next(&cur, &blk, &found));
    assert_true(found);
    MR_ASSERT_OK(mr_buf_append(&ask_der, blk.der.data, blk.der.len));
    ev.vek = mr_buf_slice(&pem);
    ev.chain = mr_buf_slice(&ask_der);
    MR_ASSERT_OK(mr_snp_verify(&ev, &o, &c));

    /* garbage instead of a certificate */
    ev.chain = MR_SLICE("\x30\x03\x02\x01\x00", 5);
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "SNP certificates:");
    ev.chain = MR_SLICE("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", 58);
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "SNP certificates:");
    ev.chain = MR_SLICE("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", 52);
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "unexpected PEM block");
    ev.chain = mr_buf_slice(&v.chain);
    ev.vek = (mr_slice){0};
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "no VCEK/VLEK");
    /* the VCEK slot must hold exactly one certificate */
    ev.vek = mr_buf_slice(&v.chain);
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "exactly one certificate");

    mr_buf_free(&blk.der);
    mr_buf_free(&pem);
    mr_buf_free(&ask_der);
    vec_free(&v);
}

/* ---- policy ---- */

static void test_policy(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    mr_snp_evidence ev = vec_ev(&v);
    mr_snp_verify_opts o = {.time = T_V2};
    mr_snp_claims c;
    MR_ASSERT_OK(mr_snp_verify(&ev, &o, &c));

    mr_snp_policy p = {0};
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "allows debugging");
    p.allow_debug = true;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION,
                   "no expected MEASUREMENT configured");
    p.allow_any_measurement = true;
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));
    p.allow_any_measurement = false;

    uint8_t ms[2][48];
    memset(ms[0], 0xaa, 48);
    memcpy(ms[1], c.report.measurement, 48);
    p.measurements = ms;
    p.n_measurements = 1;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "MEASUREMENT");
    p.n_measurements = 2;
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));

    const uint8_t rd[5] = {1, 2, 3, 4, 5};
    const uint8_t bad_rd[5] = {1, 2, 3, 4, 6};
    p.report_data = rd;
    p.report_data_len = 5;
    p.report_data_rest_zero = true;
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));
    p.report_data = bad_rd;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "REPORT_DATA");
    p.report_data = rd;
    p.report_data_len = 4;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "non-zero bytes");
    p.report_data_rest_zero = false;
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));
    p.report_data_len = 0;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_USAGE, "1..64");
    p.report_data_len = 5;

    p.check_min_tcb = true;
    p.min_tcb = (mr_snp_tcb){.bl = 2, .tee = 0, .snp = 5, .ucode = 68};
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));
    p.min_tcb.snp = 6;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "below the minimum");
    p.min_tcb = (mr_snp_tcb){.ucode = 69};
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "below the minimum");
    p.min_tcb = (mr_snp_tcb){.bl = 1, .snp = 1, .ucode = 1};
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));

    p.check_vmpl = true;
    p.vmpl = 0;
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));
    p.vmpl = 1;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "VMPL");
    p.vmpl = 0;

    p.min_guest_svn = 1;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "guest SVN");
    p.min_guest_svn = 0;

    uint8_t zero48[48] = {0};
    uint8_t one32[32];
    memset(one32, 1, sizeof(one32));
    p.host_data = zero48;
    p.id_key_digest = zero48;
    p.author_key_digest = zero48;
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));
    p.host_data = one32;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "HOST_DATA");
    p.host_data = NULL;

    p.product = MR_SNP_PRODUCT_GENOA;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &c), MR_ERR_ATTESTATION, "from Milan, want Genoa");
    p.product = MR_SNP_PRODUCT_MILAN;
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));

    mr_snp_claims mc = c;
    mc.report.policy |= MR_SNP_POLICY_MIGRATE_MA;
    MR_ASSERT_FAIL(mr_snp_policy_check(&p, &mc), MR_ERR_ATTESTATION, "migration agent");
    p.allow_migration_agent = true;
    MR_ASSERT_OK(mr_snp_policy_check(&p, &mc));
    vec_free(&v);
}

static void test_policy_v5_production(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V5_DIR);
    mr_snp_evidence ev = vec_ev(&v);
    mr_snp_verify_opts o = {.time = T_V5};
    mr_snp_claims c;
    MR_ASSERT_OK(mr_snp_verify(&ev, &o, &c));
    uint8_t m[1][48];
    memcpy(m[0], c.report.measurement, 48);
    const uint8_t zero[64] = {0};
    mr_snp_policy p = {.measurements = m,
                       .n_measurements = 1,
                       .check_vmpl = true,
                       .vmpl = 0,
                       .check_min_tcb = true,
                       .min_tcb = {.bl = 4, .snp = 27, .ucode = 222},
                       .report_data = zero,
                       .report_data_len = 64,
                       .product = MR_SNP_PRODUCT_MILAN};
    MR_ASSERT_OK(mr_snp_policy_check(&p, &c));
    vec_free(&v);
}

/* ---- mutations ---- */

/* Every byte of the signed region: a flipped bit must never verify. */
static void test_flip_signed_region(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V5_DIR);
    mr_snp_verify_opts o = {.time = T_V5};
    mr_snp_claims c;
    size_t sig_fail = 0;
    for (size_t i = 0; i < MR_SNP_REPORT_SIZE; i++) {
        v.report.data[i] ^= 0x01;
        mr_snp_evidence ev = vec_ev(&v);
        mr_error_clear();
        if (mr_ok(mr_snp_verify(&ev, &o, &c)))
            fail_msg("report with byte 0x%03zx flipped verified", i);
        assert_int_equal(mr_error_get()->cat, MR_ERR_ATTESTATION);
        if (strstr(mr_error_get()->msg, "SNP report signature") != NULL)
            sig_fail++;
        v.report.data[i] ^= 0x01;
    }
    /* Most flips reach the signature check (the rest fail earlier: reserved bytes, version,
     * TCB/CHIP_ID against the VCEK). */
    assert_true(sig_fail > 500);
    vec_free(&v);
}

static void flip_each(vec *v, mr_buf *target, size_t stride, const char *what, time_t t)
{
    mr_snp_verify_opts o = {.time = t};
    mr_snp_claims c;
    for (size_t i = 0; i < target->len; i += stride) {
        uint8_t save = target->data[i];
        target->data[i] ^= 0x01;
        mr_snp_evidence ev = vec_ev(v);
        mr_error_clear();
        if (mr_ok(mr_snp_verify(&ev, &o, &c)))
            fail_msg("%s with byte %zu flipped verified", what, i);
        if (mr_error_get()->cat != MR_ERR_ATTESTATION)
            fail_msg("%s byte %zu: category %s: %s", what, i, mr_errcat_name(mr_error_get()->cat),
                     mr_error_get()->msg);
        target->data[i] = save;
    }
}

static void test_flip_vcek(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    flip_each(&v, &v.vcek, 1, "VCEK", T_V2);
    vec_free(&v);
}

/* The ASK and ARK as DER (so every byte is a certificate byte); every 5th byte, to keep the
 * sanitizer run short (the VCEK test above covers every byte of a certificate). */
static void test_flip_ask_ark(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    mr_cursor cur;
    mr_cursor_init(&cur, v.chain.data, v.chain.len);
    mr_pem_block blk;
    mr_buf_init(&blk.der, 0, 0);
    bool found = false;
    mr_buf both;
    mr_buf_init(&both, 0, 0);
    size_t ask_len = 0;
    for (int i = 0; i < 2; i++) {
        MR_ASSERT_OK(mr_pem_next(&cur, &blk, &found));
        assert_true(found);
        MR_ASSERT_OK(mr_buf_append(&both, blk.der.data, blk.der.len));
        if (i == 0)
            ask_len = blk.der.len;
        mr_buf_reset(&blk.der);
    }
    mr_buf_free(&blk.der);

    /* ASK alone (DER) */
    mr_buf_free(&v.chain);
    mr_buf_init(&v.chain, 0, 0);
    MR_ASSERT_OK(mr_buf_append(&v.chain, both.data, ask_len));
    mr_snp_evidence ev = vec_ev(&v);
    mr_snp_verify_opts o = {.time = T_V2};
    mr_snp_claims c;
    MR_ASSERT_OK(mr_snp_verify(&ev, &o, &c));
    flip_each(&v, &v.chain, 5, "ASK", T_V2);

    /* ARK copy (DER) with the compiled-in ASK */
    mr_buf_free(&v.chain);
    mr_buf_init(&v.chain, 0, 0);
    MR_ASSERT_OK(mr_buf_append(&v.chain, both.data + ask_len, both.len - ask_len));
    ev = vec_ev(&v);
    MR_ASSERT_OK(mr_snp_verify(&ev, &o, &c));
    flip_each(&v, &v.chain, 5, "ARK", T_V2);
    mr_buf_free(&both);
    vec_free(&v);
}

static void test_wrong_product_root(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    mr_snp_evidence ev = vec_ev(&v);
    mr_snp_claims c;
    mr_snp_verify_opts o = {.time = T_V2, .product = MR_SNP_PRODUCT_GENOA};
    /* ARK-Milan copy in the chain is not the pinned Genoa root */
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION,
                   "does not match the pinned AMD root key");
    /* without it, the chain cannot reach ARK-Genoa */
    ev.chain = (mr_slice){0};
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "SNP VCEK chain:");
    /* Genoa's ASK and ARK do not certify a Milan VCEK */
    const mr_snp_root *genoa = &mr_snp_roots[1];
    assert_int_equal(genoa->product, MR_SNP_PRODUCT_GENOA);
    mr_buf gchain;
    mr_buf_init(&gchain, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(&gchain, genoa->ask_pem));
    MR_ASSERT_OK(mr_buf_append_str(&gchain, genoa->ark_pem));
    ev.chain = mr_buf_slice(&gchain);
    o.product = MR_SNP_PRODUCT_ANY;
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "SNP VCEK chain:");
    o.product = MR_SNP_PRODUCT_MILAN;
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION,
                   "does not match the pinned AMD root key");
    mr_buf_free(&gchain);
    vec_free(&v);
}

static void test_time_window(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    mr_snp_evidence ev = vec_ev(&v);
    mr_snp_claims c;
    mr_snp_verify_opts o = {.time = T_V2_EARLY};
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "not yet valid");
    o.time = T_V2_LATE;
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "expired");
    vec_free(&v);

    vec_load(&v, V5_DIR);
    ev = vec_ev(&v);
    o.time = T_V5_EARLY;
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "not yet valid");
    o.time = T_V5_LATE;
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "expired");
    /* each vector's VCEK does not cover the other's time */
    o.time = T_V2;
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "not yet valid");
    vec_free(&v);
}

/* The v2 report with the v5 VCEK (another chip, other TCB) fails on the extensions. */
static void test_wrong_vcek(void **state)
{
    (void)state;
    vec a, b;
    vec_load(&a, V2_DIR);
    vec_load(&b, V5_DIR);
    mr_snp_evidence ev = vec_ev(&a);
    ev.vek = mr_buf_slice(&b.vcek);
    mr_snp_verify_opts o = {.time = T_V5};
    mr_snp_claims c;
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "SNP VCEK extensions:");
    vec_free(&a);
    vec_free(&b);
}

/* ---- parsing ---- */

static void test_parse_sizes(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V5_DIR);
    mr_snp_report r;
    MR_ASSERT_OK(mr_snp_report_parse(v.report.data, v.report.len, &r));
    MR_ASSERT_FAIL(mr_snp_report_parse(v.report.data, v.report.len - 1, &r), MR_ERR_ATTESTATION,
                   "truncated: 1183 bytes, want 1184");
    MR_ASSERT_FAIL(mr_snp_report_parse(v.report.data, 0, &r), MR_ERR_ATTESTATION, "truncated");
    MR_ASSERT_FAIL(mr_snp_report_parse(NULL, 0, &r), MR_ERR_ATTESTATION, "truncated");
    MR_ASSERT_OK(mr_buf_append_u8(&v.report, 0));
    MR_ASSERT_FAIL(mr_snp_report_parse(v.report.data, v.report.len, &r), MR_ERR_ATTESTATION,
                   "oversized: 1185 bytes");
    mr_snp_evidence ev = vec_ev(&v);
    mr_snp_verify_opts o = {.time = T_V5};
    mr_snp_claims c;
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "SNP report: oversized");
    vec_free(&v);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_parse_fields(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    uint8_t rep[MR_SNP_REPORT_SIZE];
    memcpy(rep, v.report.data, sizeof(rep));
    mr_snp_report r;
    /* versions */
    static const uint32_t bad_versions[] = {0, 1, 6, 0x100, 0xffffffff};
    for (size_t i = 0; i < MR_ARRAY_LEN(bad_versions); i++) {
        put32(rep, bad_versions[i]);
        MR_ASSERT_FAIL(mr_snp_report_parse(rep, sizeof(rep), &r), MR_ERR_ATTESTATION,
                       "unsupported version");
    }
    for (uint32_t ver = 2; ver <= 5; ver++) {
        put32(rep, ver);
        MR_ASSERT_OK(mr_snp_report_parse(rep, sizeof(rep), &r));
        assert_int_equal(r.has_cpuid, ver >= 3);
        assert_int_equal(r.has_mit_vectors, ver >= 5);
    }
    put32(rep, 2);
    /* CPUID bytes are reserved in v2 */
    rep[0x188] = 0x19;
    MR_ASSERT_FAIL(mr_snp_report_parse(rep, sizeof(rep), &r), MR_ERR_ATTESTATION,
                   "reserved byte at offset 0x188");
    put32(rep, 3);
    MR_ASSERT_OK(mr_snp_report_parse(rep, sizeof(rep), &r));
    assert_int_equal(r.cpuid_fam_id, 0x19);
    rep[0x188] = 0;
    put32(rep, 2);
    /* every reserved area */
    static const size_t reserved[] = {0x04C, 0x04F, 0x18B, 0x19F, 0x1EB, 0x1EF,
                                      0x1F8, 0x208, 0x29F, 0x330, 0x49F};
    for (size_t i = 0; i < MR_ARRAY_LEN(reserved); i++) {
        rep[reserved[i]] = 0x80;
        char want[64];
        snprintf(want, sizeof(want), "reserved byte at offset 0x%03zx", reserved[i]);
        MR_ASSERT_FAIL(mr_snp_report_parse(rep, sizeof(rep), &r), MR_ERR_ATTESTATION, want);
        rep[reserved[i]] = 0;
    }
    /* signer info: key types and reserved bits */
    put32(rep + 0x48, 1u << 2);
    MR_ASSERT_OK(mr_snp_report_parse(rep, sizeof(rep), &r));
    assert_int_equal(r.signing_key, MR_SNP_KEY_VLEK);
    put32(rep + 0x48, 0x3u | (7u << 2));
    MR_ASSERT_OK(mr_snp_report_parse(rep, sizeof(rep), &r));
    assert_true(r.author_key_en);
    assert_true(r.mask_chip_key);
    assert_int_equal(r.signing_key, MR_SNP_KEY_NONE);
    mr_snp_evidence ev = {.report = MR_SLICE(rep, sizeof(rep)), .vek = mr_buf_slice(&v.vcek)};
    mr_snp_verify_opts o = {.time = T_V2};
    mr_snp_claims c;
    MR_ASSERT_FAIL(mr_snp_verify(&ev, &o, &c), MR_ERR_ATTESTATION, "not signed");
    put32(rep + 0x48, 2u << 2);
    MR_ASSERT_FAIL(mr_snp_report_parse(rep, sizeof(rep), &r), MR_ERR_ATTESTATION,
                   "unknown signing key type 2");
    put32(rep + 0x48, 1u << 5);
    MR_ASSERT_FAIL(mr_snp_report_parse(rep, sizeof(rep), &r), MR_ERR_ATTESTATION,
                   "reserved signer info bits");
    vec_free(&v);
}

static void test_report_from_rsp(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    uint8_t rsp[0x20 + MR_SNP_REPORT_SIZE + 16];
    memset(rsp, 0, sizeof(rsp));
    put32(rsp + 4, MR_SNP_REPORT_SIZE);
    memcpy(rsp + 0x20, v.report.data, MR_SNP_REPORT_SIZE);
    mr_slice rep;
    MR_ASSERT_OK(mr_snp_report_from_rsp(MR_SLICE(rsp, sizeof(rsp)), &rep));
    assert_int_equal(rep.len, MR_SNP_REPORT_SIZE);
    assert_memory_equal(rep.ptr, v.report.data, MR_SNP_REPORT_SIZE);
    MR_ASSERT_FAIL(mr_snp_report_from_rsp(MR_SLICE(rsp, 0x20 + 100), &rep), MR_ERR_ATTESTATION,
                   "truncated");
    MR_ASSERT_FAIL(mr_snp_report_from_rsp(MR_SLICE(rsp, 8), &rep), MR_ERR_ATTESTATION, "truncated");
    put32(rsp + 4, 1000);
    MR_ASSERT_FAIL(mr_snp_report_from_rsp(MR_SLICE(rsp, sizeof(rsp)), &rep), MR_ERR_ATTESTATION,
                   "declares 1000");
    put32(rsp + 4, MR_SNP_REPORT_SIZE);
    put32(rsp, 0x16);
    MR_ASSERT_FAIL(mr_snp_report_from_rsp(MR_SLICE(rsp, sizeof(rsp)), &rep), MR_ERR_ATTESTATION,
                   "status 0x16");
    vec_free(&v);
}

/* ---- configfs-tsm certificate table ---- */

static const uint8_t G_VCEK[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                   0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
static const uint8_t G_ASK[16] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                                  0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
static const uint8_t G_ARK[16] = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                                  0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};
static const uint8_t G_OTHER[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

typedef struct tbl_entry {
    const uint8_t *guid;
    mr_slice data;
} tbl_entry;

static void build_table(const tbl_entry *e, size_t n, mr_buf *out)
{
    mr_buf_init(out, 0, 0);
    uint32_t off = (uint32_t)((n + 1) * 24);
    for (size_t i = 0; i < n; i++) {
        MR_ASSERT_OK(mr_buf_append(out, e[i].guid, 16));
        MR_ASSERT_OK(mr_buf_append_u32le(out, off));
        MR_ASSERT_OK(mr_buf_append_u32le(out, (uint32_t)e[i].data.len));
        off += (uint32_t)e[i].data.len;
    }
    uint8_t zero[24] = {0};
    MR_ASSERT_OK(mr_buf_append(out, zero, sizeof(zero)));
    for (size_t i = 0; i < n; i++)
        MR_ASSERT_OK(mr_buf_append(out, e[i].data.ptr, e[i].data.len));
}

static void test_cert_table(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    /* DER ASK and ARK out of the PEM bundle */
    mr_cursor cur;
    mr_cursor_init(&cur, v.chain.data, v.chain.len);
    mr_pem_block ask, ark;
    mr_buf_init(&ask.der, 0, 0);
    mr_buf_init(&ark.der, 0, 0);
    bool found = false;
    MR_ASSERT_OK(mr_pem_next(&cur, &ask, &found));
    MR_ASSERT_OK(mr_pem_next(&cur, &ark, &found));
    assert_true(found);

    tbl_entry e[] = {{G_OTHER, MR_SLICE("vendor", 6)},
                     {G_ARK, mr_buf_slice(&ark.der)},
                     {G_ASK, mr_buf_slice(&ask.der)},
                     {G_VCEK, mr_buf_slice(&v.vcek)}};
    mr_buf tbl;
    build_table(e, MR_ARRAY_LEN(e), &tbl);
    mr_snp_cert_table t;
    MR_ASSERT_OK(mr_snp_cert_table_parse(mr_buf_slice(&tbl), &t));
    assert_int_equal(t.vcek.len, v.vcek.len);
    assert_memory_equal(t.vcek.ptr, v.vcek.data, v.vcek.len);
    assert_int_equal(t.ask.len, ask.der.len);
    assert_int_equal(t.ark.len, ark.der.len);
    assert_int_equal(t.vlek.len, 0);

    /* verify with what the table gave (configfs-tsm outblob + auxblob) */
    mr_snp_evidence ev;
    MR_ASSERT_OK(mr_snp_evidence_from_tsm(mr_buf_slice(&v.report), &t, &ev));
    assert_ptr_equal(ev.vek.ptr, t.vcek.ptr);
    assert_ptr_equal(ev.chain.ptr, t.ask.ptr);
    assert_ptr_equal(ev.chain2.ptr, t.ark.ptr);
    mr_snp_verify_opts o = {.time = T_V2, .product = MR_SNP_PRODUCT_MILAN};
    mr_snp_claims c;
    MR_ASSERT_OK(mr_snp_verify(&ev, &o, &c));
    /* the report is VCEK-signed; a table with only a VLEK does not do */
    mr_snp_cert_table only_vlek = {.vlek = t.vcek};
    MR_ASSERT_FAIL(mr_snp_evidence_from_tsm(mr_buf_slice(&v.report), &only_vlek, &ev),
                   MR_ERR_ATTESTATION, "the table has no VCEK");
    MR_ASSERT_FAIL(mr_snp_evidence_from_tsm(MR_SLICE(v.report.data, 100), &t, &ev),
                   MR_ERR_ATTESTATION, "truncated");

    /* no terminator */
    uint8_t unterminated[30] = {0};
    memcpy(unterminated, G_OTHER, 16);
    put32(unterminated + 16, 24);
    put32(unterminated + 20, 6);
    MR_ASSERT_FAIL(mr_snp_cert_table_parse(MR_SLICE(unterminated, sizeof(unterminated)), &t),
                   MR_ERR_ATTESTATION, "no terminating entry");
    MR_ASSERT_FAIL(mr_snp_cert_table_parse((mr_slice){0}, &t), MR_ERR_ATTESTATION,
                   "no terminating entry");
    /* an entry pointing past the end (the VCEK entry is the fourth, at 3 * 24) */
    const size_t vcek_entry = (size_t)3 * 24;
    put32(tbl.data + vcek_entry + 20, (uint32_t)tbl.len);
    MR_ASSERT_FAIL(mr_snp_cert_table_parse(mr_buf_slice(&tbl), &t), MR_ERR_ATTESTATION,
                   "outside the");
    put32(tbl.data + vcek_entry + 16, 0xfffffff0u);
    MR_ASSERT_FAIL(mr_snp_cert_table_parse(mr_buf_slice(&tbl), &t), MR_ERR_ATTESTATION,
                   "outside the");
    mr_buf_free(&tbl);
    /* duplicate */
    tbl_entry d[] = {{G_ASK, mr_buf_slice(&ask.der)}, {G_ASK, mr_buf_slice(&ask.der)}};
    build_table(d, MR_ARRAY_LEN(d), &tbl);
    MR_ASSERT_FAIL(mr_snp_cert_table_parse(mr_buf_slice(&tbl), &t), MR_ERR_ATTESTATION, "duplicate");
    mr_buf_free(&tbl);
    /* a terminator (zero GUID) with a non-zero length */
    build_table(d, 1, &tbl);
    tbl.data[(size_t)24 + 20] = 1;
    MR_ASSERT_FAIL(mr_snp_cert_table_parse(mr_buf_slice(&tbl), &t), MR_ERR_ATTESTATION,
                   "terminating entry is not all zero");
    mr_buf_free(&tbl);
    mr_buf_free(&ask.der);
    mr_buf_free(&ark.der);
    vec_free(&v);
}

/* ---- compiled-in roots ---- */

static X509 *pem_x509(const char *pem)
{
    mr_cursor cur;
    mr_cursor_init(&cur, pem, strlen(pem));
    mr_pem_block b;
    mr_buf_init(&b.der, 0, 0);
    bool found = false;
    MR_ASSERT_OK(mr_pem_next(&cur, &b, &found));
    assert_true(found);
    const unsigned char *p = b.der.data;
    X509 *x = d2i_X509(NULL, &p, (long)b.der.len);
    assert_non_null(x);
    mr_buf_free(&b.der);
    return x;
}

static void test_builtin_roots(void **state)
{
    (void)state;
    assert_int_equal(mr_snp_roots_count, 2);
    for (size_t i = 0; i < mr_snp_roots_count; i++) {
        X509 *ark = pem_x509(mr_snp_roots[i].ark_pem);
        X509 *ask = pem_x509(mr_snp_roots[i].ask_pem);
        EVP_PKEY *k = X509_get0_pubkey(ark);
        assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_RSA);
        assert_int_equal(EVP_PKEY_get_bits(k), 4096);
        assert_int_equal(X509_verify(ark, k), 1);
        assert_int_equal(X509_verify(ask, k), 1);
        assert_int_equal(X509_check_issued(ark, ask), X509_V_OK);
        unsigned char *der = NULL;
        int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(ark), &der);
        uint8_t h[32];
        unsigned hl = 0;
        assert_int_equal(EVP_Digest(der, (size_t)n, h, &hl, EVP_sha256(), NULL), 1);
        assert_memory_equal(h, mr_snp_roots[i].ark_spki_sha256, 32);
        OPENSSL_free(der);
        char cn[64];
        X509_NAME_get_text_by_NID(X509_get_subject_name(ark), NID_commonName, cn, sizeof(cn));
        char want[64];
        snprintf(want, sizeof(want), "ARK-%s", mr_snp_product_name(mr_snp_roots[i].product));
        assert_string_equal(cn, want);
        X509_free(ark);
        X509_free(ask);
    }
    /* the vectors' ARK is the compiled-in Milan root */
    mr_buf chain;
    snp_read_vector(V2_DIR, "ask_ark_milan.pem", &chain);
    MR_ASSERT_OK(mr_buf_nul_terminate(&chain));
    assert_non_null(strstr((const char *)chain.data, mr_snp_roots[0].ark_pem));
    assert_non_null(strstr((const char *)chain.data, mr_snp_roots[0].ask_pem));
    mr_buf_free(&chain);
    assert_string_equal(mr_snp_product_name(MR_SNP_PRODUCT_ANY), "any");
}

/* Every allocation failure is reported cleanly (and leaks nothing under ASan). */
static void test_alloc_failures(void **state)
{
    (void)state;
    vec v;
    vec_load(&v, V2_DIR);
    mr_snp_evidence ev = vec_ev(&v);
    mr_snp_verify_opts o = {.time = T_V2};
    mr_snp_claims c;
    bool ok = false;
    for (long n = 0; n < 200 && !ok; n++) {
        mr_alloc_fail_after(n);
        mr_error_clear();
        ok = mr_ok(mr_snp_verify(&ev, &o, &c));
        mr_alloc_fail_reset();
        if (!ok)
            assert_int_equal(mr_error_get()->cat, MR_ERR_INTERNAL);
    }
    assert_true(ok);
    vec_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_verifies),
        cmocka_unit_test(test_v5_verifies),
        cmocka_unit_test(test_cert_forms),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_policy_v5_production),
        cmocka_unit_test(test_flip_signed_region),
        cmocka_unit_test(test_flip_vcek),
        cmocka_unit_test(test_flip_ask_ark),
        cmocka_unit_test(test_wrong_product_root),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_wrong_vcek),
        cmocka_unit_test(test_parse_sizes),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_report_from_rsp),
        cmocka_unit_test(test_cert_table),
        cmocka_unit_test(test_builtin_roots),
        cmocka_unit_test(test_alloc_failures),
    };
    /* MR_TEST_FILTER=<glob> runs a subset (cmocka's test filter). */
    const char *filter = getenv("MR_TEST_FILTER");
    if (filter != NULL)
        cmocka_set_test_filter(filter);
    int failed = cmocka_run_group_tests_name("snp", tests, NULL, NULL);
    failed += snp_run_synth_tests();
    return failed;
}
