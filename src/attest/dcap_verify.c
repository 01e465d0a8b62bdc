/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP quote verification (spec/attestation.md §2), one function per step; step numbers in
 * comments refer to §2. Each step performs one check and fails with a message that starts
 * with the step's name (dcap.h).
 */
#include <stdio.h>
#include <string.h>

#include "attest/collateral.h"
#include "attest/collateral_int.h"
#include "attest/dcap_int.h"
#include "attest/ossl.h"
#include "crypto/hash.h"

/* ---------------------------------------------------------------------------------------- */
/* TCB evaluation helpers                                                                     */

static void add_advisories(mr_attest_tcb *t, const mr_dcap_level *lv)
{
    for (size_t i = 0; lv != NULL && i < lv->adv_count; i++) {
        size_t pos = 0;
        int cmp = 1;
        while (pos < t->advisory_count && (cmp = strcmp(t->advisories[pos], lv->adv[i])) < 0)
            pos++;
        if (pos < t->advisory_count && cmp == 0)
            continue;
        if (t->advisory_count >= MR_ATTEST_MAX_ADVISORIES)
            return;
        memmove(t->advisories[pos + 1], t->advisories[pos],
                (t->advisory_count - pos) * sizeof(t->advisories[0]));
        memcpy(t->advisories[pos], lv->adv[i], MR_ATTEST_ADVISORY_MAX);
        t->advisory_count++;
    }
}

static bool sgx_level_ok(const mr_dcap_level *lv, const pck_info *p)
{
    for (int i = 0; i < 16; i++)
        if (p->comp[i] < lv->sgx[i])
            return false;
    return p->pcesvn >= lv->pcesvn;
}

static mr_tcb_status converge_outdated(mr_tcb_status s)
{
    switch (s) {
    case MR_TCB_UP_TO_DATE:
    case MR_TCB_SW_HARDENING_NEEDED:
        return MR_TCB_OUT_OF_DATE;
    case MR_TCB_CONFIGURATION_NEEDED:
    case MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED:
        return MR_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
    default:
        return s;
    }
}

static void window_add(mr_attest_tcb *t, time_t issue, time_t next, bool *first)
{
    if (*first || issue < t->earliest_issue_date)
        t->earliest_issue_date = issue;
    if (*first || issue > t->latest_issue_date)
        t->latest_issue_date = issue;
    if (*first || next < t->earliest_next_update)
        t->earliest_next_update = next;
    if (*first || next > t->latest_next_update)
        t->latest_next_update = next;
    *first = false;
}

static const mr_dcap_level *isv_level(const mr_dcap_level *lv, size_t n, unsigned svn)
{
    for (size_t i = 0; i < n; i++)
        if (svn >= lv[i].isvsvn)
            return &lv[i];
    return NULL;
}

/* The TDX module identity "TDX_<major>" (the last one of that id) of TCB Info; NULL when
 * there is none. want receives the id. */
static const mr_dcap_module_id *module_identity(const mr_dcap_tcb_info *ti, uint8_t major,
                                                char want[16])
{
    const mr_dcap_module_id *m = NULL;
    snprintf(want, 16, "TDX_%02X", major);
    for (size_t i = 0; i < ti->module_id_count; i++)
        if (strcmp(ti->module_ids[i].id, want) == 0)
            m = &ti->module_ids[i];
    return m;
}

/* §2 step 7: TDX module identity. *module_level is NULL when the identity has no levels. */
static MR_RESULT check_tdx_module(const mr_dcap_tcb_info *ti, const mr_attest_tdx_claims *td,
                                  const mr_dcap_level **module_level)
{
    const mr_dcap_module_id *m = NULL;
    uint8_t seam_attr[8];

    *module_level = NULL;
    if (td->tee_tcb_svn[1] > 0) {
        char want[16];
        m = module_identity(ti, td->tee_tcb_svn[1], want);
        MR_ENSURE(m != NULL, MR_ERR_ATTESTATION,
                  "TDX_MODULE_MISMATCH: TCB Info has no module identity %s", want);
    } else {
        MR_ENSURE(ti->has_module, MR_ERR_ATTESTATION,
                  "TDX_MODULE_MISMATCH: TCB Info has no tdxModule");
        m = &ti->module;
    }
    MR_ENSURE(memcmp(m->mrsigner, td->mrsignerseam, 48) == 0, MR_ERR_ATTESTATION,
              "TDX_MODULE_MISMATCH: MRSIGNERSEAM differs");
    for (int i = 0; i < 8; i++)
        seam_attr[i] = (uint8_t)(td->seam_attributes >> (8 * i));
    for (int i = 0; i < 8; i++)
        MR_ENSURE((seam_attr[i] & m->attributes_mask[i]) == m->attributes[i],
                  MR_ERR_ATTESTATION, "TDX_MODULE_MISMATCH: SEAMATTRIBUTES differ");
    if (m->level_count > 0) {
        *module_level = isv_level(m->levels, m->level_count, td->tee_tcb_svn[0]);
        MR_ENSURE(*module_level != NULL, MR_ERR_ATTESTATION,
                  "TCB_NOT_SUPPORTED: TDX module SVN %u is below every module TCB level",
                  td->tee_tcb_svn[0]);
    }
    return MR_SUCCESS;
}

