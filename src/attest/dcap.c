/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP quote parsing (spec/attestation.md §1 and §2 step 1) and the claims of a quote's
 * report body. Verification is dcap_verify.c.
 */
#include "attest/dcap.h"

#include <string.h>

#include "attest/dcap_int.h"

static const uint8_t intel_qe_vendor[16] = {0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9,
                                            0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07};

/* ---------------------------------------------------------------------------------------- */
/* Parsing (§1)                                                                               */

MR_RESULT mr_dcap_unwrap(const uint8_t *in, size_t len, mr_slice *quote)
{
    mr_cursor c;
    uint32_t version = 0, type = 0;
    uint64_t size = 0;

    mr_cursor_init(&c, in, len);
    if (len >= MR_DCAP_OE_HEADER_LEN && mr_ok(mr_cursor_u32le(&c, &version)) &&
        mr_ok(mr_cursor_u32le(&c, &type)) && version == 1) {
        MR_ENSURE(type == 2, MR_ERR_ATTESTATION,
                  "quote parse: OE report type %u is not an SGX remote report", type);
        MR_GUARD(mr_cursor_u64le(&c, &size));
        MR_ENSURE(size == len - MR_DCAP_OE_HEADER_LEN, MR_ERR_ATTESTATION,
                  "quote parse: OE report size %llu does not match the %zu quote bytes",
                  (unsigned long long)size, len - MR_DCAP_OE_HEADER_LEN);
        *quote = MR_SLICE(in + MR_DCAP_OE_HEADER_LEN, len - MR_DCAP_OE_HEADER_LEN);
        return MR_SUCCESS;
    }
    *quote = MR_SLICE(in, len);
    return MR_SUCCESS;
}

/* QE report, its signature, auth data and the (inner) certification data. */
static MR_RESULT parse_qe_part(mr_cursor *c, mr_dcap_quote *q)
{
    uint16_t auth_len = 0;
    uint32_t cert_len = 0;

    MR_GUARD(mr_cursor_view(c, MR_DCAP_SGX_BODY_LEN, &q->qe_report));
    MR_GUARD(mr_cursor_view(c, 64, &q->qe_report_sig));
    MR_GUARD(mr_cursor_u16le(c, &auth_len));
    MR_GUARD(mr_cursor_view(c, auth_len, &q->qe_auth_data));
    MR_GUARD(mr_cursor_u16le(c, &q->cert_type));
    MR_GUARD(mr_cursor_u32le(c, &cert_len));
    MR_GUARD(mr_cursor_view(c, cert_len, &q->cert_data));
    return MR_SUCCESS;
}

