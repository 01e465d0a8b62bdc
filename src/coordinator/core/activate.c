/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Activate (spec §5.4–§5.7, 1.9.1 behaviour with §12.14): checks in MarbleRun's order with its
 * gRPC codes and texts, then the marble's key and certificate, its secrets, TTLS config, files,
 * environment and arguments (those in activate_params.c). Runs on a reference to the current epoch and takes no lock of
 * its own: the MaxActivations counter is an optimistic read-check-write transaction (under
 * the shared store lock) that is retried when its commit meets a conflict, and an activation
 * whose epoch was replaced while it ran is redone on the new one.
 */
#include <openssl/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/evidence.h"
#include "attest/policy.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/uuid.h"
#include "coordinator/core/activate_int.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/secrets.h"
#include "crypto/csr.h"
#include "crypto/hash.h"
#include "crypto/key.h"
#include "crypto/x509.h"

static void act_free(act *a)
{
    EVP_PKEY_free(a->key);
    mr_buf_free(&a->cert_der);
    mr_buf_free(&a->cert_pem);
    mr_buf_free(&a->key_der);
    mr_buf_free(&a->key_pem);
    mr_buf_free(&a->pub_der);
    core_secret_set_free(&a->mine);
    core_secret_set_free(&a->mine_prev);
    mr_free(a->cur_tab);
    mr_free(a->prev_tab);
    core_epoch_put(a->e);
}

/* Gives the current error MarbleRun's category and prefix for the step that failed. The
 * direct mr_error_set keeps the location of the cause (the macros would record this line). */
MR_RESULT core_act_fail_with(mr_errcat cat, const char *prefix)
{
    mr_error e;
    mr_error_take(&e);
    mr_error_set(cat, e.file, e.line, "%s: %s", prefix, e.msg);
    return MR_FAILURE;
}

/* ---- step 5: manifest requirements ---- */

static MR_RESULT find_marble(act *a, const char *type)
{
    const mr_manifest *m = a->e->manifest;
    for (size_t i = 0; i < m->marbles.count; i++) {
        if (m->marbles.items[i].name.ptr != NULL && strcmp(m->marbles.items[i].name.ptr, type) == 0) {
            a->marble = &m->marbles.items[i];
            a->marble_idx = i;
        }
    }
    MR_ENSURE(a->marble != NULL, MR_ERR_ATTESTATION, "unknown marble type requested");
    const char *pkg = a->marble->package.ptr != NULL ? a->marble->package.ptr : "";
    a->pkg = mr_manifest_find_package(m, pkg);
    MR_ENSURE(a->pkg != NULL, MR_ERR_ATTESTATION, "undefined package \"%s\"", pkg);
    return MR_SUCCESS;
}

/* The package's policy; the string arrays are allocated (free with mr_free). */
static MR_RESULT package_policy(const mr_manifest_package *p, mr_attest_package *out,
                                const char ***tcb, const char ***adv)
{
    memset(out, 0, sizeof(*out));
    out->debug = p->debug;
    out->unique_id = p->unique_id.len > 0 ? p->unique_id.ptr : NULL;
    out->signer_id = p->signer_id.len > 0 ? p->signer_id.ptr : NULL;
    out->has_product_id = p->has_product_id;
    out->product_id = p->product_id;
    out->has_security_version = p->has_security_version;
    out->security_version = p->security_version;
    *tcb = mr_calloc(p->accepted_tcb_statuses.count + 1, sizeof(char *));
    *adv = mr_calloc(p->accepted_advisories.count + 1, sizeof(char *));
    MR_ENSURE_ALLOC(*tcb);
    MR_ENSURE_ALLOC(*adv);
    for (size_t i = 0; i < p->accepted_tcb_statuses.count; i++)
        (*tcb)[i] = p->accepted_tcb_statuses.items[i].ptr ? p->accepted_tcb_statuses.items[i].ptr : "";
    for (size_t i = 0; i < p->accepted_advisories.count; i++)
        (*adv)[i] = p->accepted_advisories.items[i].ptr ? p->accepted_advisories.items[i].ptr : "";
    out->accepted_tcb_statuses = *tcb;
    out->accepted_tcb_status_count = p->accepted_tcb_statuses.count;
    out->accepted_advisories = *adv;
    out->accepted_advisory_count = p->accepted_advisories.count;
    return MR_SUCCESS;
}