/* §2 step 10: QE identity. */
static MR_RESULT check_qe_identity(const mr_dcap_qe_identity *qi, bool tdx,
                                   const mr_dcap_quote *q, const mr_dcap_level **qe_level)
{
    mr_attest_sgx_claims qe;
    uint8_t rd[64];
    const char *want = tdx ? "TD_QE" : "QE";
    uint8_t misc[4];

    MR_ENSURE(strcmp(qi->id, want) == 0, MR_ERR_ATTESTATION,
              "QE Identity is for \"%s\", the quote needs \"%s\"", qi->id, want);
    MR_GUARD(mr_dcap_sgx_body_(q->qe_report, &qe, rd));
    for (int i = 0; i < 4; i++) {
        misc[i] = (uint8_t)(qe.miscselect >> (8 * i));
        MR_ENSURE((misc[i] & qi->miscselect_mask[i]) == qi->miscselect[i], MR_ERR_ATTESTATION,
                  "QE_IDENTITY_MISMATCH: MISCSELECT");
    }
    for (int i = 0; i < 16; i++)
        MR_ENSURE((qe.attributes[i] & qi->attributes_mask[i]) == qi->attributes[i],
                  MR_ERR_ATTESTATION, "QE_IDENTITY_MISMATCH: ATTRIBUTES");
    MR_ENSURE(memcmp(qe.mrsigner, qi->mrsigner, 32) == 0, MR_ERR_ATTESTATION,
              "QE_IDENTITY_MISMATCH: MRSIGNER");
    MR_ENSURE(qe.isvprodid == qi->isvprodid, MR_ERR_ATTESTATION,
              "QE_IDENTITY_MISMATCH: ISVPRODID %u, want %u", qe.isvprodid, qi->isvprodid);
    *qe_level = isv_level(qi->levels, qi->level_count, qe.isvsvn);
    MR_ENSURE(*qe_level != NULL, MR_ERR_ATTESTATION,
              "ISVSVN_NOT_SUPPORTED: QE ISVSVN %u is below every QE TCB level", qe.isvsvn);
    return MR_SUCCESS;
}

static bool config_needed(mr_tcb_status s)
{
    return s == MR_TCB_CONFIGURATION_NEEDED || s == MR_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED ||
           s == MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED ||
           s == MR_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
}

/*
 * TD relaunch check (TD report 1.5 only, §2 step 13): the platform and the QE are current
 * but the TD still runs on an out-of-date TDX module, while TEE_TCB_SVN2 (the module the TD
 * would get after a relaunch) already reaches the newest level. Then a relaunch, not a
 * platform update, is what is needed. *out is left alone when the check does not apply.
 */
