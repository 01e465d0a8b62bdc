/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Randomness.
 *
 *  mr_crypto_random     fills a caller buffer from OpenSSL's DRBG (seeded from the OS,
 *                       getrandom on Linux). Fails with MR_ERR_INTERNAL if the DRBG fails;
 *                       the buffer content is then unspecified (never use it).
 *  mr_crypto_random_key the same from OpenSSL's private DRBG (RAND_priv_bytes), for key
 *                       material; the caller puts it in secret memory.
 */
#ifndef MR_CRYPTO_RAND_H
#define MR_CRYPTO_RAND_H

#include <stddef.h>

#include "common/result.h"

MR_RESULT mr_crypto_random(void *out, size_t len);
MR_RESULT mr_crypto_random_key(void *out, size_t len);

#endif
