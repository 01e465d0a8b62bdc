/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "coordinator/core/core_int.h"
#include "crypto/key.h"
#include "crypto/x509.h"

mr_result core_put_buf(mr_store_txn *t, const char *key, const mr_buf *b)
{
    return mr_store_put(t, key, b->data, b->len);
}

mr_result core_put_str(mr_store_txn *t, const char *key, const char *s)
{
    return mr_store_put(t, key, (const uint8_t *)s, strlen(s));
}

mr_result core_get_required(mr_store_txn *t, const char *key, mr_buf *out)
{
    bool found = false;
    MR_GUARD(mr_store_get(t, key, out, &found));
    MR_ENSURE(found, MR_ERR_NOT_FOUND, "requested value not set");
    return MR_SUCCESS;
}

mr_result core_put_cert(mr_store_txn *t, const char *key, X509 *cert)
{
    mr_buf der;
    mr_buf_init(&der, 0, 0);
    mr_result r = mr_x509_to_der(cert, &der);
    if (mr_ok(r))
        r = core_put_buf(t, key, &der);
    mr_buf_free(&der);
    return r;
}

mr_result core_put_key(mr_store_txn *t, const char *key, EVP_PKEY *k)
{
    mr_buf der;
    mr_buf_init(&der, 0, MR_BUF_SECRET);
    mr_result r = mr_key_private_to_der(k, MR_KEYFMT_SEC1, &der);
    if (mr_ok(r))
        r = core_put_buf(t, key, &der);
    mr_buf_free(&der);
    return r;
}
