/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RSA operations used by recovery (spec/coordinator.md §10, §12.8).
 *
 *  mr_rsa_oaep_encrypt   RSA-OAEP with SHA-256 as hash and MGF1 hash, empty label; appends the
 *                        ciphertext (key size in bytes) to out.
 *  mr_rsa_oaep_decrypt   the inverse; the plaintext is appended to out, which must be an
 *                        MR_BUF_SECRET buffer. Any failure (wrong key, tampered ciphertext)
 *                        is MR_ERR_AUTH "decryption failed" without further detail.
 *  mr_rsa_sign_pkcs1_sha256 / mr_rsa_verify_pkcs1_sha256
 *                        RSASSA-PKCS1-v1_5 over SHA-256(msg). Verify fails with MR_ERR_AUTH.
 * Keys are borrowed; a non-RSA key is MR_ERR_USAGE ("wrong key type: RSA key needed").
 * Key size policy as in key.h (RSA >= 2048 bits).
 */
#ifndef MR_CRYPTO_RSA_H
#define MR_CRYPTO_RSA_H

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/result.h"

MR_RESULT mr_rsa_oaep_encrypt(EVP_PKEY *pub, mr_slice plaintext, mr_buf *out);
MR_RESULT mr_rsa_oaep_decrypt(EVP_PKEY *priv, mr_slice ciphertext, mr_buf *out);
MR_RESULT mr_rsa_sign_pkcs1_sha256(EVP_PKEY *priv, mr_slice msg, mr_buf *sig);
MR_RESULT mr_rsa_verify_pkcs1_sha256(EVP_PKEY *pub, mr_slice msg, mr_slice sig);

#endif
