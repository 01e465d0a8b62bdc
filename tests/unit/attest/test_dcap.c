/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP verifier tests: every SGX/TDX vector of tests/data/attestation against its
 * expected.json (at the fixed time recorded there), mutations of every signed region, the
 * collateral, the time window, the OE header form, policy and collateral sources.
 */
#include "mr_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attest/collateral.h"
#include "attest/collateral_int.h"
#include "attest/config_attest.h"
#include "attest/dcap.h"
#include "attest/dcap_int.h"
#include "attest/ossl.h"
#include "attest/policy.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "test_dcap.h"

void td_read_vector(const char *rel, mr_buf *b)
{
    char path[1024];
    FILE *f = NULL;
    uint8_t chunk[4096];
    size_t n = 0;

    f = fopen(mr_test_vector_path(path, sizeof(path), rel), "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    mr_buf_init(b, 0, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        MR_ASSERT_OK(mr_buf_append(b, chunk, n));
    fclose(f);
}

time_t td_time(const char *s)
{
    time_t t = 0;
    MR_ASSERT_OK(mr_ossl_rfc3339(s, strlen(s), &t));
    return t;
}

static mr_dcap_collateral *load_collateral(const char *dir)
{
    char rel[256];
    mr_buf b;
    mr_dcap_collateral *c = NULL;

    snprintf(rel, sizeof(rel), "%s/collateral.json", dir);
    td_read_vector(rel, &b);
    MR_ASSERT_OK(mr_dcap_collateral_parse_json((const char *)b.data, b.len, &c));
    mr_buf_free(&b);
    return c;
}

static json_t *load_json(const char *rel)
{
    mr_buf b;
    json_error_t e;
    json_t *j = NULL;

    td_read_vector(rel, &b);
    j = json_loadb((const char *)b.data, b.len, 0, &e);
    mr_buf_free(&b);
    assert_non_null(j);
    return j;
}

static void expect_hex(json_t *obj, const char *key, const uint8_t *p, size_t n)
{
    json_t *v = json_object_get(obj, key);
    mr_buf h;

    if (v == NULL)
        return;
    mr_buf_init(&h, 0, 0);
    MR_ASSERT_OK(mr_hex_encode_buf(p, n, &h));
    MR_ASSERT_OK(mr_buf_nul_terminate(&h));
    if (strcmp(json_string_value(v), (const char *)h.data) != 0)
        fail_msg("%s: got %s, want %s", key, (const char *)h.data, json_string_value(v));
    mr_buf_free(&h);
}

static void expect_u64le_hex(json_t *obj, const char *key, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    expect_hex(obj, key, b, 8);
}

static void expect_int(json_t *obj, const char *key, long long v)
{
    json_t *j = json_object_get(obj, key);
    if (j == NULL)
        return;
    if (json_integer_value(j) != v)
        fail_msg("%s: got %lld, want %lld", key, v, (long long)json_integer_value(j));
}

static void expect_time(json_t *obj, const char *key, time_t t)
{
    json_t *j = json_object_get(obj, key);
    char buf[32];
    if (j == NULL)
        return;
    mr_ossl_fmt_time(t, buf, sizeof(buf));
    if (strcmp(buf, json_string_value(j)) != 0)
        fail_msg("%s: got %s, want %s", key, buf, json_string_value(j));
}

static void expect_status(json_t *obj, const char *key, mr_tcb_status s)
{
    json_t *j = json_object_get(obj, key);
    if (j == NULL)
        return;
    if (strcmp(mr_tcb_status_name(s), json_string_value(j)) != 0)
        fail_msg("%s: got %s, want %s", key, mr_tcb_status_name(s), json_string_value(j));
}

/* Report fields that the parser alone yields. */
static void check_report(json_t *exp, const mr_dcap_quote *q, const mr_attest_claims *c)
{
    json_t *r = json_object_get(exp, "report");

    expect_int(exp, "version", q->version);
    expect_int(exp, "trailing_bytes_after_sig_data", (long long)q->trailing);
    expect_int(exp, "cert_type", q->cert_type);
    assert_true(json_is_boolean(json_object_get(r, "debug")));
    assert_int_equal(json_is_true(json_object_get(r, "debug")), c->debug);
    expect_hex(r, "reportdata", c->report_data, 64);
    if (c->tee == MR_TEE_SGX) {
        const mr_attest_sgx_claims *s = &c->u.sgx;
        expect_hex(r, "mrenclave", s->mrenclave, 32);
        expect_hex(r, "mrsigner", s->mrsigner, 32);
        expect_int(r, "isvprodid", s->isvprodid);
        expect_int(r, "isvsvn", s->isvsvn);
        expect_hex(r, "attributes", s->attributes, 16);
        expect_int(r, "miscselect", s->miscselect);
        expect_hex(r, "cpusvn", s->cpusvn, 16);
        expect_int(r, "configsvn", s->configsvn);
        expect_hex(r, "isvextprodid", s->isvextprodid, 16);
        expect_hex(r, "isvfamilyid", s->isvfamilyid, 16);
        expect_hex(r, "configid", s->configid, 64);
    } else {
        const mr_attest_tdx_claims *t = &c->u.tdx;
        assert_int_equal(c->tee, MR_TEE_TDX);
        expect_hex(r, "tee_tcb_svn", t->tee_tcb_svn, 16);
        expect_hex(r, "mrseam", t->mrseam, 48);
        expect_hex(r, "mrsignerseam", t->mrsignerseam, 48);
        expect_u64le_hex(r, "seam_attributes", t->seam_attributes);
        expect_u64le_hex(r, "td_attributes", t->td_attributes);
        expect_u64le_hex(r, "xfam", t->xfam);
        expect_hex(r, "mrtd", t->mrtd, 48);
        expect_hex(r, "mrconfigid", t->mrconfigid, 48);
        expect_hex(r, "mrowner", t->mrowner, 48);
        expect_hex(r, "mrownerconfig", t->mrownerconfig, 48);
        expect_hex(r, "rtmr0", t->rtmr[0], 48);
        expect_hex(r, "rtmr1", t->rtmr[1], 48);
        expect_hex(r, "rtmr2", t->rtmr[2], 48);
        expect_hex(r, "rtmr3", t->rtmr[3], 48);
        assert_int_equal(t->has_td15, json_object_get(r, "tee_tcb_svn2") != NULL);
        if (t->has_td15) {
            expect_hex(r, "tee_tcb_svn2", t->tee_tcb_svn2, 16);
            expect_hex(r, "mrservicetd", t->mrservicetd, 48);
        }
    }
}

typedef struct vec {
    const char *dir;
    const char *quote;
} vec;

static const vec vectors[] = {
    {"sgx-v3-phala", "quote.bin"},
    {"sgx-v3-fortanix", "quote.bin"},
    {"sgx-v3-fortanix", "quote_qe_outofdate.bin"},
    {"sgx-v3-gramine-tlsn", "quote.bin"},
    {"sgx-v3-occlum-trustee", "quote.bin"},
    {"tdx-v4-phala", "quote.bin"},
    {"tdx-v4-trustee", "quote.bin"},
    {"tdx-v4-gotdxguest", "quote.bin"},
    {"tdx-v5-phala-no-tcb-match", "quote.bin"},
};

static void run_vector(const vec *v)
{
    char rel[256];
    json_t *all = NULL, *exp = NULL, *col_exp = NULL, *res = NULL;
    mr_buf quote;
    mr_dcap_quote q;
    mr_attest_claims parsed, c;
    mr_attest_options opts;
    mr_dcap_collateral *col = NULL;

    snprintf(rel, sizeof(rel), "%s/expected.json", v->dir);
    all = load_json(rel);
    exp = json_object_get(all, v->quote);
    assert_non_null(exp);
    col_exp = json_object_get(exp, "collateral");
    res = json_object_get(exp, "result");
    snprintf(rel, sizeof(rel), "%s/%s", v->dir, v->quote);
    td_read_vector(rel, &quote);

    /* parse-only fields */
    MR_ASSERT_OK(mr_dcap_parse(quote.data, quote.len, &q));
    MR_ASSERT_OK(mr_dcap_quote_claims(&q, &parsed));
    check_report(exp, &q, &parsed);

    memset(&opts, 0, sizeof(opts));
    if (json_is_object(col_exp)) {
        col = load_collateral(v->dir);
        opts.collateral = col;
        opts.verify_time = td_time(json_string_value(json_object_get(col_exp, "verify_at")));
    } else {
        opts.flags = MR_ATTEST_ALLOW_NO_COLLATERAL;
        opts.verify_time = td_time(json_string_value(json_object_get(res, "verify_at")));
    }

    if (json_is_false(json_object_get(res, "crypto_and_collateral_ok"))) {
        /* the must-be-rejected vectors: every signature verifies, no TCB level matches */
        MR_ASSERT_FAIL(mr_dcap_verify(quote.data, quote.len, &opts, &c), MR_ERR_ATTESTATION,
                       "TCB level: TCB not supported");
    } else {
        json_t *pck = json_object_get(exp, "pck");
        json_t *adv = json_object_get(res, "advisories");
        MR_ASSERT_OK(mr_dcap_verify(quote.data, quote.len, &opts, &c));
        check_report(exp, &q, &c);
        assert_memory_equal(&c.u, &parsed.u, sizeof(c.u));
        expect_hex(pck, "fmspc", c.tcb.fmspc, 6);
        expect_hex(pck, "pceid", c.tcb.pceid, 2);
        expect_int(pck, "pcesvn", c.tcb.pcesvn);
        expect_hex(pck, "cpusvn", c.tcb.pck_cpusvn, 16);
        expect_int(json_object_get(exp, "qe"), "isvsvn", c.tcb.qe_isvsvn);
        if (col != NULL) {
            assert_true(c.tcb.evaluated);
            expect_status(res, "status", c.tcb.status);
            expect_status(res, "platform_status", c.tcb.platform_status);
            expect_status(res, "qe_status", c.tcb.qe_status);
            expect_status(res, "tdx_module", c.tcb.module_status);
            expect_time(res, "tcb_date", c.tcb.tcb_date);
            expect_time(col_exp, "window_not_before", c.tcb.latest_issue_date);
            expect_time(col_exp, "window_not_after", c.tcb.earliest_next_update);
            expect_int(col_exp, "tcb_eval_data_number", c.tcb.tcb_eval_data_number);
            assert_true(json_is_array(adv));
            assert_int_equal(c.tcb.advisory_count, json_array_size(adv));
            for (size_t i = 0; i < json_array_size(adv); i++)
                assert_string_equal(c.tcb.advisories[i],
                                    json_string_value(json_array_get(adv, i)));
        } else {
            assert_false(c.tcb.evaluated);
            assert_int_equal(c.tcb.status, MR_TCB_UNKNOWN);
            /* without collateral and without the opt-in flag, verification refuses */
            opts.flags = 0;
            MR_ASSERT_FAIL(mr_dcap_verify(quote.data, quote.len, &opts, &c), MR_ERR_ATTESTATION,
                           "collateral");
        }
    }
    mr_dcap_collateral_free(col);
    mr_buf_free(&quote);
    json_decref(all);
}

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < MR_ARRAY_LEN(vectors); i++) {
        print_message("  vector %s/%s\n", vectors[i].dir, vectors[i].quote);
        run_vector(&vectors[i]);
    }
}

