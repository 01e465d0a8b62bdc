/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Randomness and constant-time helpers.
 *
 *  mr_crypto_random     fills a caller buffer from OpenSSL's DRBG (seeded from the OS,
 *                       getrandom on Linux). Fails with MR_ERR_INTERNAL if the DRBG fails;
 *                       the buffer content is then unspecified (never use it).
 *  mr_crypto_random_key the same from OpenSSL's private DRBG (RAND_priv_bytes), for key
 *                       material; the caller puts it in secret memory.
 *  mr_crypto_ct_equal   constant-time equality of two equally long byte strings (time
 *                       depends on the length only). Use for MACs, digests of secrets, tags.
 *  mr_crypto_wipe       OPENSSL_cleanse, for symmetry with callers outside src/crypto.
 */
#ifndef MR_CRYPTO_RAND_H
#define MR_CRYPTO_RAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/result.h"

MR_RESULT mr_crypto_random(void *out, size_t len);
MR_RESULT mr_crypto_random_key(void *out, size_t len);
bool mr_crypto_ct_equal(const void *a, const void *b, size_t len);
void mr_crypto_wipe(void *p, size_t len);

#endif
