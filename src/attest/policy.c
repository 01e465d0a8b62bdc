/* SPDX-License-Identifier: Apache-2.0 */
/* MarbleRun package and TCB status policy; see policy.h. */
#include "attest/policy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/log.h"
#include "crypto/hash.h"

static void hex_lower(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * n] = '\0';
}

MR_RESULT mr_policy_check_cert_binding(const mr_attest_claims *c, const uint8_t *cert_der,
                                       size_t cert_len)
{
    uint8_t h[32];
    char hh[65], rd[129];

    MR_GUARD(mr_sha256(cert_der, cert_len, h));
    if (memcmp(h, c->report_data, 32) == 0)
        return MR_SUCCESS;
    hex_lower(h, 32, hh);
    hex_lower(c->report_data, 64, rd);
    MR_BAIL(MR_ERR_ATTESTATION, "hash(cert) != report.Data: %s != %s", hh, rd);
}

/* Go's %+v-like rendering of the compared properties. */
static void props(char *out, size_t cap, bool debug, const char *uid, const char *sid,
                  bool has_pid, uint64_t pid, bool has_svn, uint64_t svn)
{
    char pidbuf[24] = "<nil>", svnbuf[24] = "<nil>";
    if (has_pid)
        snprintf(pidbuf, sizeof(pidbuf), "%llu", (unsigned long long)pid);
    if (has_svn)
        snprintf(svnbuf, sizeof(svnbuf), "%llu", (unsigned long long)svn);
    snprintf(out, cap, "{Debug:%s UniqueID:%s SignerID:%s ProductID:%s SecurityVersion:%s}",
             debug ? "true" : "false", uid ? uid : "", sid ? sid : "", pidbuf, svnbuf);
}

MR_RESULT mr_policy_check_package(const mr_attest_claims *c, const mr_attest_package *p)
{
    char uid[65], sid[65];
    char want[256], got[256];
    bool ok = true;

    MR_ENSURE(c->tee == MR_TEE_SGX, MR_ERR_ATTESTATION,
              "package properties apply to SGX enclaves only");
    hex_lower(c->u.sgx.mrenclave, 32, uid);
    hex_lower(c->u.sgx.mrsigner, 32, sid);
    if (p->debug != c->debug)
        ok = false;
    if (p->unique_id != NULL && p->unique_id[0] != '\0' && strcasecmp(p->unique_id, uid) != 0)
        ok = false;
    if (p->signer_id != NULL && p->signer_id[0] != '\0' && strcasecmp(p->signer_id, sid) != 0)
        ok = false;
    if (p->has_product_id && p->product_id != c->u.sgx.isvprodid)
        ok = false;
    if (p->has_security_version && p->security_version > c->u.sgx.isvsvn)
        ok = false;
    if (ok)
        return MR_SUCCESS;
    props(want, sizeof(want), p->debug, p->unique_id, p->signer_id, p->has_product_id,
          p->product_id, p->has_security_version, p->security_version);
    props(got, sizeof(got), c->debug, uid, sid, true, c->u.sgx.isvprodid, true,
          c->u.sgx.isvsvn);
    MR_BAIL(MR_ERR_ATTESTATION, "PackageProperties not compliant:\nexpected: %s\ngot: %s", want,
            got);
}

static bool listed(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] != NULL && strcmp(list[i], s) == 0)
            return true;
    return false;
}

MR_RESULT mr_policy_check_tcb(const mr_attest_claims *c, const char *const *accepted,
                              size_t accepted_count, const char *const *advisories,
                              size_t advisory_count, bool *warned)
{
    static const char *const def[] = {"SWHardeningNeeded"};
    mr_tcb_status st = c->tcb.evaluated ? c->tcb.status : MR_TCB_UNKNOWN;
    const char *name = mr_tcb_status_name(st);

    if (warned)
        *warned = false;
    if (accepted_count == 0) {
        accepted = def;
        accepted_count = 1;
    }
    if (st == MR_TCB_UP_TO_DATE)
        return MR_SUCCESS;
    if (st == MR_TCB_SW_HARDENING_NEEDED) {
        char bad[MR_ERR_MSG_MAX / 2];
        size_t pos = 0;
        bool any = false;
        MR_ENSURE(listed(accepted, accepted_count, name), MR_ERR_ATTESTATION,
                  "TCB level invalid: %s", name);
        MR_LOG_INFO("TCB status SWHardeningNeeded accepted by configuration");
        if (advisory_count == 0)
            return MR_SUCCESS;
        bad[0] = '\0';
        for (size_t i = 0; i < c->tcb.advisory_count; i++) {
            bool ok = false;
            for (size_t j = 0; j < advisory_count && !ok; j++)
                ok = advisories[j] != NULL && strcasecmp(advisories[j], c->tcb.advisories[i]) == 0;
            if (ok)
                continue;
            int n = snprintf(bad + pos, sizeof(bad) - pos, "%s%s", any ? " " : "",
                             c->tcb.advisories[i]);
            if (n > 0 && (size_t)n < sizeof(bad) - pos)
                pos += (size_t)n;
            any = true;
        }
        MR_ENSURE(!any, MR_ERR_ATTESTATION,
                  "TCB status SWHardeningNeeded contains advisories not accepted by "
                  "configuration: [%s]",
                  bad);
        return MR_SUCCESS;
    }
    MR_ENSURE(listed(accepted, accepted_count, name), MR_ERR_ATTESTATION,
              "TCB level invalid: %s", name);
    MR_LOG_WARN("TCB level invalid, but accepted by configuration", MR_F_STR("status", name));
    if (warned)
        *warned = true;
    return MR_SUCCESS;
}
