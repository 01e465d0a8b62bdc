/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Algorithms fetched once per process. OpenSSL 3 looks an algorithm up in its provider store
 * on every EVP_sha256() / EVP_aes_256_gcm() / "HMAC" / "HKDF" use ("implicit fetch"); that
 * costs more than hashing or sealing a small record, and the store seals every commit record.
 * The fetched objects live until the process exits. Should a fetch fail (no default
 * provider), the accessors fall back to the implicit form or return NULL.
 */
#include <pthread.h>

#include "crypto/internal.h"

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MD *alg_sha256;
static EVP_MD *alg_sha384;
static EVP_CIPHER *alg_gcm;
static EVP_MAC *alg_hmac;
static EVP_KDF *alg_hkdf;

static void algs_init(void)
{
    alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    alg_sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
    alg_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    alg_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    alg_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

const EVP_MD *mr_crypto_md_sha256(void)
{
    pthread_once(&algs_once, algs_init);
    return alg_sha256 != NULL ? alg_sha256 : EVP_sha256();
}

const EVP_MD *mr_crypto_md_sha384(void)
{
    pthread_once(&algs_once, algs_init);
    return alg_sha384 != NULL ? alg_sha384 : EVP_sha384();
}

const EVP_CIPHER *mr_crypto_cipher_aes256gcm(void)
{
    pthread_once(&algs_once, algs_init);
    return alg_gcm != NULL ? alg_gcm : EVP_aes_256_gcm();
}

EVP_MAC *mr_crypto_mac_hmac(void)
{
    pthread_once(&algs_once, algs_init);
    return alg_hmac;
}

EVP_KDF *mr_crypto_kdf_hkdf(void)
{
    pthread_once(&algs_once, algs_init);
    return alg_hkdf;
}
