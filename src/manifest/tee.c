/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Package.TDX and Package.SNP (docs/manifest.md): validation in the consistency check and
 * the conversion into the verifier's package rules (attest/tee_policy.h).
 */
#include <stdio.h>
#include <string.h>

#include "common/codec.h"
#include "common/log.h"
#include "manifest/manifest_int.h"

static const char *S(const mr_mstr *s) { return s->ptr ? s->ptr : ""; }

/* A hex field of n bytes: empty, or exactly 2n hex digits. */
static MR_RESULT hex_field(const mr_mstr *v, size_t n, const char *field, const mr_mstr *pkg)
{
    uint8_t buf[64];
    if (v->len == 0)
        return MR_SUCCESS;
    MR_ENSURE(n <= sizeof(buf) && v->len == 2 * n &&
                  mr_ok(mr_hex_decode_fixed(v->ptr, v->len, buf, n)),
              MR_ERR_USAGE, "invalid %s in package %s: want %zu hex digits", field, S(pkg), 2 * n);
    return MR_SUCCESS;
}

static MR_RESULT check_tdx(const mr_manifest_package *p)
{
    const mr_manifest_tdx *t = &p->tdx;
    const mr_mstr *pkg = &p->name;
    static const char *const rtmr[] = {"TDX.RTMR0", "TDX.RTMR1", "TDX.RTMR2", "TDX.RTMR3"};
    MR_GUARD(hex_field(&t->mrtd, 48, "TDX.MRTD", pkg));
    for (int i = 0; i < 4; i++)
        MR_GUARD(hex_field(&t->rtmr[i], 48, rtmr[i], pkg));
    MR_GUARD(hex_field(&t->mrconfigid, 48, "TDX.MRConfigID", pkg));
    MR_GUARD(hex_field(&t->mrowner, 48, "TDX.MROwner", pkg));
    MR_GUARD(hex_field(&t->mrownerconfig, 48, "TDX.MROwnerConfig", pkg));
    MR_GUARD(hex_field(&t->td_attributes, 8, "TDX.TDAttributes", pkg));
    MR_GUARD(hex_field(&t->td_attributes_mask, 8, "TDX.TDAttributesMask", pkg));
    MR_GUARD(hex_field(&t->xfam, 8, "TDX.XFAM", pkg));
    MR_GUARD(hex_field(&t->xfam_mask, 8, "TDX.XFAMMask", pkg));
    MR_GUARD(hex_field(&t->min_tee_tcb_svn, 16, "TDX.MinTEETCBSVN", pkg));
    MR_ENSURE(t->td_attributes_mask.len == 0 || t->td_attributes.len != 0, MR_ERR_USAGE,
              "TDX.TDAttributesMask in package %s needs TDX.TDAttributes", S(pkg));
    MR_ENSURE(t->xfam_mask.len == 0 || t->xfam.len != 0, MR_ERR_USAGE,
              "TDX.XFAMMask in package %s needs TDX.XFAM", S(pkg));
    return MR_SUCCESS;
}

