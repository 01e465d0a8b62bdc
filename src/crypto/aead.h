/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AES-256-GCM with a 12-byte nonce and a 16-byte tag.
 *
 * Sealed layout: nonce (12) || ciphertext (len(plaintext)) || tag (16).
 *
 *  mr_aead_seal   appends the sealed bytes to `out`. `nonce` is NULL for a fresh random nonce
 *                 (the normal case) or 12 caller bytes (tests, deterministic protocols; never
 *                 reuse a nonce with the same key). Key and plaintext are borrowed and not
 *                 modified. Errors: MR_ERR_USAGE (key length, oversized input),
 *                 MR_ERR_INTERNAL (OpenSSL/allocation).
 *  mr_aead_open   appends the plaintext to `out` (give it MR_BUF_SECRET when the plaintext is
 *                 secret). On any failure nothing is appended and released bytes are wiped.
 *                 Errors: MR_ERR_USAGE (key length, input shorter than nonce + tag),
 *                 MR_ERR_AUTH ("message authentication failed": wrong key, AAD, nonce, any
 *                 bit flip), MR_ERR_INTERNAL.
 */
#ifndef MR_CRYPTO_AEAD_H
#define MR_CRYPTO_AEAD_H

#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_AEAD_KEY_LEN 32
#define MR_AEAD_NONCE_LEN 12
#define MR_AEAD_TAG_LEN 16
#define MR_AEAD_OVERHEAD (MR_AEAD_NONCE_LEN + MR_AEAD_TAG_LEN)
#define MR_AEAD_MAX_INPUT ((size_t)1 << 31) /* per call; far below the GCM limit */

MR_RESULT mr_aead_seal(mr_slice key, const uint8_t *nonce, mr_slice aad, mr_slice plaintext,
                       mr_buf *out);
MR_RESULT mr_aead_open(mr_slice key, mr_slice aad, mr_slice sealed, mr_buf *out);

#endif
