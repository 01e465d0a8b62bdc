/* SPDX-License-Identifier: Apache-2.0 */
/* Test PKI in the shape of the Coordinator's (spec/coordinator.md §3.2, §5.6, §12.6). */
#ifndef MR_TEST_CRYPTO_PKI_H
#define MR_TEST_CRYPTO_PKI_H

#include <openssl/x509.h>
#include <time.h>

#include "crypto/key.h"
#include "crypto/x509.h"

#define PKI_MARBLE_TYPE_OID "1.3.9903.2.1"

typedef struct pki {
    EVP_PKEY *root_key, *inter_key, *leaf_key;
    X509 *root, *inter, *marble_root, *leaf;
    time_t now;
} pki;

/* The CA template of §3.2 for `cn` (SANs: DNS "localhost", IPs 127.0.0.1 and ::1). The
 * template borrows static storage plus *attr and *ips, which must outlive it. */
void pki_ca_template(mr_x509_template *t, const char *cn, time_t now, mr_x509_attr *attr,
                     mr_ip ips[2]);
/* Builds root, intermediate, marble root (§3.1) and a Marble leaf (§5.6 + type extension). */
mr_result pki_build(pki *p, mr_key_type type);
void pki_free(pki *p);

#endif