static MR_RESULT td_relaunch(const mr_dcap_tcb_info *ti, const mr_attest_tdx_claims *td,
                             mr_tcb_status qe, mr_tcb_status sgx, mr_tcb_status tdx,
                             mr_tcb_status module, mr_tcb_status *out)
{
    const mr_dcap_level *latest = &ti->levels[0];
    unsigned need_module = 0;

    if (!td->has_td15 || qe != MR_TCB_UP_TO_DATE || module != MR_TCB_OUT_OF_DATE)
        return MR_SUCCESS;
    if (sgx != MR_TCB_UP_TO_DATE && sgx != MR_TCB_SW_HARDENING_NEEDED &&
        sgx != MR_TCB_CONFIGURATION_NEEDED && sgx != MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
        return MR_SUCCESS;
    if (tdx != MR_TCB_OUT_OF_DATE && tdx != MR_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED)
        return MR_SUCCESS;
    if (td->tee_tcb_svn2[1] == 0) {
        need_module = latest->tdx[0];
    } else {
        char want[16];
        const mr_dcap_module_id *m = module_identity(ti, td->tee_tcb_svn2[1], want);
        MR_ENSURE(m != NULL, MR_ERR_ATTESTATION,
                  "TDX_MODULE_MISMATCH: TCB Info has no module identity %s (TEE_TCB_SVN2)",
                  want);
        MR_ENSURE(m->level_count > 0, MR_ERR_ATTESTATION,
                  "TCB_NOT_SUPPORTED: module identity %s has no TCB levels", want);
        need_module = m->levels[0].isvsvn;
    }
    if (td->tee_tcb_svn2[0] >= need_module && td->tee_tcb_svn2[2] >= latest->tdx[2])
        *out = config_needed(sgx) || config_needed(tdx)
                   ? MR_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED
                   : MR_TCB_TD_RELAUNCH_ADVISED;
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Verification (§2)                                                                          */

/* What the steps of one verification share. */
typedef struct verify_ctx {
    const mr_attest_options *opts;
    const mr_attest_roots *roots;
    time_t when;
    mr_dcap_quote q;
    mr_attest_claims claims;
    bool tdx;
    dcap_pck chain;          /* owned */
    mr_dcap_collateral *col; /* owned; NULL when verifying without collateral */
    const mr_dcap_level *module_level, *qe_level, *sgx_level, *tdx_level;
} verify_ctx;

/* 1. parse: the quote's structure and the claims of its report body */
static MR_RESULT step_parse(verify_ctx *v, const uint8_t *input, size_t input_len)
{
    mr_slice raw;
    MR_GUARD(mr_dcap_unwrap(input, input_len, &raw));
    MR_GUARD(mr_dcap_parse(raw.ptr, raw.len, &v->q));
    MR_GUARD(in_step("quote parse", mr_dcap_quote_claims(&v->q, &v->claims)));
    v->tdx = v->claims.tee == MR_TEE_TDX;
    return MR_SUCCESS;
}

/* 2-3. PCK chain to the pinned root at the verification time; the PCK extension */
static MR_RESULT step_pck_chain(verify_ctx *v)
{
    const pck_info *pck = &v->chain.pck;
    MR_GUARD(mr_dcap_pck_chain_(&v->q, v->roots, v->when, &v->chain));
    memcpy(v->claims.tcb.fmspc, pck->fmspc, 6);
    memcpy(v->claims.tcb.pceid, pck->pceid, 2);
    memcpy(v->claims.tcb.pck_cpusvn, pck->cpusvn, 16);
    memcpy(v->claims.tcb.pck_comp_svn, pck->comp, 16);
    v->claims.tcb.pcesvn = pck->pcesvn;
    return MR_SUCCESS;
}

/* The collateral: given, from the source, or none when that is allowed. */
static MR_RESULT step_collateral(verify_ctx *v)
{
    const mr_attest_options *o = v->opts;
    if (o->collateral != NULL) {
        v->col = mr_dcap_collateral_ref(o->collateral);
        return MR_SUCCESS;
    }
    if (o->source != NULL)
        return in_step("collateral",
                       mr_collateral_source_get(o->source, v->tdx, v->chain.pck.fmspc,
                                                v->chain.processor_ca ? "processor" : "platform",
                                                v->when, &v->col));
    MR_ENSURE(o->flags & MR_ATTEST_ALLOW_NO_COLLATERAL, MR_ERR_ATTESTATION,
              "collateral: no collateral source configured");
    return MR_SUCCESS;
}

/* 4. CRLs: neither the intermediate nor the PCK certificate is revoked */
static MR_RESULT step_pck_revocation(verify_ctx *v)
{
    return in_step("PCK revocation",
                   mr_dcap_collateral_check_pck(v->col, v->roots, v->chain.leaf,
                                                v->chain.intermediate, v->when, v->opts->flags));
}

/* 5. collateral chains, signatures and validity */
static MR_RESULT step_collateral_signatures(verify_ctx *v)
{
    return in_step("collateral",
                   mr_dcap_collateral_check(v->col, v->roots, v->when, v->opts->flags));
}

/* 6. TCB Info applies to this platform */
static MR_RESULT step_tcb_info_platform(verify_ctx *v)
{
    const mr_dcap_tcb_info *ti = &v->col->tcb;
    MR_ENSURE(ti->tdx == v->tdx, MR_ERR_ATTESTATION,
              "TCB Info: collateral is for %s, the quote is %s", ti->tdx ? "TDX" : "SGX",
              v->tdx ? "TDX" : "SGX");
    MR_ENSURE(memcmp(ti->fmspc, v->chain.pck.fmspc, 6) == 0, MR_ERR_ATTESTATION,
              "TCB Info: FMSPC does not match the PCK certificate");
    MR_ENSURE(memcmp(ti->pceid, v->chain.pck.pceid, 2) == 0, MR_ERR_ATTESTATION,
              "TCB Info: PCE-ID does not match the PCK certificate");
    return MR_SUCCESS;
}

/* 7. TDX module identity (TDX only) */
static MR_RESULT step_tdx_module(verify_ctx *v)
{
    if (!v->tdx)
        return MR_SUCCESS;
    return in_step("TDX module identity",
                   check_tdx_module(&v->col->tcb, &v->claims.u.tdx, &v->module_level));
}

/* The collateral's validity windows and TCB evaluation data number, for the claims. */
static void record_collateral(verify_ctx *v)
{
    const mr_dcap_collateral *col = v->col;
    mr_attest_tcb *t = &v->claims.tcb;
    bool first = true;
    window_add(t, col->tcb.issue_date, col->tcb.next_update, &first);
    window_add(t, col->qe.issue_date, col->qe.next_update, &first);
    if (col->pck_crl != NULL)
        window_add(t, col->pck_crl_this, col->pck_crl_next, &first);
    if (col->root_crl != NULL)
        window_add(t, col->root_crl_this, col->root_crl_next, &first);
    t->tcb_eval_data_number = col->tcb.eval_num;
}

/* 8. QE report signature by the PCK key; a signature that verified before over the same
 * report with the same chain is not verified again (dcap_int.h) */
static MR_RESULT step_qe_report_signature(verify_ctx *v)
{
    const mr_dcap_quote *q = &v->q;
    const mr_slice memo_in[] = {MR_SLICE(v->chain.chain_hash, sizeof(v->chain.chain_hash)),
                                q->qe_report, q->qe_report_sig};
    uint8_t key[32];
    MR_GUARD(in_step("QE report", mr_sha256_v(memo_in, MR_ARRAY_LEN(memo_in), key)));
    if (mr_dcap_qe_memo_has_(key))
        return MR_SUCCESS;
    MR_GUARD(in_step("QE report",
                     mr_ossl_verify_raw_sig(X509_get0_pubkey(v->chain.leaf), q->qe_report.ptr,
                                            q->qe_report.len, q->qe_report_sig.ptr,
                                            "QE report signature")));
    mr_dcap_qe_memo_put_(key);
    return MR_SUCCESS;
}

/* 9. attestation key binding: the QE report data is SHA-256(attestation key || QE auth
 * data) followed by 32 zero bytes */
static MR_RESULT step_attestation_key_binding(verify_ctx *v)
{
    static const uint8_t zeros[32];
    const mr_slice bound[] = {v->q.attest_key, v->q.qe_auth_data};
    mr_attest_sgx_claims qe;
    uint8_t h[32];
    uint8_t qrd[64];

    MR_GUARD(in_step("QE report", mr_dcap_sgx_body_(v->q.qe_report, &qe, qrd)));
    v->claims.tcb.qe_isvsvn = qe.isvsvn;
    MR_GUARD(in_step("attestation key binding", mr_sha256_v(bound, MR_ARRAY_LEN(bound), h)));
    MR_ENSURE(memcmp(h, qrd, 32) == 0 && memcmp(qrd + 32, zeros, 32) == 0, MR_ERR_ATTESTATION,
              "attestation key binding: QE report data does not match "
              "SHA-256(attestation key || QE auth data)");
    return MR_SUCCESS;
}

/* 10. QE identity */
static MR_RESULT step_qe_identity(verify_ctx *v)
{
    return in_step("QE identity", check_qe_identity(&v->col->qe, v->tdx, &v->q, &v->qe_level));
}

/* 11. quote signature by the attestation key */
static MR_RESULT step_quote_signature(verify_ctx *v)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY *attest_key = NULL;

    MR_GUARD_OUT(
        in_step("quote signature", mr_dcap_attest_key_(v->q.attest_key.ptr, &attest_key)));
    MR_GUARD_OUT(in_step("quote signature",
                         mr_ossl_verify_raw_sig(attest_key, v->q.signed_region.ptr,
                                                v->q.signed_region.len, v->q.quote_sig.ptr,
                                                "quote signature")));
    res = MR_SUCCESS;
out:
    EVP_PKEY_free(attest_key);
    return res;
}

/* 12. the platform's TCB level: the first level the PCK TCB components reach, and for a TD
 * the first from there that its TEE_TCB_SVN also reaches */
static MR_RESULT step_tcb_level(verify_ctx *v)
{
    const mr_dcap_tcb_info *ti = &v->col->tcb;
    const pck_info *pck = &v->chain.pck;
    const uint8_t *svn = v->claims.u.tdx.tee_tcb_svn;

    for (size_t i = 0; i < ti->level_count && v->sgx_level == NULL; i++)
        if (sgx_level_ok(&ti->levels[i], pck))
            v->sgx_level = &ti->levels[i];
    MR_ENSURE(v->sgx_level != NULL, MR_ERR_ATTESTATION,
              "TCB level: TCB not supported (no TCB level matches the platform's PCK "
              "TCB components)");
    if (!v->tdx)
        return MR_SUCCESS;
    int start = svn[1] > 0 ? 2 : 0;
    for (size_t i = (size_t)(v->sgx_level - ti->levels); i < ti->level_count; i++) {
        const mr_dcap_level *lv = &ti->levels[i];
        bool ok = lv->has_tdx && sgx_level_ok(lv, pck);
        for (int k = start; ok && k < 16; k++)
            ok = svn[k] >= lv->tdx[k];
        if (ok) {
            v->tdx_level = lv;
            break;
        }
    }
    MR_ENSURE(v->tdx_level != NULL, MR_ERR_ATTESTATION,
              "TCB level: TCB not supported (no TCB level matches the TD's TEE_TCB_SVN)");
    return MR_SUCCESS;
}

/* 13. converge: the platform's status and advisories with the QE's and, for a TD, the TDX
 * module's (a TD relaunch may be all that is needed) */
static MR_RESULT step_tcb_status(verify_ctx *v)
{
    mr_attest_tcb *t = &v->claims.tcb;
    const mr_dcap_level *platform = v->tdx ? v->tdx_level : v->sgx_level;
    const mr_dcap_level *qe = v->qe_level, *module = v->module_level;
    mr_tcb_status st = platform->status;

    t->platform_status = st;
    t->tcb_date = platform->date;
    t->qe_status = qe->status;
    t->module_status = v->tdx ? MR_TCB_UP_TO_DATE : MR_TCB_UNKNOWN;
    add_advisories(t, platform);
    add_advisories(t, qe);
    if (v->tdx && module != NULL) {
        t->module_status = module->status;
        add_advisories(t, module);
        mr_tcb_status relaunch = st;
        MR_GUARD(in_step("TD relaunch check",
                         td_relaunch(&v->col->tcb, &v->claims.u.tdx, qe->status,
                                     v->sgx_level->status, st, module->status, &relaunch)));
        if (relaunch != st)
            st = relaunch;
        else if (module->status == MR_TCB_OUT_OF_DATE)
            st = converge_outdated(st);
        else if (module->status == MR_TCB_REVOKED)
            st = MR_TCB_REVOKED;
    }
    if (qe->status == MR_TCB_OUT_OF_DATE)
        st = converge_outdated(st);
    else if (qe->status == MR_TCB_REVOKED)
        st = MR_TCB_REVOKED;
    t->status = st;
    t->evaluated = true;
    return MR_SUCCESS;
}

MR_RESULT mr_dcap_verify(const uint8_t *input, size_t input_len, const mr_attest_options *opts,
                         mr_attest_claims *out)
{
    mr_result res = MR_FAILURE;
    mr_attest_options defaults;
    verify_ctx v;

    memset(&defaults, 0, sizeof(defaults));
    memset(&v, 0, sizeof(v));
    v.opts = opts != NULL ? opts : &defaults;
    v.when = v.opts->verify_time != 0 ? v.opts->verify_time : time(NULL);
    v.roots = v.opts->roots != NULL ? v.opts->roots : mr_attest_roots_intel();
    MR_ENSURE(v.roots != NULL && input != NULL, MR_ERR_INTERNAL,
              "attestation: no trust anchor available");

    MR_GUARD_OUT(step_parse(&v, input, input_len));
    MR_GUARD_OUT(step_pck_chain(&v));
    MR_GUARD_OUT(step_collateral(&v));
    if (v.col != NULL) {
        MR_GUARD_OUT(step_pck_revocation(&v));
        MR_GUARD_OUT(step_collateral_signatures(&v));
        MR_GUARD_OUT(step_tcb_info_platform(&v));
        MR_GUARD_OUT(step_tdx_module(&v));
        record_collateral(&v);
    }
    MR_GUARD_OUT(step_qe_report_signature(&v));
    MR_GUARD_OUT(step_attestation_key_binding(&v));
    if (v.col != NULL)
        MR_GUARD_OUT(step_qe_identity(&v));
    MR_GUARD_OUT(step_quote_signature(&v));
    if (v.col != NULL) {
        MR_GUARD_OUT(step_tcb_level(&v));
        MR_GUARD_OUT(step_tcb_status(&v));
    }
    *out = v.claims;
    res = MR_SUCCESS;
out:
    mr_dcap_pck_clear_(&v.chain);
    mr_dcap_collateral_free(v.col);
    return res;
}
