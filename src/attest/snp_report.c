/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP ATTESTATION_REPORT parsing (spec/attestation.md §5.5), the configfs-tsm / GHCB
 * certificate table (§5.3) and the legacy MSG_REPORT_RSP wrapper. Structure only; the
 * cryptographic checks live in snp_verify.c.
 */
#include <string.h>

#include "attest/snp.h"

/* Field offsets we assert while walking the report, so a mistake in the walk cannot go
 * unnoticed. */
enum {
    OFF_REPORT_DATA = 0x050,
    OFF_REPORTED_TCB = 0x180,
    OFF_CHIP_ID = 0x1A0,
    OFF_LAUNCH_TCB = 0x1F0,
    OFF_MIT_VECTORS = 0x1F8,
    OFF_SIGNATURE = 0x2A0,
};

#define SIGNER_AUTHOR_KEY_EN 0x1u
#define SIGNER_MASK_CHIP_KEY 0x2u
#define SIGNER_KEY_SHIFT 2
#define SIGNER_KEY_MASK 0x7u
#define SIGNER_RESERVED_MASK 0xFFFFFFE0u

void mr_snp_tcb_decode(uint64_t raw, mr_snp_tcb *out)
{
    out->raw = raw;
    out->bl = (uint8_t)(raw & 0xff);
    out->tee = (uint8_t)((raw >> 8) & 0xff);
    out->snp = (uint8_t)((raw >> 48) & 0xff);
    out->ucode = (uint8_t)((raw >> 56) & 0xff);
}

static MR_RESULT read_tcb(mr_cursor *c, mr_snp_tcb *out)
{
    uint64_t raw = 0;
    MR_GUARD(mr_cursor_u64le(c, &raw));
    mr_snp_tcb_decode(raw, out);
    return MR_SUCCESS;
}

/* Consumes n bytes that the ABI reserves and requires to be zero. */
static MR_RESULT expect_zero(mr_cursor *c, size_t n)
{
    size_t at = c->pos;
    mr_slice v;
    MR_GUARD(mr_cursor_view(c, n, &v));
    for (size_t i = 0; i < v.len; i++)
        MR_ENSURE(v.ptr[i] == 0, MR_ERR_ATTESTATION,
                  "SNP report: reserved byte at offset 0x%03zx is not zero", at + i);
    return MR_SUCCESS;
}

static MR_RESULT expect_at(const mr_cursor *c, size_t off)
{
    MR_ENSURE(c->pos == off, MR_ERR_INTERNAL, "internal error: SNP report walk at 0x%03zx, want 0x%03zx",
              c->pos, off);
    return MR_SUCCESS;
}

static MR_RESULT parse_header(mr_cursor *c, mr_snp_report *r)
{
    MR_GUARD(mr_cursor_u32le(c, &r->version));
    MR_ENSURE(r->version >= MR_SNP_MIN_VERSION && r->version <= MR_SNP_MAX_VERSION,
              MR_ERR_ATTESTATION, "SNP report: unsupported version %u (want %u..%u)", r->version,
              MR_SNP_MIN_VERSION, MR_SNP_MAX_VERSION);
    MR_GUARD(mr_cursor_u32le(c, &r->guest_svn));
    MR_GUARD(mr_cursor_u64le(c, &r->policy));
    MR_GUARD(mr_cursor_read(c, r->family_id, sizeof(r->family_id)));
    MR_GUARD(mr_cursor_read(c, r->image_id, sizeof(r->image_id)));
    MR_GUARD(mr_cursor_u32le(c, &r->vmpl));
    MR_GUARD(mr_cursor_u32le(c, &r->sig_algo));
    MR_GUARD(read_tcb(c, &r->current_tcb));
    MR_GUARD(mr_cursor_u64le(c, &r->platform_info));
    MR_GUARD(mr_cursor_u32le(c, &r->signer_info));
    MR_ENSURE((r->signer_info & SIGNER_RESERVED_MASK) == 0, MR_ERR_ATTESTATION,
              "SNP report: reserved signer info bits set (0x%08x)", r->signer_info);
    r->author_key_en = (r->signer_info & SIGNER_AUTHOR_KEY_EN) != 0;
    r->mask_chip_key = (r->signer_info & SIGNER_MASK_CHIP_KEY) != 0;
    r->signing_key = (uint8_t)((r->signer_info >> SIGNER_KEY_SHIFT) & SIGNER_KEY_MASK);
    MR_ENSURE(r->signing_key == MR_SNP_KEY_VCEK || r->signing_key == MR_SNP_KEY_VLEK ||
                  r->signing_key == MR_SNP_KEY_NONE,
              MR_ERR_ATTESTATION, "SNP report: unknown signing key type %u", r->signing_key);
    MR_GUARD(expect_zero(c, 4));
    return MR_SUCCESS;
}

