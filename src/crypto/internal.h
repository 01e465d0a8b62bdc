/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared between the files of src/crypto. Not part of the module's interface. */
#ifndef MR_CRYPTO_INTERNAL_H
#define MR_CRYPTO_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/result.h"
#include "crypto/x509.h"

/* Algorithms fetched once per process (algs.c). The MAC and KDF are NULL when unavailable. */
const EVP_MD *mr_crypto_md_sha256(void);
const EVP_MD *mr_crypto_md_sha384(void);
const EVP_CIPHER *mr_crypto_cipher_aes256gcm(void);
EVP_MAC *mr_crypto_mac_hmac(void);
EVP_KDF *mr_crypto_kdf_hkdf(void);

/* The signature digest for a key (NULL for Ed25519); MR_ERR_USAGE for unsupported keys. */
MR_RESULT mr_key_sig_md(const EVP_PKEY *key, const EVP_MD **md);

/* Builds an X509_NAME in Go's attribute order. */
MR_RESULT mr_x509_name_build(const mr_x509_name *in, X509_NAME **out);
/* Copies the attributes of an X509_NAME (UTF-8 values) into an owned mr_x509_name. */
MR_RESULT mr_x509_name_read(const X509_NAME *in, mr_x509_name *out);
/* Builds the SAN GENERAL_NAMES from DNS names and IPs (NULL when both lists are empty). */
MR_RESULT mr_x509_gens_build(const char *const *dns, size_t n_dns, const mr_ip *ips,
                             size_t n_ips, GENERAL_NAMES **out);
/* Copies DNS and IP entries of GENERAL_NAMES (may be NULL) into an owned mr_x509_san_list. */
MR_RESULT mr_x509_gens_read(const GENERAL_NAMES *in, mr_x509_san_list *out);
/* Decodes the first PEM block, which must carry `label`, into der (max bytes). */
MR_RESULT mr_pem_first(mr_slice pem, const char *label, size_t max, mr_buf *der);

/* Named-curve EC keys encoded from their parameters, without OpenSSL 3.0's encoder search
 * (key_ec_der.c). The bytes equal OpenSSL's encodings. */
bool mr_key_ec_der_supported(const EVP_PKEY *key);
MR_RESULT mr_key_ec_spki_der(const EVP_PKEY *key, mr_buf *out);
/* pkcs8: PrivateKeyInfo; otherwise SEC1 ECPrivateKey with the curve. out must be secret. */
MR_RESULT mr_key_ec_private_der(const EVP_PKEY *key, bool pkcs8, mr_buf *out);
/* Sets a certificate's subject public key to an EC key's point. */
MR_RESULT mr_key_ec_set_x509_pubkey(X509_PUBKEY *pub, const EVP_PKEY *key);

#endif