/* ---- verification helpers for the mutation tests ---- */

typedef struct fixture {
    mr_buf quote;
    mr_dcap_collateral *col;
    mr_attest_options opts;
} fixture;

static void fixture_load(fixture *f, const char *dir, const char *when)
{
    char rel[256];
    memset(f, 0, sizeof(*f));
    snprintf(rel, sizeof(rel), "%s/quote.bin", dir);
    td_read_vector(rel, &f->quote);
    f->col = load_collateral(dir);
    f->opts.collateral = f->col;
    f->opts.verify_time = td_time(when);
}

static void fixture_free(fixture *f)
{
    mr_buf_free(&f->quote);
    mr_dcap_collateral_free(f->col);
}

typedef struct mutation {
    size_t off;        /* offset in the quote; SIZE_MAX-relative when from_cert */
    bool in_certs;     /* offset relative to the start of the PCK chain */
    const char *want;  /* substring of the error */
} mutation;

static void run_mutations(const char *dir, const char *when, const mutation *m, size_t n)
{
    fixture f;
    mr_dcap_quote q;
    mr_attest_claims c;

    fixture_load(&f, dir, when);
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    MR_ASSERT_OK(mr_dcap_parse(f.quote.data, f.quote.len, &q));
    size_t cert_off = (size_t)(q.cert_data.ptr - f.quote.data);
    for (size_t i = 0; i < n; i++) {
        size_t off = m[i].in_certs ? cert_off + m[i].off : m[i].off;
        assert_true(off < f.quote.len);
        f.quote.data[off] ^= 0x01;
        mr_error_clear();
        if (mr_ok(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c)))
            fail_msg("%s: flipping byte %zu%s was not detected", dir, m[i].off,
                     m[i].in_certs ? " of the PCK chain" : "");
        assert_int_equal(mr_error_get()->cat, MR_ERR_ATTESTATION);
        if (m[i].want && strstr(mr_error_get()->msg, m[i].want) == NULL)
            fail_msg("%s: byte %zu: \"%s\" lacks \"%s\"", dir, off, mr_error_get()->msg,
                     m[i].want);
        f.quote.data[off] ^= 0x01;
    }
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    fixture_free(&f);
}

