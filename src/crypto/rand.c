/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/rand.h"

#include <limits.h>
#include <openssl/rand.h>

static MR_RESULT fill(int (*gen)(unsigned char *, int), void *out, size_t len)
{
    unsigned char *p = out;
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        MR_GUARD_OSSL(gen(p, chunk), MR_ERR_INTERNAL, "random number generator failed");
        p += chunk;
        len -= (size_t)chunk;
    }
    return MR_SUCCESS;
}

MR_RESULT mr_crypto_random(void *out, size_t len) { return fill(RAND_bytes, out, len); }

MR_RESULT mr_crypto_random_key(void *out, size_t len) { return fill(RAND_priv_bytes, out, len); }
