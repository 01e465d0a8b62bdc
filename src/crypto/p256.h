/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Raw P-256 keys and ECDSA signatures: the fixed-width forms of SGX DCAP quotes (Intel's
 * quote format, attestation.md §1) next to the EVP_PKEY / DER forms of crypto/key.h.
 *
 *  raw public key   X || Y, 2 x 32 bytes big-endian (the uncompressed point without 0x04)
 *  raw signature    r || s, each coordinate big-endian and padded to the same width
 *
 * All data here is public. Keys are borrowed; a produced EVP_PKEY is a new reference for the
 * caller (EVP_PKEY_free), set only on success.
 *
 *  mr_key_p256_from_raw     imports 64 raw bytes; the point must be on the curve
 *                           (MR_ERR_USAGE "invalid P-256 public key").
 *  mr_key_p256_to_raw       exports a P-256 key's public point (MR_ERR_USAGE for another key).
 *  mr_ecdsa_sig_raw_to_der  r||s (any even length up to 2 x 66) -> DER, appended to `der`.
 *  mr_ecdsa_sig_der_to_raw  DER -> r||s padded to coord_len bytes each (32 for P-256),
 *                           appended to `raw`; MR_ERR_USAGE when a coordinate does not fit.
 *  mr_ecdsa_p256_sign_raw   ECDSA-SHA-256 signature of msg as 64 raw bytes.
 *  mr_ecdsa_p256_verify_raw ECDSA-SHA-256 verification of a 64-byte raw signature over msg
 *                           (SHA-256 whatever the key's curve, as the quote format says).
 *                           MR_ERR_AUTH "signature verification failed" when it does not
 *                           verify; MR_ERR_USAGE "cannot verify with this key" for a key that
 *                           cannot verify ECDSA signatures.
 * Other errors: MR_ERR_USAGE for malformed input, MR_ERR_INTERNAL for OpenSSL failures.
 */
#ifndef MR_CRYPTO_P256_H
#define MR_CRYPTO_P256_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_P256_RAW_PUB_LEN 64
#define MR_P256_RAW_SIG_LEN 64

MR_RESULT mr_key_p256_from_raw(mr_slice xy, EVP_PKEY **out);
MR_RESULT mr_key_p256_to_raw(const EVP_PKEY *key, uint8_t out[MR_P256_RAW_PUB_LEN]);

MR_RESULT mr_ecdsa_sig_raw_to_der(mr_slice raw, mr_buf *der);
MR_RESULT mr_ecdsa_sig_der_to_raw(mr_slice der, size_t coord_len, mr_buf *raw);

MR_RESULT mr_ecdsa_p256_sign_raw(EVP_PKEY *key, mr_slice msg,
                                 uint8_t sig[MR_P256_RAW_SIG_LEN]);
MR_RESULT mr_ecdsa_p256_verify_raw(EVP_PKEY *key, mr_slice msg, mr_slice sig);

#endif
