/* SPDX-License-Identifier: Apache-2.0 */
/* Target: CSR parsing with signature check (crypto/csr.c: mr_csr_from_der),
 * the accessors the Activate handler uses, and mr_csr_read (crypto/csr_read.c), which must
 * agree with the general path on every input: same success, subject and SANs; and
 * mr_csr_read_proven with the request's own key as the proven one, which must accept at least
 * what mr_csr_read accepts, with the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_name(const mr_x509_name *a, const mr_x509_name *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (a->attrs[i].nid != b->attrs[i].nid || strcmp(a->attrs[i].value, b->attrs[i].value) != 0)
            return false;
    return true;
}

static bool same_sans(const mr_x509_san_list *a, const mr_x509_san_list *b)
{
    if (a->n_dns != b->n_dns || a->n_ips != b->n_ips)
        return false;
    for (size_t i = 0; i < a->n_dns; i++)
        if (strcmp(a->dns[i], b->dns[i]) != 0)
            return false;
    for (size_t i = 0; i < a->n_ips; i++)
        if (a->ips[i].len != b->ips[i].len || memcmp(a->ips[i].addr, b->ips[i].addr, a->ips[i].len) != 0)
            return false;
    return true;
}

/* The general path's subject and SANs; false if either accessor fails. */
static bool use_csr(X509_REQ *req, mr_x509_name *name, mr_x509_san_list *sans)
{
    EVP_PKEY *pk = NULL;
    MR_IGNORE(mr_csr_pubkey(req, &pk));
    bool ok = mr_ok(mr_csr_subject(req, name));
    ok = mr_ok(mr_csr_sans(req, sans)) && ok;
    return ok;
}

static void check_proven(X509_REQ *req, mr_slice der, bool fast, const mr_x509_name *name,
                         const mr_x509_san_list *sans)
{
    unsigned char *spki = NULL;
    int n = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &spki);
    mr_x509_name pn = {0};
    mr_x509_san_list ps = {0};
    if (n > 0) {
        bool ok = mr_ok(mr_csr_read_proven(der, MR_SLICE(spki, (size_t)n), &pn, &ps));
        if (fast && (!ok || !same_name(name, &pn) || !same_sans(sans, &ps)))
            abort();
    }
    OPENSSL_free(spki);
    mr_x509_name_clear(&pn);
    mr_x509_san_list_clear(&ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509_REQ *req = NULL;
    mr_x509_name name = {0}, fast_name = {0};
    mr_x509_san_list sans = {0}, fast_sans = {0};
    bool general = mr_ok(mr_csr_from_der(MR_SLICE(data, size), &req)) &&
                   use_csr(req, &name, &sans);
    bool fast = mr_ok(mr_csr_read(MR_SLICE(data, size), &fast_name, &fast_sans));
    if (general != fast)
        abort();
    if (fast && (!same_name(&name, &fast_name) || !same_sans(&sans, &fast_sans)))
        abort();
    /* a proven key only spares a signature: what is accepted without it is accepted with it,
     * with the same fields */
    if (req != NULL)
        check_proven(req, MR_SLICE(data, size), fast, &fast_name, &fast_sans);
    mr_x509_name_clear(&name);
    mr_x509_name_clear(&fast_name);
    mr_x509_san_list_clear(&sans);
    mr_x509_san_list_clear(&fast_sans);
    X509_REQ_free(req);
    mr_error_clear();
    return 0;
}
