/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP quote parsing and verification (spec/attestation.md §1 and §2). Step numbers in
 * comments refer to §2.
 */
#include "attest/dcap.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "attest/collateral.h"
#include "attest/collateral_int.h"
#include "attest/ossl.h"
#include "common/alloc.h"
#include "common/log.h"
#include "crypto/hash.h"

static const uint8_t intel_qe_vendor[16] = {0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9,
                                            0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07};

#define STEP_FAIL(step)                                                                       \
    do {                                                                                      \
        mr_error_prefix("%s", step);                                                          \
        goto out;                                                                             \
    } while (0)
#define STEP(x, step)                                                                         \
    do {                                                                                      \
        if (!mr_ok(x))                                                                        \
            STEP_FAIL(step);                                                                  \
    } while (0)

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
         * out of memory stays an internal error */
        mr_error_set(e.cat == MR_ERR_INTERNAL ? MR_ERR_INTERNAL : MR_ERR_ATTESTATION, e.file,
                     e.line, "quote parse: %s", e.msg);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

/* sgx_report_body_t (§1.2) */
static MR_RESULT parse_sgx_body(mr_slice body, mr_attest_sgx_claims *s, uint8_t rd[64])
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
        MR_GUARD(parse_sgx_body(q->body, &out->u.sgx, out->report_data));
        out->debug = (out->u.sgx.attr_flags & 0x2) != 0;
    } else {
        out->tee = MR_TEE_TDX;
        MR_GUARD(parse_td_body(q->body, &out->u.tdx, out->report_data));
        out->debug = (out->u.tdx.td_attributes & 0x1) != 0;
    }
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* PCK certificate SGX extension (OID 1.2.840.113741.1.13.1)                                  */

typedef struct pck_info {
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint8_t comp[16];
    uint8_t cpusvn[16];
    uint16_t pcesvn;
    unsigned have; /* bit per required item */
} pck_info;

enum { HAVE_FMSPC = 1, HAVE_PCEID = 2, HAVE_PCESVN = 4, HAVE_COMPS = 8 };

static const uint8_t sgx_ext_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

/* One DER TLV; only low tag numbers and definite lengths (as DER requires). */
static MR_RESULT der_tlv(mr_cursor *c, uint8_t *tag, mr_cursor *val)
{
    uint8_t b = 0;
    size_t len = 0;

    MR_GUARD(mr_cursor_u8(c, tag));
    MR_ENSURE((*tag & 0x1f) != 0x1f, MR_ERR_ATTESTATION, "unsupported DER tag");
    MR_GUARD(mr_cursor_u8(c, &b));
    if (b < 0x80) {
        len = b;
    } else {
        unsigned n = b & 0x7f;
        MR_ENSURE(n >= 1 && n <= 3, MR_ERR_ATTESTATION, "unsupported DER length");
        for (unsigned i = 0; i < n; i++) {
            MR_GUARD(mr_cursor_u8(c, &b));
            len = (len << 8) | b;
        }
    }
    return mr_cursor_sub(c, len, val);
}

static MR_RESULT der_uint(mr_cursor *v, uint8_t tag, unsigned max, unsigned *out)
{
    unsigned x = 0;
    size_t n = mr_cursor_remaining(v);
    uint8_t b = 0;

    MR_ENSURE(tag == 0x02 || tag == 0x0a, MR_ERR_ATTESTATION, "expected an INTEGER");
    MR_ENSURE(n >= 1 && n <= 3, MR_ERR_ATTESTATION, "INTEGER out of range");
    for (size_t i = 0; i < n; i++) {
        MR_GUARD(mr_cursor_u8(v, &b));
        if (i == 0)
            MR_ENSURE((b & 0x80) == 0, MR_ERR_ATTESTATION, "negative INTEGER");
        x = (x << 8) | b;
    }
    MR_ENSURE(x <= max, MR_ERR_ATTESTATION, "INTEGER out of range");
    *out = x;
    return MR_SUCCESS;
}

static MR_RESULT der_octets(mr_cursor *v, uint8_t tag, uint8_t *out, size_t n)
{
    MR_ENSURE(tag == 0x04 && mr_cursor_remaining(v) == n, MR_ERR_ATTESTATION,
              "expected an OCTET STRING of %zu bytes", n);
    return mr_cursor_read(v, out, n);
}