static void test_mutations_sgx_v3(void **state)
{
    static const mutation m[] = {
        {0, false, "quote parse"},              /* version */
        {2, false, "quote parse"},              /* attestation key type */
        {8, false, "quote signature"},          /* QE SVN */
        {10, false, "quote signature"},         /* PCE SVN */
        {12, false, "quote parse"},             /* QE vendor ID */
        {30, false, "quote signature"},         /* user data */
        {48, false, "quote signature"},         /* CPUSVN */
        {96, false, "quote signature"},         /* ATTRIBUTES */
        {112, false, "quote signature"},        /* MRENCLAVE */
        {176, false, "quote signature"},        /* MRSIGNER */
        {304, false, "quote signature"},        /* ISVPRODID */
        {306, false, "quote signature"},        /* ISVSVN */
        {368, false, "quote signature"},        /* REPORTDATA */
        {431, false, "quote signature"},        /* last body byte */
        {432, false, "quote parse"},            /* signature data length */
        {436, false, "quote signature"},        /* quote signature r */
        {499, false, "quote signature"},        /* quote signature s */
        {500, false, "attestation key binding"}, /* attestation key */
        {563, false, "attestation key binding"},
        {564, false, "QE report signature"},    /* QE report CPUSVN */
        {564 + 128, false, "QE report signature"}, /* QE MRSIGNER */
        {564 + 320, false, "QE report signature"}, /* QE report data */
        {947, false, "QE report signature"},
        {948, false, "QE report signature"},    /* QE report signature */
        {1011, false, "QE report signature"},
        {1012, false, "quote parse"},           /* auth data size */
        {1014, false, "attestation key binding"}, /* auth data */
        {1045, false, "attestation key binding"},
        {1046, false, "quote parse"},           /* certification data type */
        {5, true, "PCK chain"},                 /* PEM header */
        {200, true, NULL},                      /* leaf certificate */
        {700, true, NULL},
        {900, true, NULL},                      /* leaf signature region */
        {1300, true, NULL},                     /* intermediate */
        {1900, true, NULL},
    };
    (void)state;
    run_mutations("sgx-v3-phala", "2025-07-04T10:28:44Z", m, MR_ARRAY_LEN(m));
}

/* The QE report signature memo (issue 17): a second verification of a platform's quote takes
 * the verified QE report signature from the memo, a flipped signature or report byte is still
 * verified (and refused), and clearing the caches clears the memo. */
static void test_qe_memo(void **state)
{
    fixture f;
    mr_dcap_quote q;
    mr_attest_claims c1, c2;
    (void)state;

    mr_dcap_cache_clear();
    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    unsigned long h0 = mr_dcap_qe_memo_hits_();
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c1));
    assert_int_equal(mr_dcap_qe_memo_hits_(), h0); /* first time: verified */
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c2));
    assert_int_equal(mr_dcap_qe_memo_hits_(), h0 + 1); /* second time: remembered */
    assert_int_equal(c1.tcb.status, c2.tcb.status);
    assert_int_equal(c1.tcb.qe_isvsvn, c2.tcb.qe_isvsvn);
    MR_ASSERT_OK(mr_dcap_parse(f.quote.data, f.quote.len, &q));
    size_t sig_off = (size_t)(q.qe_report_sig.ptr - f.quote.data);
    size_t rep_off = (size_t)(q.qe_report.ptr - f.quote.data);
    const size_t offs[] = {sig_off, sig_off + 63, rep_off + 10};
    for (size_t i = 0; i < MR_ARRAY_LEN(offs); i++) {
        f.quote.data[offs[i]] ^= 0x80;
        MR_ASSERT_FAIL(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c2),
                       MR_ERR_ATTESTATION, "QE report signature");
        f.quote.data[offs[i]] ^= 0x80;
    }
    assert_int_equal(mr_dcap_qe_memo_hits_(), h0 + 1); /* no false hit */
    mr_dcap_cache_clear();
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c2));
    assert_int_equal(mr_dcap_qe_memo_hits_(), h0 + 1); /* cleared: verified again */
    fixture_free(&f);
    mr_dcap_cache_clear();
}

/* The PCK chain cache (issue 17) finds a chain by its bytes: a chain one byte away from a
 * cached one is verified afresh (and refused), and the cached one still verifies. */
static void test_pck_cache_bytes(void **state)
{
    fixture f;
    mr_dcap_quote q;
    mr_attest_claims c;
    (void)state;

    mr_dcap_cache_clear();
    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c)); /* now cached */
    MR_ASSERT_OK(mr_dcap_parse(f.quote.data, f.quote.len, &q));
    size_t off = (size_t)(q.cert_data.ptr - f.quote.data);
    /* inside the leaf's PEM body: its base64 text, a letter changed to another letter */
    size_t at = off + 300;
    uint8_t was = f.quote.data[at];
    f.quote.data[at] = (uint8_t)(was == 'A' ? 'B' : 'A');
    MR_ASSERT_FAIL(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c), MR_ERR_ATTESTATION,
                   "PCK");
    f.quote.data[at] = was;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    fixture_free(&f);
    mr_dcap_cache_clear();
}

static void test_mutations_tdx_v4(void **state)
{
    static const mutation m[] = {
        {4, false, "quote parse"},              /* TEE type */
        {30, false, "quote signature"},
        {48, false, NULL},                      /* TEE_TCB_SVN (module identity / signature) */
        {64, false, "quote signature"},         /* MRSEAM */
        {168, false, "quote signature"},        /* TDATTRIBUTES */
        {184, false, "quote signature"},        /* MRTD */
        {376, false, "quote signature"},        /* RTMR0 */
        {568, false, "quote signature"},        /* REPORTDATA */
        {631, false, "quote signature"},
        {636, false, "quote signature"},
        {700, false, "attestation key binding"},
        {764, false, "quote parse"},            /* outer certification type 6 */
        {770, false, "QE report signature"},
        {1154, false, "QE report signature"},
        {1220, false, "attestation key binding"},
        {300, true, NULL},
        {1500, true, NULL},
    };
    (void)state;
    run_mutations("tdx-v4-phala", "2025-07-04T10:16:31Z", m, MR_ARRAY_LEN(m));
}

