/* SPDX-License-Identifier: Apache-2.0 */
/* Package rules for TDX and SEV-SNP marbles; see tee_policy.h. */
#include "attest/tee_policy.h"

#include <stdio.h>
#include <string.h>

#include "attest/evidence.h"
#include "attest/snp.h"

#define NC "PackageProperties not compliant: "

static void hex_lower(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * n] = '\0';
}

MR_RESULT mr_policy_check_tee(const mr_attest_claims *c, mr_tee_type want)
{
    MR_ENSURE(c->tee == want, MR_ERR_ATTESTATION,
              NC "the package describes a %s workload, the evidence is %s", mr_tee_type_name(want),
              mr_tee_type_name(c->tee));
    return MR_SUCCESS;
}

static MR_RESULT same_bytes(const char *field, const uint8_t *want, const uint8_t *got, size_t n)
{
    char w[2 * 64 + 1], g[2 * 64 + 1];
    if (memcmp(want, got, n) == 0)
        return MR_SUCCESS;
    hex_lower(want, n, w);
    hex_lower(got, n, g);
    MR_BAIL(MR_ERR_ATTESTATION, NC "%s: expected %s, got %s", field, w, g);
}

static MR_RESULT same_debug(bool want, bool got, const char *bit)
{
    MR_ENSURE(want == got, MR_ERR_ATTESTATION, NC "Debug: expected %s, got %s (%s)",
              want ? "true" : "false", got ? "true" : "false", bit);
    return MR_SUCCESS;
}

/* The 8 bytes of a u64 in report order (little-endian), as hex. */
static void u64_hex(uint64_t v, char out[17])
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    hex_lower(b, 8, out);
}

static MR_RESULT masked(const char *field, uint64_t want, uint64_t mask, uint64_t got)
{
    char w[17], m[17], g[17];
    if ((got & mask) == (want & mask))
        return MR_SUCCESS;
    u64_hex(want, w);
    u64_hex(mask, m);
    u64_hex(got, g);
    MR_BAIL(MR_ERR_ATTESTATION, NC "%s: expected %s (mask %s), got %s", field, w, m, g);
}

MR_RESULT mr_policy_check_tdx(const mr_attest_claims *c, const mr_tdx_package *p)
{
    MR_ENSURE_REF(c);
    MR_ENSURE_REF(p);
    MR_GUARD(mr_policy_check_tee(c, MR_TEE_TDX));
    const mr_attest_tdx_claims *t = &c->u.tdx;
    MR_GUARD(same_debug(p->debug, c->debug, "TDATTRIBUTES.DEBUG"));
    if (p->has_mrtd)
        MR_GUARD(same_bytes("TDX.MRTD", p->mrtd, t->mrtd, 48));
    for (int i = 0; i < 4; i++) {
        char field[16];
        (void)snprintf(field, sizeof(field), "TDX.RTMR%d", i);
        if (p->has_rtmr[i])
            MR_GUARD(same_bytes(field, p->rtmr[i], t->rtmr[i], 48));
    }
    if (p->has_mrconfigid)
        MR_GUARD(same_bytes("TDX.MRConfigID", p->mrconfigid, t->mrconfigid, 48));
    if (p->has_mrowner)
        MR_GUARD(same_bytes("TDX.MROwner", p->mrowner, t->mrowner, 48));
    if (p->has_mrownerconfig)
        MR_GUARD(same_bytes("TDX.MROwnerConfig", p->mrownerconfig, t->mrownerconfig, 48));
    if (p->has_td_attributes)
        MR_GUARD(masked("TDX.TDAttributes", p->td_attributes, p->td_attributes_mask,
                        t->td_attributes));
    if (p->has_xfam)
        MR_GUARD(masked("TDX.XFAM", p->xfam, p->xfam_mask, t->xfam));
    for (int i = 0; p->has_min_tee_tcb_svn && i < 16; i++) {
        char w[33], g[33];
        if (t->tee_tcb_svn[i] >= p->min_tee_tcb_svn[i])
            continue;
        hex_lower(p->min_tee_tcb_svn, 16, w);
        hex_lower(t->tee_tcb_svn, 16, g);
        MR_BAIL(MR_ERR_ATTESTATION,
                NC "TDX.MinTEETCBSVN: expected at least %s, got %s (component %d is below)", w, g,
                i);
    }
    return MR_SUCCESS;
}

/* ---- SEV-SNP ---------------------------------------------------------------------------- */

static MR_RESULT policy_bit(const char *field, uint64_t policy, uint64_t bit, bool want)
{
    bool got = (policy & bit) != 0;
    MR_ENSURE(got == want, MR_ERR_ATTESTATION, NC "%s: expected %s, got %s (guest POLICY 0x%llx)",
              field, want ? "true" : "false", got ? "true" : "false", (unsigned long long)policy);
    return MR_SUCCESS;
}