static MR_RESULT check_snp(const mr_manifest_package *p)
{
    const mr_manifest_snp *s = &p->snp;
    const mr_mstr *pkg = &p->name;
    MR_GUARD(hex_field(&s->measurement, 48, "SNP.Measurement", pkg));
    MR_GUARD(hex_field(&s->host_data, 32, "SNP.HostData", pkg));
    MR_GUARD(hex_field(&s->id_key_digest, 48, "SNP.IDKeyDigest", pkg));
    MR_GUARD(hex_field(&s->author_key_digest, 48, "SNP.AuthorKeyDigest", pkg));
    MR_GUARD(hex_field(&s->family_id, 16, "SNP.FamilyID", pkg));
    MR_GUARD(hex_field(&s->image_id, 16, "SNP.ImageID", pkg));
    MR_ENSURE(!s->has_vmpl || s->vmpl <= 3, MR_ERR_USAGE,
              "invalid SNP.VMPL in package %s: want 0, 1, 2 or 3", S(pkg));
    MR_ENSURE(!s->has_min_guest_svn || s->min_guest_svn <= UINT32_MAX, MR_ERR_USAGE,
              "invalid SNP.MinGuestSVN in package %s: want at most 4294967295", S(pkg));
    for (size_t i = 0; i < s->accepted_signing_keys.count; i++) {
        const mr_mstr *k = &s->accepted_signing_keys.items[i];
        MR_ENSURE(mr_manifest_mstr_eq_c(k, "VCEK") || mr_manifest_mstr_eq_c(k, "VLEK"),
                  MR_ERR_USAGE,
                  "unknown SNP.AcceptedSigningKeys entry \"%s\" in package %s (want VCEK or VLEK)",
                  S(k), S(pkg));
    }
    MR_ENSURE(p->accepted_tcb_statuses.count == 0 && p->accepted_advisories.count == 0,
              MR_ERR_USAGE,
              "AcceptedTCBStatuses and AcceptedAdvisories do not apply to the SNP package %s: "
              "set SNP.MinimumTCB",
              S(pkg));
    return MR_SUCCESS;
}

MR_RESULT mr_manifest_check_tee_packages_(const mr_manifest *m)
{
    for (size_t i = 0; i < m->packages.count; i++) {
        const mr_manifest_package *p = &m->packages.items[i];
        if (!p->tdx.present && !p->snp.present)
            continue;
        const char *tee = p->tdx.present ? "TDX" : "SNP";
        MR_ENSURE(!p->tdx.present || !p->snp.present, MR_ERR_USAGE,
                  "package %s defines both TDX and SNP", S(&p->name));
        MR_ENSURE(p->unique_id.len == 0 && p->signer_id.len == 0 && !p->has_product_id &&
                      !p->has_security_version,
                  MR_ERR_USAGE,
                  "package %s describes a %s workload: UniqueID, SignerID, ProductID and "
                  "SecurityVersion apply to SGX enclaves only",
                  S(&p->name), tee);
        MR_GUARD(p->tdx.present ? check_tdx(p) : check_snp(p));
    }
    return MR_SUCCESS;
}

static MR_RESULT missing_measurement(const mr_manifest_package *p, const char *field)
{
    if (p->debug) {
        MR_LOG_WARN("Manifest misses the measurement of a confidential-VM package. This is not "
                    "accepted in non-debug mode, please check your configuration.",
                    MR_F_STR("field", field), MR_F_STR("packageName", S(&p->name)));
        return MR_SUCCESS;
    }
    MR_BAIL(MR_ERR_USAGE, "manifest misses value for %s in package %s", field, S(&p->name));
}

MR_RESULT mr_manifest_check_tee_identity_(const mr_manifest_package *p)
{
    if (p->tdx.present) {
        const mr_manifest_tdx *t = &p->tdx;
        bool any = t->mrtd.len != 0;
        for (int i = 0; i < 4; i++)
            any = any || t->rtmr[i].len != 0;
        return any ? MR_SUCCESS : missing_measurement(p, "TDX.MRTD (or an RTMR)");
    }
    if (p->snp.present && p->snp.measurement.len == 0)
        return missing_measurement(p, "SNP.Measurement");
    return MR_SUCCESS;
}

/* ---- conversion --------------------------------------------------------------------------- */

static MR_RESULT hex_to(const mr_mstr *v, uint8_t *out, size_t n, bool *has)
{
    *has = v->len != 0;
    if (!*has)
        return MR_SUCCESS;
    MR_ENSURE(v->len == 2 * n, MR_ERR_USAGE, "invalid hex value in a package");
    return mr_hex_decode_fixed(v->ptr, v->len, out, n);
}

/* 8 bytes in report order (little-endian) */
static MR_RESULT hex_u64(const mr_mstr *v, uint64_t *out, bool *has)
{
    uint8_t b[8] = {0};
    MR_GUARD(hex_to(v, b, sizeof(b), has));
    *out = 0;
    for (int i = 7; i >= 0; i--)
        *out = (*out << 8) | b[i];
    return MR_SUCCESS;
}

