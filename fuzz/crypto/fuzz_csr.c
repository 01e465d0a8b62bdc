/* SPDX-License-Identifier: Apache-2.0 */
/* Target: CSR parsing with signature check (crypto/csr.c: mr_csr_from_der, mr_csr_from_pem)
 * and the accessors the Activate handler uses. */
#include <stdint.h>
#include <stdlib.h>

#include "crypto/csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_csr(X509_REQ *req)
{
    EVP_PKEY *pk = NULL;
    mr_x509_name name = {0};
    mr_x509_san_list sans = {0};
    MR_IGNORE(mr_csr_pubkey(req, &pk));
    MR_IGNORE(mr_csr_subject(req, &name));
    MR_IGNORE(mr_csr_sans(req, &sans));
    mr_x509_name_clear(&name);
    mr_x509_san_list_clear(&sans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509_REQ *req = NULL;
    if (mr_ok(mr_csr_from_der(MR_SLICE(data, size), &req))) {
        use_csr(req);
        X509_REQ_free(req);
        req = NULL;
    }
    if (mr_ok(mr_csr_from_pem(MR_SLICE(data, size), &req))) {
        use_csr(req);
        X509_REQ_free(req);
    }
    mr_error_clear();
    return 0;
}
