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

/* The signed message: ASCII(base64(quote as submitted)) || ASCII(status). */
static MR_RESULT sign_status(EVP_PKEY *root_key, const char *quote_b64, const char *status,
                             mr_buf *sig)
{
    mr_result res = MR_FAILURE;
    mr_buf msg;
    mr_buf_init(&msg, 0, 0);
    MR_GUARD_OUT(mr_buf_append_str(&msg, quote_b64));
    MR_GUARD_OUT(mr_buf_append_str(&msg, status));
    MR_GUARD_OUT(core_sign_hash(root_key, msg.data, msg.len, sig));
    res = MR_SUCCESS;
out:
    mr_buf_free(&msg);
    return res;
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
        /* direct: the error keeps the location of the verification failure */
        mr_error_set(MR_ERR_ATTESTATION, err.file, err.line, "quote verification failed: %s", err.msg);
        goto out;
    }
    const char *name = mr_tcb_status_name(claims.tcb.status);
    int n = snprintf(status, status_size, "%s", name);
    MR_ENSURE_OUT(n >= 0 && (size_t)n < status_size, MR_ERR_INTERNAL,
                  "TCB status %s does not fit the status buffer", name);
    /* ECDSA(root) over SHA-256(ASCII(base64(quote as submitted)) || ASCII(status)) */
    MR_GUARD_OUT(sign_status(e->root_key, quote_b64, name, sig));
    res = MR_SUCCESS;
out:
    core_epoch_put(e);
    return res;
}

/* §12.6: the leaf is verified against the current marble root only. */
static MR_RESULT auth_one(core_epoch *e, mr_slice der, char *type, size_t tsize, mr_uuid *uuid)
{
    mr_result res = MR_FAILURE;
    X509 *cert = NULL;
    mr_buf cn;
    mr_slice ext = {0};
    bool critical = false, found = false;
    mr_buf_init(&cn, 1024, 0);
    mr_x509_verify_opts vo = {.purpose = MR_X509_PURPOSE_SERVER, .fail_cat = MR_ERR_AUTH};
    MR_GUARD_OUT(mr_x509_from_der(der, &cert));
    MR_GUARD_OUT(mr_x509_verify(cert, e->marble_root_cert, &vo));
    MR_GUARD_OUT(mr_x509_subject_cn(cert, &cn));
    MR_GUARD_OUT(mr_uuid_parse((const char *)cn.data, cn.len, uuid));
    MR_GUARD_OUT(mr_x509_extension(cert, MARBLE_TYPE_OID, &ext, &critical, &found));
    MR_ENSURE_OUT(found && ext.len > 0, MR_ERR_AUTH, "certificate has no marble type extension");
    MR_ENSURE_OUT(ext.len < tsize, MR_ERR_AUTH,
                  "the certificate's marble type is too long (limit %zu bytes)", tsize - 1);
    memcpy(type, ext.ptr, ext.len);
    type[ext.len] = '\0';
    res = MR_SUCCESS;
out:
    X509_free(cert);
    mr_buf_free(&cn);
    return res;
}

MR_RESULT mr_core_marble_auth(mr_core *c, mr_slice leaf, char *type, size_t tsize,
                              uint8_t uuid[16])
{
    mr_result res = MR_FAILURE;
    core_epoch *e = core_epoch_get(c);
    mr_uuid u;
    MR_ENSURE_OUT(e->state == MR_STATE_ACCEPTING_MARBLES, MR_ERR_AUTH,
                  "unauthorized marble: server is not in expected state");
    MR_ENSURE_OUT(leaf.len > 0, MR_ERR_AUTH, "unauthorized marble: no client certificate provided");
    if (!mr_ok(auth_one(e, leaf, type, tsize, &u))) {
        mr_error_prefix("unauthorized marble");
        goto out;
    }
    memcpy(uuid, u.b, 16);
    res = MR_SUCCESS;
out:
    core_epoch_put(e);
    return res;
}

#define COUNTER_ATTEMPTS 100

/* Raises the stored counter `key` to value if larger (counters lock and store lock held). */
static MR_RESULT counter_raise(mr_core *c, const char *key, uint64_t value, uint64_t *previous)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    mr_buf cur;
    bool found = false;
    *previous = 0;
    mr_buf_init(&cur, 64, 0);
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(mr_store_get(t, key, &cur, &found));
    if (found && cur.len == 8) {
        for (int i = 7; i >= 0; i--)
            *previous = (*previous << 8) | cur.data[i];
    }
    if (value > *previous) {
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(value >> (8 * i));
        MR_GUARD_OUT(mr_store_put(t, key, le, sizeof(le)));
        mr_store_txn *tc = t;
        t = NULL;
        MR_GUARD_OUT(mr_store_commit(tc)); /* frees the transaction either way */
    }
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    mr_buf_free(&cur);
    return res;
}

MR_RESULT mr_core_counter(mr_core *c, const char *type, const uint8_t uuid[16], const char *name,
                          uint64_t value, uint64_t *previous)
{
    mr_result res = MR_FAILURE;
    core_epoch *e = core_epoch_get(c);
    mr_buf key;
    mr_buf_init(&key, 0, 0);
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
    mr_result r = MR_FAILURE;
    /* another instance of a shared state may raise the same counter: read again and retry */
    for (int attempt = 0; attempt < COUNTER_ATTEMPTS; attempt++) {
        r = counter_raise(c, (const char *)key.data, value, previous);
        if (mr_ok(r) || !mr_error_is(MR_ERR_CONFLICT))
            break;
    }
    core_store_unlock(c);
    pthread_mutex_unlock(&c->counters_mu);
    MR_GUARD_OUT(r);
    res = MR_SUCCESS;
out:
    mr_buf_free(&key);
    core_epoch_put(e);
    return res;
}
