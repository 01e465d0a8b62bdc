/* SPDX-License-Identifier: Apache-2.0 */
/*
 * softtdx: TEST TDX DCAP quotes (v4, TD report 1.0, certification data type 6 wrapping the
 * TD QE's report and the type-5 PCK chain) made with the keys of a softsgx directory, and
 * the TDX collateral that init signs for them (tdx-collateral.json). FOR TESTS ONLY; see
 * softsgx.h and docs/softsgx.md.
 */
#include <string.h>

#include "attest/softsgx.h"
#include "attest/softsgx_int.h"
#include "crypto/p256.h"

enum {
    TD_BODY_SIZE = 584,
    TDX_TEE_TYPE = 0x81,
    TD_ATTR_SEPT_VE_DISABLE_BIT = 28,
    XFAM_DEFAULT = 0x61ae7,
    QUOTE_MAX = (1 << 20) + 8192,
};

static const uint8_t ZEROS[64];

/* TDX TCB levels (component vectors descending, as Intel's verifier sorts them). Level 0
 * needs the SGX components of softsgx's UpToDate level; the others need none, so a platform
 * whose PCK reaches UpToDate is judged by its TEE_TCB_SVN alone: component 2 at least 3 is
 * UpToDate, 2 is OutOfDate, 1 is Revoked, 0 matches no level. Components 0 and 1 are the TDX
 * module's SVN and major version (1: the module identity TDX_01 judges the SVN: at least 4
 * is UpToDate, 2..3 OutOfDate, below 2 not supported). */
static const struct {
    const char *status;
    uint8_t sgx_micro, sgx_config, pcesvn, tdx2;
    const char *date;
    const char *advisories;
} TDX_LEVELS[] = {
    {"UpToDate", 14, 1, 13, 3, "2024-11-13T00:00:00Z", NULL},
    {"OutOfDate", 0, 0, 0, 2, "2023-08-09T00:00:00Z", "[\"INTEL-SA-00960\"]"},
    {"Revoked", 0, 0, 0, 1, "2022-11-09T00:00:00Z", "[\"INTEL-SA-00837\",\"INTEL-SA-00960\"]"},
};

static MR_RESULT module_json(const char *id, mr_buf *out)
{
    static const uint8_t signer[48];
    MR_GUARD(mr_buf_printf(out, "{%s%s%s\"mrsigner\":\"", id ? "\"id\":\"" : "", id ? id : "",
                           id ? "\"," : ""));
    MR_GUARD(mr_softsgx_hex_upper_(signer, sizeof(signer), out));
    MR_GUARD(mr_buf_append_str(out, "\",\"attributes\":\"0000000000000000\","
                                    "\"attributesMask\":\"FFFFFFFFFFFFFFFF\""));
    if (id == NULL)
        return mr_buf_append_str(out, "}");
    return mr_buf_append_str(out, ",\"tcbLevels\":[{\"tcb\":{\"isvsvn\":4},\"tcbDate\":"
                                  "\"2024-11-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"},"
                                  "{\"tcb\":{\"isvsvn\":2},\"tcbDate\":\"2023-08-09T00:00:00Z\","
                                  "\"tcbStatus\":\"OutOfDate\",\"advisoryIDs\":"
                                  "[\"INTEL-SA-00960\"]}]}");
}

static MR_RESULT components(mr_buf *out, const char *name, const uint8_t c[16])
{
    MR_GUARD(mr_buf_printf(out, "\"%s\":[", name));
    for (int i = 0; i < 16; i++)
        MR_GUARD(mr_buf_printf(out, "%s{\"svn\":%u}", i ? "," : "", c[i]));
    return mr_buf_append_str(out, "]");
}

MR_RESULT mr_softsgx_tdx_tcb_info_json_(const char *issue, const char *next, mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out, "{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"%s\","
                                "\"nextUpdate\":\"%s\",\"fmspc\":\"",
                           issue, next));
    MR_GUARD(mr_softsgx_hex_upper_(mr_softsgx_fmspc_, sizeof(mr_softsgx_fmspc_), out));
    MR_GUARD(mr_buf_append_str(out, "\",\"pceId\":\""));
    MR_GUARD(mr_softsgx_hex_upper_(mr_softsgx_pce_id_, sizeof(mr_softsgx_pce_id_), out));
    MR_GUARD(mr_buf_append_str(out, "\",\"tcbType\":0,\"tcbEvaluationDataNumber\":17,"
                                    "\"tdxModule\":"));
    MR_GUARD(module_json(NULL, out));
    MR_GUARD(mr_buf_append_str(out, ",\"tdxModuleIdentities\":["));
    MR_GUARD(module_json("TDX_01", out));
    MR_GUARD(mr_buf_append_str(out, "],\"tcbLevels\":["));
    for (size_t i = 0; i < MR_ARRAY_LEN(TDX_LEVELS); i++) {
        uint8_t m = TDX_LEVELS[i].sgx_micro;
        uint8_t sgx[16] = {m, m, m ? 3 : 0, m ? 3 : 0, m ? 255 : 0, m ? 255 : 0,
                           TDX_LEVELS[i].sgx_config};
        uint8_t tdx[16] = {0, 0, TDX_LEVELS[i].tdx2};
        MR_GUARD(mr_buf_append_str(out, i ? ",{\"tcb\":{" : "{\"tcb\":{"));
        MR_GUARD(components(out, "sgxtcbcomponents", sgx));
        MR_GUARD(mr_buf_printf(out, ",\"pcesvn\":%u,", TDX_LEVELS[i].pcesvn));
        MR_GUARD(components(out, "tdxtcbcomponents", tdx));
        MR_GUARD(mr_buf_printf(out, "},\"tcbDate\":\"%s\",\"tcbStatus\":\"%s\"",
                               TDX_LEVELS[i].date, TDX_LEVELS[i].status));
        if (TDX_LEVELS[i].advisories != NULL)
            MR_GUARD(mr_buf_printf(out, ",\"advisoryIDs\":%s", TDX_LEVELS[i].advisories));
        MR_GUARD(mr_buf_append_str(out, "}"));
    }
    return mr_buf_append_str(out, "]}");
}

