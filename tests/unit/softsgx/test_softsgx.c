/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of softsgx (quote construction, PKI, collateral) and of the quote issuers
 * (gramine, occlum, tsm, simulation, softsgx, auto) against fake device directories, plus
 * the round trip of every TCB status through the real DCAP verifier.
 */
#include "mr_test.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/collateral.h"
#include "attest/dcap.h"
#include "attest/issuer.h"
#include "attest/issuer_io.h"
#include "attest/softsgx.h"
#include "common/alloc.h"
#include "common/buf.h"

/* ---- helpers ------------------------------------------------------------------------------ */

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
    snprintf(out, 64, "/tmp/mr-softsgx-test-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static void join(char *out, size_t n, const char *a, const char *b)
{
    assert_true(mr_ok(mr_issuer_io_path(out, n, a, b)));
}

static void mkdirs(const char *root, const char *rel)
{
    char path[4096];
    char part[4096];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0700);
            *p = '/';
        }
    }
    snprintf(part, sizeof(part), "%s", path);
    mkdir(part, 0700);
}

static void put_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    join(path, sizeof(path), dir, name);
    MR_ASSERT_OK(mr_issuer_io_write_new(path, data, len, 0600));
}

static void put_str(const char *dir, const char *name, const char *s)
{
    put_file(dir, name, s, strlen(s));
}