/* Reads SEQUENCE { OID, value } and returns the OID's last arc below `prefix`. */
static MR_RESULT ext_item(mr_cursor *seq, const uint8_t *prefix, size_t plen, unsigned *arc,
                          uint8_t *vtag, mr_cursor *val)
{
    uint8_t tag = 0;
    mr_cursor item, oid;
    mr_slice o;

    MR_GUARD(der_tlv(seq, &tag, &item));
    MR_ENSURE(tag == 0x30, MR_ERR_ATTESTATION, "expected a SEQUENCE");
    MR_GUARD(der_tlv(&item, &tag, &oid));
    MR_ENSURE(tag == 0x06, MR_ERR_ATTESTATION, "expected an OID");
    MR_GUARD(mr_cursor_view(&oid, mr_cursor_remaining(&oid), &o));
    *arc = 0;
    if (o.len == plen + 1 && memcmp(o.ptr, prefix, plen) == 0 && o.ptr[plen] < 0x80)
        *arc = o.ptr[plen];
    MR_GUARD(der_tlv(&item, vtag, val));
    return MR_SUCCESS;
}

static MR_RESULT parse_tcb_seq(mr_cursor *v, pck_info *p)
{
    uint8_t prefix[sizeof(sgx_ext_oid) + 1];
    unsigned seen = 0;

    memcpy(prefix, sgx_ext_oid, sizeof(sgx_ext_oid));
    prefix[sizeof(sgx_ext_oid)] = 0x02;
    while (mr_cursor_remaining(v) > 0) {
        unsigned arc = 0, x = 0;
        uint8_t tag = 0;
        mr_cursor val;
        MR_GUARD(ext_item(v, prefix, sizeof(prefix), &arc, &tag, &val));
        if (arc >= 1 && arc <= 16) {
            MR_GUARD(der_uint(&val, tag, 255, &x));
            p->comp[arc - 1] = (uint8_t)x;
            seen |= 1u << (arc - 1);
        } else if (arc == 17) {
            MR_GUARD(der_uint(&val, tag, 0xffff, &x));
            p->pcesvn = (uint16_t)x;
            p->have |= HAVE_PCESVN;
        } else if (arc == 18) {
            MR_GUARD(der_octets(&val, tag, p->cpusvn, 16));
        }
    }
    if (seen == 0xffff)
        p->have |= HAVE_COMPS;
    return MR_SUCCESS;
}

static MR_RESULT parse_pck_ext(X509 *leaf, pck_info *p)
{
    ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    int idx = -1;
    const ASN1_OCTET_STRING *data = NULL;
    mr_cursor c, seq;
    uint8_t tag = 0;

    memset(p, 0, sizeof(*p));
    MR_ENSURE(obj != NULL, MR_ERR_INTERNAL, "out of memory");
    idx = X509_get_ext_by_OBJ(leaf, obj, -1);
    ASN1_OBJECT_free(obj);
    MR_ENSURE(idx >= 0, MR_ERR_ATTESTATION, "PCK certificate has no SGX extension");
    data = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
    MR_ENSURE(data != NULL, MR_ERR_ATTESTATION, "empty SGX extension");
    mr_cursor_init(&c, ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data));
    MR_GUARD(der_tlv(&c, &tag, &seq));
    MR_ENSURE(tag == 0x30, MR_ERR_ATTESTATION, "SGX extension is not a SEQUENCE");
    while (mr_cursor_remaining(&seq) > 0) {
        unsigned arc = 0;
        mr_cursor val;
        MR_GUARD(ext_item(&seq, sgx_ext_oid, sizeof(sgx_ext_oid), &arc, &tag, &val));
        switch (arc) {
        case 2:
            MR_ENSURE(tag == 0x30, MR_ERR_ATTESTATION, "SGX extension TCB is not a SEQUENCE");
            MR_GUARD(parse_tcb_seq(&val, p));
            break;
        case 3:
            MR_GUARD(der_octets(&val, tag, p->pceid, 2));
            p->have |= HAVE_PCEID;
            break;
        case 4:
            MR_GUARD(der_octets(&val, tag, p->fmspc, 6));
            p->have |= HAVE_FMSPC;
            break;
        default:
            break;
        }
    }
    MR_ENSURE(p->have == (HAVE_FMSPC | HAVE_PCEID | HAVE_PCESVN | HAVE_COMPS),
              MR_ERR_ATTESTATION, "SGX extension lacks FMSPC, PCE-ID or TCB values");
    return MR_SUCCESS;
}

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