void mr_softtdx_identity_default(mr_softtdx_identity *out)
{
    memset(out, 0, sizeof(*out));
    out->tee_tcb_svn[0] = 4; /* module SVN */
    out->tee_tcb_svn[1] = 1; /* module major version: identity TDX_01 */
    out->tee_tcb_svn[2] = 3;
    for (size_t i = 0; i < sizeof(out->mrseam); i++)
        out->mrseam[i] = (uint8_t)(0x5e + i);
    out->td_attributes = 1ull << TD_ATTR_SEPT_VE_DISABLE_BIT;
    out->xfam = XFAM_DEFAULT;
}

/* TD report 1.0 (spec §5.4), 584 bytes. */
static MR_RESULT append_td_body(mr_buf *q, const mr_softtdx_identity *id, const uint8_t rd[64])
{
    MR_GUARD(mr_buf_append(q, id->tee_tcb_svn, 16));
    MR_GUARD(mr_buf_append(q, id->mrseam, 48));
    MR_GUARD(mr_buf_append(q, ZEROS, 48)); /* MRSIGNERSEAM: Intel's module */
    MR_GUARD(mr_buf_append_u64le(q, 0));   /* SEAMATTRIBUTES */
    MR_GUARD(mr_buf_append_u64le(q, id->td_attributes));
    MR_GUARD(mr_buf_append_u64le(q, id->xfam));
    MR_GUARD(mr_buf_append(q, id->mrtd, 48));
    MR_GUARD(mr_buf_append(q, id->mrconfigid, 48));
    MR_GUARD(mr_buf_append(q, id->mrowner, 48));
    MR_GUARD(mr_buf_append(q, id->mrownerconfig, 48));
    for (int i = 0; i < 4; i++)
        MR_GUARD(mr_buf_append(q, id->rtmr[i], 48));
    return mr_buf_append(q, rd, 64);
}

MR_RESULT mr_softsgx_tdx_quote(const mr_softsgx *s, const mr_softtdx_identity *id,
                               const uint8_t *report_data, size_t report_data_len, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    uint8_t rd[64] = {0};
    uint8_t sig[64];
    mr_buf q;
    mr_buf_init(&q, QUOTE_MAX, 0);
    MR_ENSURE_REF(s);
    MR_ENSURE_REF(id);
    MR_ENSURE(report_data_len <= sizeof(rd), MR_ERR_USAGE,
              "report data is %zu bytes, at most 64 fit", report_data_len);
    if (report_data_len > 0) {
        MR_ENSURE_REF(report_data);
        memcpy(rd, report_data, report_data_len);
    }
    /* header (spec §1.1): v4, ECDSA P-256, TEE type TDX */
    MR_GUARD_OUT(mr_buf_append_u16le(&q, 4));
    MR_GUARD_OUT(mr_buf_append_u16le(&q, 2));
    MR_GUARD_OUT(mr_buf_append_u32le(&q, TDX_TEE_TYPE));
    MR_GUARD_OUT(mr_buf_append(&q, ZEROS, 4));
    MR_GUARD_OUT(mr_buf_append(&q, mr_softsgx_intel_vendor_id_, 16));
    MR_GUARD_OUT(mr_buf_append(&q, s->plat.qe_id, 16));
    MR_GUARD_OUT(mr_buf_append(&q, ZEROS, 4));
    MR_GUARD_OUT(append_td_body(&q, id, rd));
    size_t signed_len = q.len;
    MR_ENSURE_OUT(signed_len == MR_SGX_QUOTE_HEADER_SIZE + TD_BODY_SIZE, MR_ERR_INTERNAL,
                  "quote layout");
    /* signature data (spec §1.4): signature, attestation key, type 6 around the QE part */
    size_t qe_part = MR_SGX_REPORT_BODY_SIZE + 64 + 2 + sizeof(s->qe_auth) + 2 + 4 + s->chain.len;
    size_t sig_len = 64 + 64 + 2 + 4 + qe_part;
    MR_ENSURE_OUT(sig_len <= UINT32_MAX, MR_ERR_INTERNAL, "quote too large");
    MR_GUARD_OUT(mr_ecdsa_p256_sign_raw(s->att_key, MR_SLICE(q.data, signed_len), sig));
    MR_GUARD_OUT(mr_buf_append_u32le(&q, (uint32_t)sig_len));
    MR_GUARD_OUT(mr_buf_append(&q, sig, sizeof(sig)));
    MR_GUARD_OUT(mr_buf_append(&q, s->att_pub, sizeof(s->att_pub)));
    MR_GUARD_OUT(mr_buf_append_u16le(&q, 6));
    MR_GUARD_OUT(mr_buf_append_u32le(&q, (uint32_t)qe_part));
    MR_GUARD_OUT(mr_softsgx_append_qe_part_(s, true, &q));
    MR_ENSURE_OUT(q.len == signed_len + 4 + sig_len, MR_ERR_INTERNAL, "quote layout");
    MR_GUARD_OUT(mr_buf_append(out, q.data, q.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&q);
    return res;
}
