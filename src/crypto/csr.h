/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PKCS#10 certificate signing requests.
 *
 *  mr_csr_create  builds and signs a CSR with `key` (the signature algorithm follows the key,
 *                 see key.h) for the given subject and SANs (all borrowed; an empty subject
 *                 is allowed, as the premain sends). The DER is appended to der_out.
 *  mr_csr_from_der / mr_csr_from_pem
 *                 parse a CSR and check its self-signature and the key policy. The X509_REQ
 *                 is returned as a new object owned by the caller (X509_REQ_free).
 *                 Errors: MR_ERR_USAGE (malformed, unsupported key), MR_ERR_AUTH
 *                 ("CSR signature verification failed").
 *  Accessors borrow from the request (the public key is decoded once and cached by the
 *  request) or fill owned structs (release with mr_x509_name_clear / mr_x509_san_list_clear).
 */
#ifndef MR_CRYPTO_CSR_H
#define MR_CRYPTO_CSR_H

#include <openssl/x509.h>

#include "common/buf.h"
#include "common/result.h"
#include "crypto/x509.h"

#define MR_CSR_DER_MAX (64u << 10)

MR_RESULT mr_csr_create(EVP_PKEY *key, const mr_x509_name *subject,
                        const char *const *dns_names, size_t n_dns, const mr_ip *ips,
                        size_t n_ips, mr_buf *der_out);
MR_RESULT mr_csr_from_der(mr_slice der, X509_REQ **out);
MR_RESULT mr_csr_pubkey(X509_REQ *req, EVP_PKEY **borrowed);
MR_RESULT mr_csr_subject(const X509_REQ *req, mr_x509_name *out);
/* SANs from the extensionRequest attribute (empty lists when there is none). */
MR_RESULT mr_csr_sans(const X509_REQ *req, mr_x509_san_list *out);
/* mr_csr_from_der + mr_csr_subject + mr_csr_sans in one step, for the Activate handler: EC
 * requests skip OpenSSL 3.0's key decoder (csr_read.c). Same results and errors; the two
 * outputs are filled only on success. */
MR_RESULT mr_csr_read(mr_slice der, mr_x509_name *subject, mr_x509_san_list *sans);
/* mr_csr_read for a caller that has already seen possession of a key proven (a TLS peer's
 * CertificateVerify): when the request's SubjectPublicKeyInfo DER is byte for byte
 * proven_spki and the key is an EC key on a named curve (the fast path of csr_read.c; what
 * premains send), its self-signature, a second proof of possession of the same key, is not
 * checked. Otherwise (another key, another key type, an empty proven_spki) exactly
 * mr_csr_read. */
MR_RESULT mr_csr_read_proven(mr_slice der, mr_slice proven_spki, mr_x509_name *subject,
                             mr_x509_san_list *sans);

#endif