static void read_all(const char *dir, const char *name, mr_buf *out)
{
    char path[4096];
    join(path, sizeof(path), dir, name);
    MR_ASSERT_OK(mr_issuer_io_read(path, 1 << 20, out));
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t le64(const uint8_t *p) { return le32(p) | ((uint64_t)le32(p + 4) << 32); }

static const uint8_t INTEL_VENDOR[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                         0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

/* A softsgx directory shared by the tests that do not care about its TCB status. */
static char g_dir[64];

static int setup_dir(void **state)
{
    (void)state;
    make_tmp(g_dir);
    mr_softsgx_init_opts o = {.valid_days = 2};
    if (!mr_ok(mr_softsgx_init(g_dir, &o)))
        return -1;
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    rm_rf(g_dir);
    return 0;
}

static void sample_identity(mr_softsgx_identity *id)
{
    memset(id, 0, sizeof(*id));
    for (int i = 0; i < 32; i++) {
        id->mrenclave[i] = (uint8_t)i;
        id->mrsigner[i] = (uint8_t)(0xa0 + i);
    }
    id->isvprodid = 3;
    id->isvsvn = 7;
}

/* ---- softsgx: init and files ------------------------------------------------------------- */

static void test_init_files(void **state)
{
    (void)state;
    static const char *priv[] = {"private/root-ca-key.pem", "private/pck-ca-key.pem",
                                 "private/tcb-signing-key.pem", "private/pck-key.pem",
                                 "private/attestation-key.pem", "private/softsgx.json"};
    static const char *pub[] = {"root-ca.pem", "pck-ca.pem", "pck.pem", "tcb-signing.pem",
                                "pck-chain.pem", "collateral.json"};
    char path[4096];
    struct stat st;
    for (size_t i = 0; i < MR_ARRAY_LEN(priv); i++) {
        join(path, sizeof(path), g_dir, priv[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    for (size_t i = 0; i < MR_ARRAY_LEN(pub); i++) {
        join(path, sizeof(path), g_dir, pub[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size > 0);
    }
    join(path, sizeof(path), g_dir, "private");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    read_all(g_dir, "root-ca.pem", &b);
    mr_buf_free(&b);
}

static void test_init_bad_args(void **state)
{
    (void)state;
    mr_softsgx_init_opts o = {.tcb_status = MR_SOFTSGX_TCB__COUNT};
    MR_ASSERT_FAIL(mr_softsgx_init("/tmp/never-created-softsgx", &o), MR_ERR_USAGE,
                   "bad TCB status");
    MR_ASSERT_FAIL(mr_softsgx_init("", NULL), MR_ERR_USAGE, "no directory");
    mr_softsgx_init_opts o2 = {.valid_days = 40000};
    MR_ASSERT_FAIL(mr_softsgx_init("/tmp/never-created-softsgx", &o2), MR_ERR_USAGE,
                   "valid-days");
    MR_ASSERT_FAIL(mr_softsgx_init("/proc/no/such/dir", NULL), MR_ERR_IO, "cannot create");
}

static void test_status_names(void **state)
{
    (void)state;
    mr_softsgx_tcb t;
    mr_softsgx_qe_tcb q;
    for (unsigned i = 0; i < MR_SOFTSGX_TCB__COUNT; i++) {
        MR_ASSERT_OK(mr_softsgx_tcb_parse(mr_softsgx_tcb_name((mr_softsgx_tcb)i), &t));
        assert_int_equal(t, i);
    }
    MR_ASSERT_OK(mr_softsgx_tcb_parse("swhardeningneeded", &t));
    assert_int_equal(t, MR_SOFTSGX_TCB_SW_HARDENING_NEEDED);
    MR_ASSERT_FAIL(mr_softsgx_tcb_parse("Fine", &t), MR_ERR_USAGE, "unknown TCB status");
    MR_ASSERT_OK(mr_softsgx_qe_tcb_parse("OutOfDate", &q));
    assert_int_equal(q, MR_SOFTSGX_QE_OUT_OF_DATE);
    MR_ASSERT_FAIL(mr_softsgx_qe_tcb_parse("ConfigurationNeeded", &q), MR_ERR_USAGE, "QE");
    assert_string_equal(mr_softsgx_tcb_name((mr_softsgx_tcb)99), "?");
}

/* ---- softsgx: quote layout ------------------------------------------------------------------ */

static void test_quote_layout(void **state)
{
    (void)state;
    mr_softsgx *s = NULL;
    mr_softsgx_identity id;
    uint8_t rd[40];
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    sample_identity(&id);
    for (size_t i = 0; i < sizeof(rd); i++)
        rd[i] = (uint8_t)(0x40 + i);
    MR_ASSERT_OK(mr_softsgx_load(g_dir, &s));
    MR_ASSERT_OK(mr_softsgx_quote(s, &id, rd, sizeof(rd), false, &q));
    const uint8_t *p = q.data;
    /* header §1.1 */
    assert_int_equal(le16(p + 0), 3);
    assert_int_equal(le16(p + 2), 2);
    assert_int_equal(le32(p + 4), 0);
    assert_int_equal(le16(p + 8), 8);   /* QE SVN (UpToDate QE) */
    assert_int_equal(le16(p + 10), 13); /* PCE SVN */
    assert_memory_equal(p + 12, INTEL_VENDOR, 16);
    assert_memory_equal(p + 44, "\0\0\0\0", 4);
    /* body §1.2 */
    assert_int_equal(le64(p + 96), 0x05); /* INIT | MODE64BIT, no DEBUG */
    assert_int_equal(le64(p + 104), 0xe7);
    assert_memory_equal(p + 112, id.mrenclave, 32);
    assert_memory_equal(p + 176, id.mrsigner, 32);
    assert_int_equal(le16(p + 304), 3);
    assert_int_equal(le16(p + 306), 7);
    assert_memory_equal(p + 368, rd, sizeof(rd));
    for (size_t i = 368 + sizeof(rd); i < 432; i++)
        assert_int_equal(p[i], 0);
    /* signature data §1.3 */
    uint32_t sig_len = le32(p + MR_SGX_QUOTE_SIGLEN_OFFSET);
    assert_int_equal(sig_len, q.len - MR_SGX_QUOTE_SIGDATA_OFFSET);
    const uint8_t *qe = p + MR_SGX_QUOTE_QE_REPORT_OFFSET;
    assert_int_equal(le16(qe + 256), 1); /* QE ISVPRODID */
    assert_int_equal(le16(qe + 258), 8); /* QE ISVSVN */
    assert_int_equal(le64(qe + 48) & 0xfb, 0x11);
    for (int i = 352; i < 384; i++)
        assert_int_equal(qe[i], 0); /* upper half of the QE REPORTDATA */
    assert_int_equal(le16(p + MR_SGX_QUOTE_QE_AUTH_SIZE_OFFSET), 32);
    for (int i = 0; i < 32; i++)
        assert_int_equal(p[1014 + i], i);
    assert_int_equal(le16(p + 1046), 5);
    uint32_t cert_len = le32(p + 1048);
    assert_int_equal(1052 + cert_len, q.len);
    assert_int_equal(p[q.len - 1], 0); /* NUL-terminated PEM, like a real QE */
    assert_memory_equal(p + 1052, "-----BEGIN CERTIFICATE-----", 27);

    /* the OE form is the same quote behind a 16-byte header */
    mr_buf oe;
    mr_buf_init(&oe, 0, 0);
    MR_ASSERT_OK(mr_softsgx_quote(s, &id, rd, sizeof(rd), true, &oe));
    assert_int_equal(oe.len, q.len + MR_OE_HEADER_SIZE);
    assert_int_equal(le32(oe.data), 1);
    assert_int_equal(le32(oe.data + 4), 2);
    assert_int_equal(le64(oe.data + 8), q.len);
    /* same layout (the signature differs: ECDSA is randomised) */
    assert_memory_equal(oe.data + 16, q.data, MR_SGX_QUOTE_SIGLEN_OFFSET);

    /* debug sets ATTRIBUTES.DEBUG */
    id.debug = true;
    mr_buf_reset(&q);
    MR_ASSERT_OK(mr_softsgx_quote(s, &id, NULL, 0, false, &q));
    assert_int_equal(le64(q.data + 96), 0x07);
    for (size_t i = 368; i < 432; i++)
        assert_int_equal(q.data[i], 0);

    uint8_t big[65] = {0};
    MR_ASSERT_FAIL(mr_softsgx_quote(s, &id, big, sizeof(big), false, &q), MR_ERR_USAGE,
                   "at most 64");
    mr_buf_free(&oe);
    mr_buf_free(&q);
    mr_softsgx_free(s);
    mr_softsgx_free(NULL);
}

static void test_load_errors(void **state)
{
    (void)state;
    mr_softsgx *s = NULL;
    char tmp[64];
    MR_ASSERT_FAIL(mr_softsgx_load("/nonexistent/softsgx", &s), MR_ERR_IO, "cannot open");
    MR_ASSERT_FAIL(mr_softsgx_load("", &s), MR_ERR_USAGE, "no directory");
    make_tmp(tmp);
    mkdirs(tmp, "private");
    put_str(tmp, "private/softsgx.json", "{\"qe_mrenclave\": 5}");
    MR_ASSERT_FAIL(mr_softsgx_load(tmp, &s), MR_ERR_IO, "qe_mrenclave");
    put_str(tmp, "private/softsgx.json", "not json");
    MR_ASSERT_FAIL(mr_softsgx_load(tmp, &s), MR_ERR_IO, "bad JSON");
    assert_null(s);
    rm_rf(tmp);
}

static void test_quote_alloc_failures(void **state)
{
    (void)state;
    mr_softsgx_identity id;
    sample_identity(&id);
    bool done = false;
    for (long n = 0; n < 500 && !done; n++) {
        mr_softsgx *s = NULL;
        mr_buf q;
        mr_buf_init(&q, 0, 0);
        mr_alloc_fail_after(n);
        mr_result r = mr_softsgx_load(g_dir, &s);
        if (mr_ok(r))
            r = mr_softsgx_quote(s, &id, (const uint8_t *)"x", 1, true, &q);
        mr_alloc_fail_reset();
        if (mr_ok(r)) {
            done = true;
            assert_true(q.len > 1000);
        } else {
            assert_int_equal(q.len, 0);
        }
        mr_buf_free(&q);
        mr_softsgx_free(s);
    }
    assert_true(done);
}

typedef struct quote_thread {
    const mr_softsgx *s;
    int ok;
} quote_thread;

static void *quote_worker(void *arg)
{
    quote_thread *t = arg;
    mr_softsgx_identity id;
    sample_identity(&id);
    for (int i = 0; i < 50; i++) {
        uint8_t rd[64] = {(uint8_t)i};
        mr_buf q;
        mr_buf_init(&q, 0, 0);
        if (mr_ok(mr_softsgx_quote(t->s, &id, rd, sizeof(rd), true, &q)) && q.len > 1000)
            t->ok++;
        mr_buf_free(&q);
    }
    return NULL;
}

static void test_quote_threads(void **state)
{
    (void)state;
    mr_softsgx *s = NULL;
    pthread_t th[4];
    quote_thread t[4];
    MR_ASSERT_OK(mr_softsgx_load(g_dir, &s));
    for (int i = 0; i < 4; i++) {
        t[i] = (quote_thread){.s = s};
        assert_int_equal(pthread_create(&th[i], NULL, quote_worker, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(t[i].ok, 50);
    }
    mr_softsgx_free(s);
}

static void test_identity_from_env(void **state)
{
    (void)state;
    mr_softsgx_identity id;
    unsetenv("EDG_SOFTSGX_MRENCLAVE");
    unsetenv("EDG_SOFTSGX_MRSIGNER");
    unsetenv("EDG_SOFTSGX_ISVPRODID");
    unsetenv("EDG_SOFTSGX_ISVSVN");
    unsetenv("EDG_SOFTSGX_DEBUG");
    MR_ASSERT_OK(mr_softsgx_identity_from_env(&id));
    assert_int_equal(id.isvprodid, 0);
    assert_false(id.debug);
    setenv("EDG_SOFTSGX_MRENCLAVE",
           "000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f", 1);
    setenv("EDG_SOFTSGX_ISVPRODID", "3", 1);
    setenv("EDG_SOFTSGX_ISVSVN", "65535", 1);
    setenv("EDG_SOFTSGX_DEBUG", "1", 1);
    MR_ASSERT_OK(mr_softsgx_identity_from_env(&id));
    assert_int_equal(id.mrenclave[31], 0x1f);
    assert_int_equal(id.mrsigner[0], 0);
    assert_int_equal(id.isvprodid, 3);
    assert_int_equal(id.isvsvn, 65535);
    assert_true(id.debug);
    setenv("EDG_SOFTSGX_ISVSVN", "65536", 1);
    MR_ASSERT_FAIL(mr_softsgx_identity_from_env(&id), MR_ERR_USAGE, "65535");
    setenv("EDG_SOFTSGX_ISVSVN", "1", 1);
    setenv("EDG_SOFTSGX_MRSIGNER", "abc", 1);
    MR_ASSERT_FAIL(mr_softsgx_identity_from_env(&id), MR_ERR_USAGE, "EDG_SOFTSGX_MRSIGNER");
    setenv("EDG_SOFTSGX_MRSIGNER",
           "zz0102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f", 1);
    MR_ASSERT_FAIL(mr_softsgx_identity_from_env(&id), MR_ERR_USAGE, "EDG_SOFTSGX_MRSIGNER");
    unsetenv("EDG_SOFTSGX_MRENCLAVE");
    unsetenv("EDG_SOFTSGX_MRSIGNER");
    unsetenv("EDG_SOFTSGX_ISVPRODID");
    unsetenv("EDG_SOFTSGX_ISVSVN");
    unsetenv("EDG_SOFTSGX_DEBUG");
}

/* ---- round trip through the DCAP verifier --------------------------------------------------- */

typedef struct verifier {
    mr_attest_roots *roots;
    mr_dcap_collateral *coll;
    mr_softsgx *s;
} verifier;

static void verifier_open(const char *dir, verifier *v)
{
    char path[4096];
    mr_buf pem;
    mr_buf_init(&pem, 0, 0);
    memset(v, 0, sizeof(*v));
    read_all(dir, "root-ca.pem", &pem);
    MR_ASSERT_OK(mr_attest_roots_from_pem((const char *)pem.data, pem.len, &v->roots));
    join(path, sizeof(path), dir, "collateral.json");
    MR_ASSERT_OK(mr_dcap_collateral_load_file(path, &v->coll));
    MR_ASSERT_OK(mr_softsgx_load(dir, &v->s));
    mr_buf_free(&pem);
}

static void verifier_close(verifier *v)
{
    mr_attest_roots_free(v->roots);
    mr_dcap_collateral_free(v->coll);
    mr_softsgx_free(v->s);
}

static mr_result verify(verifier *v, const mr_softsgx_identity *id, bool oe,
                        mr_attest_claims *claims)
{
    static const uint8_t rd[64] = "softsgx round trip";
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    MR_ASSERT_OK(mr_softsgx_quote(v->s, id, rd, sizeof(rd), oe, &q));
    mr_attest_options opts = {.roots = v->roots, .collateral = v->coll};
    mr_result r = mr_dcap_verify(q.data, q.len, &opts, claims);
    if (mr_ok(r))
        assert_memory_equal(claims->report_data, rd, sizeof(rd));
    mr_buf_free(&q);
    return r;
}

static void round_trip(mr_softsgx_tcb platform, mr_softsgx_qe_tcb qe, const char *want,
                       bool debug)
{
    char dir[64];
    verifier v;
    mr_attest_claims claims;
    mr_softsgx_identity id;
    make_tmp(dir);
    mr_softsgx_init_opts o = {.tcb_status = platform, .qe_status = qe};
    MR_ASSERT_OK(mr_softsgx_init(dir, &o));
    verifier_open(dir, &v);
    sample_identity(&id);
    id.debug = debug;
    memset(&claims, 0, sizeof(claims));
    MR_ASSERT_OK(verify(&v, &id, true, &claims));
    assert_int_equal(claims.tee, MR_TEE_SGX);
    assert_true(claims.tcb.evaluated);
    if (strcmp(mr_tcb_status_name(claims.tcb.status), want) != 0)
        fail_msg("platform %s, QE %s: verifier computed %s, want %s",
                 mr_softsgx_tcb_name(platform), mr_softsgx_qe_tcb_name(qe),
                 mr_tcb_status_name(claims.tcb.status), want);
    assert_int_equal(claims.debug, debug);
    assert_memory_equal(claims.u.sgx.mrenclave, id.mrenclave, 32);
    assert_memory_equal(claims.u.sgx.mrsigner, id.mrsigner, 32);
    assert_int_equal(claims.u.sgx.isvprodid, id.isvprodid);
    assert_int_equal(claims.u.sgx.isvsvn, id.isvsvn);
    if (strcmp(want, "UpToDate") == 0)
        assert_int_equal(claims.tcb.advisory_count, 0);
    else
        assert_true(claims.tcb.advisory_count > 0);
    /* the raw form verifies too */
    MR_ASSERT_OK(verify(&v, &id, false, &claims));
    verifier_close(&v);
    rm_rf(dir);
}

static void test_round_trip_platform_statuses(void **state)
{
    (void)state;
    for (unsigned t = 0; t < MR_SOFTSGX_TCB_NOT_SUPPORTED; t++) {
        for (int debug = 0; debug <= 1; debug++)
            round_trip((mr_softsgx_tcb)t, MR_SOFTSGX_QE_UP_TO_DATE,
                       mr_softsgx_tcb_name((mr_softsgx_tcb)t), debug);
    }
}

static void test_round_trip_platform_ca(void **state)
{
    (void)state;
    char dir[64];
    verifier v;
    mr_attest_claims claims;
    mr_softsgx_identity id;
    sample_identity(&id);
    make_tmp(dir);
    mr_softsgx_init_opts o = {.platform_ca = true,
                              .tcb_status = MR_SOFTSGX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED};
    MR_ASSERT_OK(mr_softsgx_init(dir, &o));
    verifier_open(dir, &v);
    MR_ASSERT_OK(verify(&v, &id, true, &claims));
    assert_string_equal(mr_tcb_status_name(claims.tcb.status),
                        "ConfigurationAndSWHardeningNeeded");
    verifier_close(&v);
    rm_rf(dir);
}

static void test_round_trip_qe_statuses(void **state)
{
    (void)state;
    /* convergence (spec §2 step 13) */
    round_trip(MR_SOFTSGX_TCB_UP_TO_DATE, MR_SOFTSGX_QE_OUT_OF_DATE, "OutOfDate", false);
    round_trip(MR_SOFTSGX_TCB_SW_HARDENING_NEEDED, MR_SOFTSGX_QE_OUT_OF_DATE, "OutOfDate", false);
    round_trip(MR_SOFTSGX_TCB_CONFIGURATION_NEEDED, MR_SOFTSGX_QE_OUT_OF_DATE,
               "OutOfDateConfigurationNeeded", false);
    round_trip(MR_SOFTSGX_TCB_UP_TO_DATE, MR_SOFTSGX_QE_REVOKED, "Revoked", false);
}

static void test_round_trip_rejections(void **state)
{
    (void)state;
    char dir[64];
    verifier v;
    mr_attest_claims claims;
    mr_softsgx_identity id;
    sample_identity(&id);

    /* no TCB level matches */
    make_tmp(dir);
    mr_softsgx_init_opts o = {.tcb_status = MR_SOFTSGX_TCB_NOT_SUPPORTED};
    MR_ASSERT_OK(mr_softsgx_init(dir, &o));
    verifier_open(dir, &v);
    MR_ASSERT_FAIL(verify(&v, &id, true, &claims), MR_ERR_ATTESTATION, "TCB not supported");
    verifier_close(&v);
    rm_rf(dir);

    /* the PCK certificate is on the PCK CRL */
    make_tmp(dir);
    mr_softsgx_init_opts r = {.revoke_pck = true};
    MR_ASSERT_OK(mr_softsgx_init(dir, &r));
    verifier_open(dir, &v);
    MR_ASSERT_FAIL(verify(&v, &id, true, &claims), MR_ERR_ATTESTATION, "revoked");
    verifier_close(&v);
    rm_rf(dir);

    /* the same through a Platform CA (the verifier picks the platform PCK CRL) */
    make_tmp(dir);
    mr_softsgx_init_opts rp = {.revoke_pck = true, .platform_ca = true};
    MR_ASSERT_OK(mr_softsgx_init(dir, &rp));
    verifier_open(dir, &v);
    MR_ASSERT_FAIL(verify(&v, &id, true, &claims), MR_ERR_ATTESTATION, "revoked");
    verifier_close(&v);
    rm_rf(dir);

    /* collateral from the past (expired) */
    make_tmp(dir);
    mr_softsgx_init_opts old = {.now = time(NULL) - 10 * 86400, .valid_days = 2};
    MR_ASSERT_OK(mr_softsgx_init(dir, &old));
    verifier_open(dir, &v);
    MR_ASSERT_FAIL(verify(&v, &id, true, &claims), MR_ERR_ATTESTATION, "PCK chain");
    verifier_close(&v);
    rm_rf(dir);

    /* the Intel root (the default) does not accept softsgx quotes, nor does another
     * softsgx directory's root */
    verifier_open(g_dir, &v);
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    MR_ASSERT_OK(mr_softsgx_quote(v.s, &id, NULL, 0, true, &q));
    mr_attest_options intel = {.roots = NULL, .collateral = v.coll};
    MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &intel, &claims), MR_ERR_ATTESTATION,
                   "PCK chain");
    make_tmp(dir);
    MR_ASSERT_OK(mr_softsgx_init(dir, NULL));
    verifier other;
    verifier_open(dir, &other);
    mr_attest_options foreign = {.roots = other.roots, .collateral = v.coll};
    MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &foreign, &claims), MR_ERR_ATTESTATION,
                   "PCK chain");
    verifier_close(&other);
    rm_rf(dir);
    /* tampering with MRENCLAVE breaks the quote signature */
    mr_attest_options good = {.roots = v.roots, .collateral = v.coll};
    MR_ASSERT_OK(mr_dcap_verify(q.data, q.len, &good, &claims));
    q.data[16 + 112] ^= 1;
    MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &good, &claims), MR_ERR_ATTESTATION,
                   "quote signature");
    mr_buf_free(&q);
    verifier_close(&v);
}

static void test_round_trip_sgx_v4_v5(void **state)
{
    (void)state;
    verifier v;
    mr_attest_claims claims;
    mr_softsgx_identity id;
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    sample_identity(&id);
    verifier_open(g_dir, &v);
    mr_attest_options opts = {.roots = v.roots, .collateral = v.coll};
    for (uint16_t ver = 4; ver <= 5; ver++) {
        size_t shift = ver == 5 ? 6 : 0;
        mr_buf_reset(&q);
        MR_ASSERT_OK(mr_softsgx_quote_version(v.s, ver, &id, (const uint8_t *)"v", 1, false, &q));
        assert_int_equal(le16(q.data), ver);
        assert_int_equal(le32(q.data + 4), 0); /* TEE type SGX */
        if (ver == 5) {
            assert_int_equal(le16(q.data + 48), 1);
            assert_int_equal(le32(q.data + 50), 384);
        }
        assert_memory_equal(q.data + 48 + shift + 64, id.mrenclave, 32);
        assert_int_equal(le32(q.data + 432 + shift), q.len - 436 - shift);
        assert_int_equal(le16(q.data + 564 + shift), 6); /* type-6 wrapper */
        assert_int_equal(le32(q.data + 566 + shift), q.len - 570 - shift);
        memset(&claims, 0, sizeof(claims));
        MR_ASSERT_OK(mr_dcap_verify(q.data, q.len, &opts, &claims));
        assert_int_equal(claims.quote_version, ver);
        assert_int_equal(claims.tee, MR_TEE_SGX);
        assert_string_equal(mr_tcb_status_name(claims.tcb.status), "UpToDate");
        assert_memory_equal(claims.u.sgx.mrenclave, id.mrenclave, 32);
    }
    MR_ASSERT_FAIL(mr_softsgx_quote_version(v.s, 6, &id, NULL, 0, false, &q), MR_ERR_USAGE,
                   "version 6");
    mr_buf_free(&q);
    verifier_close(&v);
}

/* ---- issuers ------------------------------------------------------------------------------------ */

static mr_result open_mode(const char *mode, const char *root, mr_issuer **out)
{
    mr_issuer_opts o = {.mode = mode, .root = root};
    return mr_issuer_open(&o, out);
}

static void test_issuer_simulation(void **state)
{
    (void)state;
    mr_issuer *is = NULL;
    mr_buf out;
    mr_tee_type tee = MR_TEE_SGX;
    mr_buf_init(&out, 0, 0);
    MR_ASSERT_OK(open_mode("simulation", NULL, &is));
    assert_int_equal(mr_issuer_get_kind(is), MR_ISSUER_SIMULATION);
    MR_ASSERT_OK(mr_issuer_issue(is, (const uint8_t *)"abc", 3, &out, &tee));
    assert_int_equal(out.len, 0);
    assert_int_equal(tee, MR_TEE_NONE);
    uint8_t big[65] = {0};
    MR_ASSERT_FAIL(mr_issuer_issue(is, big, sizeof(big), &out, &tee), MR_ERR_USAGE, "at most 64");
    mr_issuer_free(is);
    mr_issuer_free(NULL);
    MR_ASSERT_FAIL(open_mode("sgx-please", NULL, &is), MR_ERR_USAGE, "unknown quote source");
    assert_string_equal(mr_issuer_kind_name(MR_ISSUER_TSM), "tsm");
}

static void fake_gramine(const char *root, const char *type, const void *quote, size_t len)
{
    mkdirs(root, "dev/attestation");
    put_str(root, "dev/attestation/user_report_data", "");
    if (type != NULL)
        put_str(root, "dev/attestation/attestation_type", type);
    put_file(root, "dev/attestation/quote", quote, len);
}

static void softsgx_raw_quote(const uint8_t *rd, size_t rd_len, mr_buf *q)
{
    mr_softsgx *s = NULL;
    mr_softsgx_identity id;
    sample_identity(&id);
    MR_ASSERT_OK(mr_softsgx_load(g_dir, &s));
    MR_ASSERT_OK(mr_softsgx_quote(s, &id, rd, rd_len, false, q));
    mr_softsgx_free(s);
}

static void test_issuer_gramine(void **state)
{
    (void)state;
    char root[64];
    mr_issuer *is = NULL;
    mr_buf quote, out, written;
    mr_tee_type tee;
    uint8_t rd[32];
    mr_buf_init(&quote, 0, 0);
    mr_buf_init(&out, 0, 0);
    mr_buf_init(&written, 0, 0);
    for (size_t i = 0; i < sizeof(rd); i++)
        rd[i] = (uint8_t)(i + 1);
    make_tmp(root);
    softsgx_raw_quote(rd, sizeof(rd), &quote);
    fake_gramine(root, "dcap\n", quote.data, quote.len);

    MR_ASSERT_OK(open_mode("gramine", root, &is));
    MR_ASSERT_OK(mr_issuer_issue(is, rd, sizeof(rd), &out, &tee));
    assert_int_equal(tee, MR_TEE_SGX);
    assert_int_equal(out.len, quote.len + 16);
    assert_int_equal(le32(out.data), 1);
    assert_int_equal(le32(out.data + 4), 2);
    assert_int_equal(le64(out.data + 8), quote.len);
    assert_memory_equal(out.data + 16, quote.data, quote.len);
    /* the report data went to user_report_data, zero-padded to 64 bytes */
    char rd_dir[4096];
    join(rd_dir, sizeof(rd_dir), root, "dev/attestation");
    read_all(rd_dir, "user_report_data", &written);
    assert_int_equal(written.len, 64);
    assert_memory_equal(written.data, rd, sizeof(rd));
    for (size_t i = sizeof(rd); i < 64; i++)
        assert_int_equal(written.data[i], 0);
    /* a quote for other report data (stale, or someone else's) is refused */
    rd[0] ^= 1;
    mr_buf_reset(&out);
    MR_ASSERT_FAIL(mr_issuer_issue(is, rd, sizeof(rd), &out, &tee), MR_ERR_ATTESTATION,
                   "does not carry the requested report data");
    assert_int_equal(out.len, 0);
    rd[0] ^= 1;
    mr_issuer_free(is);

    /* auto finds it */
    MR_ASSERT_OK(open_mode("auto", root, &is));
    assert_int_equal(mr_issuer_get_kind(is), MR_ISSUER_GRAMINE);
    mr_issuer_free(is);

    /* attestation type "none" is refused */
    put_str(rd_dir, "attestation_type", "none");
    MR_ASSERT_OK(open_mode("gramine", root, &is));
    mr_buf_reset(&out);
    MR_ASSERT_FAIL(mr_issuer_issue(is, rd, sizeof(rd), &out, &tee), MR_ERR_USAGE, "dcap");
    assert_int_equal(out.len, 0);
    assert_int_equal(tee, MR_TEE_NONE);
    /* garbage instead of a quote */
    put_str(rd_dir, "attestation_type", "dcap");
    put_str(rd_dir, "quote", "not a quote");
    MR_ASSERT_FAIL(mr_issuer_issue(is, rd, sizeof(rd), &out, &tee), MR_ERR_ATTESTATION,
                   "not a quote");
    /* missing device */
    char q_path[4096];
    join(q_path, sizeof(q_path), rd_dir, "user_report_data");
    assert_int_equal(unlink(q_path), 0);
    MR_ASSERT_FAIL(mr_issuer_issue(is, rd, sizeof(rd), &out, &tee), MR_ERR_IO,
                   "user_report_data");
    mr_issuer_free(is);

    /* a real quote captured from a Gramine enclave passes through unchanged */
    char vec[4096];
    mr_test_vector_path(vec, sizeof(vec), "sgx-v3-gramine-tlsn");
    {
        mr_buf_reset(&quote);
        read_all(vec, "quote.bin", &quote);
        put_str(rd_dir, "user_report_data", "");
        put_file(rd_dir, "quote", quote.data, quote.len);
        MR_ASSERT_OK(open_mode("gramine", root, &is));
        mr_buf_reset(&out);
        MR_ASSERT_FAIL(mr_issuer_issue(is, rd, sizeof(rd), &out, &tee), MR_ERR_ATTESTATION,
                       "report data");
        /* that enclave's report data: a 33-byte public key, then zeros */
        MR_ASSERT_OK(mr_issuer_issue(is, quote.data + 368, 64, &out, &tee));
        assert_int_equal(out.len, quote.len + 16);
        assert_memory_equal(out.data + 16, quote.data, quote.len);
        assert_int_equal(le16(out.data + 16 + 304), 7); /* ISVPRODID of that enclave */
        mr_issuer_free(is);
    }

    mr_buf_free(&quote);
    mr_buf_free(&out);
    mr_buf_free(&written);
    rm_rf(root);
}

/* The kernel's part of configfs-tsm, played with canned files. */
typedef struct fake_tsm {
    const char *provider;
    const uint8_t *blob;
    size_t blob_len;
    int gen_step; /* generation increment the "kernel" applies for the inblob write */
    char entry[4096];
    mr_buf inblob;
} fake_tsm;

static void tsm_hook(const char *entry, int stage, void *arg)
{
    fake_tsm *f = arg;
    char gen[32];
    if (stage == 0) {
        snprintf(f->entry, sizeof(f->entry), "%s", entry);
        put_str(entry, "generation", "41\n");
        put_str(entry, "provider", f->provider);
        put_str(entry, "inblob", "");
        put_file(entry, "outblob", f->blob, f->blob_len);
    } else {
        snprintf(gen, sizeof(gen), "%d\n", 41 + f->gen_step);
        put_str(entry, "generation", gen);
        mr_buf_reset(&f->inblob);
        read_all(entry, "inblob", &f->inblob);
    }
}

static void tsm_hook_aux(const char *entry, int stage, void *arg)
{
    tsm_hook(entry, stage, arg);
    if (stage == 0)
        put_str(entry, "auxblob", "certs");
}

static void tsm_rd(uint8_t rd[64])
{
    for (size_t i = 0; i < 64; i++)
        rd[i] = (uint8_t)(0xc0 ^ i);
}

static mr_result tsm_issue(const char *root, fake_tsm *f, mr_buf *out, mr_tee_type *tee)
{
    mr_issuer *is = NULL;
    uint8_t rd[64];
    tsm_rd(rd);
    mr_issuer_opts o = {.mode = "tsm", .root = root, .tsm_hook = tsm_hook, .tsm_hook_arg = f};
    MR_ASSERT_OK(mr_issuer_open(&o, &is));
    mr_result r = mr_issuer_issue(is, rd, sizeof(rd), out, tee);
    if (mr_ok(r)) {
        assert_int_equal(f->inblob.len, 64);
        assert_memory_equal(f->inblob.data, rd, 64);
    }
    mr_issuer_free(is);
    return r;
}

static void test_issuer_tsm(void **state)
{
    (void)state;
    char root[64];
    uint8_t td[1200] = {0};
    uint8_t snp[1184] = {0};
    mr_buf out;
    mr_tee_type tee;
    mr_buf_init(&out, 0, 0);
    td[0] = 4;    /* version 4 */
    td[2] = 2;    /* ECDSA P-256 */
    td[4] = 0x81; /* TDX */
    td[1199] = 0x5a;
    snp[0] = 2; /* SNP report version 2 */
    uint8_t rd[64];
    tsm_rd(rd);
    memcpy(td + 568, rd, 64);   /* TD report REPORTDATA (v4) */
    memcpy(snp + 0x50, rd, 64); /* SNP REPORT_DATA */
    make_tmp(root);
    mkdirs(root, "sys/kernel/config/tsm/report");

    fake_tsm f = {.provider = "tdx_guest\n", .blob = td, .blob_len = sizeof(td), .gen_step = 1};
    mr_buf_init(&f.inblob, 0, 0);
    MR_ASSERT_OK(tsm_issue(root, &f, &out, &tee));
    assert_int_equal(tee, MR_TEE_TDX);
    assert_int_equal(out.len, sizeof(td));
    assert_memory_equal(out.data, td, sizeof(td)); /* raw, no OE header */
    assert_non_null(strstr(f.entry, "/sys/kernel/config/tsm/report/marblerun-"));

    /* another writer bumped the generation in between */
    f.gen_step = 2;
    mr_buf_reset(&out);
    MR_ASSERT_FAIL(tsm_issue(root, &f, &out, &tee), MR_ERR_ATTESTATION, "generation");
    assert_int_equal(out.len, 0);
    assert_int_equal(tee, MR_TEE_NONE);

    /* SEV-SNP report */
    fake_tsm g = {.provider = "sev_guest", .blob = snp, .blob_len = sizeof(snp), .gen_step = 1};
    mr_buf_init(&g.inblob, 0, 0);
    MR_ASSERT_OK(tsm_issue(root, &g, &out, &tee));
    assert_int_equal(tee, MR_TEE_SNP);
    assert_int_equal(out.len, sizeof(snp));

    /* the SNP certificate table comes along when the kernel has one */
    char entry_aux[4096];
    mr_buf aux;
    mr_buf_init(&aux, 0, 0);
    mr_issuer *sn = NULL;
    mr_issuer_opts so = {.mode = "tsm", .root = root, .tsm_hook = tsm_hook_aux, .tsm_hook_arg = &g};
    MR_ASSERT_OK(mr_issuer_open(&so, &sn));
    mr_buf_reset(&out);
    MR_ASSERT_OK(mr_issuer_issue_ex(sn, rd, sizeof(rd), &out, &aux, &tee));
    assert_int_equal(tee, MR_TEE_SNP);
    assert_int_equal(aux.len, 5);
    assert_memory_equal(aux.data, "certs", 5);
    snprintf(entry_aux, sizeof(entry_aux), "%s", g.entry);
    assert_non_null(strstr(entry_aux, "marblerun-"));
    mr_issuer_free(sn);
    mr_buf_free(&aux);

    /* evidence for other report data */
    mr_buf_reset(&out);
    snp[0x50] ^= 1;
    MR_ASSERT_FAIL(tsm_issue(root, &g, &out, &tee), MR_ERR_ATTESTATION, "report data");
    snp[0x50] ^= 1;
    f.gen_step = 1;
    td[600] ^= 1;
    MR_ASSERT_FAIL(tsm_issue(root, &f, &out, &tee), MR_ERR_ATTESTATION, "report data");
    td[600] ^= 1;
    mr_buf_reset(&out);
    MR_ASSERT_OK(tsm_issue(root, &f, &out, &tee));

    /* a short SNP report, an SGX quote from tdx_guest, an unknown provider */
    g.blob_len = 100;
    mr_buf_reset(&out);
    MR_ASSERT_FAIL(tsm_issue(root, &g, &out, &tee), MR_ERR_ATTESTATION, "not an SNP report");
    td[4] = 0;
    f.gen_step = 1;
    MR_ASSERT_FAIL(tsm_issue(root, &f, &out, &tee), MR_ERR_ATTESTATION, "wrong TEE");
    fake_tsm h = {.provider = "arm-cca-guest", .blob = td, .blob_len = sizeof(td), .gen_step = 1};
    mr_buf_init(&h.inblob, 0, 0);
    MR_ASSERT_FAIL(tsm_issue(root, &h, &out, &tee), MR_ERR_ATTESTATION, "unsupported provider");

    /* auto finds configfs-tsm */
    mr_issuer *is = NULL;
    MR_ASSERT_OK(open_mode("auto", root, &is));
    assert_int_equal(mr_issuer_get_kind(is), MR_ISSUER_TSM);
    mr_issuer_free(is);

    mr_buf_free(&f.inblob);
    mr_buf_free(&g.inblob);
    mr_buf_free(&h.inblob);
    mr_buf_free(&out);
    rm_rf(root);
}

static void test_issuer_occlum_and_auto(void **state)
{
    (void)state;
    char root[64];
    mr_issuer *is = NULL;
    mr_buf out;
    mr_tee_type tee;
    mr_buf_init(&out, 0, 0);
    make_tmp(root);
    unsetenv("OE_SIMULATION");

    /* nothing there: auto refuses instead of falling back to simulation */
    MR_ASSERT_FAIL(open_mode("auto", root, &is), MR_ERR_USAGE, "refusing to run without");
    assert_null(is);
    MR_ASSERT_FAIL(open_mode(NULL, root, &is), MR_ERR_USAGE, "OE_SIMULATION=1");
    /* OE_SIMULATION=1 asks for simulation explicitly */
    setenv("OE_SIMULATION", "1", 1);
    MR_ASSERT_OK(open_mode("auto", root, &is));
    assert_int_equal(mr_issuer_get_kind(is), MR_ISSUER_SIMULATION);
    mr_issuer_free(is);
    unsetenv("OE_SIMULATION");

    /* an SGX host's /dev/sgx directory is not Occlum */
    mkdirs(root, "dev/sgx");
    MR_ASSERT_FAIL(open_mode("auto", root, &is), MR_ERR_USAGE, "refusing");
    rm_rf(root);
    make_tmp(root);
    mkdirs(root, "dev");
    put_str(root, "dev/sgx", "");
    MR_ASSERT_OK(open_mode("auto", root, &is));
    assert_int_equal(mr_issuer_get_kind(is), MR_ISSUER_OCCLUM);
    /* a plain file does not answer the ioctls */
    MR_ASSERT_FAIL(mr_issuer_issue(is, NULL, 0, &out, &tee), MR_ERR_IO,
                   "SGXIOC_GET_DCAP_QUOTE_SIZE");
    mr_issuer_free(is);
    MR_ASSERT_OK(open_mode("occlum", "/nonexistent-root", &is));
    MR_ASSERT_FAIL(mr_issuer_issue(is, NULL, 0, &out, &tee), MR_ERR_IO, "cannot open");
    mr_issuer_free(is);
    mr_buf_free(&out);
    rm_rf(root);
}

static void test_issuer_softsgx(void **state)
{
    (void)state;
    mr_issuer *is = NULL;
    mr_buf out;
    mr_tee_type tee;
    mr_buf_init(&out, 0, 0);
    unsetenv("EDG_SOFTSGX_DIR");
    MR_ASSERT_FAIL(open_mode("softsgx", NULL, &is), MR_ERR_USAGE, "EDG_SOFTSGX_DIR");
    setenv("EDG_SOFTSGX_DIR", g_dir, 1);
    setenv("EDG_SOFTSGX_ISVPRODID", "9", 1);
    setenv("EDG_ATTESTATION", "softsgx", 1);
    MR_ASSERT_OK(mr_issuer_open(NULL, &is));
    assert_int_equal(mr_issuer_get_kind(is), MR_ISSUER_SOFTSGX);
    MR_ASSERT_OK(mr_issuer_issue(is, (const uint8_t *)"rd", 2, &out, &tee));
    assert_int_equal(tee, MR_TEE_SGX);
    assert_int_equal(le32(out.data), 1);
    assert_int_equal(le16(out.data + 16), 3);
    assert_int_equal(le16(out.data + 16 + 304), 9);
    assert_memory_equal(out.data + 16 + 368, "rd\0\0", 4);
    mr_issuer_free(is);
    setenv("EDG_SOFTSGX_ISVPRODID", "x", 1);
    MR_ASSERT_FAIL(mr_issuer_open(NULL, &is), MR_ERR_USAGE, "EDG_SOFTSGX_ISVPRODID");
    unsetenv("EDG_SOFTSGX_ISVPRODID");
    setenv("EDG_SOFTSGX_DIR", "/nonexistent/softsgx", 1);
    MR_ASSERT_FAIL(mr_issuer_open(NULL, &is), MR_ERR_IO, "/nonexistent/softsgx");
    unsetenv("EDG_SOFTSGX_DIR");
    unsetenv("EDG_ATTESTATION");
    mr_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_files),
        cmocka_unit_test(test_init_bad_args),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_quote_layout),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_quote_alloc_failures),
        cmocka_unit_test(test_quote_threads),
        cmocka_unit_test(test_identity_from_env),
        cmocka_unit_test(test_round_trip_platform_statuses),
        cmocka_unit_test(test_round_trip_qe_statuses),
        cmocka_unit_test(test_round_trip_platform_ca),
        cmocka_unit_test(test_round_trip_rejections),
        cmocka_unit_test(test_round_trip_sgx_v4_v5),
        cmocka_unit_test(test_issuer_simulation),
        cmocka_unit_test(test_issuer_gramine),
        cmocka_unit_test(test_issuer_tsm),
        cmocka_unit_test(test_issuer_occlum_and_auto),
        cmocka_unit_test(test_issuer_softsgx),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