static MR_RESULT parse_digests(mr_cursor *c, mr_snp_report *r)
{
    MR_GUARD(expect_at(c, OFF_REPORT_DATA));
    MR_GUARD(mr_cursor_read(c, r->report_data, sizeof(r->report_data)));
    MR_GUARD(mr_cursor_read(c, r->measurement, sizeof(r->measurement)));
    MR_GUARD(mr_cursor_read(c, r->host_data, sizeof(r->host_data)));
    MR_GUARD(mr_cursor_read(c, r->id_key_digest, sizeof(r->id_key_digest)));
    MR_GUARD(mr_cursor_read(c, r->author_key_digest, sizeof(r->author_key_digest)));
    MR_GUARD(mr_cursor_read(c, r->report_id, sizeof(r->report_id)));
    MR_GUARD(mr_cursor_read(c, r->report_id_ma, sizeof(r->report_id_ma)));
    return MR_SUCCESS;
}

static MR_RESULT parse_platform(mr_cursor *c, mr_snp_report *r)
{
    MR_GUARD(expect_at(c, OFF_REPORTED_TCB));
    MR_GUARD(read_tcb(c, &r->reported_tcb));
    if (r->version >= 3) {
        r->has_cpuid = true;
        MR_GUARD(mr_cursor_u8(c, &r->cpuid_fam_id));
        MR_GUARD(mr_cursor_u8(c, &r->cpuid_mod_id));
        MR_GUARD(mr_cursor_u8(c, &r->cpuid_step));
        MR_GUARD(expect_zero(c, OFF_CHIP_ID - OFF_REPORTED_TCB - 8 - 3));
    } else {
        MR_GUARD(expect_zero(c, OFF_CHIP_ID - OFF_REPORTED_TCB - 8));
    }
    MR_GUARD(expect_at(c, OFF_CHIP_ID));
    MR_GUARD(mr_cursor_read(c, r->chip_id, sizeof(r->chip_id)));
    MR_GUARD(read_tcb(c, &r->committed_tcb));
    MR_GUARD(mr_cursor_u8(c, &r->current_build));
    MR_GUARD(mr_cursor_u8(c, &r->current_minor));
    MR_GUARD(mr_cursor_u8(c, &r->current_major));
    MR_GUARD(expect_zero(c, 1));
    MR_GUARD(mr_cursor_u8(c, &r->committed_build));
    MR_GUARD(mr_cursor_u8(c, &r->committed_minor));
    MR_GUARD(mr_cursor_u8(c, &r->committed_major));
    MR_GUARD(expect_zero(c, 1));
    MR_GUARD(expect_at(c, OFF_LAUNCH_TCB));
    MR_GUARD(read_tcb(c, &r->launch_tcb));
    if (r->version >= 5) {
        r->has_mit_vectors = true;
        MR_GUARD(mr_cursor_u64le(c, &r->launch_mit_vector));
        MR_GUARD(mr_cursor_u64le(c, &r->current_mit_vector));
        MR_GUARD(expect_zero(c, OFF_SIGNATURE - OFF_MIT_VECTORS - 16));
    } else {
        MR_GUARD(expect_zero(c, OFF_SIGNATURE - OFF_MIT_VECTORS));
    }
    return MR_SUCCESS;
}

static MR_RESULT parse_signature(mr_cursor *c, mr_snp_report *r)
{
    MR_GUARD(expect_at(c, OFF_SIGNATURE));
    MR_GUARD(mr_cursor_read(c, r->sig_r, sizeof(r->sig_r)));
    MR_GUARD(mr_cursor_read(c, r->sig_s, sizeof(r->sig_s)));
    MR_GUARD(expect_zero(c, MR_SNP_REPORT_SIZE - OFF_SIGNATURE - 2 * MR_SNP_SIG_COMPONENT_SIZE));
    MR_ENSURE(mr_cursor_remaining(c) == 0, MR_ERR_INTERNAL, "internal error: SNP report walk");
    return MR_SUCCESS;
}

