/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confidential-VM marbles (docs/cvm.md), the layers above the TDX and SNP verifiers:
 *  - evidence.h: the formats are told apart by their headers; the real TDX and SNP vectors
 *    verify through mr_attest_verify at their recorded time, and single-byte changes of the
 *    report, the signature and the certificate chain are refused;
 *  - snp_source.h: VCEKs from a directory (by CHIP_ID and REPORTED_TCB), cached;
 *  - tee_policy.h: the package rules on the real vectors, each mismatch naming its field;
 *  - softsnp.h: TEST reports that the real verifier accepts with the TEST root only;
 *  - mr_snp_cert_table_build: the inverse of the configfs-tsm auxblob parser.
 */
#include "mr_test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/collateral.h"
#include "attest/dcap.h"
#include "attest/evidence.h"
#include "attest/issuer.h"
#include "attest/issuer_io.h"
#include "attest/snp.h"
#include "attest/snp_source.h"
#include "attest/softsnp.h"
#include "attest/tee_policy.h"
#include "common/codec.h"

void cvm_run_manifest_tests(int *failures);

#define TDX_DIR "tdx-v4-phala"
#define TDX_TIME ((time_t)1751624191) /* 2025-07-04T10:16:31Z, as test_dcap */
#define SNP_DIR "snp-v2-gosevguest"
#define SNP_TIME ((time_t)1685577600) /* 2023-06-01, inside the VCEK's validity */
#define SGX_DIR "sgx-v3-phala"

static void read_vector(const char *dir, const char *file, mr_buf *out)
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

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir) { assert_int_equal(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0); }