static MR_RESULT snp_policy_rules(const mr_attest_snp_claims *s, const mr_snp_package *p)
{
    if (p->has_smt)
        MR_GUARD(policy_bit("SNP.Policy.SMT", s->policy, MR_SNP_POLICY_SMT, p->smt));
    if (!p->allow_migration_agent)
        MR_GUARD(policy_bit("SNP.Policy.MigrationAgent", s->policy, MR_SNP_POLICY_MIGRATE_MA,
                            false));
    if (p->has_single_socket)
        MR_GUARD(policy_bit("SNP.Policy.SingleSocket", s->policy, MR_SNP_POLICY_SINGLE_SOCKET,
                            p->single_socket));
    MR_ENSURE(!p->has_vmpl || s->vmpl == p->vmpl, MR_ERR_ATTESTATION,
              NC "SNP.VMPL: expected %u, got %u", p->vmpl, s->vmpl);
    MR_ENSURE(s->guest_svn >= p->min_guest_svn, MR_ERR_ATTESTATION,
              NC "SNP.MinGuestSVN: expected at least %u, got %u", p->min_guest_svn, s->guest_svn);
    return MR_SUCCESS;
}

static MR_RESULT snp_tcb_rules(const mr_attest_snp_claims *s, const mr_snp_package *p)
{
    mr_snp_tcb t;
    mr_snp_tcb_decode(s->reported_tcb, &t);
    const struct {
        const char *name;
        uint8_t want, got;
    } comp[] = {{"Bootloader", p->min_bl, t.bl},
                {"TEE", p->min_tee, t.tee},
                {"SNP", p->min_snp, t.snp},
                {"Microcode", p->min_ucode, t.ucode}};
    for (size_t i = 0; i < MR_ARRAY_LEN(comp); i++)
        MR_ENSURE(comp[i].got >= comp[i].want, MR_ERR_ATTESTATION,
                  NC "SNP.MinimumTCB.%s: expected at least %u, got %u (REPORTED_TCB)",
                  comp[i].name, comp[i].want, comp[i].got);
    return MR_SUCCESS;
}

static MR_RESULT snp_signer_rule(const mr_attest_snp_claims *s, const mr_snp_package *p)
{
    unsigned key = (s->signer_info >> 2) & 0x7u;
    unsigned accepted = p->signers != 0 ? p->signers : MR_SNP_SIGNER_VCEK;
    bool ok = (key == MR_SNP_KEY_VCEK && (accepted & MR_SNP_SIGNER_VCEK)) ||
              (key == MR_SNP_KEY_VLEK && (accepted & MR_SNP_SIGNER_VLEK));
    MR_ENSURE(ok, MR_ERR_ATTESTATION, NC "SNP.AcceptedSigningKeys: expected %s, got %s",
              accepted == (MR_SNP_SIGNER_VCEK | MR_SNP_SIGNER_VLEK) ? "[VCEK VLEK]"
              : accepted == MR_SNP_SIGNER_VLEK                     ? "[VLEK]"
                                                                   : "[VCEK]",
              key == MR_SNP_KEY_VCEK ? "VCEK" : key == MR_SNP_KEY_VLEK ? "VLEK" : "none");
    return MR_SUCCESS;
}

MR_RESULT mr_policy_check_snp(const mr_attest_claims *c, const mr_snp_package *p)
{
    MR_ENSURE_REF(c);
    MR_ENSURE_REF(p);
    MR_GUARD(mr_policy_check_tee(c, MR_TEE_SNP));
    const mr_attest_snp_claims *s = &c->u.snp;
    MR_GUARD(same_debug(p->debug, c->debug, "POLICY.DEBUG"));
    MR_GUARD(snp_signer_rule(s, p));
    if (p->has_measurement)
        MR_GUARD(same_bytes("SNP.Measurement", p->measurement, s->measurement, 48));
    if (p->has_host_data)
        MR_GUARD(same_bytes("SNP.HostData", p->host_data, s->host_data, 32));
    if (p->has_id_key_digest)
        MR_GUARD(same_bytes("SNP.IDKeyDigest", p->id_key_digest, s->id_key_digest, 48));
    if (p->has_author_key_digest)
        MR_GUARD(same_bytes("SNP.AuthorKeyDigest", p->author_key_digest, s->author_key_digest,
                            48));
    if (p->has_family_id)
        MR_GUARD(same_bytes("SNP.FamilyID", p->family_id, s->family_id, 16));
    if (p->has_image_id)
        MR_GUARD(same_bytes("SNP.ImageID", p->image_id, s->image_id, 16));
    MR_GUARD(snp_policy_rules(s, p));
    return snp_tcb_rules(s, p);
}
