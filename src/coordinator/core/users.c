/* SPDX-License-Identifier: Apache-2.0 */
/* User authentication (spec §4.4 with the 1.6.0 fix) and permission checks (§8.1). */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "coordinator/core/core_int.h"

MR_RESULT mr_core_auth_user(mr_core *c, mr_slice leaf, char *name, size_t size)
{
    MR_ENSURE(leaf.len > 0, MR_ERR_AUTH, "no client certificate provided");
    core_epoch *e = core_epoch_get(c);
    bool found = false;
    /* The leaf only (spec §4.4 correction); byte-identical DER, no chain checks. */
    for (size_t u = 0; u < e->n_users && !found; u++) {
        const mr_buf *d = &e->users[u].cert_der;
        if (d->len == leaf.len && CRYPTO_memcmp(d->data, leaf.ptr, d->len) == 0) {
            /* never hand out a shortened name: it could be another user's */
            found = strlen(e->users[u].name) < size;
            if (found)
                memcpy(name, e->users[u].name, strlen(e->users[u].name) + 1);
            break;
        }
    }
    core_epoch_put(e);
    MR_ENSURE(found, MR_ERR_AUTH, "unauthorized user: client certificate did not match any MarbleRun users");
    return MR_SUCCESS;
}
