/* SPDX-License-Identifier: Apache-2.0 */
/* Chain verification against an explicit anchor at a given time. */
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <time.h>

#include "crypto/key.h"
#include "crypto/x509.h"

static const mr_x509_verify_opts default_opts = {0};

static MR_RESULT set_params(X509_STORE_CTX *ctx, const mr_x509_verify_opts *o)
{
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN | (o->strict ? X509_V_FLAG_X509_STRICT : 0);
    X509_VERIFY_PARAM_set_time(p, o->at != 0 ? o->at : time(NULL));
    if (o->crls != NULL) {
        flags |= X509_V_FLAG_CRL_CHECK | (o->crl_check_all ? X509_V_FLAG_CRL_CHECK_ALL : 0);
        X509_STORE_CTX_set0_crls(ctx, o->crls);
    }
    MR_GUARD_OSSL(X509_VERIFY_PARAM_set_flags(p, flags), MR_ERR_INTERNAL, "verify flags");
    if (o->purpose != MR_X509_PURPOSE_ANY)
        MR_GUARD_OSSL(X509_STORE_CTX_set_purpose(ctx, o->purpose == MR_X509_PURPOSE_CLIENT
                                                          ? X509_PURPOSE_SSL_CLIENT
                                                          : X509_PURPOSE_SSL_SERVER),
                      MR_ERR_INTERNAL, "verify purpose");
    return MR_SUCCESS;
}

static MR_RESULT run_verify(X509_STORE *store, X509 *leaf, const mr_x509_verify_opts *o)
{
    mr_result res = MR_FAILURE;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    MR_ENSURE_ALLOC(ctx);
    MR_GUARD_OSSL_OUT(X509_STORE_CTX_init(ctx, store, leaf, o->intermediates), MR_ERR_INTERNAL,
                      "verify context");
    MR_GUARD_OUT(set_params(ctx, o));
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        ERR_clear_error();
        MR_BAIL_OUT(o->fail_cat != MR_ERR_NONE ? o->fail_cat : MR_ERR_AUTH,
                    "certificate verification failed: %s", X509_verify_cert_error_string(err));
    }
    res = MR_SUCCESS;
out:
    X509_STORE_CTX_free(ctx);
    return res;
}

MR_RESULT mr_x509_verify(X509 *leaf, X509 *anchor, const mr_x509_verify_opts *opts)
{
    mr_result res = MR_FAILURE;
    const mr_x509_verify_opts *o = opts != NULL ? opts : &default_opts;
    X509_STORE *store = NULL;
    MR_ENSURE(leaf != NULL && anchor != NULL, MR_ERR_USAGE, "certificate and anchor required");
    store = X509_STORE_new();
    MR_ENSURE_ALLOC(store);
    MR_GUARD_OSSL_OUT(X509_STORE_add_cert(store, anchor), MR_ERR_INTERNAL, "trust store");
    MR_GUARD_OUT(run_verify(store, leaf, o));
    res = MR_SUCCESS;
out:
    X509_STORE_free(store);
    return res;
}