MR_RESULT mr_snp_report_parse(const uint8_t *data, size_t len, mr_snp_report *out)
{
    MR_ENSURE_REF(out);
    MR_ENSURE(data != NULL || len == 0, MR_ERR_INTERNAL, "internal error: data is NULL");
    MR_ENSURE(len == MR_SNP_REPORT_SIZE, MR_ERR_ATTESTATION,
              "SNP report: %s: %zu bytes, want %u", len < MR_SNP_REPORT_SIZE ? "truncated" : "oversized",
              len, MR_SNP_REPORT_SIZE);
    mr_snp_report r;
    memset(&r, 0, sizeof(r));
    mr_cursor c;
    mr_cursor_init(&c, data, len);
    MR_GUARD(parse_header(&c, &r));
    MR_GUARD(parse_digests(&c, &r));
    MR_GUARD(parse_platform(&c, &r));
    MR_GUARD(parse_signature(&c, &r));
    *out = r;
    return MR_SUCCESS;
}

/* ---- MSG_REPORT_RSP (legacy /dev/sev-guest) ---- */

#define RSP_REPORT_OFFSET 0x20u

MR_RESULT mr_snp_report_from_rsp(mr_slice rsp, mr_slice *report)
{
    MR_ENSURE_REF(report);
    mr_cursor c;
    mr_cursor_init(&c, rsp.ptr, rsp.len);
    uint32_t status = 0;
    uint32_t size = 0;
    MR_ENSURE(rsp.len >= RSP_REPORT_OFFSET, MR_ERR_ATTESTATION,
              "SNP report: response truncated (%zu bytes)", rsp.len);
    MR_GUARD(mr_cursor_u32le(&c, &status));
    MR_GUARD(mr_cursor_u32le(&c, &size));
    MR_ENSURE(status == 0, MR_ERR_ATTESTATION, "SNP report: firmware returned status 0x%x", status);
    MR_ENSURE(size == MR_SNP_REPORT_SIZE, MR_ERR_ATTESTATION,
              "SNP report: response declares %u report bytes, want %u", size, MR_SNP_REPORT_SIZE);
    MR_GUARD(mr_cursor_skip(&c, RSP_REPORT_OFFSET - 8));
    MR_ENSURE(mr_cursor_remaining(&c) >= size, MR_ERR_ATTESTATION,
              "SNP report: response truncated (%zu bytes)", rsp.len);
    MR_GUARD(mr_cursor_view(&c, size, report));
    return MR_SUCCESS;
}

/* ---- certificate table (GHCB extended guest request / configfs-tsm auxblob) ---- */

#define CERT_ENTRY_SIZE 24u
#define CERT_TABLE_MAX_ENTRIES 64u

/* GUIDs in the byte order they appear in the table (RFC 4122 string order). */
static const uint8_t GUID_VCEK[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                      0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
static const uint8_t GUID_VLEK[16] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
                                      0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};
static const uint8_t GUID_ASK[16] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                                     0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
static const uint8_t GUID_ARK[16] = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                                     0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};

