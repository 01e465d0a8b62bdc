/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secret sharing for multi-party recovery (spec/coordinator.md §12.8).
 *
 * XOR: n shares of len(secret) bytes; n-1 are random, the last is the secret XOR the others.
 *   All n shares are needed; fewer give unrelated bytes.
 * Shamir over GF(2^8) with the reduction polynomial x^8+x^4+x^3+x+1 (0x11B), compatible with
 *   HashiCorp Vault's `shamir` package as MarbleRun 1.9 uses it: for a secret of L bytes each
 *   share is L+1 bytes, **y_1..y_L followed by the x coordinate** (spec §12.8: "y ‖ x"); the
 *   x coordinates are distinct, random in 1..255. Each secret byte gets its own random
 *   polynomial of degree t-1. Any t distinct shares recover the secret by Lagrange
 *   interpolation at 0; fewer shares give a wrong value (not detectable here: callers check
 *   the result, e.g. by test-decrypting the state). GF(2^8) arithmetic is constant time (no
 *   tables, no branches on secret data).
 *
 * Output: the n shares are appended to `shares` back to back (n * share length bytes), which
 * must be an MR_BUF_SECRET buffer, as must `secret` in the combine functions. Inputs are
 * borrowed. Temporary state is wiped.
 * Errors: MR_ERR_USAGE for bad parameters (1 <= t <= n <= 255, n >= 1, non-empty secret of at
 * most MR_SHARE_SECRET_MAX bytes; shares of unequal length, x = 0, duplicate x), and
 * MR_ERR_INTERNAL for RNG/allocation failures.
 */
#ifndef MR_CRYPTO_SHARE_H
#define MR_CRYPTO_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_SHARE_MAX 255
#define MR_SHARE_SECRET_MAX 4096

MR_RESULT mr_xor_split(mr_slice secret, unsigned n, mr_buf *shares);
MR_RESULT mr_xor_combine(const mr_slice *shares, size_t count, mr_buf *secret);

MR_RESULT mr_shamir_split(mr_slice secret, unsigned t, unsigned n, mr_buf *shares);
MR_RESULT mr_shamir_combine(const mr_slice *shares, size_t count, mr_buf *secret);

/* GF(2^8) multiplication (0x11B), constant time. Exposed for tests. */
uint8_t mr_gf256_mul(uint8_t a, uint8_t b);
/* Multiplicative inverse (a^254); 0 maps to 0. Constant time. */
uint8_t mr_gf256_inv(uint8_t a);

#endif
