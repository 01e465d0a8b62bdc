/* SPDX-License-Identifier: Apache-2.0 */
/* sign-quote (spec §12.5), marble REST authentication and monotonic counters (§12.6). */
#include <stdio.h>
#include <string.h>

#include "attest/dcap.h"
#include "common/codec.h"
#include "common/uuid.h"
#include "coordinator/core/core_int.h"
#include "crypto/hash.h"
#include "crypto/x509.h"


static MR_RESULT feature(core_epoch *e, const char *gate)
{
    MR_ENSURE(e->manifest != NULL && mr_manifest_feature_enabled(e->manifest, gate), MR_ERR_AUTH,
              "%s feature is not enabled in the manifest", gate);
    return MR_SUCCESS;
}

MR_RESULT mr_core_sign_quote(mr_core *c, const uint8_t *quote, size_t len, const char *quote_b64,
                             char *status, size_t status_size, mr_buf *sig)
{
    mr_result res = MR_FAILURE;
    core_epoch *e = core_epoch_get(c);
    mr_attest_claims claims;
    MR_GUARD_OUT(feature(e, "SignQuoteEndpoint"));
    /* mr_dcap_verify takes both an OE report and a raw DCAP quote (spec §12.5) */
    if (!mr_ok(mr_dcap_verify(quote, len, &c->cfg.verify, &claims))) {
        mr_error err;
        mr_error_take(&err);
        mr_error_set(MR_ERR_ATTESTATION, err.file, err.line, "quote verification failed: %s", err.msg);
        goto out;
    }
    const char *name = mr_tcb_status_name(claims.tcb.status);
    (void)snprintf(status, status_size, "%s", name);
    /* ECDSA(root) over SHA-256(ASCII(base64(quote as submitted)) || ASCII(status)) */
    mr_buf msg;
    mr_buf_init(&msg, 0, 0);
    mr_result r = mr_buf_append_str(&msg, quote_b64);
    if (mr_ok(r))
        r = mr_buf_append_str(&msg, name);
    if (mr_ok(r))
        r = core_sign_hash(e->root_key, msg.data, msg.len, sig);
    mr_buf_free(&msg);
    MR_GUARD_OUT(r);
    res = MR_SUCCESS;
out:
    core_epoch_put(e);
    return res;
}

/* §12.6: the leaf is verified against the current marble root only. */
static MR_RESULT auth_one(core_epoch *e, mr_slice der, char *type, size_t tsize, mr_uuid *uuid)
{
    X509 *cert = NULL;
    mr_buf cn;
    mr_buf_init(&cn, 1024, 0);
    mr_x509_verify_opts vo = {.purpose = MR_X509_PURPOSE_SERVER, .fail_cat = MR_ERR_AUTH};
    mr_result r = mr_x509_from_der(der, &cert);
    if (mr_ok(r))
        r = mr_x509_verify(cert, e->marble_root_cert, &vo);
    if (mr_ok(r))
        r = mr_x509_subject_cn(cert, &cn);
    if (mr_ok(r))
        r = mr_uuid_parse((const char *)cn.data, cn.len, uuid);
    mr_slice ext = {0};
    bool critical = false, found = false;
    if (mr_ok(r))
        r = mr_x509_extension(cert, MARBLE_TYPE_OID, &ext, &critical, &found);
    if (mr_ok(r) && (!found || ext.len == 0 || ext.len >= tsize)) {
        mr_error_set(MR_ERR_AUTH, __FILE__, __LINE__, "certificate has no marble type extension");
        r = MR_FAILURE;
    }
    if (mr_ok(r)) {
        memcpy(type, ext.ptr, ext.len);
        type[ext.len] = '\0';
    }
    X509_free(cert);
    mr_buf_free(&cn);
    return r;
}

MR_RESULT mr_core_marble_auth(mr_core *c, mr_slice leaf, char *type, size_t tsize,
                              uint8_t uuid[16])
{
    core_epoch *e = core_epoch_get(c);
    mr_result r = MR_FAILURE;
    if (e->state != MR_STATE_ACCEPTING_MARBLES) {
        mr_error_set(MR_ERR_AUTH, __FILE__, __LINE__, "unauthorized marble: server is not in expected state");
    } else if (leaf.len == 0) {
        mr_error_set(MR_ERR_AUTH, __FILE__, __LINE__, "unauthorized marble: no client certificate provided");
    } else {
        mr_uuid u;
        r = auth_one(e, leaf, type, tsize, &u);
        if (mr_ok(r))
            memcpy(uuid, u.b, 16);
        else
            mr_error_prefix("unauthorized marble");
    }
    core_epoch_put(e);
    return r;
}

MR_RESULT mr_core_counter(mr_core *c, const char *type, const uint8_t uuid[16], const char *name,
                          uint64_t value, uint64_t *previous)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    core_epoch *e = core_epoch_get(c);
    mr_buf key, cur;
    mr_buf_init(&key, 0, 0);
    mr_buf_init(&cur, 64, 0);
    *previous = 0;
    MR_GUARD_OUT(feature(e, "MonotonicCounter"));
    MR_GUARD_OUT(mr_buf_append_str(&key, P_COUNTER));
    MR_GUARD_OUT(mr_b64_encode_buf((const uint8_t *)type, strlen(type), MR_B64_STD, &key));
    MR_GUARD_OUT(mr_buf_append_u8(&key, ':'));
    MR_GUARD_OUT(mr_b64_encode_buf(uuid, 16, MR_B64_STD, &key));
    MR_GUARD_OUT(mr_buf_append_u8(&key, ':'));
    MR_GUARD_OUT(mr_b64_encode_buf((const uint8_t *)name, strlen(name), MR_B64_STD, &key));
    MR_GUARD_OUT(mr_buf_nul_terminate(&key));
    pthread_mutex_lock(&c->counters_mu);
    core_store_rdlock(c);
    bool found = false;
    mr_result r = mr_store_begin(c->store, &t);
    if (mr_ok(r))
        r = mr_store_get(t, (const char *)key.data, &cur, &found);
    if (mr_ok(r) && found && cur.len == 8) {
        for (int i = 7; i >= 0; i--)
            *previous = (*previous << 8) | cur.data[i];
    }
    if (mr_ok(r) && value > *previous) {
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(value >> (8 * i));
        r = mr_store_put(t, (const char *)key.data, le, sizeof(le));
        if (mr_ok(r)) {
            mr_store_txn *tc = t;
            t = NULL;
            r = mr_store_commit(tc);
        }
    }
    mr_store_abort(t);
    t = NULL;
    core_store_unlock(c);
    pthread_mutex_unlock(&c->counters_mu);
    MR_GUARD_OUT(r);
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    mr_buf_free(&key);
    mr_buf_free(&cur);
    core_epoch_put(e);
    return res;
}