static void make_tmp(char out[64])
{
    snprintf(out, 64, "/tmp/mr-cvm-test-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    MR_ASSERT_OK(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_ASSERT_OK(mr_issuer_io_write_new(path, data, len, 0644));
}

/* ---- formats --------------------------------------------------------------------------- */

static void test_formats(void **state)
{
    (void)state;
    mr_buf sgx, tdx, snp;
    read_vector(SGX_DIR, "quote.bin", &sgx);
    read_vector(TDX_DIR, "quote.bin", &tdx);
    read_vector(SNP_DIR, "report.bin", &snp);
    assert_int_equal(mr_evidence_format_of(sgx.data, sgx.len), MR_EVIDENCE_DCAP);
    assert_int_equal(mr_evidence_format_of(tdx.data, tdx.len), MR_EVIDENCE_DCAP);
    assert_int_equal(mr_evidence_format_of(snp.data, snp.len), MR_EVIDENCE_SNP);
    /* an OE remote-report header (LE32 1) is DCAP */
    static const uint8_t oe[16] = {1, 0, 0, 0, 2};
    assert_int_equal(mr_evidence_format_of(oe, sizeof(oe)), MR_EVIDENCE_DCAP);
    /* an SNP report needs all 1184 bytes and signature algorithm 1 */
    assert_int_equal(mr_evidence_format_of(snp.data, snp.len - 1), MR_EVIDENCE_UNKNOWN);
    snp.data[0x34] = 2;
    assert_int_equal(mr_evidence_format_of(snp.data, snp.len), MR_EVIDENCE_UNKNOWN);
    assert_int_equal(mr_evidence_format_of(NULL, 0), MR_EVIDENCE_UNKNOWN);
    assert_int_equal(mr_evidence_format_of(oe, 3), MR_EVIDENCE_UNKNOWN);
    assert_string_equal(mr_tee_type_name(MR_TEE_SNP), "SEV-SNP");
    assert_string_equal(mr_tee_type_name(MR_TEE_TDX), "TDX");
    assert_string_equal(mr_tee_type_name(MR_TEE_SGX), "SGX");
    assert_string_equal(mr_tee_type_name(MR_TEE_NONE), "none");
    /* SNP evidence: report, then the auxblob */
    mr_slice r, a;
    MR_ASSERT_FAIL(mr_evidence_snp_split(MR_SLICE(snp.data, 100), &r, &a), MR_ERR_ATTESTATION,
                   "SNP report: 100 bytes");
    MR_ASSERT_OK(mr_evidence_snp_split(mr_buf_slice(&snp), &r, &a));
    assert_int_equal(r.len, MR_SNP_REPORT_SIZE);
    assert_int_equal(a.len, 0);
    mr_buf_free(&sgx);
    mr_buf_free(&tdx);
    mr_buf_free(&snp);
}

/* ---- TDX: the real vector through mr_attest_verify -------------------------------------- */

typedef struct tdx_fix {
    mr_buf quote;
    mr_dcap_collateral *col;
    mr_attest_options opts;
} tdx_fix;

static void tdx_load(tdx_fix *f)
{
    mr_buf b;
    memset(f, 0, sizeof(*f));
    read_vector(TDX_DIR, "quote.bin", &f->quote);
    read_vector(TDX_DIR, "collateral.json", &b);
    MR_ASSERT_OK(mr_dcap_collateral_parse_json((const char *)b.data, b.len, &f->col));
    mr_buf_free(&b);
    f->opts.collateral = f->col;
    f->opts.verify_time = TDX_TIME;
}

static void tdx_free(tdx_fix *f)
{
    mr_buf_free(&f->quote);
    mr_dcap_collateral_free(f->col);
}

static size_t find_pem(const mr_buf *b)
{
    static const char tag[] = "-----BEGIN CERTIFICATE-----";
    for (size_t i = 0; i + sizeof(tag) - 1 <= b->len; i++)
        if (memcmp(b->data + i, tag, sizeof(tag) - 1) == 0)
            return i;
    fail_msg("no PEM certificate in the quote");
    return 0;
}

static void test_tdx_vector(void **state)
{
    (void)state;
    tdx_fix f;
    mr_attest_claims c;
    tdx_load(&f);
    MR_ASSERT_OK(mr_attest_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_int_equal(c.tee, MR_TEE_TDX);
    assert_int_equal(c.quote_version, 4);
    assert_true(c.tcb.evaluated);
    /* single-byte changes: MRTD in the TD report, the quote signature, the QE report's
     * signature, a byte of the PCK leaf certificate (base64 letter) */
    size_t pem = find_pem(&f.quote) + 28 + 200;
    const struct {
        size_t off;
        const char *what;
    } m[] = {{48 + 136, "MRTD"}, {48 + 520 + 10, "REPORTDATA"}, {636 + 7, "signature"},
             {636 + 64 + 5, "attestation key"}, {770 + 384 + 3, "QE report signature"},
             {pem, "PCK certificate"}};
    for (size_t i = 0; i < MR_ARRAY_LEN(m); i++) {
        mr_buf q;
        mr_buf_init(&q, 0, 0);
        MR_ASSERT_OK(mr_buf_append(&q, f.quote.data, f.quote.len));
        q.data[m[i].off] = m[i].off == pem ? (uint8_t)(q.data[m[i].off] == 'A' ? 'B' : 'A')
                                           : (uint8_t)(q.data[m[i].off] ^ 0x01);
        mr_result r = mr_attest_verify(q.data, q.len, &f.opts, &c);
        if (mr_ok(r))
            fail_msg("TDX quote with a changed %s verified", m[i].what);
        assert_int_equal(mr_error_get()->cat, MR_ERR_ATTESTATION);
        mr_buf_free(&q);
    }
    /* outside the collateral's validity */
    f.opts.verify_time = TDX_TIME + 400L * 86400;
    assert_false(mr_ok(mr_attest_verify(f.quote.data, f.quote.len, &f.opts, &c)));
    tdx_free(&f);
}

static void tdx_rules_of(const mr_attest_claims *c, mr_tdx_package *p)
{
    memset(p, 0, sizeof(*p));
    p->debug = c->debug;
    p->has_mrtd = true;
    memcpy(p->mrtd, c->u.tdx.mrtd, 48);
    for (int i = 0; i < 4; i++) {
        p->has_rtmr[i] = true;
        memcpy(p->rtmr[i], c->u.tdx.rtmr[i], 48);
    }
    p->has_mrconfigid = p->has_mrowner = p->has_mrownerconfig = true;
    memcpy(p->mrconfigid, c->u.tdx.mrconfigid, 48);
    memcpy(p->mrowner, c->u.tdx.mrowner, 48);
    memcpy(p->mrownerconfig, c->u.tdx.mrownerconfig, 48);
    p->has_td_attributes = p->has_xfam = true;
    p->td_attributes = c->u.tdx.td_attributes;
    p->td_attributes_mask = UINT64_MAX;
    p->xfam = c->u.tdx.xfam;
    p->xfam_mask = UINT64_MAX;
    p->has_min_tee_tcb_svn = true;
    memcpy(p->min_tee_tcb_svn, c->u.tdx.tee_tcb_svn, 16);
}

static void test_tdx_rules(void **state)
{
    (void)state;
    tdx_fix f;
    mr_attest_claims c;
    mr_tdx_package p, q;
    tdx_load(&f);
    MR_ASSERT_OK(mr_attest_verify(f.quote.data, f.quote.len, &f.opts, &c));
    tdx_rules_of(&c, &p);
    MR_ASSERT_OK(mr_policy_check_tdx(&c, &p));
    MR_ASSERT_OK(mr_policy_check_tee(&c, MR_TEE_TDX));
    MR_ASSERT_FAIL(mr_policy_check_tee(&c, MR_TEE_SNP), MR_ERR_ATTESTATION,
                   "PackageProperties not compliant: the package describes a SEV-SNP workload, "
                   "the evidence is TDX");
    const char *names[] = {"TDX.RTMR0", "TDX.RTMR1", "TDX.RTMR2", "TDX.RTMR3"};
    q = p;
    q.mrtd[47] ^= 1;
    MR_ASSERT_FAIL(mr_policy_check_tdx(&c, &q), MR_ERR_ATTESTATION,
                   "PackageProperties not compliant: TDX.MRTD: expected ");
    for (int i = 0; i < 4; i++) {
        q = p;
        q.rtmr[i][0] ^= 0x80;
        MR_ASSERT_FAIL(mr_policy_check_tdx(&c, &q), MR_ERR_ATTESTATION, names[i]);
        q.has_rtmr[i] = false; /* an unset field is not checked */
        MR_ASSERT_OK(mr_policy_check_tdx(&c, &q));
    }
    q = p;
    q.mrconfigid[1] ^= 1;
    MR_ASSERT_FAIL(mr_policy_check_tdx(&c, &q), MR_ERR_ATTESTATION, "TDX.MRConfigID");
    q = p;
    q.mrowner[2] ^= 1;
    MR_ASSERT_FAIL(mr_policy_check_tdx(&c, &q), MR_ERR_ATTESTATION, "TDX.MROwner:");
    q = p;
    q.mrownerconfig[3] ^= 1;
    MR_ASSERT_FAIL(mr_policy_check_tdx(&c, &q), MR_ERR_ATTESTATION, "TDX.MROwnerConfig");
    q = p;
    q.td_attributes ^= 1ull << 28;
    MR_ASSERT_FAIL(mr_policy_check_tdx(&c, &q), MR_ERR_ATTESTATION, "TDX.TDAttributes: expected ");
    q.td_attributes_mask = ~(1ull << 28); /* the mask leaves the bit out */
    MR_ASSERT_OK(mr_policy_check_tdx(&c, &q));
    q = p;
    q.xfam ^= 2;
    MR_ASSERT_FAIL(mr_policy_check_tdx(&c, &q), MR_ERR_ATTESTATION, "TDX.XFAM");
    q = p;
    q.min_tee_tcb_svn[0] = (uint8_t)(c.u.tdx.tee_tcb_svn[0] + 1);
    MR_ASSERT_FAIL(mr_policy_check_tdx(&c, &q), MR_ERR_ATTESTATION,
                   "TDX.MinTEETCBSVN: expected at least ");
    q = p;
    q.debug = !c.debug;
    MR_ASSERT_FAIL(mr_policy_check_tdx(&c, &q), MR_ERR_ATTESTATION,
                   "PackageProperties not compliant: Debug: expected ");
    tdx_free(&f);
}

/* ---- SNP: the real vector through mr_attest_verify --------------------------------------- */

typedef struct snp_fix {
    mr_buf report, vcek, chain, ev; /* ev = report || auxblob */
    mr_attest_options opts;
} snp_fix;

static void snp_load(snp_fix *f)
{
    memset(f, 0, sizeof(*f));
    read_vector(SNP_DIR, "report.bin", &f->report);
    read_vector(SNP_DIR, "vcek.der", &f->vcek);
    read_vector(SNP_DIR, "ask_ark_milan.pem", &f->chain);
    mr_buf_init(&f->ev, 0, 0);
    MR_ASSERT_OK(mr_buf_append(&f->ev, f->report.data, f->report.len));
    /* the vector's chain file (PEM, ASK then ARK) in the ASK entry */
    mr_snp_cert_table t = {.vcek = mr_buf_slice(&f->vcek), .ask = mr_buf_slice(&f->chain)};
    MR_ASSERT_OK(mr_snp_cert_table_build(&t, &f->ev));
    f->opts.verify_time = SNP_TIME;
}

static void snp_free(snp_fix *f)
{
    mr_buf_free(&f->report);
    mr_buf_free(&f->vcek);
    mr_buf_free(&f->chain);
    mr_buf_free(&f->ev);
}

static void test_snp_vector(void **state)
{
    (void)state;
    snp_fix f;
    mr_attest_claims c;
    snp_load(&f);
    MR_ASSERT_OK(mr_attest_verify(f.ev.data, f.ev.len, &f.opts, &c));
    assert_int_equal(c.tee, MR_TEE_SNP);
    assert_int_equal(c.quote_version, 2);
    assert_false(c.tcb.evaluated);
    assert_memory_equal(c.u.snp.measurement, f.report.data + 0x90, 48);
    /* the report alone has no VCEK, and there is no source to look it up */
    MR_ASSERT_FAIL(mr_attest_verify(f.report.data, f.report.len, &f.opts, &c), MR_ERR_ATTESTATION,
                   "VCEK");
    /* single-byte changes of the report (signed fields), the signature and the chain */
    size_t aux = MR_SNP_REPORT_SIZE, vcek_off = aux + 3 * 24; /* two entries and the end */
    const struct {
        size_t off;
        const char *what;
    } m[] = {{0x008, "POLICY"}, {0x050, "REPORT_DATA"}, {0x090, "MEASUREMENT"},
             {0x1A0, "CHIP_ID"}, {0x180, "REPORTED_TCB"}, {0x2A0 + 1, "signature R"},
             {0x2A0 + 72 + 1, "signature S"}, {vcek_off + f.vcek.len - 20, "VCEK signature"},
             {vcek_off + 200, "VCEK body"}};
    for (size_t i = 0; i < MR_ARRAY_LEN(m); i++) {
        mr_buf b;
        mr_buf_init(&b, 0, 0);
        MR_ASSERT_OK(mr_buf_append(&b, f.ev.data, f.ev.len));
        b.data[m[i].off] ^= 0x01;
        if (mr_ok(mr_attest_verify(b.data, b.len, &f.opts, &c)))
            fail_msg("SNP evidence with a changed %s verified", m[i].what);
        assert_int_equal(mr_error_get()->cat, MR_ERR_ATTESTATION);
        mr_buf_free(&b);
    }
    /* the ASK (a base64 letter of the PEM) */
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_buf_append(&b, f.ev.data, f.ev.len));
    size_t ask = vcek_off + f.vcek.len + 28 + 300;
    b.data[ask] = (uint8_t)(b.data[ask] == 'A' ? 'B' : 'A');
    assert_false(mr_ok(mr_attest_verify(b.data, b.len, &f.opts, &c)));
    mr_buf_free(&b);
    /* outside the VCEK's validity */
    f.opts.verify_time = (time_t)1884906000;
    MR_ASSERT_FAIL(mr_attest_verify(f.ev.data, f.ev.len, &f.opts, &c), MR_ERR_ATTESTATION,
                   "SNP VCEK chain");
    snp_free(&f);
}

static void snp_rules_of(const mr_attest_claims *c, mr_snp_package *p)
{
    const mr_attest_snp_claims *s = &c->u.snp;
    mr_snp_tcb t;
    mr_snp_tcb_decode(s->reported_tcb, &t);
    memset(p, 0, sizeof(*p));
    p->debug = c->debug;
    p->has_measurement = p->has_host_data = p->has_id_key_digest = true;
    p->has_author_key_digest = p->has_family_id = p->has_image_id = true;
    memcpy(p->measurement, s->measurement, 48);
    memcpy(p->host_data, s->host_data, 32);
    memcpy(p->id_key_digest, s->id_key_digest, 48);
    memcpy(p->author_key_digest, s->author_key_digest, 48);
    memcpy(p->family_id, s->family_id, 16);
    memcpy(p->image_id, s->image_id, 16);
    p->has_smt = true;
    p->smt = (s->policy & MR_SNP_POLICY_SMT) != 0;
    p->allow_migration_agent = (s->policy & MR_SNP_POLICY_MIGRATE_MA) != 0;
    p->has_single_socket = true;
    p->single_socket = (s->policy & MR_SNP_POLICY_SINGLE_SOCKET) != 0;
    p->has_vmpl = true;
    p->vmpl = s->vmpl;
    p->min_guest_svn = s->guest_svn;
    p->min_bl = t.bl;
    p->min_tee = t.tee;
    p->min_snp = t.snp;
    p->min_ucode = t.ucode;
    p->signers = MR_SNP_SIGNER_VCEK;
}

static void test_snp_rules(void **state)
{
    (void)state;
    snp_fix f;
    mr_attest_claims c;
    mr_snp_package p, q;
    snp_load(&f);
    MR_ASSERT_OK(mr_attest_verify(f.ev.data, f.ev.len, &f.opts, &c));
    snp_rules_of(&c, &p);
    MR_ASSERT_OK(mr_policy_check_snp(&c, &p));
    MR_ASSERT_FAIL(mr_policy_check_tee(&c, MR_TEE_TDX), MR_ERR_ATTESTATION,
                   "the package describes a TDX workload, the evidence is SEV-SNP");
    const struct {
        uint8_t *b;
        size_t n;
        const char *field;
    } bytes[] = {{q.measurement, 48, "SNP.Measurement: expected "},
                 {q.host_data, 32, "SNP.HostData"},
                 {q.id_key_digest, 48, "SNP.IDKeyDigest"},
                 {q.author_key_digest, 48, "SNP.AuthorKeyDigest"},
                 {q.family_id, 16, "SNP.FamilyID"},
                 {q.image_id, 16, "SNP.ImageID"}};
    for (size_t i = 0; i < MR_ARRAY_LEN(bytes); i++) {
        q = p;
        bytes[i].b[bytes[i].n - 1] ^= 1;
        MR_ASSERT_FAIL(mr_policy_check_snp(&c, &q), MR_ERR_ATTESTATION, bytes[i].field);
    }
    q = p;
    q.smt = !q.smt;
    MR_ASSERT_FAIL(mr_policy_check_snp(&c, &q), MR_ERR_ATTESTATION, "SNP.Policy.SMT");
    q.has_smt = false;
    MR_ASSERT_OK(mr_policy_check_snp(&c, &q));
    q = p;
    q.single_socket = !q.single_socket;
    MR_ASSERT_FAIL(mr_policy_check_snp(&c, &q), MR_ERR_ATTESTATION, "SNP.Policy.SingleSocket");
    q = p;
    q.vmpl = (c.u.snp.vmpl + 1) % 4;
    MR_ASSERT_FAIL(mr_policy_check_snp(&c, &q), MR_ERR_ATTESTATION, "SNP.VMPL");
    q = p;
    q.min_guest_svn = c.u.snp.guest_svn + 1;
    MR_ASSERT_FAIL(mr_policy_check_snp(&c, &q), MR_ERR_ATTESTATION, "SNP.MinGuestSVN");
    uint8_t *mins[] = {&q.min_bl, &q.min_tee, &q.min_snp, &q.min_ucode};
    const char *names[] = {"SNP.MinimumTCB.Bootloader", "SNP.MinimumTCB.TEE",
                           "SNP.MinimumTCB.SNP", "SNP.MinimumTCB.Microcode"};
    for (size_t i = 0; i < 4; i++) {
        q = p;
        if (*mins[i] == 255)
            continue;
        *mins[i] = (uint8_t)(*mins[i] + 1);
        MR_ASSERT_FAIL(mr_policy_check_snp(&c, &q), MR_ERR_ATTESTATION, names[i]);
    }
    q = p;
    q.signers = MR_SNP_SIGNER_VLEK;
    MR_ASSERT_FAIL(mr_policy_check_snp(&c, &q), MR_ERR_ATTESTATION,
                   "SNP.AcceptedSigningKeys: expected [VLEK], got VCEK");
    q.signers = 0; /* default: VCEK */
    MR_ASSERT_OK(mr_policy_check_snp(&c, &q));
    q = p;
    q.debug = !c.debug;
    MR_ASSERT_FAIL(mr_policy_check_snp(&c, &q), MR_ERR_ATTESTATION, "Debug: expected ");
    /* a migration agent is refused unless allowed */
    mr_attest_claims ma = c;
    ma.u.snp.policy |= MR_SNP_POLICY_MIGRATE_MA;
    q = p;
    q.allow_migration_agent = false;
    MR_ASSERT_FAIL(mr_policy_check_snp(&ma, &q), MR_ERR_ATTESTATION, "SNP.Policy.MigrationAgent");
    q.allow_migration_agent = true;
    MR_ASSERT_OK(mr_policy_check_snp(&ma, &q));
    snp_free(&f);
}

/* ---- SNP: VCEK from a directory, cached -------------------------------------------------- */

static void vcek_name(const mr_buf *report, char *out, size_t n)
{
    mr_snp_report r;
    mr_buf h;
    mr_buf_init(&h, 0, 0);
    MR_ASSERT_OK(mr_snp_report_parse(report->data, report->len, &r));
    MR_ASSERT_OK(mr_hex_encode_buf(r.chip_id, 64, &h));
    MR_ASSERT_OK(mr_buf_nul_terminate(&h));
    (void)snprintf(out, n, "%s-%016llx.der", (const char *)h.data,
                   (unsigned long long)r.reported_tcb.raw);
    mr_buf_free(&h);
}

static void test_snp_source_dir(void **state)
{
    (void)state;
    snp_fix f;
    char dir[64], name[256], path[4096];
    mr_snp_source *s = NULL;
    mr_snp_claims sc;
    snp_load(&f);
    make_tmp(dir);
    MR_ASSERT_OK(mr_snp_source_new(&(mr_snp_source_opts){.vcek = dir}, &s));
    assert_false(mr_snp_source_has_test_root(s));
    /* not there yet */
    assert_false(mr_ok(mr_snp_source_verify(s, mr_buf_slice(&f.report), MR_SLICE(NULL, 0),
                                            SNP_TIME, &sc)));
    vcek_name(&f.report, name, sizeof(name));
    write_file(dir, "cert_chain.pem", f.chain.data, f.chain.len);
    /* a wrong file fails and is not cached: the right one is read next time */
    write_file(dir, name, f.chain.data, f.chain.len);
    assert_false(mr_ok(mr_snp_source_verify(s, mr_buf_slice(&f.report), MR_SLICE(NULL, 0),
                                            SNP_TIME, &sc)));
    write_file(dir, name, f.vcek.data, f.vcek.len);
    MR_ASSERT_OK(mr_snp_source_verify(s, mr_buf_slice(&f.report), MR_SLICE(NULL, 0), SNP_TIME,
                                      &sc));
    assert_memory_equal(sc.report.measurement, f.report.data + 0x90, 48);
    /* cached: the files may go */
    MR_ASSERT_OK(mr_issuer_io_path(path, sizeof(path), dir, name));
    assert_int_equal(unlink(path), 0);
    MR_ASSERT_OK(mr_snp_source_verify(s, mr_buf_slice(&f.report), MR_SLICE(NULL, 0), SNP_TIME,
                                      &sc));
    /* the cache never vouches by itself: a changed report still fails */
    f.report.data[0x90] ^= 1;
    assert_false(mr_ok(mr_snp_source_verify(s, mr_buf_slice(&f.report), MR_SLICE(NULL, 0),
                                            SNP_TIME, &sc)));
    mr_snp_source_free(s);
    mr_snp_source_free(NULL);
    rm_rf(dir);
    /* configuration */
    mr_snp_product p;
    MR_ASSERT_OK(mr_snp_product_parse("genoa", &p));
    assert_int_equal(p, MR_SNP_PRODUCT_GENOA);
    MR_ASSERT_OK(mr_snp_product_parse("", &p));
    assert_int_equal(p, MR_SNP_PRODUCT_ANY);
    assert_false(mr_ok(mr_snp_product_parse("Turin-X", &p)));
    /* a Genoa-only source refuses the Milan vector */
    MR_ASSERT_OK(mr_snp_source_new(&(mr_snp_source_opts){.product = MR_SNP_PRODUCT_GENOA}, &s));
    f.report.data[0x90] ^= 1;
    mr_slice rep, aux;
    MR_ASSERT_OK(mr_evidence_snp_split(mr_buf_slice(&f.ev), &rep, &aux));
    assert_false(mr_ok(mr_snp_source_verify(s, rep, aux, SNP_TIME, &sc)));
    mr_snp_source_free(s);
    snp_free(&f);
}

/* ---- softsnp ----------------------------------------------------------------------------- */

static void read_dir_file(const char *dir, const char *name, mr_buf *out)
{
    char path[4096];
    mr_buf_init(out, 1u << 20, 0);
    MR_ASSERT_OK(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_ASSERT_OK(mr_issuer_io_read(path, 1u << 20, out));
}

static void test_softsnp(void **state)
{
    (void)state;
    char dir[64], path[4096];
    mr_softsnp *s = NULL;
    mr_softsnp_identity id;
    mr_snp_source *src = NULL, *amd = NULL;
    mr_snp_claims sc;
    mr_buf ark, rep, aux, vek;
    const time_t now = 1893456000; /* 2030-01-01 */
    make_tmp(dir);
    MR_ASSERT_FAIL(mr_softsnp_init("", NULL), MR_ERR_USAGE, "no directory");
    MR_ASSERT_OK(mr_softsnp_init(dir, &(mr_softsnp_init_opts){.now = now, .valid_days = 2}));
    MR_ASSERT_OK(mr_softsnp_load(dir, &s));
    struct stat st;
    MR_ASSERT_OK(mr_issuer_io_path(path, sizeof(path), dir, "private/vcek-key.pem"));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    read_dir_file(dir, "ark.pem", &ark);
    MR_ASSERT_OK(mr_snp_source_new(&(mr_snp_source_opts){.test_root = mr_buf_slice(&ark)}, &src));
    assert_true(mr_snp_source_has_test_root(src));
    MR_ASSERT_OK(mr_snp_source_new(&(mr_snp_source_opts){0}, &amd));

    for (int vlek = 0; vlek <= 1; vlek++) {
        mr_softsnp_identity_default(&id);
        id.vlek = vlek != 0;
        memset(id.measurement, 0x44, 48);
        memset(id.host_data, 0x55, 32);
        id.guest_svn = 7;
        mr_buf_init(&rep, 0, 0);
        mr_buf_init(&aux, 0, 0);
        mr_buf_init(&vek, 0, 0);
        static const uint8_t rd[] = {1, 2, 3};
        MR_ASSERT_OK(mr_softsnp_report(s, &id, rd, sizeof(rd), &rep, &aux, &vek));
        assert_int_equal(rep.len, MR_SNP_REPORT_SIZE);
        assert_true(vek.len > 0);
        MR_ASSERT_OK(mr_snp_source_verify(src, mr_buf_slice(&rep), mr_buf_slice(&aux), now, &sc));
        assert_int_equal(sc.key, vlek ? MR_SNP_KEY_VLEK : MR_SNP_KEY_VCEK);
        assert_int_equal(sc.report.guest_svn, 7);
        assert_int_equal(sc.report.reported_tcb.ucode, 209);
        assert_int_equal(sc.report.reported_tcb.snp, 20);
        assert_int_equal(sc.report.report_data[2], 3);
        assert_int_equal(sc.report.report_data[3], 0);
        assert_memory_equal(sc.report.measurement, id.measurement, 48);
        /* AMD's roots do not accept the TEST hierarchy */
        MR_ASSERT_FAIL(mr_snp_source_verify(amd, mr_buf_slice(&rep), mr_buf_slice(&aux), now, &sc),
                       MR_ERR_ATTESTATION, "SNP VCEK chain");
        /* the certificates are valid for two days */
        assert_false(mr_ok(mr_snp_source_verify(src, mr_buf_slice(&rep), mr_buf_slice(&aux),
                                                now + 3 * 86400, &sc)));
        /* the auxblob has the signing certificate, the ASK/ASVK and the ARK */
        mr_snp_cert_table t;
        MR_ASSERT_OK(mr_snp_cert_table_parse(mr_buf_slice(&aux), &t));
        mr_slice got = vlek ? t.vlek : t.vcek;
        assert_int_equal(got.len, vek.len);
        assert_memory_equal(got.ptr, vek.data, vek.len);
        assert_int_equal((vlek ? t.vcek : t.vlek).len, 0);
        assert_true(t.ask.len > 0 && t.ark.len > 0);
        mr_buf_free(&rep);
        mr_buf_free(&aux);
        mr_buf_free(&vek);
    }
    /* bad arguments */
    uint8_t big[65] = {0};
    mr_buf_init(&rep, 0, 0);
    mr_softsnp_identity_default(&id);
    MR_ASSERT_FAIL(mr_softsnp_report(s, &id, big, sizeof(big), &rep, NULL, NULL), MR_ERR_USAGE,
                   "at most 64");
    id.version = 5;
    MR_ASSERT_FAIL(mr_softsnp_report(s, &id, big, 1, &rep, NULL, NULL), MR_ERR_USAGE,
                   "report version 5");
    assert_int_equal(rep.len, 0);
    uint8_t chip[64];
    mr_softsnp_chip_id(s, chip);
    mr_softsnp_free(s);
    mr_softsnp_free(NULL);
    /* a damaged state file */
    write_file(dir, "private/softsnp.json", "{}", 2);
    s = NULL;
    MR_ASSERT_FAIL(mr_softsnp_load(dir, &s), MR_ERR_IO, "is damaged");
    assert_null(s);
    mr_snp_source_free(src);
    mr_snp_source_free(amd);
    mr_buf_free(&ark);
    rm_rf(dir);
}

/* ---- the auxblob builder ----------------------------------------------------------------- */

static void test_cert_table_build(void **state)
{
    (void)state;
    static const uint8_t a[] = {1, 2, 3}, b[] = {4, 5}, c[] = {6}, d[] = {7, 8, 9, 10};
    mr_snp_cert_table in = {.vcek = MR_SLICE(a, sizeof(a)), .vlek = MR_SLICE(b, sizeof(b)),
                            .ask = MR_SLICE(c, sizeof(c)), .ark = MR_SLICE(d, sizeof(d))};
    mr_snp_cert_table out;
    mr_buf t;
    mr_buf_init(&t, 0, 0);
    MR_ASSERT_OK(mr_snp_cert_table_build(&in, &t));
    assert_int_equal(t.len, 5 * 24 + 10);
    MR_ASSERT_OK(mr_snp_cert_table_parse(mr_buf_slice(&t), &out));
    assert_int_equal(out.vcek.len, 3);
    assert_memory_equal(out.vcek.ptr, a, 3);
    assert_memory_equal(out.vlek.ptr, b, 2);
    assert_memory_equal(out.ask.ptr, c, 1);
    assert_memory_equal(out.ark.ptr, d, 4);
    /* empty entries are left out */
    mr_buf_free(&t);
    mr_buf_init(&t, 0, 0);
    in.vlek = MR_SLICE(NULL, 0);
    in.ark = MR_SLICE(NULL, 0);
    MR_ASSERT_OK(mr_snp_cert_table_build(&in, &t));
    assert_int_equal(t.len, 3 * 24 + 4);
    MR_ASSERT_OK(mr_snp_cert_table_parse(mr_buf_slice(&t), &out));
    assert_int_equal(out.vlek.len, 0);
    assert_int_equal(out.ark.len, 0);
    assert_memory_equal(out.ask.ptr, c, 1);
    MR_ASSERT_FAIL(mr_snp_cert_table_build(NULL, &t), MR_ERR_INTERNAL, "");
    mr_buf_free(&t);
}

/* ---- the premain's quote source: configfs-tsm directory and mode variable ---------------- */

static void test_issuer_tsm_dir(void **state)
{
    (void)state;
    char dir[64], tsm[128];
    mr_issuer *is = NULL;
    mr_buf out;
    mr_tee_type tee = MR_TEE_SGX;
    make_tmp(dir);
    (void)snprintf(tsm, sizeof(tsm), "%s/tsm", dir);
    /* the mode's variable is named in the error */
    MR_ASSERT_FAIL(mr_issuer_open(&(mr_issuer_opts){.mode = "sev", .mode_var = "EDG_MARBLE_ATTESTATION"},
                                  &is),
                   MR_ERR_USAGE, "EDG_MARBLE_ATTESTATION: unknown quote source \"sev\"");
    MR_ASSERT_FAIL(mr_issuer_open(&(mr_issuer_opts){.mode = "sev"}, &is), MR_ERR_USAGE,
                   "EDG_ATTESTATION: unknown quote source \"sev\"");
    /* auto: without the directory nothing is found, and the message names it (under the
     * device root dir, which has no Gramine or Occlum device either) */
    assert_int_equal(setenv("EDG_ATTESTATION_TSM_DIR", "/tsm", 1), 0);
    assert_int_equal(unsetenv("OE_SIMULATION"), 0);
    MR_ASSERT_FAIL(mr_issuer_open(&(mr_issuer_opts){.mode = "auto", .root = dir}, &is),
                   MR_ERR_USAGE, ", /tsm); refusing to run without attestation");
    /* with it, auto picks configfs-tsm there */
    assert_int_equal(mkdir(tsm, 0700), 0);
    MR_ASSERT_OK(mr_issuer_open(&(mr_issuer_opts){.mode = "auto", .root = dir}, &is));
    assert_int_equal(mr_issuer_get_kind(is), MR_ISSUER_TSM);
    /* a plain directory never gets the attribute files: a clear error after the wait */
    mr_buf_init(&out, 0, 0);
    uint8_t rd[32] = {1};
    MR_ASSERT_FAIL(mr_issuer_evidence(is, rd, sizeof(rd), &out, &tee), MR_ERR_IO,
                   "has no attributes (is EDG_ATTESTATION_TSM_DIR a configfs-tsm report directory?)");
    assert_int_equal(out.len, 0);
    mr_buf_free(&out);
    mr_issuer_free(is);
    assert_int_equal(unsetenv("EDG_ATTESTATION_TSM_DIR"), 0);
    rm_rf(dir);
}

/* ---- allocation failures ------------------------------------------------------------------ */

typedef struct sweep_ctx {
    snp_fix snp;
    mr_snp_source *dir_source;
    mr_softsnp *soft;
} sweep_ctx;

static mr_result op_table(void *arg)
{
    sweep_ctx *x = arg;
    mr_snp_cert_table t = {.vcek = mr_buf_slice(&x->snp.vcek), .ask = mr_buf_slice(&x->snp.chain)};
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    mr_result r = mr_snp_cert_table_build(&t, &b);
    mr_buf_free(&b);
    return r;
}

static mr_result op_verify_ev(void *arg)
{
    sweep_ctx *x = arg;
    mr_attest_claims c;
    return mr_attest_verify(x->snp.ev.data, x->snp.ev.len, &x->snp.opts, &c);
}

static mr_result op_verify_dir(void *arg)
{
    sweep_ctx *x = arg;
    mr_snp_claims c;
    return mr_snp_source_verify(x->dir_source, mr_buf_slice(&x->snp.report), MR_SLICE(NULL, 0),
                                SNP_TIME, &c);
}

static mr_result op_softsnp(void *arg)
{
    sweep_ctx *x = arg;
    mr_softsnp_identity id;
    mr_buf r, a, v;
    mr_softsnp_identity_default(&id);
    mr_buf_init(&r, 0, 0);
    mr_buf_init(&a, 0, 0);
    mr_buf_init(&v, 0, 0);
    mr_result res = mr_softsnp_report(x->soft, &id, NULL, 0, &r, &a, &v);
    mr_buf_free(&r);
    mr_buf_free(&a);
    mr_buf_free(&v);
    return res;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    sweep_ctx x;
    char dir[64], sdir[64], name[256];
    memset(&x, 0, sizeof(x));
    snp_load(&x.snp);
    make_tmp(dir);
    vcek_name(&x.snp.report, name, sizeof(name));
    write_file(dir, name, x.snp.vcek.data, x.snp.vcek.len);
    write_file(dir, "cert_chain.pem", x.snp.chain.data, x.snp.chain.len);
    MR_ASSERT_OK(mr_snp_source_new(&(mr_snp_source_opts){.vcek = dir}, &x.dir_source));
    make_tmp(sdir);
    MR_ASSERT_OK(mr_softsnp_init(sdir, NULL));
    MR_ASSERT_OK(mr_softsnp_load(sdir, &x.soft));
    assert_true(mr_test_alloc_sweep("mr_snp_cert_table_build", op_table, &x) > 0);
    assert_true(mr_test_alloc_sweep("mr_attest_verify (SNP + auxblob)", op_verify_ev, &x) > 0);
    assert_true(mr_test_alloc_sweep("mr_snp_source_verify (directory)", op_verify_dir, &x) > 0);
    assert_true(mr_test_alloc_sweep("mr_softsnp_report", op_softsnp, &x) > 0);
    mr_softsnp_free(x.soft);
    mr_snp_source_free(x.dir_source);
    snp_free(&x.snp);
    rm_rf(dir);
    rm_rf(sdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),         cmocka_unit_test(test_tdx_vector),
        cmocka_unit_test(test_tdx_rules),       cmocka_unit_test(test_snp_vector),
        cmocka_unit_test(test_snp_rules),       cmocka_unit_test(test_snp_source_dir),
        cmocka_unit_test(test_softsnp),         cmocka_unit_test(test_cert_table_build),
        cmocka_unit_test(test_issuer_tsm_dir), cmocka_unit_test(test_alloc_failures),
    };
    int failures = cmocka_run_group_tests_name("cvm", tests, NULL, NULL);
    cvm_run_manifest_tests(&failures);
    return failures;
}