static void test_trailing_bytes_and_oe_header(void **state)
{
    fixture f;
    mr_attest_claims c;
    mr_buf oe;
    (void)state;

    fixture_load(&f, "tdx-v4-phala", "2025-07-04T10:16:31Z");
    /* the 70 trailing bytes are ignored: changing them changes nothing */
    f.quote.data[f.quote.len - 1] ^= 0xff;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_int_equal(c.tcb.status, MR_TCB_UP_TO_DATE);
    fixture_free(&f);

    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    mr_buf_init(&oe, 0, 0);
    MR_ASSERT_OK(mr_buf_append_u32le(&oe, 1));
    MR_ASSERT_OK(mr_buf_append_u32le(&oe, 2));
    MR_ASSERT_OK(mr_buf_append_u64le(&oe, f.quote.len));
    MR_ASSERT_OK(mr_buf_append(&oe, f.quote.data, f.quote.len));
    MR_ASSERT_OK(mr_dcap_verify(oe.data, oe.len, &f.opts, &c));
    assert_int_equal(c.tcb.status, MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
    oe.data[8] ^= 1; /* size mismatch */
    MR_ASSERT_FAIL(mr_dcap_verify(oe.data, oe.len, &f.opts, &c), MR_ERR_ATTESTATION,
                   "OE report size");
    oe.data[8] ^= 1;
    oe.data[4] = 3; /* not an SGX remote report */
    MR_ASSERT_FAIL(mr_dcap_verify(oe.data, oe.len, &f.opts, &c), MR_ERR_ATTESTATION,
                   "OE report type");
    mr_buf_free(&oe);
    fixture_free(&f);
}

static void test_truncation(void **state)
{
    fixture f;
    mr_attest_claims c;
    mr_dcap_quote q;
    (void)state;

    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    for (size_t n = 0; n < f.quote.len; n += (n < 1100 ? 1 : 61)) {
        mr_error_clear();
        if (mr_ok(mr_dcap_parse(f.quote.data, n, &q))) {
            /* a cut inside the PEM chain can still parse; it must not verify */
            assert_false(mr_ok(mr_dcap_verify(f.quote.data, n, &f.opts, &c)));
        }
        assert_int_equal(mr_error_get()->cat, MR_ERR_ATTESTATION);
    }
    fixture_free(&f);
}

static void test_time_window(void **state)
{
    fixture f;
    mr_attest_claims c;
    (void)state;

    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    /* window 2025-06-19T10:56:11Z .. 2025-07-19T10:01:18Z */
    f.opts.verify_time = td_time("2025-06-19T10:56:11Z");
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    f.opts.verify_time = td_time("2025-07-19T10:01:18Z");
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    f.opts.verify_time = td_time("2025-06-19T10:56:10Z");
    MR_ASSERT_FAIL(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c), MR_ERR_ATTESTATION,
                   "TCB Info is not valid at");
    f.opts.verify_time = td_time("2025-07-19T10:01:19Z");
    MR_ASSERT_FAIL(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c), MR_ERR_ATTESTATION,
                   "QE Identity is not valid at");
    f.opts.flags = MR_ATTEST_ALLOW_EXPIRED_COLLATERAL;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    f.opts.flags = 0;
    /* far outside: the PCK certificate itself is not yet valid */
    f.opts.verify_time = td_time("2020-01-01T00:00:00Z");
    MR_ASSERT_FAIL(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c), MR_ERR_ATTESTATION,
                   "PCK chain");
    f.opts.verify_time = 0; /* now: the collateral has long expired */
    MR_ASSERT_FAIL(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c), MR_ERR_ATTESTATION,
                   "not valid at");
    fixture_free(&f);
}

/* ---- collateral mutations ---- */

typedef enum { MUT_TEXT, MUT_HEX, MUT_PEM, MUT_NULL } mut_kind;

/* Returns a modified copy of the collateral file with field `key` changed at `pos`
 * (negative = from the end). */
static char *mutate_collateral(const char *dir, const char *key, long pos, mut_kind kind)
{
    char rel[256];
    json_t *j = NULL;
    char *s = NULL, *out = NULL;
    size_t len = 0;

    snprintf(rel, sizeof(rel), "%s/collateral.json", dir);
    j = load_json(rel);
    if (kind == MUT_NULL) {
        assert_int_equal(json_object_set_new(j, key, json_null()), 0);
    } else {
        json_t *v = json_object_get(j, key);
        assert_true(json_is_string(v));
        len = json_string_length(v);
        s = mr_alloc(len + 1);
        memcpy(s, json_string_value(v), len + 1);
        size_t p = pos < 0 ? len - (size_t)(-pos) : (size_t)pos;
        assert_true(p < len);
        if (kind == MUT_HEX)
            s[p] = s[p] == '0' ? '1' : '0';
        else if (kind == MUT_TEXT)
            s[p] = s[p] == '1' ? '2' : '1';
        else
            s[p] = s[p] == 'A' ? 'B' : 'A';
        assert_int_equal(json_object_set_new(j, key, json_stringn(s, len)), 0);
        mr_free(s);
    }
    out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return out;
}

static void expect_collateral_rejected(const char *dir, const char *when, const char *key,
                                       long pos, mut_kind kind, const char *want)
{
    fixture f;
    mr_attest_claims c;
    mr_dcap_collateral *col = NULL;
    char *text = mutate_collateral(dir, key, pos, kind);

    fixture_load(&f, dir, when);
    mr_error_clear();
    if (mr_ok(mr_dcap_collateral_parse_json(text, strlen(text), &col))) {
        f.opts.collateral = col;
        mr_error_clear();
        if (mr_ok(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c)))
            fail_msg("collateral %s mutated at %ld was accepted", key, pos);
    }
    assert_int_equal(mr_error_get()->cat, MR_ERR_ATTESTATION);
    if (want && strstr(mr_error_get()->msg, want) == NULL)
        fail_msg("collateral %s: \"%s\" lacks \"%s\"", key, mr_error_get()->msg, want);
    mr_dcap_collateral_free(col);
    free(text); /* check-source: allow alloc -- json_dumps result */
    fixture_free(&f);
}