static MR_RESULT parse_inner(const uint8_t *quote, size_t len, mr_dcap_quote *q)
{
    mr_cursor c, sig;
    uint32_t vendor_tee = 0, sig_len = 0, outer_len = 0;
    uint16_t outer_type = 0;
    uint32_t body_size = 0;
    size_t body_len = 0, signed_len = 0;

    memset(q, 0, sizeof(*q));
    mr_cursor_init(&c, quote, len);
    MR_GUARD(mr_cursor_u16le(&c, &q->version));
    MR_GUARD(mr_cursor_u16le(&c, &q->att_key_type));
    MR_GUARD(mr_cursor_u32le(&c, &vendor_tee));
    MR_ENSURE(q->version >= 3 && q->version <= 5, MR_ERR_ATTESTATION,
              "unsupported quote version %u", q->version);
    MR_ENSURE(q->att_key_type == 2, MR_ERR_ATTESTATION,
              "unsupported attestation key type %u (want 2, ECDSA P-256)", q->att_key_type);
    q->tee_type = q->version == 3 ? MR_DCAP_TEE_SGX : vendor_tee;
    MR_ENSURE(q->tee_type == MR_DCAP_TEE_SGX || q->tee_type == MR_DCAP_TEE_TDX,
              MR_ERR_ATTESTATION, "unsupported TEE type 0x%x", q->tee_type);
    MR_GUARD(mr_cursor_skip(&c, 4));
    {
        uint8_t vendor[16];
        MR_GUARD(mr_cursor_read(&c, vendor, sizeof(vendor)));
        MR_ENSURE(memcmp(vendor, intel_qe_vendor, 16) == 0, MR_ERR_ATTESTATION,
                  "QE vendor ID is not Intel's");
    }
    MR_GUARD(mr_cursor_skip(&c, 20));
    q->header = MR_SLICE(quote, MR_DCAP_HEADER_LEN);

    if (q->version == 5) {
        MR_GUARD(mr_cursor_u16le(&c, &q->body_type));
        MR_GUARD(mr_cursor_u32le(&c, &body_size));
        switch (q->body_type) {
        case 1: body_len = MR_DCAP_SGX_BODY_LEN; break;
        case 2: body_len = MR_DCAP_TD10_BODY_LEN; break;
        case 3: body_len = MR_DCAP_TD15_BODY_LEN; break;
        default: MR_BAIL(MR_ERR_ATTESTATION, "unsupported v5 body type %u", q->body_type);
        }
        MR_ENSURE(body_size == body_len, MR_ERR_ATTESTATION,
                  "v5 body size %u does not match body type %u", body_size, q->body_type);
        MR_ENSURE((q->body_type == 1) == (q->tee_type == MR_DCAP_TEE_SGX), MR_ERR_ATTESTATION,
                  "v5 body type %u does not match the TEE type", q->body_type);
    } else {
        q->body_type = q->tee_type == MR_DCAP_TEE_SGX ? 1 : 2;
        body_len = q->tee_type == MR_DCAP_TEE_SGX ? MR_DCAP_SGX_BODY_LEN : MR_DCAP_TD10_BODY_LEN;
    }
    MR_GUARD(mr_cursor_view(&c, body_len, &q->body));
    signed_len = c.pos;
    q->signed_region = MR_SLICE(quote, signed_len);
    MR_GUARD(mr_cursor_u32le(&c, &sig_len));
    MR_GUARD(mr_cursor_sub(&c, sig_len, &sig));
    q->trailing = mr_cursor_remaining(&c);

    MR_GUARD(mr_cursor_view(&sig, 64, &q->quote_sig));
    MR_GUARD(mr_cursor_view(&sig, 64, &q->attest_key));
    if (q->version == 3) {
        MR_GUARD(parse_qe_part(&sig, q));
    } else {
        mr_cursor inner;
        MR_GUARD(mr_cursor_u16le(&sig, &outer_type));
        MR_ENSURE(outer_type == 6, MR_ERR_ATTESTATION,
                  "certification data type %u, want 6 (QE report certification data)",
                  outer_type);
        MR_GUARD(mr_cursor_u32le(&sig, &outer_len));
        MR_GUARD(mr_cursor_sub(&sig, outer_len, &inner));
        MR_GUARD(parse_qe_part(&inner, q));
    }
    MR_ENSURE(q->cert_type == 5, MR_ERR_ATTESTATION,
              "certification data type %u not supported (want 5, PCK certificate chain)",
              q->cert_type);
    return MR_SUCCESS;
}

