/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256 and HMAC-SHA-256. Inputs are borrowed; digests go into caller arrays of the fixed
 * size. The algorithms are fetched from OpenSSL once per process (no per-call lookup). Fail
 * only on OpenSSL internal errors (MR_ERR_INTERNAL).
 *
 *  mr_sha256, mr_sha256_v   one-shot SHA-256 of one byte string / of the concatenation of
 *                           `count` slices (no copy).
 *  mr_hmac_sha256_*         an HMAC-SHA-256 context keyed once and reused for many messages
 *                           (e.g. a MAC per log record). The key is copied into OpenSSL's
 *                           context, which wipes it when freed. A context is not thread-safe:
 *                           use one per thread or hold a lock. mr_hmac_sha256_free accepts
 *                           NULL.
 */
#ifndef MR_CRYPTO_HASH_H
#define MR_CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_SHA256_LEN 32

MR_RESULT mr_sha256(const void *data, size_t len, uint8_t out[MR_SHA256_LEN]);
MR_RESULT mr_sha256_v(const mr_slice *parts, size_t count, uint8_t out[MR_SHA256_LEN]);

typedef struct mr_hmac_sha256 mr_hmac_sha256;

MR_RESULT mr_hmac_sha256_new(mr_slice key, mr_hmac_sha256 **out);
MR_RESULT mr_hmac_sha256_mac(mr_hmac_sha256 *h, mr_slice data, uint8_t out[MR_SHA256_LEN]);
void mr_hmac_sha256_free(mr_hmac_sha256 *h);

#endif
