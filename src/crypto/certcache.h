/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded cache of parsed certificates keyed by SHA-256 of their DER, because d2i_X509 (and
 * the first public-key decode) cost more than an ECDSA verification in OpenSSL 3.
 *
 * Thread-safe (one mutex; parsing happens outside the lock). When full, the least recently
 * used entry is evicted. Entries hold one X509 reference each; lookups hand out a new
 * reference (X509_up_ref) that the caller releases with X509_free, so evicting or freeing the
 * cache never invalidates certificates in use.
 *
 * The public key of a cached certificate is decoded once on insertion, so later
 * X509_get0_pubkey calls are cheap.
 */
#ifndef MR_CRYPTO_CERTCACHE_H
#define MR_CRYPTO_CERTCACHE_H

#include <openssl/x509.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/result.h"

typedef struct mr_certcache mr_certcache;

typedef struct mr_certcache_stats {
    unsigned long hits;
    unsigned long misses;
    unsigned long evictions;
    size_t size;
} mr_certcache_stats;

/* capacity: maximum number of certificates (1..65536). */
MR_RESULT mr_certcache_new(size_t capacity, mr_certcache **out);
/* Releases the cache and its references. NULL-safe. */
void mr_certcache_free(mr_certcache *c);
/* The certificate for this DER: from the cache, or parsed (mr_x509_from_der rules) and
 * inserted. *out is a new reference. Errors as mr_x509_from_der. */
MR_RESULT mr_certcache_get(mr_certcache *c, mr_slice der, X509 **out);
void mr_certcache_stats_get(mr_certcache *c, mr_certcache_stats *out);

#endif
