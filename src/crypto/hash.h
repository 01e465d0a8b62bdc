/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One-shot message digests. Output goes into caller arrays of the fixed size; inputs are
 * borrowed. Fail only on OpenSSL internal errors (MR_ERR_INTERNAL).
 */
#ifndef MR_CRYPTO_HASH_H
#define MR_CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_SHA256_LEN 32
#define MR_SHA384_LEN 48
#define MR_SHA512_LEN 64

MR_RESULT mr_sha256(const void *data, size_t len, uint8_t out[MR_SHA256_LEN]);
MR_RESULT mr_sha384(const void *data, size_t len, uint8_t out[MR_SHA384_LEN]);
/* SHA-256 over the concatenation of `count` slices (no copy). */
MR_RESULT mr_sha256_v(const mr_slice *parts, size_t count, uint8_t out[MR_SHA256_LEN]);

#endif
