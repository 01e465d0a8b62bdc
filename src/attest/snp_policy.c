/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP policy: compares verified claims with the expected values (spec §5.5 step 4).
 * Kept apart from verification so that "is this a genuine report" and "is this the guest
 * we want" stay two decisions.
 */
#include <string.h>

#include "attest/snp.h"

static MR_RESULT check_flags(const mr_snp_policy *pol, const mr_snp_report *r)
{
    MR_ENSURE(pol->allow_debug || (r->policy & MR_SNP_POLICY_DEBUG) == 0, MR_ERR_ATTESTATION,
              "SNP policy: the guest policy allows debugging");
    MR_ENSURE(pol->allow_migration_agent || (r->policy & MR_SNP_POLICY_MIGRATE_MA) == 0,
              MR_ERR_ATTESTATION, "SNP policy: the guest policy allows a migration agent");
    MR_ENSURE(!pol->check_vmpl || r->vmpl == pol->vmpl, MR_ERR_ATTESTATION,
              "SNP policy: VMPL is %u, want %u", r->vmpl, pol->vmpl);
    MR_ENSURE(r->guest_svn >= pol->min_guest_svn, MR_ERR_ATTESTATION,
              "SNP policy: guest SVN %u is below the minimum %u", r->guest_svn, pol->min_guest_svn);
    return MR_SUCCESS;
}

static MR_RESULT check_tcb(const mr_snp_policy *pol, const mr_snp_report *r)
{
    if (!pol->check_min_tcb)
        return MR_SUCCESS;
    const mr_snp_tcb *have = &r->reported_tcb;
    const mr_snp_tcb *min = &pol->min_tcb;
    MR_ENSURE(have->bl >= min->bl && have->tee >= min->tee && have->snp >= min->snp &&
                  have->ucode >= min->ucode,
              MR_ERR_ATTESTATION,
              "SNP policy: REPORTED_TCB bl=%u tee=%u snp=%u ucode=%u is below the minimum "
              "bl=%u tee=%u snp=%u ucode=%u",
              have->bl, have->tee, have->snp, have->ucode, min->bl, min->tee, min->snp,
              min->ucode);
    return MR_SUCCESS;
}

static MR_RESULT check_measurement(const mr_snp_policy *pol, const mr_snp_report *r)
{
    if (pol->n_measurements == 0) {
        MR_ENSURE(pol->allow_any_measurement, MR_ERR_ATTESTATION,
                  "SNP policy: no expected MEASUREMENT configured");
        return MR_SUCCESS;
    }
    MR_ENSURE_REF(pol->measurements);
    for (size_t i = 0; i < pol->n_measurements; i++)
        if (memcmp(pol->measurements[i], r->measurement, sizeof(r->measurement)) == 0)
            return MR_SUCCESS;
    MR_BAIL(MR_ERR_ATTESTATION, "SNP policy: MEASUREMENT is not one of the %zu expected values",
            pol->n_measurements);
}

static bool zero_from(const uint8_t *p, size_t from, size_t len)
{
    uint8_t acc = 0;
    for (size_t i = from; i < len; i++)
        acc |= p[i];
    return acc == 0;
}

static MR_RESULT check_data(const mr_snp_policy *pol, const mr_snp_report *r)
{
    if (pol->report_data != NULL) {
        size_t n = pol->report_data_len;
        MR_ENSURE(n >= 1 && n <= sizeof(r->report_data), MR_ERR_USAGE,
                  "SNP policy: expected report data must be 1..64 bytes, got %zu", n);
        MR_ENSURE(memcmp(pol->report_data, r->report_data, n) == 0, MR_ERR_ATTESTATION,
                  "SNP policy: REPORT_DATA does not match the expected binding");
        MR_ENSURE(!pol->report_data_rest_zero || zero_from(r->report_data, n, sizeof(r->report_data)),
                  MR_ERR_ATTESTATION, "SNP policy: REPORT_DATA has non-zero bytes after the binding");
    }
    MR_ENSURE(pol->host_data == NULL ||
                  memcmp(pol->host_data, r->host_data, sizeof(r->host_data)) == 0,
              MR_ERR_ATTESTATION, "SNP policy: HOST_DATA does not match");
    MR_ENSURE(pol->id_key_digest == NULL ||
                  memcmp(pol->id_key_digest, r->id_key_digest, sizeof(r->id_key_digest)) == 0,
              MR_ERR_ATTESTATION, "SNP policy: ID_KEY_DIGEST does not match");
    MR_ENSURE(pol->author_key_digest == NULL ||
                  memcmp(pol->author_key_digest, r->author_key_digest,
                         sizeof(r->author_key_digest)) == 0,
              MR_ERR_ATTESTATION, "SNP policy: AUTHOR_KEY_DIGEST does not match");
    return MR_SUCCESS;
}

MR_RESULT mr_snp_policy_check(const mr_snp_policy *pol, const mr_snp_claims *claims)
{
    MR_ENSURE_REF(pol);
    MR_ENSURE_REF(claims);
    const mr_snp_report *r = &claims->report;
    MR_ENSURE(pol->product == MR_SNP_PRODUCT_ANY || pol->product == claims->product,
              MR_ERR_ATTESTATION, "SNP policy: the report comes from %s, want %s",
              mr_snp_product_name(claims->product), mr_snp_product_name(pol->product));
    MR_GUARD(check_flags(pol, r));
    MR_GUARD(check_tcb(pol, r));
    MR_GUARD(check_measurement(pol, r));
    MR_GUARD(check_data(pol, r));
    return MR_SUCCESS;
}