/* §2 step 7: TDX module identity. *module_level is NULL when the identity has no levels. */
static MR_RESULT check_tdx_module(const mr_dcap_tcb_info *ti, const mr_attest_tdx_claims *td,
                                  const mr_dcap_level **module_level)
{
    const mr_dcap_module_id *m = NULL;
    uint8_t seam_attr[8];

    *module_level = NULL;
    if (td->tee_tcb_svn[1] > 0) {
        char want[16];
        snprintf(want, sizeof(want), "TDX_%02X", td->tee_tcb_svn[1]);
        for (size_t i = 0; i < ti->module_id_count; i++)
            if (strcmp(ti->module_ids[i].id, want) == 0)
                m = &ti->module_ids[i];
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
                                   const mr_dcap_quote *q, const mr_dcap_level **qe_level,
                                   uint16_t *qe_svn)
{
    mr_attest_sgx_claims qe;
    uint8_t rd[64];
    const char *want = tdx ? "TD_QE" : "QE";
    uint8_t misc[4];

    MR_ENSURE(strcmp(qi->id, want) == 0, MR_ERR_ATTESTATION,
              "QE Identity is for \"%s\", the quote needs \"%s\"", qi->id, want);
    MR_GUARD(parse_sgx_body(q->qe_report, &qe, rd));
    *qe_svn = qe.isvsvn;
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
        const mr_dcap_module_id *m = NULL;
        char want[16];
        snprintf(want, sizeof(want), "TDX_%02X", td->tee_tcb_svn2[1]);
        for (size_t i = 0; i < ti->module_id_count; i++)
            if (strcmp(ti->module_ids[i].id, want) == 0)
                m = &ti->module_ids[i];
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
/* PCK chain cache                                                                            */
/*
 * Parsing and verifying the PEM chain of a quote dominates the cost of a verification
 * (OpenSSL 3 decoders), and every quote of a platform carries the same chain. Chains that
 * verified are remembered by the SHA-256 of the certification data and the roots they
 * verified against; the time check is done on every use against the chain's validity
 * window, and revocation is checked on every use against the collateral.
 */

#define PCK_CACHE_SIZE 64

typedef struct pck_entry {
    X509 *leaf, *intermediate;
    uint64_t roots_id;
    time_t not_before, not_after;
    unsigned long stamp;
    pck_info pck;
    uint8_t hash[32];
    bool used;
    bool processor_ca;
} pck_entry;

static pck_entry pck_cache[PCK_CACHE_SIZE];
static unsigned long pck_clock;
static pthread_mutex_t pck_lock = PTHREAD_MUTEX_INITIALIZER;

static bool pck_cache_get(const uint8_t hash[32], uint64_t roots_id, pck_entry *out)
{
    bool hit = false;
    pthread_mutex_lock(&pck_lock);
    for (size_t i = 0; i < PCK_CACHE_SIZE && !hit; i++) {
        pck_entry *e = &pck_cache[i];
        if (!e->used || e->roots_id != roots_id || memcmp(e->hash, hash, 32) != 0)
            continue;
        if (X509_up_ref(e->leaf) != 1)
            break;
        if (X509_up_ref(e->intermediate) != 1) {
            X509_free(e->leaf);
            break;
        }
        e->stamp = ++pck_clock;
        *out = *e;
        hit = true;
    }
    pthread_mutex_unlock(&pck_lock);
    return hit;
}

static void pck_cache_put(const pck_entry *in)
{
    pck_entry *victim = &pck_cache[0];

    pthread_mutex_lock(&pck_lock);
    for (size_t i = 0; i < PCK_CACHE_SIZE; i++) {
        pck_entry *e = &pck_cache[i];
        if (e->used && e->roots_id == in->roots_id && memcmp(e->hash, in->hash, 32) == 0) {
            pthread_mutex_unlock(&pck_lock);
            return;
        }
        if (!e->used || e->stamp < victim->stamp)
            victim = e;
        if (!e->used)
            break;
    }
    if (X509_up_ref(in->leaf) == 1) {
        if (X509_up_ref(in->intermediate) == 1) {
            if (victim->used) {
                X509_free(victim->leaf);
                X509_free(victim->intermediate);
            }
            *victim = *in;
            victim->used = true;
            victim->stamp = ++pck_clock;
        } else {
            X509_free(in->leaf);
        }
    }
    pthread_mutex_unlock(&pck_lock);
}

void mr_dcap_cache_clear(void)
{
    pthread_mutex_lock(&pck_lock);
    for (size_t i = 0; i < PCK_CACHE_SIZE; i++) {
        if (pck_cache[i].used) {
            X509_free(pck_cache[i].leaf);
            X509_free(pck_cache[i].intermediate);
        }
        memset(&pck_cache[i], 0, sizeof(pck_cache[i]));
    }
    pthread_mutex_unlock(&pck_lock);
}

/* §2 steps 2-3 and the PCK extension: a verified chain for the quote's certification data
 * (from the cache or freshly verified). *leaf and *intermediate are new references. */
static MR_RESULT pck_chain(const mr_dcap_quote *q, const mr_attest_roots *roots, time_t when,
                           pck_entry *out)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *certs = NULL, *untrusted = NULL;
    pck_entry e;
    char cn[128];

    memset(&e, 0, sizeof(e));
    MR_GUARD(mr_sha256(q->cert_data.ptr, q->cert_data.len, e.hash));
    e.roots_id = roots->id;
    if (!pck_cache_get(e.hash, roots->id, &e)) {
        STEP(mr_ossl_pem_certs(q->cert_data.ptr, q->cert_data.len, &certs), "PCK chain");
        e.leaf = sk_X509_value(certs, 0);
        MR_ENSURE_OUT(X509_up_ref(e.leaf) == 1, MR_ERR_INTERNAL, "certificate reference");
        mr_ossl_subject_cn(e.leaf, cn, sizeof(cn));
        MR_ENSURE_OUT(strstr(cn, "Intel SGX PCK Certificate") != NULL, MR_ERR_ATTESTATION,
                      "PCK chain: leaf CN \"%s\" is not an Intel SGX PCK Certificate", cn);
        untrusted = sk_X509_new_null();
        MR_ENSURE_ALLOC_OUT(untrusted);
        for (int i = 1; i < sk_X509_num(certs); i++) {
            X509 *c = sk_X509_value(certs, i);
            if (!mr_ossl_self_issued(c)) /* the root copy in the quote is never trusted */
                MR_ENSURE_OUT(sk_X509_push(untrusted, c) > 0, MR_ERR_INTERNAL, "out of memory");
        }
        STEP(mr_ossl_verify_chain(e.leaf, untrusted, roots->certs, 0, false, &e.intermediate,
                                  &e.not_before, &e.not_after),
             "PCK chain");
        mr_ossl_subject_cn(e.intermediate, cn, sizeof(cn));
        if (strcmp(cn, "Intel SGX PCK Processor CA") == 0)
            e.processor_ca = true;
        else
            MR_ENSURE_OUT(strcmp(cn, "Intel SGX PCK Platform CA") == 0, MR_ERR_ATTESTATION,
                          "PCK chain: issuer CN \"%s\" is not an Intel SGX PCK Platform or "
                          "Processor CA",
                          cn);
        STEP(parse_pck_ext(e.leaf, &e.pck), "PCK certificate");
        pck_cache_put(&e);
    }
    if (when < e.not_before || when > e.not_after) {
        char a[32], b[32], t[32];
        mr_ossl_fmt_time(e.not_before, a, sizeof(a));
        mr_ossl_fmt_time(e.not_after, b, sizeof(b));
        mr_ossl_fmt_time(when, t, sizeof(t));
        MR_BAIL_OUT(MR_ERR_ATTESTATION,
                    "PCK chain: certificate is not valid at %s (chain valid %s to %s)", t, a, b);
    }
    *out = e;
    e.leaf = e.intermediate = NULL;
    res = MR_SUCCESS;
out:
    X509_free(e.leaf);
    X509_free(e.intermediate);
    sk_X509_free(untrusted);
    sk_X509_pop_free(certs, X509_free);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* Verification (§2)                                                                          */

MR_RESULT mr_dcap_verify(const uint8_t *input, size_t input_len, const mr_attest_options *opts,
                         mr_attest_claims *out)
{
    mr_result res = MR_FAILURE;
    mr_attest_options defaults;
    const mr_attest_roots *roots = NULL;
    mr_slice raw;
    mr_dcap_quote q;
    mr_attest_claims claims;
    pck_entry chain;
    X509 *leaf = NULL, *intermediate = NULL;
    EVP_PKEY *attest_key = NULL;
    mr_dcap_collateral *col = NULL;
    pck_info pck;
    bool tdx = false, processor_ca = false;
    time_t when = 0;
    const mr_dcap_level *module_level = NULL, *qe_level = NULL, *sgx_level = NULL,
                        *tdx_level = NULL;
    uint16_t qe_svn = 0;

    memset(&defaults, 0, sizeof(defaults));
    memset(&chain, 0, sizeof(chain));
    if (opts == NULL)
        opts = &defaults;
    when = opts->verify_time != 0 ? opts->verify_time : time(NULL);
    roots = opts->roots != NULL ? opts->roots : mr_attest_roots_intel();
    MR_ENSURE(roots != NULL && input != NULL, MR_ERR_INTERNAL,
              "attestation: no trust anchor available");

    /* 1. parse */
    MR_GUARD(mr_dcap_unwrap(input, input_len, &raw));
    MR_GUARD(mr_dcap_parse(raw.ptr, raw.len, &q));
    STEP(mr_dcap_quote_claims(&q, &claims), "quote parse");
    tdx = claims.tee == MR_TEE_TDX;

    /* 2-3. PCK chain to the pinned root at the verification time; PCK extension */
    MR_GUARD_OUT(pck_chain(&q, roots, when, &chain));
    leaf = chain.leaf;
    intermediate = chain.intermediate;
    pck = chain.pck;
    processor_ca = chain.processor_ca;
    memcpy(claims.tcb.fmspc, pck.fmspc, 6);
    memcpy(claims.tcb.pceid, pck.pceid, 2);
    memcpy(claims.tcb.pck_cpusvn, pck.cpusvn, 16);
    memcpy(claims.tcb.pck_comp_svn, pck.comp, 16);
    claims.tcb.pcesvn = pck.pcesvn;

    /* collateral */
    if (opts->collateral != NULL) {
        col = mr_dcap_collateral_ref(opts->collateral);
    } else if (opts->source != NULL) {
        STEP(mr_collateral_source_get(opts->source, tdx, pck.fmspc,
                                      processor_ca ? "processor" : "platform", when, &col),
             "collateral");
    } else {
        MR_ENSURE_OUT(opts->flags & MR_ATTEST_ALLOW_NO_COLLATERAL, MR_ERR_ATTESTATION,
                      "collateral: no collateral source configured");
    }

    if (col != NULL) {
        bool first = true;
        /* 4. CRLs */
        STEP(mr_dcap_collateral_check_pck(col, roots, leaf, intermediate, when, opts->flags),
             "PCK revocation");
        /* 5. collateral chains, signatures and validity */
        STEP(mr_dcap_collateral_check(col, roots, when, opts->flags), "collateral");
        /* 6. TCB Info applies to this platform */
        MR_ENSURE_OUT(col->tcb.tdx == tdx, MR_ERR_ATTESTATION,
                      "TCB Info: collateral is for %s, the quote is %s",
                      col->tcb.tdx ? "TDX" : "SGX", tdx ? "TDX" : "SGX");
        MR_ENSURE_OUT(memcmp(col->tcb.fmspc, pck.fmspc, 6) == 0, MR_ERR_ATTESTATION,
                      "TCB Info: FMSPC does not match the PCK certificate");
        MR_ENSURE_OUT(memcmp(col->tcb.pceid, pck.pceid, 2) == 0, MR_ERR_ATTESTATION,
                      "TCB Info: PCE-ID does not match the PCK certificate");
        /* 7. TDX module identity */
        if (tdx)
            STEP(check_tdx_module(&col->tcb, &claims.u.tdx, &module_level),
                 "TDX module identity");
        window_add(&claims.tcb, col->tcb.issue_date, col->tcb.next_update, &first);
        window_add(&claims.tcb, col->qe.issue_date, col->qe.next_update, &first);
        if (col->pck_crl != NULL)
            window_add(&claims.tcb, col->pck_crl_this, col->pck_crl_next, &first);
        if (col->root_crl != NULL)
            window_add(&claims.tcb, col->root_crl_this, col->root_crl_next, &first);
        claims.tcb.tcb_eval_data_number = col->tcb.eval_num;
    }

    /* 8. QE report signature by the PCK key */
    STEP(mr_ossl_verify_raw_sig(X509_get0_pubkey(leaf), q.qe_report.ptr, q.qe_report.len,
                                q.qe_report_sig.ptr, "QE report signature"),
         "QE report");
    /* 9. attestation key binding */
    {
        uint8_t h[32];
        mr_attest_sgx_claims qe;
        uint8_t qrd[64];
        static const uint8_t zeros[32];
        STEP(parse_sgx_body(q.qe_report, &qe, qrd), "QE report");
        claims.tcb.qe_isvsvn = qe.isvsvn;
        const mr_slice bound[] = {q.attest_key, q.qe_auth_data};
        STEP(mr_sha256_v(bound, MR_ARRAY_LEN(bound), h), "attestation key binding");
        MR_ENSURE_OUT(memcmp(h, qrd, 32) == 0 && memcmp(qrd + 32, zeros, 32) == 0,
                      MR_ERR_ATTESTATION,
                      "attestation key binding: QE report data does not match "
                      "SHA-256(attestation key || QE auth data)");
    }
    /* 10. QE identity */
    if (col != NULL)
        STEP(check_qe_identity(&col->qe, tdx, &q, &qe_level, &qe_svn), "QE identity");
    /* 11. quote signature */
    STEP(mr_ossl_p256_from_raw(q.attest_key.ptr, &attest_key), "quote signature");
    STEP(mr_ossl_verify_raw_sig(attest_key, q.signed_region.ptr, q.signed_region.len,
                                q.quote_sig.ptr, "quote signature"),
         "quote signature");

    if (col != NULL) {
        const mr_dcap_tcb_info *ti = &col->tcb;
        mr_tcb_status st;
        /* 12. platform TCB level */
        for (size_t i = 0; i < ti->level_count && sgx_level == NULL; i++)
            if (sgx_level_ok(&ti->levels[i], &pck))
                sgx_level = &ti->levels[i];
        MR_ENSURE_OUT(sgx_level != NULL, MR_ERR_ATTESTATION,
                      "TCB level: TCB not supported (no TCB level matches the platform's PCK "
                      "TCB components)");
        if (tdx) {
            int start = claims.u.tdx.tee_tcb_svn[1] > 0 ? 2 : 0;
            for (size_t i = (size_t)(sgx_level - ti->levels); i < ti->level_count; i++) {
                const mr_dcap_level *lv = &ti->levels[i];
                bool ok = lv->has_tdx && sgx_level_ok(lv, &pck);
                for (int k = start; ok && k < 16; k++)
                    ok = claims.u.tdx.tee_tcb_svn[k] >= lv->tdx[k];
                if (ok) {
                    tdx_level = lv;
                    break;
                }
            }
            MR_ENSURE_OUT(tdx_level != NULL, MR_ERR_ATTESTATION,
                          "TCB level: TCB not supported (no TCB level matches the TD's "
                          "TEE_TCB_SVN)");
        }
        /* 13. converge */
        const mr_dcap_level *platform = tdx ? tdx_level : sgx_level;
        st = platform->status;
        claims.tcb.platform_status = st;
        claims.tcb.tcb_date = platform->date;
        claims.tcb.qe_status = qe_level->status;
        claims.tcb.module_status = tdx ? MR_TCB_UP_TO_DATE : MR_TCB_UNKNOWN;
        add_advisories(&claims.tcb, platform);
        add_advisories(&claims.tcb, qe_level);
        if (tdx && module_level != NULL) {
            claims.tcb.module_status = module_level->status;
            add_advisories(&claims.tcb, module_level);
            mr_tcb_status relaunch = st;
            STEP(td_relaunch(ti, &claims.u.tdx, qe_level->status, sgx_level->status, st,
                             module_level->status, &relaunch),
                 "TD relaunch check");
            if (relaunch != st) {
                st = relaunch;
            } else if (module_level->status == MR_TCB_OUT_OF_DATE) {
                st = converge_outdated(st);
            } else if (module_level->status == MR_TCB_REVOKED) {
                st = MR_TCB_REVOKED;
            }
        }
        if (qe_level->status == MR_TCB_OUT_OF_DATE)
            st = converge_outdated(st);
        else if (qe_level->status == MR_TCB_REVOKED)
            st = MR_TCB_REVOKED;
        claims.tcb.status = st;
        claims.tcb.evaluated = true;
    }
    *out = claims;
    res = MR_SUCCESS;
out:
    EVP_PKEY_free(attest_key);
    X509_free(intermediate);
    X509_free(leaf);
    mr_dcap_collateral_free(col);
    return res;
}
