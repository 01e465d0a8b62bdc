/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/csr.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdint.h>

#include "crypto/internal.h"
#include "crypto/key.h"

static MR_RESULT add_san_request(X509_REQ *req, GENERAL_NAMES *gens)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
    MR_ENSURE_OUT(exts != NULL && ext != NULL, MR_ERR_INTERNAL, "out of memory");
    MR_ENSURE_OUT(sk_X509_EXTENSION_push(exts, ext) > 0, MR_ERR_INTERNAL, "out of memory");
    ext = NULL;
    MR_GUARD_OSSL_OUT(X509_REQ_add_extensions(req, exts), MR_ERR_INTERNAL, "CSR extensions");
    res = MR_SUCCESS;
out:
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return res;
}

static MR_RESULT fill_request(X509_REQ *req, EVP_PKEY *key, const mr_x509_name *subject,
                              GENERAL_NAMES *gens)
{
    X509_NAME *name = NULL;
    const EVP_MD *md = NULL;
    mr_x509_name empty = {0};
    MR_GUARD(mr_key_sig_md(key, &md));
    MR_GUARD(mr_x509_name_build(subject != NULL ? subject : &empty, &name));
    int ok = X509_REQ_set_subject_name(req, name);
    X509_NAME_free(name);
    MR_ENSURE(ok == 1, MR_ERR_INTERNAL, "CSR subject");
    MR_GUARD_OSSL(X509_REQ_set_version(req, X509_REQ_VERSION_1), MR_ERR_INTERNAL, "CSR version");
    MR_GUARD_OSSL(X509_REQ_set_pubkey(req, key), MR_ERR_USAGE, "invalid CSR key");
    if (gens != NULL)
        MR_GUARD(add_san_request(req, gens));
    MR_ENSURE(X509_REQ_sign(req, key, md) > 0, MR_ERR_INTERNAL, "CSR signing failed");
    return MR_SUCCESS;
}

MR_RESULT mr_csr_create(EVP_PKEY *key, const mr_x509_name *subject,
                        const char *const *dns_names, size_t n_dns, const mr_ip *ips,
                        size_t n_ips, mr_buf *der_out)
{
    mr_result res = MR_FAILURE;
    X509_REQ *req = NULL;
    GENERAL_NAMES *gens = NULL;
    unsigned char *enc = NULL;
    int len = 0;
    MR_GUARD(mr_key_check(key));
    MR_GUARD(mr_x509_gens_build(dns_names, n_dns, ips, n_ips, &gens));
    req = X509_REQ_new();
    MR_ENSURE_ALLOC_OUT(req);
    MR_GUARD_OUT(fill_request(req, key, subject, gens));
    len = i2d_X509_REQ(req, &enc);
    MR_ENSURE_OUT(len > 0, MR_ERR_INTERNAL, "CSR encoding failed");
    MR_GUARD_OUT(mr_buf_append(der_out, enc, (size_t)len));
    res = MR_SUCCESS;
out:
    ERR_clear_error();
    OPENSSL_free(enc);
    GENERAL_NAMES_free(gens);
    X509_REQ_free(req);
    return res;
}

static MR_RESULT check_request(X509_REQ *req)
{
    EVP_PKEY *key = NULL;
    MR_GUARD(mr_csr_pubkey(req, &key));
    if (X509_REQ_verify(req, key) != 1) {
        ERR_clear_error();
        MR_BAIL(MR_ERR_AUTH, "CSR signature verification failed");
    }
    return MR_SUCCESS;
}

MR_RESULT mr_csr_from_der(mr_slice der, X509_REQ **out)
{
    mr_result res = MR_FAILURE;
    const unsigned char *p = der.ptr;
    X509_REQ *req = NULL;
    MR_ENSURE(der.len > 0 && der.len <= MR_CSR_DER_MAX, MR_ERR_USAGE,
              "invalid CSR: bad length %zu", der.len);
    req = d2i_X509_REQ(NULL, &p, (long)der.len);
    MR_ENSURE_OUT(req != NULL, MR_ERR_USAGE, "invalid CSR encoding");
    MR_ENSURE_OUT(p == der.ptr + der.len, MR_ERR_USAGE, "invalid CSR: trailing data");
    MR_GUARD_OUT(check_request(req));
    *out = req;
    req = NULL;
    res = MR_SUCCESS;
out:
    ERR_clear_error();
    X509_REQ_free(req);
    return res;
}

MR_RESULT mr_csr_pubkey(X509_REQ *req, EVP_PKEY **borrowed)
{
    EVP_PKEY *key = X509_REQ_get0_pubkey(req);
    ERR_clear_error();
    MR_ENSURE(key != NULL, MR_ERR_USAGE, "CSR has an unsupported public key");
    MR_GUARD(mr_key_check(key));
    *borrowed = key;
    return MR_SUCCESS;
}

MR_RESULT mr_csr_subject(const X509_REQ *req, mr_x509_name *out)
{
    return mr_x509_name_read(X509_REQ_get_subject_name(req), out);
}

/* The SAN extension of the request's extensionRequest, or NULL. */
static MR_RESULT request_sans(const X509_REQ *req, GENERAL_NAMES **gens)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions((X509_REQ *)(uintptr_t)req);
    int crit = -1;
    *gens = exts == NULL ? NULL : X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    MR_ENSURE(*gens != NULL || crit == -1, MR_ERR_USAGE,
              "invalid subject alternative names in CSR");
    return MR_SUCCESS;
}

MR_RESULT mr_csr_sans(const X509_REQ *req, mr_x509_san_list *out)
{
    GENERAL_NAMES *gens = NULL;
    MR_GUARD(request_sans(req, &gens));
    mr_result r = mr_x509_gens_read(gens, out);
    GENERAL_NAMES_free(gens);
    return r;
}