static void test_collateral_mutations(void **state)
{
    const char *d = "sgx-v3-phala", *t = "2025-07-04T10:28:44Z";
    (void)state;
    /* "issueDate":"2025-06-19T10:56:11Z" at the start of tcbInfo: change the year's last
     * digit in the signed text, keeping it valid JSON */
    expect_collateral_rejected(d, t, "tcb_info", 40, MUT_TEXT, "TCB Info signature");
    expect_collateral_rejected(d, t, "tcb_info", -30, MUT_TEXT, NULL);
    expect_collateral_rejected(d, t, "qe_identity", 40, MUT_TEXT, NULL);
    expect_collateral_rejected(d, t, "tcb_info_signature", 3, MUT_HEX, "TCB Info signature");
    expect_collateral_rejected(d, t, "tcb_info_signature", -1, MUT_HEX, "TCB Info signature");
    expect_collateral_rejected(d, t, "qe_identity_signature", 5, MUT_HEX,
                               "QE Identity signature");
    expect_collateral_rejected(d, t, "root_ca_crl", -4, MUT_HEX, "Root CA CRL");
    expect_collateral_rejected(d, t, "pck_crl", -4, MUT_HEX, "PCK CRL");
    expect_collateral_rejected(d, t, "tcb_info_issuer_chain", 400, MUT_PEM, NULL);
    expect_collateral_rejected(d, t, "tcb_info_issuer_chain", 700, MUT_PEM, NULL);
    expect_collateral_rejected(d, t, "qe_identity_issuer_chain", 500, MUT_PEM, NULL);
    expect_collateral_rejected(d, t, "tcb_info", 0, MUT_NULL, "tcb_info");
    expect_collateral_rejected(d, t, "qe_identity_signature", 0, MUT_NULL, NULL);
    /* wrong collateral for the platform: TDX collateral for an SGX quote */
    {
        fixture f;
        mr_attest_claims c;
        mr_dcap_collateral *tdx = load_collateral("tdx-v4-phala");
        fixture_load(&f, d, t);
        f.opts.collateral = tdx;
        MR_ASSERT_FAIL(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c),
                       MR_ERR_ATTESTATION, "");
        mr_dcap_collateral_free(tdx);
        fixture_free(&f);
    }
}

static void test_collateral_parse_errors(void **state)
{
    static const char *const bad[] = {
        "", "[]", "{}", "null", "{\"tcb_info\":1}",
        "{\"tcb_info\":\"{}\",\"qe_identity\":\"{}\",\"tcb_info_signature\":\"00\"}",
    };
    mr_dcap_collateral *c = NULL;
    mr_slice s;
    (void)state;
    for (size_t i = 0; i < MR_ARRAY_LEN(bad); i++) {
        mr_error_clear();
        assert_false(mr_ok(mr_dcap_collateral_parse_json(bad[i], strlen(bad[i]), &c)));
        assert_int_equal(mr_error_get()->cat, MR_ERR_ATTESTATION);
    }
    /* raw span finder: exact bytes, strings with braces and escapes respected */
    const char *doc = "{ \"a\" : \"x}\\\"{\", \"tcbInfo\":{\"k\":\"}\\\\\",\"n\":[1,{}]} ,"
                      "\"signature\":\"ab\"}";
    MR_ASSERT_OK(mr_json_raw_member(doc, strlen(doc), "tcbInfo", &s));
    assert_int_equal(s.len, strlen("{\"k\":\"}\\\\\",\"n\":[1,{}]}"));
    assert_memory_equal(s.ptr, "{\"k\":\"}\\\\\",\"n\":[1,{}]}", s.len);
    MR_ASSERT_OK(mr_json_raw_member(doc, strlen(doc), "signature", &s));
    assert_memory_equal(s.ptr, "\"ab\"", 4);
    MR_ASSERT_FAIL(mr_json_raw_member(doc, strlen(doc), "missing", &s), MR_ERR_ATTESTATION,
                   "not found");
    MR_ASSERT_FAIL(mr_json_raw_member("{\"a\":\"unterminated", 18, "a", &s), MR_ERR_ATTESTATION,
                   "malformed");
}