MR_RESULT mr_dcap_parse(const uint8_t *quote, size_t len, mr_dcap_quote *out)
{
    if (!mr_ok(parse_inner(quote, len, out))) {
        mr_error e;
        mr_error_take(&e);
        /* cursor errors are PROTOCOL ("truncated ..."); a bad quote is an attestation error,
         * out of memory stays an internal error. mr_error_set, not MR_BAIL: the error keeps
         * the file:line where it happened and changes its category, which mr_error_prefix
         * cannot do. */
        mr_error_set(e.cat == MR_ERR_INTERNAL ? MR_ERR_INTERNAL : MR_ERR_ATTESTATION, e.file,
                     e.line, "quote parse: %s", e.msg);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

MR_RESULT mr_dcap_sgx_body_(mr_slice body, mr_attest_sgx_claims *s, uint8_t rd[64])
{
    mr_cursor c;

    mr_cursor_init(&c, body.ptr, body.len);
    MR_GUARD(mr_cursor_read(&c, s->cpusvn, 16));
    MR_GUARD(mr_cursor_u32le(&c, &s->miscselect));
    MR_GUARD(mr_cursor_skip(&c, 12));
    MR_GUARD(mr_cursor_read(&c, s->isvextprodid, 16));
    MR_GUARD(mr_cursor_read(&c, s->attributes, 16));
    MR_GUARD(mr_cursor_read(&c, s->mrenclave, 32));
    MR_GUARD(mr_cursor_skip(&c, 32));
    MR_GUARD(mr_cursor_read(&c, s->mrsigner, 32));
    MR_GUARD(mr_cursor_skip(&c, 32));
    MR_GUARD(mr_cursor_read(&c, s->configid, 64));
    MR_GUARD(mr_cursor_u16le(&c, &s->isvprodid));
    MR_GUARD(mr_cursor_u16le(&c, &s->isvsvn));
    MR_GUARD(mr_cursor_u16le(&c, &s->configsvn));
    MR_GUARD(mr_cursor_skip(&c, 42));
    MR_GUARD(mr_cursor_read(&c, s->isvfamilyid, 16));
    MR_GUARD(mr_cursor_read(&c, rd, 64));
    {
        mr_cursor a;
        mr_cursor_init(&a, s->attributes, 16);
        MR_GUARD(mr_cursor_u64le(&a, &s->attr_flags));
        MR_GUARD(mr_cursor_u64le(&a, &s->xfrm));
    }
    return MR_SUCCESS;
}

/* TD report 1.0 / 1.5 (§5.4) */
static MR_RESULT parse_td_body(mr_slice body, mr_attest_tdx_claims *t, uint8_t rd[64])
{
    mr_cursor c;

    mr_cursor_init(&c, body.ptr, body.len);
    MR_GUARD(mr_cursor_read(&c, t->tee_tcb_svn, 16));
    MR_GUARD(mr_cursor_read(&c, t->mrseam, 48));
    MR_GUARD(mr_cursor_read(&c, t->mrsignerseam, 48));
    MR_GUARD(mr_cursor_u64le(&c, &t->seam_attributes));
    MR_GUARD(mr_cursor_u64le(&c, &t->td_attributes));
    MR_GUARD(mr_cursor_u64le(&c, &t->xfam));
    MR_GUARD(mr_cursor_read(&c, t->mrtd, 48));
    MR_GUARD(mr_cursor_read(&c, t->mrconfigid, 48));
    MR_GUARD(mr_cursor_read(&c, t->mrowner, 48));
    MR_GUARD(mr_cursor_read(&c, t->mrownerconfig, 48));
    for (int i = 0; i < 4; i++)
        MR_GUARD(mr_cursor_read(&c, t->rtmr[i], 48));
    MR_GUARD(mr_cursor_read(&c, rd, 64));
    if (mr_cursor_remaining(&c) > 0) {
        t->has_td15 = true;
        MR_GUARD(mr_cursor_read(&c, t->tee_tcb_svn2, 16));
        MR_GUARD(mr_cursor_read(&c, t->mrservicetd, 48));
    }
    return MR_SUCCESS;
}

MR_RESULT mr_dcap_quote_claims(const mr_dcap_quote *q, mr_attest_claims *out)
{
    memset(out, 0, sizeof(*out));
    out->quote_version = q->version;
    out->tcb.status = MR_TCB_UNKNOWN;
    out->tcb.platform_status = MR_TCB_UNKNOWN;
    out->tcb.qe_status = MR_TCB_UNKNOWN;
    out->tcb.module_status = MR_TCB_UNKNOWN;
    if (q->tee_type == MR_DCAP_TEE_SGX) {
        out->tee = MR_TEE_SGX;
        MR_GUARD(mr_dcap_sgx_body_(q->body, &out->u.sgx, out->report_data));
        out->debug = (out->u.sgx.attr_flags & 0x2) != 0;
    } else {
        out->tee = MR_TEE_TDX;
        MR_GUARD(parse_td_body(q->body, &out->u.tdx, out->report_data));
        out->debug = (out->u.tdx.td_attributes & 0x1) != 0;
    }
    return MR_SUCCESS;
}