static mr_slice *slot_for(mr_snp_cert_table *t, const uint8_t guid[16])
{
    if (memcmp(guid, GUID_VCEK, 16) == 0)
        return &t->vcek;
    if (memcmp(guid, GUID_VLEK, 16) == 0)
        return &t->vlek;
    if (memcmp(guid, GUID_ASK, 16) == 0)
        return &t->ask;
    if (memcmp(guid, GUID_ARK, 16) == 0)
        return &t->ark;
    return NULL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static MR_RESULT cert_entry(mr_slice blob, mr_cursor *c, mr_snp_cert_table *t, bool *done)
{
    uint8_t guid[16];
    uint32_t off = 0;
    uint32_t len = 0;
    MR_ENSURE(mr_cursor_remaining(c) >= CERT_ENTRY_SIZE, MR_ERR_ATTESTATION,
              "SNP certificates: table has no terminating entry");
    MR_GUARD(mr_cursor_read(c, guid, sizeof(guid)));
    MR_GUARD(mr_cursor_u32le(c, &off));
    MR_GUARD(mr_cursor_u32le(c, &len));
    if (all_zero(guid, sizeof(guid))) {
        MR_ENSURE(off == 0 && len == 0, MR_ERR_ATTESTATION,
                  "SNP certificates: terminating entry is not all zero");
        *done = true;
        return MR_SUCCESS;
    }
    mr_cursor body;
    mr_cursor_init(&body, blob.ptr, blob.len);
    MR_ENSURE(off <= blob.len && len <= blob.len - off && len > 0, MR_ERR_ATTESTATION,
              "SNP certificates: entry (offset %u, length %u) outside the %zu-byte table", off, len,
              blob.len);
    mr_slice *slot = slot_for(t, guid);
    if (slot == NULL)
        return MR_SUCCESS; /* an entry we do not use (e.g. a CRL or vendor data) */
    MR_ENSURE(slot->len == 0, MR_ERR_ATTESTATION, "SNP certificates: duplicate entry");
    MR_GUARD(mr_cursor_skip(&body, off));
    MR_GUARD(mr_cursor_view(&body, len, slot));
    return MR_SUCCESS;
}

MR_RESULT mr_snp_cert_table_parse(mr_slice blob, mr_snp_cert_table *out)
{
    MR_ENSURE_REF(out);
    mr_snp_cert_table t;
    memset(&t, 0, sizeof(t));
    mr_cursor c;
    mr_cursor_init(&c, blob.ptr, blob.len);
    bool done = false;
    for (unsigned i = 0; i < CERT_TABLE_MAX_ENTRIES && !done; i++)
        MR_GUARD(cert_entry(blob, &c, &t, &done));
    MR_ENSURE(done, MR_ERR_ATTESTATION, "SNP certificates: more than %u entries",
              CERT_TABLE_MAX_ENTRIES);
    *out = t;
    return MR_SUCCESS;
}

MR_RESULT mr_snp_cert_table_build(const mr_snp_cert_table *t, mr_buf *out)
{
    MR_ENSURE_REF(t);
    const struct {
        const uint8_t *guid;
        mr_slice cert;
    } e[] = {{GUID_VCEK, t->vcek}, {GUID_VLEK, t->vlek}, {GUID_ASK, t->ask}, {GUID_ARK, t->ark}};
    size_t n = 0;
    for (size_t i = 0; i < MR_ARRAY_LEN(e); i++)
        n += e[i].cert.len > 0 ? 1 : 0;
    size_t off = (n + 1) * CERT_ENTRY_SIZE;
    for (size_t i = 0; i < MR_ARRAY_LEN(e); i++) {
        if (e[i].cert.len == 0)
            continue;
        MR_ENSURE(off <= UINT32_MAX - e[i].cert.len, MR_ERR_TOO_LARGE,
                  "SNP certificates: table too large");
        MR_GUARD(mr_buf_append(out, e[i].guid, 16));
        MR_GUARD(mr_buf_append_u32le(out, (uint32_t)off));
        MR_GUARD(mr_buf_append_u32le(out, (uint32_t)e[i].cert.len));
        off += e[i].cert.len;
    }
    static const uint8_t zero[CERT_ENTRY_SIZE];
    MR_GUARD(mr_buf_append(out, zero, sizeof(zero)));
    for (size_t i = 0; i < MR_ARRAY_LEN(e); i++)
        if (e[i].cert.len > 0)
            MR_GUARD(mr_buf_append(out, e[i].cert.ptr, e[i].cert.len));
    return MR_SUCCESS;
}

MR_RESULT mr_snp_evidence_from_tsm(mr_slice report, const mr_snp_cert_table *certs,
                                   mr_snp_evidence *out)
{
    MR_ENSURE_REF(certs);
    MR_ENSURE_REF(out);
    mr_snp_report r;
    MR_GUARD(mr_snp_report_parse(report.ptr, report.len, &r));
    mr_snp_evidence ev = {.report = report, .chain = certs->ask, .chain2 = certs->ark};
    ev.vek = r.signing_key == MR_SNP_KEY_VLEK ? certs->vlek : certs->vcek;
    MR_ENSURE(ev.vek.len > 0, MR_ERR_ATTESTATION, "SNP certificates: the table has no %s",
              r.signing_key == MR_SNP_KEY_VLEK ? "VLEK" : "VCEK");
    *out = ev;
    return MR_SUCCESS;
}
