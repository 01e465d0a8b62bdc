/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "coordinator/core/core_int.h"
#include "crypto/key.h"
#include "crypto/x509.h"

MR_RESULT core_key(char key[CORE_KEY_SIZE], const char *prefix, const char *name)
{
    int n = snprintf(key, CORE_KEY_SIZE, "%s%s", prefix, name);
    MR_ENSURE(n >= 0 && (size_t)n < CORE_KEY_SIZE, MR_ERR_TOO_LARGE,
              "store key too long: %s... (limit %u bytes)", prefix, MR_STORE_KEY_MAX);
    return MR_SUCCESS;
}

MR_RESULT core_put_buf(mr_store_txn *t, const char *key, const mr_buf *b)
{
    return mr_store_put(t, key, b->data, b->len);
}

MR_RESULT core_put_str(mr_store_txn *t, const char *key, const char *s)
{
    return mr_store_put(t, key, (const uint8_t *)s, strlen(s));
}

MR_RESULT core_get_required(mr_store_txn *t, const char *key, mr_buf *out)
{
    bool found = false;
    MR_GUARD(mr_store_get(t, key, out, &found));
    MR_ENSURE(found, MR_ERR_NOT_FOUND, "requested value not set");
    return MR_SUCCESS;
}

MR_RESULT core_put_cert(mr_store_txn *t, const char *key, X509 *cert)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    mr_buf_init(&der, 0, 0);
    MR_GUARD_OUT(mr_x509_to_der(cert, &der));
    MR_GUARD_OUT(core_put_buf(t, key, &der));
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    return res;
}

MR_RESULT core_put_key(mr_store_txn *t, const char *key, EVP_PKEY *k)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    mr_buf_init(&der, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(mr_key_private_to_der(k, MR_KEYFMT_SEC1, &der));
    MR_GUARD_OUT(core_put_buf(t, key, &der));
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    return res;
}
