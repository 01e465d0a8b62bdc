/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AES-256-GCM with a 12-byte nonce and a 16-byte tag. The cipher is fetched from OpenSSL once
 * per process (no per-call lookup: the store seals every commit record with it).
 *
 * The caller lays out nonce, ciphertext and tag itself (the file formats of
 * docs/state-format.md put them as nonce || ciphertext || tag after an authenticated header).
 *  mr_aead_encrypt  encrypts `in` into `out` (room for in.len bytes; may be in.ptr) and writes
 *                   the tag. Never reuse a nonce with the same key. Errors: MR_ERR_USAGE (key
 *                   length), MR_ERR_TOO_LARGE (oversized input), MR_ERR_INTERNAL
 *                   (OpenSSL/allocation).
 *  mr_aead_decrypt  checks the tag and decrypts `in` into `out` (room for in.len bytes; give
 *                   it secret memory when the plaintext is secret). On failure the in.len
 *                   bytes of `out` are wiped. Errors: MR_ERR_USAGE, MR_ERR_AUTH ("message
 *                   authentication failed": wrong key, AAD, nonce, tag, any bit flip),
 *                   MR_ERR_INTERNAL.
 *
 * `key` must be MR_AEAD_KEY_LEN bytes; `aad` and all inputs are borrowed.
 */
#ifndef MR_CRYPTO_AEAD_H
#define MR_CRYPTO_AEAD_H

#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_AEAD_KEY_LEN 32
#define MR_AEAD_NONCE_LEN 12
#define MR_AEAD_TAG_LEN 16
#define MR_AEAD_MAX_INPUT ((size_t)1 << 31) /* per call; far below the GCM limit */

MR_RESULT mr_aead_encrypt(mr_slice key, const uint8_t nonce[MR_AEAD_NONCE_LEN], mr_slice aad,
                          mr_slice in, uint8_t *out, uint8_t tag[MR_AEAD_TAG_LEN]);
MR_RESULT mr_aead_decrypt(mr_slice key, const uint8_t nonce[MR_AEAD_NONCE_LEN], mr_slice aad,
                          mr_slice in, const uint8_t tag[MR_AEAD_TAG_LEN], uint8_t *out);

#endif