static void test_missing_crls_tolerated(void **state)
{
    fixture f;
    mr_attest_claims c;
    mr_dcap_collateral *col = NULL;
    char *text = mutate_collateral("sgx-v3-phala", "pck_crl", 0, MUT_NULL);
    (void)state;

    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    MR_ASSERT_OK(mr_dcap_collateral_parse_json(text, strlen(text), &col));
    f.opts.collateral = col;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_int_equal(c.tcb.status, MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
    mr_dcap_collateral_free(col);
    free(text); /* check-source: allow alloc -- json_dumps result */
    fixture_free(&f);
}

/* ---- roots ---- */

static void test_roots(void **state)
{
    mr_buf der;
    mr_buf pem;
    mr_attest_roots *r = NULL;
    (void)state;

    assert_non_null(mr_attest_roots_intel());
    assert_true(mr_attest_roots_is_intel(mr_attest_roots_intel()));
    td_read_vector("intel-sgx-root-ca/Intel_SGX_Provisioning_Certification_RootCA.der", &der);
    assert_int_equal(der.len, mr_intel_sgx_root_der_len);
    assert_memory_equal(der.data, mr_intel_sgx_root_der, der.len);
    mr_buf_init(&pem, 0, 0);
    MR_ASSERT_OK(mr_pem_encode_buf("CERTIFICATE", der.data, der.len, &pem));
    MR_ASSERT_OK(mr_attest_roots_from_pem((const char *)pem.data, pem.len, &r));
    assert_true(mr_attest_roots_is_intel(r));
    mr_attest_roots_free(r);
    MR_ASSERT_FAIL(mr_attest_roots_from_pem("junk", 4, &r), MR_ERR_ATTESTATION, "root CA");
    unsetenv("EDG_ATTESTATION_ROOT_CA");
    MR_ASSERT_OK(mr_attest_roots_from_config(&r));
    assert_true(mr_attest_roots_is_intel(r));
    mr_attest_roots_free(r);
    mr_buf_free(&pem);
    mr_buf_free(&der);
}

/* ---- sources ---- */

static void test_sources(void **state)
{
    char path[1024];
    mr_collateral_source *src = NULL;
    fixture f;
    mr_attest_claims c;
    (void)state;

    MR_ASSERT_OK(mr_collateral_source_dir(mr_test_vector_path(path, sizeof(path), ""), &src));
    fixture_load(&f, "tdx-v4-trustee", "2025-11-11T21:56:13Z");
    f.opts.collateral = NULL;
    f.opts.source = src;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_int_equal(c.tcb.status, MR_TCB_OUT_OF_DATE);
    fixture_free(&f);
    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    f.opts.collateral = NULL;
    f.opts.source = src;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_int_equal(c.tcb.status, MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
    fixture_free(&f);
    /* no collateral for this platform in the directory */
    {
        mr_buf q;
        td_read_vector("sgx-v3-gramine-tlsn/quote.bin", &q);
        f.opts.verify_time = td_time("2025-02-08T10:26:29Z");
        MR_ASSERT_FAIL(mr_dcap_verify(q.data, q.len, &f.opts, &c), MR_ERR_ATTESTATION,
                       "no SGX collateral for FMSPC 00906ed50000");
        mr_buf_free(&q);
    }
    mr_collateral_source_free(src);

    mr_test_vector_path(path, sizeof(path), "sgx-v3-phala/collateral.json");
    setenv("EDG_ATTESTATION_COLLATERAL", path, 1);
    MR_ASSERT_OK(mr_collateral_source_from_config(&src));
    assert_non_null(src);
    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    f.opts.collateral = NULL;
    f.opts.source = src;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    fixture_free(&f);
    mr_collateral_source_free(src);
    unsetenv("EDG_ATTESTATION_COLLATERAL");
    MR_ASSERT_OK(mr_collateral_source_from_config(&src));
    assert_null(src);
}

/* ---- policy ---- */

static void test_policy_package(void **state)
{
    fixture f;
    mr_attest_claims c;
    mr_attest_package p;
    (void)state;

    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    memset(&p, 0, sizeof(p));
    p.unique_id = "33D8736DB756ED4997E04BA358D27833188F1932FF7B1D156904D3F560452FBB";
    MR_ASSERT_OK(mr_policy_check_package(&c, &p));
    p.unique_id = NULL;
    p.signer_id = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6";
    p.has_product_id = true;
    p.product_id = 0;
    p.has_security_version = true;
    p.security_version = 0;
    MR_ASSERT_OK(mr_policy_check_package(&c, &p));
    p.security_version = 1;
    MR_ASSERT_FAIL(mr_policy_check_package(&c, &p), MR_ERR_ATTESTATION,
                   "PackageProperties not compliant:\nexpected: {Debug:false UniqueID: "
                   "SignerID:815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6 "
                   "ProductID:0 SecurityVersion:1}\ngot: {Debug:false UniqueID:33d8736d");
    p.security_version = 0;
    p.product_id = 1;
    MR_ASSERT_FAIL(mr_policy_check_package(&c, &p), MR_ERR_ATTESTATION, "not compliant");
    p.product_id = 0;
    p.debug = true;
    MR_ASSERT_FAIL(mr_policy_check_package(&c, &p), MR_ERR_ATTESTATION, "not compliant");
    p.debug = false;
    p.signer_id = "00";
    MR_ASSERT_FAIL(mr_policy_check_package(&c, &p), MR_ERR_ATTESTATION, "not compliant");
    p.signer_id = NULL;
    /* report data binding: "Hello, world!" is not a certificate hash */
    MR_ASSERT_FAIL(mr_policy_check_cert_binding(&c, (const uint8_t *)"x", 1), MR_ERR_ATTESTATION,
                   "hash(cert) != report.Data: ");
    fixture_free(&f);

    /* debug enclave (fortanix) against a non-debug package */
    fixture_load(&f, "sgx-v3-fortanix", "2020-06-02T17:49:22Z");
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_true(c.debug);
    memset(&p, 0, sizeof(p));
    MR_ASSERT_FAIL(mr_policy_check_package(&c, &p), MR_ERR_ATTESTATION, "{Debug:false");
    p.debug = true;
    MR_ASSERT_OK(mr_policy_check_package(&c, &p));
    /* SWHardeningNeeded accepted by default */
    MR_ASSERT_OK(mr_policy_check_tcb(&c, p.accepted_tcb_statuses, p.accepted_tcb_status_count,
                                     p.accepted_advisories, p.accepted_advisory_count, NULL));
    fixture_free(&f);
}

static void test_policy_tcb(void **state)
{
    mr_attest_claims c;
    bool warned = false;
    const char *const ood[] = {"OutOfDate"};
    const char *const swh[] = {"SWHardeningNeeded"};
    const char *const cfg[] = {"ConfigurationNeeded", "UpToDate"};
    const char *const adv_ok[] = {"intel-sa-00289", "INTEL-SA-00615"};
    const char *const adv_part[] = {"INTEL-SA-00289"};
    (void)state;

    memset(&c, 0, sizeof(c));
    c.tee = MR_TEE_SGX;
    c.tcb.evaluated = true;
    c.tcb.status = MR_TCB_UP_TO_DATE;
    MR_ASSERT_OK(mr_policy_check_tcb(&c, NULL, 0, NULL, 0, &warned));
    assert_false(warned);
    c.tcb.status = MR_TCB_SW_HARDENING_NEEDED; /* default list accepts it */
    MR_ASSERT_OK(mr_policy_check_tcb(&c, NULL, 0, NULL, 0, &warned));
    MR_ASSERT_FAIL(mr_policy_check_tcb(&c, ood, 1, NULL, 0, &warned), MR_ERR_ATTESTATION,
                   "TCB level invalid: SWHardeningNeeded");
    c.tcb.advisory_count = 2;
    snprintf(c.tcb.advisories[0], MR_ATTEST_ADVISORY_MAX, "INTEL-SA-00289");
    snprintf(c.tcb.advisories[1], MR_ATTEST_ADVISORY_MAX, "INTEL-SA-00615");
    MR_ASSERT_OK(mr_policy_check_tcb(&c, swh, 1, adv_ok, 2, &warned));
    MR_ASSERT_FAIL(mr_policy_check_tcb(&c, swh, 1, adv_part, 1, &warned), MR_ERR_ATTESTATION,
                   "TCB status SWHardeningNeeded contains advisories not accepted by "
                   "configuration: [INTEL-SA-00615]");
    c.tcb.status = MR_TCB_OUT_OF_DATE;
    MR_ASSERT_FAIL(mr_policy_check_tcb(&c, NULL, 0, NULL, 0, &warned), MR_ERR_ATTESTATION,
                   "TCB level invalid: OutOfDate");
    MR_ASSERT_OK(mr_policy_check_tcb(&c, ood, 1, adv_part, 1, &warned));
    assert_true(warned);
    c.tcb.status = MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED;
    MR_ASSERT_FAIL(mr_policy_check_tcb(&c, cfg, 2, NULL, 0, &warned), MR_ERR_ATTESTATION,
                   "TCB level invalid: ConfigurationAndSWHardeningNeeded");
    c.tcb.status = MR_TCB_CONFIGURATION_NEEDED;
    MR_ASSERT_OK(mr_policy_check_tcb(&c, cfg, 2, NULL, 0, &warned));
    c.tcb.evaluated = false; /* no collateral: Unknown */
    MR_ASSERT_FAIL(mr_policy_check_tcb(&c, cfg, 2, NULL, 0, &warned), MR_ERR_ATTESTATION,
                   "TCB level invalid: Unknown");
    /* names */
    for (int i = 0; i < MR_TCB__COUNT; i++) {
        mr_tcb_status s;
        const char *n = mr_tcb_status_name((mr_tcb_status)i);
        assert_true(mr_tcb_status_parse(n, strlen(n), &s));
        assert_int_equal(s, i);
    }
    assert_string_equal(mr_tcb_status_name(MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED),
                        "ConfigurationAndSWHardeningNeeded");
    assert_false(mr_tcb_status_parse("uptodate", 8, &(mr_tcb_status){0}));
}

/* ---- PCCS fetching against a local python fixture ---- */

extern char **environ;

/* Starts pccs_fixture.py (over HTTPS with a self-signed certificate made in tls_dir when that
 * is not NULL); false when python3 or the sources are not there (the test is skipped). */
static bool start_pccs(const char *tls_dir, char *url, size_t url_len, pid_t *pid)
{
    const char *src_dir = getenv("MR_SOURCE_DIR");
    char script[1024], vdir[1024], port_file[256], portbuf[16] = {0}, tls[256] = {0};
    FILE *pf = NULL;

    if (src_dir == NULL || access("/usr/bin/python3", X_OK) != 0 ||
        (tls_dir != NULL && access("/usr/bin/openssl", X_OK) != 0)) {
        print_message("  MR_SOURCE_DIR, python3 or openssl missing\n");
        skip(); /* counted as skipped, not passed */
    }
    snprintf(script, sizeof(script), "%s/tests/unit/attest/pccs_fixture.py", src_dir);
    mr_test_vector_path(vdir, sizeof(vdir), "");
    snprintf(port_file, sizeof(port_file), "/tmp/mr-pccs-port-%d", (int)getpid());
    unlink(port_file);
    if (tls_dir != NULL)
        snprintf(tls, sizeof(tls), "%s", tls_dir);
    char *argv[] = {"/usr/bin/python3", script, vdir, "sgx-v3-phala", "tdx-v4-phala",
                    port_file, tls_dir != NULL ? "--tls" : NULL, tls, NULL};
    assert_int_equal(posix_spawn(pid, argv[0], NULL, NULL, argv, environ), 0);
    for (int i = 0; i < 200 && pf == NULL; i++) {
        pf = fopen(port_file, "r");
        if (pf == NULL)
            usleep(50 * 1000);
    }
    assert_non_null(pf);
    assert_non_null(fgets(portbuf, sizeof(portbuf), pf));
    fclose(pf);
    unlink(port_file);
    snprintf(url, url_len, "%s://127.0.0.1:%s/", tls_dir != NULL ? "https" : "http", portbuf);
    return true;
}

static void test_pccs(void **state)
{
    char url[128];
    pid_t pid = 0;
    mr_collateral_source *src = NULL;
    fixture f;
    mr_attest_claims c;
    (void)state;

    if (!start_pccs(NULL, url, sizeof(url), &pid))
        return;
    MR_ASSERT_OK(mr_collateral_source_pccs(url, false, &src));

    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    f.opts.collateral = NULL;
    f.opts.source = src;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_int_equal(c.tcb.status, MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
    assert_int_equal(c.tcb.advisory_count, 2);
    fixture_free(&f);
    fixture_load(&f, "tdx-v4-phala", "2025-07-04T10:16:31Z");
    f.opts.collateral = NULL;
    f.opts.source = src;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_int_equal(c.tcb.status, MR_TCB_UP_TO_DATE);

    /* stop the server: cached collateral keeps working, nothing is fetched */
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    fixture_free(&f);
    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    f.opts.collateral = NULL;
    f.opts.source = src;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    /* past the cached collateral's nextUpdate a refetch is needed, and it fails */
    f.opts.verify_time = td_time("2025-07-20T00:00:00Z");
    MR_ASSERT_FAIL(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c), MR_ERR_IO,
                   "collateral: fetching http://127.0.0.1:");
    fixture_free(&f);
    mr_collateral_source_free(src);
}

/* A PCCS over HTTPS with a self-signed certificate: accepted without TLS verification (what
 * EDG_ATTESTATION_PCCS_URL does for anything but Intel's PCS), refused with it. */
static void test_pccs_https(void **state)
{
    char url[128], dir[64];
    pid_t pid = 0;
    mr_collateral_source *src = NULL, *strict = NULL;
    mr_dcap_collateral *col = NULL;
    const uint8_t no_fmspc[6] = {0};
    fixture f;
    mr_attest_claims c;
    (void)state;

    snprintf(dir, sizeof(dir), "/tmp/mr-pccs-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    if (!start_pccs(dir, url, sizeof(url), &pid)) {
        rmdir(dir);
        return;
    }
    MR_ASSERT_OK(mr_collateral_source_pccs(url, true, &src));
    fixture_load(&f, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    f.opts.collateral = NULL;
    f.opts.source = src;
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_int_equal(c.tcb.status, MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
    /* an unknown platform: the PCCS answers 404 */
    MR_ASSERT_FAIL(mr_collateral_source_get(src, false, no_fmspc, "platform",
                                            td_time("2025-07-04T10:28:44Z"), &col),
                   MR_ERR_IO, "/sgx/certification/v4/tcb?fmspc=000000000000: HTTP status 404");
    /* with verification against the system store, the self-signed certificate is refused */
    MR_ASSERT_OK(mr_collateral_source_pccs(url, false, &strict));
    f.opts.source = strict;
    MR_ASSERT_FAIL(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c), MR_ERR_IO,
                   "TLS: the server certificate was not accepted: self-signed certificate");
    fixture_free(&f);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    mr_collateral_source_free(strict);
    mr_collateral_source_free(src);
    {
        char p[128];
        snprintf(p, sizeof(p), "%s/pccs.pem", dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/pccs.key", dir);
        unlink(p);
        rmdir(dir);
    }
}

/* ---- environment set-up and concurrent use ---- */

static void test_env(void **state)
{
    char path[1024];
    mr_attest_env env;
    fixture f;
    mr_attest_claims c;
    (void)state;

    mr_test_vector_path(path, sizeof(path), "");
    setenv("EDG_ATTESTATION_COLLATERAL", path, 1);
    unsetenv("EDG_ATTESTATION_ROOT_CA");
    MR_ASSERT_OK(mr_attest_env_load(&env));
    assert_true(mr_attest_roots_is_intel(env.roots));
    assert_non_null(env.source);
    fixture_load(&f, "tdx-v4-phala", "2025-07-04T10:16:31Z");
    f.opts.collateral = NULL;
    mr_attest_env_options(&env, &f.opts);
    MR_ASSERT_OK(mr_dcap_verify(f.quote.data, f.quote.len, &f.opts, &c));
    assert_int_equal(c.tcb.status, MR_TCB_UP_TO_DATE);
    fixture_free(&f);
    mr_attest_env_free(&env);
    setenv("EDG_ATTESTATION_ROOT_CA", "/nonexistent/root.pem", 1);
    MR_ASSERT_FAIL(mr_attest_env_load(&env), MR_ERR_IO, "EDG_ATTESTATION_ROOT_CA");
    unsetenv("EDG_ATTESTATION_ROOT_CA");
    unsetenv("EDG_ATTESTATION_COLLATERAL");
}

typedef struct thread_arg {
    const mr_buf *quote[2];
    mr_attest_options opts[2];
    int failures;
} thread_arg;

static void *verify_thread(void *p)
{
    thread_arg *a = p;
    mr_attest_claims c;
    for (int i = 0; i < 40; i++) {
        int k = i % 2;
        if (!mr_ok(mr_dcap_verify(a->quote[k]->data, a->quote[k]->len, &a->opts[k], &c)))
            a->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    char path[1024];
    mr_collateral_source *src = NULL;
    fixture sgx, tdx;
    pthread_t th[4];
    thread_arg args[4];
    (void)state;

    MR_ASSERT_OK(mr_collateral_source_dir(mr_test_vector_path(path, sizeof(path), ""), &src));
    mr_dcap_cache_clear();
    fixture_load(&sgx, "sgx-v3-phala", "2025-07-04T10:28:44Z");
    fixture_load(&tdx, "tdx-v4-phala", "2025-07-04T10:16:31Z");
    for (int i = 0; i < 4; i++) {
        memset(&args[i], 0, sizeof(args[i]));
        args[i].quote[0] = &sgx.quote;
        args[i].quote[1] = &tdx.quote;
        args[i].opts[0] = sgx.opts;
        args[i].opts[1] = tdx.opts;
        if (i % 2) { /* half the threads go through the shared source */
            args[i].opts[0].collateral = args[i].opts[1].collateral = NULL;
            args[i].opts[0].source = args[i].opts[1].source = src;
        }
        assert_int_equal(pthread_create(&th[i], NULL, verify_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    fixture_free(&sgx);
    fixture_free(&tdx);
    mr_collateral_source_free(src);
}

/* ---- allocation failures ---- */

typedef struct alloc_ctx {
    mr_buf text;  /* collateral JSON */
    fixture f;    /* the quote and the verification time */
    mr_tcb_status want;
} alloc_ctx;

/* Collateral parsing and a full verification, as one operation of the sweep. */
static mr_result op_parse_verify(void *arg)
{
    alloc_ctx *x = arg;
    mr_dcap_collateral *col = NULL;
    mr_attest_claims c;
    mr_attest_options opts = x->f.opts;
    mr_result r = mr_dcap_collateral_parse_json((const char *)x->text.data, x->text.len, &col);
    if (mr_ok(r)) {
        opts.collateral = col;
        r = mr_dcap_verify(x->f.quote.data, x->f.quote.len, &opts, &c);
    }
    mr_dcap_collateral_free(col);
    if (mr_ok(r) && c.tcb.status != x->want)
        MR_BAIL(MR_ERR_USAGE, "wrong TCB status %d", (int)c.tcb.status);
    return r;
}

/* The same with the process-wide PCK chain cache empty before and after. */
static mr_result op_parse_verify_cold(void *arg)
{
    mr_dcap_cache_clear();
    mr_result r = op_parse_verify(arg);
    mr_dcap_cache_clear();
    return r;
}

/* Out of memory anywhere in collateral parsing or verification is an internal "out of memory"
 * error (never an attestation verdict, never a usage error) and leaks nothing; with the PCK
 * chain cache cold and warm. */
static void test_alloc_failures(void **state)
{
    static const struct {
        const char *dir, *when;
        mr_tcb_status want;
    } cases[] = {
        {"tdx-v4-phala", "2025-07-04T10:16:31Z", MR_TCB_UP_TO_DATE},
        {"sgx-v3-phala", "2025-07-04T10:28:44Z", MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED},
    };
    (void)state;

    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        alloc_ctx x;
        char rel[256];
        (void)snprintf(rel, sizeof(rel), "%s/collateral.json", cases[i].dir);
        td_read_vector(rel, &x.text);
        fixture_load(&x.f, cases[i].dir, cases[i].when);
        x.want = cases[i].want;
        long cold = mr_test_alloc_sweep(cases[i].dir, op_parse_verify_cold, &x);
        mr_dcap_cache_clear();
        long warm = mr_test_alloc_sweep(cases[i].dir, op_parse_verify, &x);
        print_message("  %s: allocation failure points: %ld (chain not cached), %ld (cached)\n",
                      cases[i].dir, cold, warm);
        assert_true(cold > warm);
        mr_dcap_cache_clear();
        mr_buf_free(&x.text);
        fixture_free(&x.f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_mutations_sgx_v3),
        cmocka_unit_test(test_mutations_tdx_v4),
        cmocka_unit_test(test_qe_memo),
        cmocka_unit_test(test_pck_cache_bytes),
        cmocka_unit_test(test_trailing_bytes_and_oe_header),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_collateral_mutations),
        cmocka_unit_test(test_collateral_parse_errors),
        cmocka_unit_test(test_missing_crls_tolerated),
        cmocka_unit_test(test_roots),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_pccs),
        cmocka_unit_test(test_pccs_https),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_policy_package),
        cmocka_unit_test(test_policy_tcb),
        cmocka_unit_test(test_synth_sgx_v3_roundtrip),
        cmocka_unit_test(test_synth_sgx_v4),
        cmocka_unit_test(test_synth_sgx_v5),
        cmocka_unit_test(test_synth_other_root_rejected),
        cmocka_unit_test(test_synth_bad_cert_types),
        cmocka_unit_test(test_resigned_convergence),
        cmocka_unit_test(test_td_relaunch),
        cmocka_unit_test(test_synth_revocation),
        cmocka_unit_test(test_alloc_failures),
    };
    if (getenv("MR_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("MR_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
