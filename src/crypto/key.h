/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Asymmetric keys: ECDSA P-224/P-256/P-384/P-521, RSA (2048..16384 bits) and Ed25519, held
 * as OpenSSL EVP_PKEY objects so they can go straight into SSL_CTX and X509 calls.
 *
 * Ownership: functions that produce an EVP_PKEY hand a new reference to the caller through
 * `EVP_PKEY **out` (only on success; *out is untouched on failure); the caller releases it
 * with EVP_PKEY_free. Key parameters are borrowed and never freed here.
 *
 * Secrets: private-key encodings are appended to caller buffers, which must be MR_BUF_SECRET
 * (checked: MR_ERR_INTERNAL otherwise). Temporary encodings made by OpenSSL are wiped
 * (OPENSSL_clear_free) before release. EVP_PKEY_free wipes OpenSSL's private key material.
 *
 * Policy (applied on generation and on every decode): only the types above; RSA keys must
 * have at least MR_RSA_MIN_BITS bits ("RSA key too small: ... bits") and an odd public
 * exponent. RSA-PSS-only keys, DSA, X25519, other curves are rejected.
 *
 * Errors: MR_ERR_USAGE for malformed/unsupported input or a key unfit for the operation
 * ("wrong key type"); MR_ERR_AUTH for a signature that does not verify; MR_ERR_INTERNAL for
 * OpenSSL or allocation failures. On failure nothing is appended to output buffers.
 *
 * Signature algorithms (chosen by the key, as Go's crypto/x509 does):
 *   P-224, P-256: ECDSA-SHA-256   P-384: ECDSA-SHA-384   P-521: ECDSA-SHA-512
 *   RSA: PKCS#1 v1.5 with SHA-256  Ed25519: pure Ed25519
 * ECDSA signatures are ASN.1 DER (SEQUENCE of r, s); raw r||s forms and raw P-256 points are in
 * crypto/p256.h.
 */
#ifndef MR_CRYPTO_KEY_H
#define MR_CRYPTO_KEY_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/result.h"

typedef enum mr_key_type {
    MR_KEY_NONE = 0, /* unsupported or unknown */
    MR_KEY_EC_P224,
    MR_KEY_EC_P256,
    MR_KEY_EC_P384,
    MR_KEY_EC_P521,
    MR_KEY_RSA,
    MR_KEY_ED25519,
} mr_key_type;

typedef enum mr_key_format {
    MR_KEYFMT_PKCS8 = 1, /* private: PrivateKeyInfo, PEM "PRIVATE KEY" (all types) */
    MR_KEYFMT_SEC1,      /* private: ECPrivateKey, PEM "EC PRIVATE KEY" (EC only) */
    MR_KEYFMT_PKCS1,     /* RSA only: RSAPrivateKey "RSA PRIVATE KEY" / RSAPublicKey "RSA PUBLIC KEY" */
    MR_KEYFMT_PKIX,      /* public: SubjectPublicKeyInfo, PEM "PUBLIC KEY" (all types) */
} mr_key_format;

#define MR_RSA_MIN_BITS 2048
#define MR_RSA_MAX_BITS 16384
#define MR_KEY_DER_MAX (64u << 10) /* larger key encodings are rejected unparsed */

/* Generates a key. rsa_bits is used for MR_KEY_RSA only (MR_RSA_MIN_BITS..MR_RSA_MAX_BITS). */
MR_RESULT mr_key_generate(mr_key_type type, unsigned rsa_bits, EVP_PKEY **out);
/* The type of a key, MR_KEY_NONE for anything this module does not support. */
mr_key_type mr_key_type_of(const EVP_PKEY *key);
/* "P-256", "RSA", "Ed25519", ... ("unsupported" for MR_KEY_NONE). */
const char *mr_key_type_name(mr_key_type type);
/* The key policy above, for keys that came from elsewhere (certificates, TLS peers). */
MR_RESULT mr_key_check(const EVP_PKEY *key);
/* true if both keys have the same public part. */
bool mr_key_public_equal(const EVP_PKEY *a, const EVP_PKEY *b);

/* Encoding. Private encodings go to an MR_BUF_SECRET buffer. */
MR_RESULT mr_key_private_to_der(const EVP_PKEY *key, mr_key_format fmt, mr_buf *out);
MR_RESULT mr_key_private_to_pem(const EVP_PKEY *key, mr_key_format fmt, mr_buf *out);
MR_RESULT mr_key_public_to_der(const EVP_PKEY *key, mr_key_format fmt, mr_buf *out);
MR_RESULT mr_key_public_to_pem(const EVP_PKEY *key, mr_key_format fmt, mr_buf *out);

/* Decoding. DER: the format must be given (no guessing) and the whole input must be one
 * structure (trailing bytes are rejected). PEM: the first PEM block's label selects the
 * format ("PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"; "PUBLIC KEY", "RSA PUBLIC
 * KEY"); encrypted keys are not supported. A private decode returns the full key pair. */
MR_RESULT mr_key_private_from_der(mr_slice der, mr_key_format fmt, EVP_PKEY **out);
MR_RESULT mr_key_private_from_pem(mr_slice pem, EVP_PKEY **out);
MR_RESULT mr_key_public_from_der(mr_slice der, mr_key_format fmt, EVP_PKEY **out);
MR_RESULT mr_key_public_from_pem(mr_slice pem, EVP_PKEY **out);

/* Signs msg (hashing it with the key's digest) and appends the signature to sig. */
MR_RESULT mr_key_sign(EVP_PKEY *key, mr_slice msg, mr_buf *sig);
/* MR_SUCCESS when sig is a valid signature of msg by key; MR_ERR_AUTH
 * ("signature verification failed") otherwise. */
MR_RESULT mr_key_verify(EVP_PKEY *key, mr_slice msg, mr_slice sig);

/* An EC private scalar D as big-endian bytes appended to a secret buffer: minimal form
 * (leading zero bytes stripped, as Go's big.Int.Bytes) or padded to the curve size. */
MR_RESULT mr_key_ec_private_scalar(const EVP_PKEY *key, bool fixed_width, mr_buf *out);

#endif