static void note_tcb(act *a, const mr_attest_claims *claims)
{
    size_t off = 0;
    a->verified = true;
    (void)snprintf(a->tcb_status, sizeof(a->tcb_status), "%s", mr_tcb_status_name(claims->tcb.status));
    a->advisories[0] = '\0';
    for (size_t i = 0; i < claims->tcb.advisory_count && off < sizeof(a->advisories); i++) {
        int n = snprintf(a->advisories + off, sizeof(a->advisories) - off, "%s%s", i ? "," : "",
                         claims->tcb.advisories[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

static MR_RESULT validate_quote(mr_core *c, act *a, const mr_core_activation_req *req,
                                mr_attest_claims *claims)
{
    mr_result res = MR_FAILURE;
    const char **tcb = NULL, **adv = NULL;
    mr_attest_package pol;
    /* SGX and TDX quotes, SNP reports: told apart by their headers (attest/evidence.h) */
    if (!mr_ok(mr_attest_verify(req->quote.ptr, req->quote.len, &c->cfg.verify, claims)))
        return core_act_fail_with(MR_ERR_ATTESTATION, "verifying quote");
    note_tcb(a, claims);
    if (a->pkg->tdx.present || a->pkg->snp.present)
        return core_act_check_cvm(a->pkg, claims, req->peer_cert);
    /* a TD quote or an SNP report never matches an SGX package (an SNP report has no TCB
     * status the SGX TCB policy could judge, so say why before that) */
    MR_ENSURE_OUT(claims->tee == MR_TEE_SGX, MR_ERR_ATTESTATION,
                  "package properties apply to SGX enclaves only");
    MR_GUARD_OUT(package_policy(a->pkg, &pol, &tcb, &adv));
    /* §5.5 order: TCB policy, binding to the TLS certificate, package properties */
    MR_GUARD_OUT(mr_policy_check_tcb(claims, pol.accepted_tcb_statuses,
                                     pol.accepted_tcb_status_count, pol.accepted_advisories,
                                     pol.accepted_advisory_count, NULL));
    MR_GUARD_OUT(mr_policy_check_cert_binding(claims, req->peer_cert.ptr, req->peer_cert.len));
    MR_GUARD_OUT(mr_policy_check_package(claims, &pol));
    res = MR_SUCCESS;
out:
    mr_free((void *)tcb);
    mr_free((void *)adv);
    return res;
}

static MR_RESULT read_counter(mr_store_txn *t, const char *key, uint64_t *count)
{
    return core_read_number(t, key, 16, "activation count", count);
}

static MR_RESULT check_budget(mr_core *c, const act *a, const char *type)
{
    mr_result res = MR_FAILURE;
    char key[CORE_KEY_SIZE];
    uint64_t count = 0;
    mr_store_txn *t = NULL;
    if (a->marble->max_activations == 0)
        return MR_SUCCESS;
    MR_GUARD(core_key(key, P_ACTIVATIONS, type));
    core_store_rdlock(c);
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(read_counter(t, key, &count));
    MR_ENSURE_OUT(count < a->marble->max_activations, MR_ERR_ATTESTATION,
                  "reached max activations count (%llu) for marble type \"%s\"",
                  (unsigned long long)a->marble->max_activations, type);
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    core_store_unlock(c);
    return res;
}

static MR_RESULT check_requirements(mr_core *c, act *a, const mr_core_activation_req *req)
{
    MR_GUARD(find_marble(a, req->marble_type));
    if (!c->simulation) {
        mr_attest_claims claims;
        if (!mr_ok(validate_quote(c, a, req, &claims))) {
            if (a->e->manifest->infrastructures.count > 0) {
                MR_LOG_WARN("marble quote rejected", MR_F_STR("marbleType", req->marble_type),
                            MR_F_ERR());
                MR_BAIL(MR_ERR_ATTESTATION, "invalid infrastructure");
            }
            return core_act_fail_with(MR_ERR_ATTESTATION, "invalid quote");
        }
    }
    return check_budget(c, a, req->marble_type);
}

/* ---- step 7: the marble's key and certificate (§5.6) ---- */

static bool kept_in_subject(int nid)
{
    static const int keep[] = {NID_countryName, NID_organizationalUnitName, NID_localityName,
                               NID_stateOrProvinceName, NID_streetAddress, NID_postalCode,
                               NID_serialNumber};
    for (size_t k = 0; k < MR_ARRAY_LEN(keep); k++)
        if (nid == keep[k])
            return true;
    return false;
}

/* The marble certificate's subject: the CSR's attributes MarbleRun keeps, CN = UUID. out is
 * allocated here (free with mr_x509_name_clear, also after a failure). */
static MR_RESULT marble_subject(const mr_x509_name *from, const char *uuid, mr_x509_name *out)
{
    out->count = 0;
    out->attrs = mr_calloc(from->count + 1, sizeof(mr_x509_attr));
    MR_ENSURE_ALLOC(out->attrs);
    for (size_t i = 0; i < from->count; i++) {
        if (!kept_in_subject(from->attrs[i].nid))
            continue;
        mr_x509_attr *at = &out->attrs[out->count];
        at->nid = from->attrs[i].nid;
        at->value = mr_strdup(from->attrs[i].value);
        MR_ENSURE_ALLOC(at->value);
        out->count++;
    }
    /* O would be the marble root's issuer O, which is empty for the Coordinator's CA: the
     * CSR's O is dropped. */
    out->attrs[out->count].nid = NID_commonName;
    out->attrs[out->count].value = mr_strdup(uuid);
    MR_ENSURE_ALLOC(out->attrs[out->count].value);
    out->count++;
    return MR_SUCCESS;
}

static MR_RESULT issue_marble_cert(mr_core *c, act *a, const mr_core_activation_req *req)
{
    mr_result res = MR_FAILURE;
    mr_x509_name csr_subject;
    mr_x509_san_list sans;
    mr_x509_template t;
    static const int eku[] = {MR_EKU_SERVER_AUTH, MR_EKU_CLIENT_AUTH};
    memset(&csr_subject, 0, sizeof(csr_subject));
    memset(&sans, 0, sizeof(sans));
    memset(&t, 0, sizeof(t));
    /* The handshake proved possession of the TLS certificate's key (its CertificateVerify);
     * a CSR for that same key needs no second proof. Another key: its signature is checked. */
    mr_slice proven = {0};
    if (!mr_ok(mr_x509_der_spki(req->peer_cert, &proven))) {
        proven = MR_SLICE(NULL, 0);
        mr_error_clear();
    }
    if (!mr_ok(mr_csr_read_proven(req->csr, proven, &csr_subject, &sans))) {
        if (mr_error_is(MR_ERR_AUTH))
            MR_BAIL_OUT(MR_ERR_INTERNAL, "signature over CSR is invalid");
        MR_GUARD_OUT(core_act_fail_with(MR_ERR_INTERNAL, "parsing CSR"));
    }
    MR_GUARD_OUT(marble_subject(&csr_subject, a->uuid, &t.subject));
    t.dns_names = (const char *const *)sans.dns;
    t.n_dns_names = sans.n_dns;
    t.ips = sans.ips;
    t.n_ips = sans.n_ips;
    t.not_before = time(NULL);
    t.not_after = mr_x509_max_not_after(t.not_before);
    t.key_usage = MR_KU_DIGITAL_SIGNATURE | MR_KU_KEY_AGREEMENT;
    t.ext_key_usage = eku;
    t.n_ext_key_usage = MR_ARRAY_LEN(eku);
    t.basic_constraints_valid = true;
    mr_x509_ext type_ext = {.oid = MARBLE_TYPE_OID, .critical = false,
                            .value = MR_SLICE(req->marble_type, strlen(req->marble_type))};
    t.extra = &type_ext;
    t.n_extra = 1;
    MR_GUARD_OUT(mr_key_generate(c->cfg.curve, 0, &a->key));
    MR_GUARD_OUT(mr_x509_issue_der(&t, a->key, a->e->marble_root_cert, a->e->inter_key,
                                   &a->cert_der));
    MR_GUARD_OUT(mr_pem_encode_buf("CERTIFICATE", a->cert_der.data, a->cert_der.len,
                                   &a->cert_pem));
    MR_GUARD_OUT(mr_key_private_to_der(a->key, MR_KEYFMT_PKCS8, &a->key_der));
    MR_GUARD_OUT(mr_pem_encode_buf("PRIVATE KEY", a->key_der.data, a->key_der.len, &a->key_pem));
    MR_GUARD_OUT(mr_key_public_to_der(a->key, MR_KEYFMT_PKIX, &a->pub_der));
    res = MR_SUCCESS;
out:
    mr_x509_name_clear(&t.subject);
    mr_x509_san_list_clear(&sans);
    mr_x509_name_clear(&csr_subject);
    return res;
}

/* ---- steps 8–9: secrets of this marble ---- */

static MR_RESULT derive(const act *a, const core_gen_ctx *g, core_secret_set *out)
{
    const mr_manifest *m = a->e->manifest;
    out->items = mr_calloc(m->secrets.count, sizeof(core_secret));
    MR_ENSURE_ALLOC(out->items);
    for (size_t i = 0; i < m->secrets.count; i++) {
        const mr_manifest_secret *d = &m->secrets.items[i];
        if (d->user_defined || d->shared)
            continue;
        MR_GUARD(core_secret_generate(g, d, 0, &out->items[out->count]));
        out->count++;
    }
    return MR_SUCCESS;
}

static MR_RESULT marble_secrets(act *a)
{
    const core_epoch *e = a->e;
    core_gen_ctx g = {.marble_root = e->marble_root_cert, .inter_key = e->inter_key,
                      .root_secret = e->root_secret, .uuid = a->uuid, .now = time(NULL)};
    if (!a->marble->disable_secret_binding)
        g.bind_type = a->marble->name.ptr;
    MR_ENSURE(e->has_root_secret, MR_ERR_INTERNAL, "state has no root secret");
    MR_GUARD(derive(a, &g, &a->mine));
    /* The previous cycle: symmetric keys from the previous root secret; per-marble
     * certificates are fresh on every activation, so both cycles share them. Without a
     * previous root secret the previous keys are the current ones: nothing is derived twice,
     * the previous-secrets table falls back to `mine` (activate_params.c: secret_table). */
    if (!e->has_prev_root_secret)
        return MR_SUCCESS;
    g.root_secret = e->prev_root_secret;
    a->mine_prev.items = mr_calloc(a->mine.count, sizeof(core_secret));
    MR_ENSURE_ALLOC(a->mine_prev.items);
    for (size_t i = 0; i < a->mine.count; i++) {
        const core_secret *s = &a->mine.items[i];
        if (!core_secret_is_symmetric(s->def))
            continue;
        MR_GUARD(core_secret_generate(&g, s->def, 0, &a->mine_prev.items[a->mine_prev.count]));
        a->mine_prev.count++;
    }
    return MR_SUCCESS;
}

/* ---- step 12: the activation counter ---- */

/* An activation is ordered against state changes at this point: if an update was published
 * while it ran (e.g. a higher SecurityVersion), its result is discarded and it is redone. */
static MR_RESULT still_current(mr_core *c, act *a)
{
    a->stale = !core_epoch_is_current(c, a->e);
    MR_ENSURE(!a->stale, MR_ERR_INTERNAL, "the Coordinator state changed during the activation");
    return MR_SUCCESS;
}

/* One read-check-write of the counter. The transaction reads the newest state including
 * commits still waiting for their fsync, so concurrent activations of one type build on each
 * other and share a group commit; a concurrent writer makes the commit fail with a conflict
 * and the caller retries. The count can therefore never pass MaxActivations. */
static MR_RESULT bump_counter(mr_core *c, const act *a, const char *type, const char *key)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    uint64_t count = 0;
    char val[32]; /* at most 16 hex digits */
    MR_GUARD_OUT(mr_store_begin_ex(c->store, MR_STORE_TXN_LATEST, &t));
    MR_GUARD_OUT(read_counter(t, key, &count));
    MR_ENSURE_OUT(count < a->marble->max_activations, MR_ERR_ATTESTATION,
                  "marble verification failed: reached max activations count (%llu) for "
                  "marble type \"%s\"",
                  (unsigned long long)a->marble->max_activations, type);
    (void)snprintf(val, sizeof(val), "%llx", (unsigned long long)(count + 1));
    MR_GUARD_OUT(core_put_str(t, key, val));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(mr_store_commit(tc)); /* frees the transaction either way */
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    return res;
}

static MR_RESULT count_activation(mr_core *c, act *a, const char *type)
{
    char key[CORE_KEY_SIZE];
    if (a->marble->max_activations == 0)
        return still_current(c, a);
    MR_GUARD(core_key(key, P_ACTIVATIONS, type));
    for (int attempt = 0; attempt < 1000; attempt++) {
        MR_GUARD(still_current(c, a));
        core_store_rdlock(c);
        mr_result r = bump_counter(c, a, type, key);
        core_store_unlock(c);
        if (mr_ok(r))
            return MR_SUCCESS;
        if (mr_error_is(MR_ERR_ATTESTATION))
            return MR_FAILURE;
        if (!mr_error_is(MR_ERR_CONFLICT))
            return core_act_fail_with(MR_ERR_INTERNAL, "incrementing marble activations");
    }
    MR_BAIL(MR_ERR_INTERNAL, "incrementing marble activations: too many concurrent updates");
}

/* ---- the operation ---- */


static MR_RESULT activate(mr_core *c, act *a, const mr_core_activation_req *req,
                          mr_core_activation_resp *resp)
{
    MR_ENSURE(a->e->state == MR_STATE_ACCEPTING_MARBLES, MR_ERR_STATE,
              "cannot accept marbles in current state");
    MR_ENSURE(req->peer_cert.len > 0, MR_ERR_AUTH, "couldn't get marble TLS certificate");
    if (c->simulation)
        MR_LOG_WARN("SIMULATION MODE: activating a marble without checking its quote",
                    MR_F_STR("marbleType", req->marble_type));
    if (!mr_ok(check_requirements(c, a, req)))
        return core_act_fail_with(MR_ERR_ATTESTATION, "marble verification failed");
    mr_uuid u;
    if (!mr_ok(mr_uuid_parse(req->uuid, strlen(req->uuid), &u)))
        return core_act_fail_with(MR_ERR_USAGE, "invalid UUID");
    mr_uuid_format(&u, a->uuid);
    if (!mr_ok(issue_marble_cert(c, a, req)))
        return core_act_fail_with(MR_ERR_INTERNAL, "generating marble authentication secrets");
    if (!mr_ok(marble_secrets(a)))
        return core_act_fail_with(MR_ERR_INTERNAL, "generating marble secrets: rpc error: code = Internal "
                                          "desc = generating secrets for marble");
    MR_GUARD(core_act_params(a, resp));
    MR_GUARD(count_activation(c, a, req->marble_type));
    resp->marble_type = mr_strdup(req->marble_type);
    MR_ENSURE_ALLOC(resp->marble_type);
    memcpy(resp->uuid, a->uuid, sizeof(resp->uuid));
    return MR_SUCCESS;
}

static void act_init(mr_core *c, act *a)
{
    memset(a, 0, sizeof(*a));
    mr_buf_init(&a->cert_der, 0, 0);
    mr_buf_init(&a->cert_pem, 0, 0);
    mr_buf_init(&a->key_der, 0, MR_BUF_SECRET);
    mr_buf_init(&a->key_pem, 0, MR_BUF_SECRET);
    mr_buf_init(&a->pub_der, 0, 0);
    a->e = core_epoch_get(c);
}

MR_RESULT mr_core_activate(mr_core *c, const mr_core_activation_req *req,
                           mr_core_activation_resp *resp)
{
    act a;
    memset(resp, 0, sizeof(*resp));
    act_init(c, &a);
    mr_result r = activate(c, &a, req, resp);
    for (int attempt = 0; !mr_ok(r) && a.stale && attempt < 3; attempt++) {
        act_free(&a);
        mr_core_activation_resp_free(resp);
        act_init(c, &a);
        r = activate(c, &a, req, resp);
    }
    if (!mr_ok(r) && a.verified) {
        MR_LOG_WARN("marble activation refused", MR_F_STR("marbleType", req->marble_type),
                    MR_F_STR("uuid", req->uuid), MR_F_ERR(), MR_F_STR("tcbStatus", a.tcb_status),
                    MR_F_STR("advisoryIDs", a.advisories));
        mr_core_activation_resp_free(resp);
    } else if (!mr_ok(r)) {
        MR_LOG_WARN("marble activation refused", MR_F_STR("marbleType", req->marble_type),
                    MR_F_STR("uuid", req->uuid), MR_F_ERR());
        mr_core_activation_resp_free(resp);
    } else {
        MR_LOG_INFO("marble activated", MR_F_STR("marbleType", req->marble_type),
                    MR_F_STR("uuid", a.uuid));
    }
    act_free(&a);
    return r;
}
