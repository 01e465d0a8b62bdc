/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HKDF-SHA-256 (RFC 5869): extract then expand.
 *
 * `ikm`, `salt`, `info` are borrowed. An empty salt means a salt of 32 zero bytes (RFC 5869
 * §2.2). out_len is 1 .. 255*32 = 8160 bytes. Errors: MR_ERR_USAGE (length out of range),
 * MR_ERR_INTERNAL.
 *
 *  mr_hkdf_sha256       appends out_len bytes to `out`, which should be an MR_BUF_SECRET
 *                       buffer.
 *  mr_hkdf_sha256_raw   writes out_len bytes to caller memory (secret memory for keys); on
 *                       failure the bytes are wiped.
 */
#ifndef MR_CRYPTO_KDF_H
#define MR_CRYPTO_KDF_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_HKDF_SHA256_MAX_OUT (255u * 32u)

MR_RESULT mr_hkdf_sha256(mr_slice ikm, mr_slice salt, mr_slice info, size_t out_len,
                         mr_buf *out);
MR_RESULT mr_hkdf_sha256_raw(mr_slice ikm, mr_slice salt, mr_slice info, uint8_t *out,
                             size_t out_len);

#endif
