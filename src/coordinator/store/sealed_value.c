/* SPDX-License-Identifier: Apache-2.0 */
/* Values sealed one by one for the shared store backends (sealed_value.h). */
#include "coordinator/store/sealed_value.h"

#include <string.h>

#include "crypto/aead.h"
#include "crypto/rand.h"

static MR_RESULT aad_for(const char *tag, mr_slice name, mr_buf *aad)
{
    MR_GUARD(mr_buf_append(aad, tag, strlen(tag) + 1)); /* with its NUL */
    return mr_buf_append(aad, name.ptr, name.len);
}

MR_RESULT mr_sv_seal(mr_slice key, const char *tag, mr_slice name, mr_slice plain, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf aad;
    mr_buf_init(&aad, 0, 0);
    uint8_t nonce[MR_AEAD_NONCE_LEN];
    MR_GUARD_OUT(aad_for(tag, name, &aad));
    MR_GUARD_OUT(mr_crypto_random_key(nonce, sizeof(nonce)));
    MR_GUARD_OUT(mr_buf_reserve(out, MR_AEAD_NONCE_LEN + plain.len + MR_AEAD_TAG_LEN));
    MR_GUARD_OUT(mr_buf_append(out, nonce, sizeof(nonce)));
    uint8_t *ct = out->data + out->len;
    MR_GUARD_OUT(mr_aead_encrypt(key, nonce, mr_buf_slice(&aad), plain, ct, ct + plain.len));
    out->len += plain.len + MR_AEAD_TAG_LEN;
    res = MR_SUCCESS;
out:
    mr_buf_free(&aad);
    return res;
}

MR_RESULT mr_sv_open(mr_slice key, const char *tag, mr_slice name, mr_slice sealed, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf aad;
    mr_buf_init(&aad, 0, 0);
    MR_ENSURE_OUT(sealed.len >= MR_AEAD_NONCE_LEN + MR_AEAD_TAG_LEN, MR_ERR_CORRUPT,
                  "sealed state is corrupted: value of %.*s too short", (int)name.len, name.ptr);
    size_t n = sealed.len - MR_AEAD_NONCE_LEN - MR_AEAD_TAG_LEN;
    MR_GUARD_OUT(aad_for(tag, name, &aad));
    MR_GUARD_OUT(mr_buf_reserve(out, n + 1));
    if (!mr_ok(mr_aead_decrypt(key, sealed.ptr, mr_buf_slice(&aad),
                               MR_SLICE(sealed.ptr + MR_AEAD_NONCE_LEN, n),
                               sealed.ptr + MR_AEAD_NONCE_LEN + n, out->data + out->len)))
        MR_BAIL_OUT(MR_ERR_CORRUPT, "sealed state is corrupted: value of %.*s does not open",
                    (int)name.len, name.ptr);
    out->len += n;
    res = MR_SUCCESS;
out:
    mr_buf_free(&aad);
    return res;
}