MR_RESULT mr_manifest_tdx_package(const mr_manifest_package *p, mr_tdx_package *out)
{
    const mr_manifest_tdx *t = &p->tdx;
    bool has_mask = false;
    memset(out, 0, sizeof(*out));
    out->debug = p->debug;
    MR_GUARD(hex_to(&t->mrtd, out->mrtd, 48, &out->has_mrtd));
    for (int i = 0; i < 4; i++)
        MR_GUARD(hex_to(&t->rtmr[i], out->rtmr[i], 48, &out->has_rtmr[i]));
    MR_GUARD(hex_to(&t->mrconfigid, out->mrconfigid, 48, &out->has_mrconfigid));
    MR_GUARD(hex_to(&t->mrowner, out->mrowner, 48, &out->has_mrowner));
    MR_GUARD(hex_to(&t->mrownerconfig, out->mrownerconfig, 48, &out->has_mrownerconfig));
    MR_GUARD(hex_u64(&t->td_attributes, &out->td_attributes, &out->has_td_attributes));
    MR_GUARD(hex_u64(&t->td_attributes_mask, &out->td_attributes_mask, &has_mask));
    if (!has_mask)
        out->td_attributes_mask = UINT64_MAX;
    MR_GUARD(hex_u64(&t->xfam, &out->xfam, &out->has_xfam));
    MR_GUARD(hex_u64(&t->xfam_mask, &out->xfam_mask, &has_mask));
    if (!has_mask)
        out->xfam_mask = UINT64_MAX;
    MR_GUARD(hex_to(&t->min_tee_tcb_svn, out->min_tee_tcb_svn, 16, &out->has_min_tee_tcb_svn));
    return MR_SUCCESS;
}

MR_RESULT mr_manifest_snp_package(const mr_manifest_package *p, mr_snp_package *out)
{
    const mr_manifest_snp *s = &p->snp;
    memset(out, 0, sizeof(*out));
    out->debug = p->debug;
    MR_GUARD(hex_to(&s->measurement, out->measurement, 48, &out->has_measurement));
    MR_GUARD(hex_to(&s->host_data, out->host_data, 32, &out->has_host_data));
    MR_GUARD(hex_to(&s->id_key_digest, out->id_key_digest, 48, &out->has_id_key_digest));
    MR_GUARD(hex_to(&s->author_key_digest, out->author_key_digest, 48,
                    &out->has_author_key_digest));
    MR_GUARD(hex_to(&s->family_id, out->family_id, 16, &out->has_family_id));
    MR_GUARD(hex_to(&s->image_id, out->image_id, 16, &out->has_image_id));
    out->has_smt = s->policy.has_smt;
    out->smt = s->policy.smt;
    out->allow_migration_agent = s->policy.migration_agent;
    out->has_single_socket = s->policy.has_single_socket;
    out->single_socket = s->policy.single_socket;
    out->has_vmpl = s->has_vmpl;
    out->vmpl = s->vmpl;
    MR_ENSURE(s->min_guest_svn <= UINT32_MAX, MR_ERR_USAGE, "invalid SNP.MinGuestSVN");
    out->min_guest_svn = s->has_min_guest_svn ? (uint32_t)s->min_guest_svn : 0;
    out->min_bl = s->minimum_tcb.has_bl ? s->minimum_tcb.bl : 0;
    out->min_tee = s->minimum_tcb.has_tee ? s->minimum_tcb.tee : 0;
    out->min_snp = s->minimum_tcb.has_snp ? s->minimum_tcb.snp : 0;
    out->min_ucode = s->minimum_tcb.has_ucode ? s->minimum_tcb.ucode : 0;
    for (size_t i = 0; i < s->accepted_signing_keys.count; i++)
        out->signers |= mr_manifest_mstr_eq_c(&s->accepted_signing_keys.items[i], "VLEK")
                            ? MR_SNP_SIGNER_VLEK
                            : MR_SNP_SIGNER_VCEK;
    return MR_SUCCESS;
}
