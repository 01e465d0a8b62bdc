/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP collateral checks of spec/attestation.md §2 steps 4-5 (collateral_int.h): the signing
 * chains and signatures of TCB Info and QE Identity, the CRLs, and the validity windows. The
 * results that do not depend on the time are cached in the collateral object.
 */
#include "attest/collateral_int.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "attest/ossl.h"

/* ---------------------------------------------------------------------------------------- */
/* Checks (§2 steps 4-5)                                                                      */

/* Verifies a signing chain (leaf first; self-issued copies of the root are ignored) with
 * the leaf CN required to be `cn`, then the signature over `text`. */
static MR_RESULT check_signed(STACK_OF(X509) *chain, const mr_attest_roots *roots,
                              const char *cn, const mr_buf *text, const uint8_t sig[64],
                              const char *what, time_t *nb, time_t *na)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509 *leaf = sk_X509_value(chain, 0);
    char name[128];

    MR_ENSURE_ALLOC_OUT(untrusted);
    MR_ENSURE_OUT(leaf != NULL, MR_ERR_ATTESTATION, "%s issuer chain is empty", what);
    mr_ossl_subject_cn(leaf, name, sizeof(name));
    MR_ENSURE_OUT(strcmp(name, cn) == 0, MR_ERR_ATTESTATION,
                  "%s signing certificate CN is \"%s\", want \"%s\"", what, name, cn);
    for (int i = 1; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        if (!mr_ossl_self_issued(c))
            MR_ENSURE_OUT(sk_X509_push(untrusted, c) > 0, MR_ERR_INTERNAL, "out of memory");
    }
    if (!mr_ok(mr_ossl_verify_chain(leaf, untrusted, roots->certs, NULL, nb, na))) {
        mr_error_prefix("%s issuer chain", what);
        goto out;
    }
    MR_GUARD_OUT(mr_ossl_verify_raw_sig(X509_get0_pubkey(leaf), text->data, text->len, sig,
                                        what));
    res = MR_SUCCESS;
out:
    sk_X509_free(untrusted);
    return res;
}

static MR_RESULT check_root_crl_sig(X509_CRL *crl, const mr_attest_roots *roots)
{
    for (int i = 0; i < sk_X509_num(roots->certs); i++) {
        X509 *r = sk_X509_value(roots->certs, i);
        if (X509_NAME_cmp(X509_get_subject_name(r), X509_CRL_get_issuer(crl)) != 0)
            continue;
        if (X509_CRL_verify(crl, X509_get0_pubkey(r)) == 1)
            return MR_SUCCESS;
    }
    ERR_clear_error();
    MR_BAIL(MR_ERR_ATTESTATION, "Root CA CRL is not signed by a trusted root");
}

static MR_RESULT check_window(const char *what, time_t from, time_t to, time_t when,
                              bool allow_expired)
{
    char a[32], b[32], t[32];

    if (when >= from && (when <= to || allow_expired))
        return MR_SUCCESS;
    mr_ossl_fmt_time(from, a, sizeof(a));
    mr_ossl_fmt_time(to, b, sizeof(b));
    mr_ossl_fmt_time(when, t, sizeof(t));
    MR_BAIL(MR_ERR_ATTESTATION, "%s is not valid at %s (valid %s to %s)", what, t, a, b);
}

MR_RESULT mr_dcap_collateral_check(mr_dcap_collateral *c, const mr_attest_roots *roots,
                                   time_t when, unsigned flags)
{
    mr_result res = MR_FAILURE;
    bool expired_ok = (flags & MR_ATTEST_ALLOW_EXPIRED_COLLATERAL) != 0;

    pthread_mutex_lock(&c->lock);
    if (c->sig_ok_roots != roots->id) {
        MR_GUARD_OUT(check_signed(c->tcb_chain, roots, "Intel SGX TCB Signing",
                                  &c->tcb_info_text, c->tcb_info_sig, "TCB Info signature",
                                  &c->tcb_chain_nb, &c->tcb_chain_na));
        MR_GUARD_OUT(check_signed(c->qe_chain, roots, "Intel SGX TCB Signing",
                                  &c->qe_identity_text, c->qe_identity_sig,
                                  "QE Identity signature", &c->qe_chain_nb, &c->qe_chain_na));
        c->sig_ok_roots = roots->id;
    }
    pthread_mutex_unlock(&c->lock);
    MR_GUARD(check_window("TCB Info signing certificate chain", c->tcb_chain_nb,
                          c->tcb_chain_na, when, false));
    MR_GUARD(check_window("QE Identity signing certificate chain", c->qe_chain_nb,
                          c->qe_chain_na, when, false));
    MR_GUARD(check_window("TCB Info", c->tcb.issue_date, c->tcb.next_update, when, expired_ok));
    MR_GUARD(check_window("QE Identity", c->qe.issue_date, c->qe.next_update, when,
                          expired_ok));
    return MR_SUCCESS;
out:
    pthread_mutex_unlock(&c->lock);
    return res;
}

MR_RESULT mr_dcap_collateral_check_pck(mr_dcap_collateral *c, const mr_attest_roots *roots,
                                       X509 *leaf, X509 *intermediate, time_t when,
                                       unsigned flags)
{
    X509_REVOKED *rev = NULL;
    bool expired_ok = (flags & MR_ATTEST_ALLOW_EXPIRED_COLLATERAL) != 0;
    bool cached = false;

    if (c->root_crl != NULL) {
        pthread_mutex_lock(&c->lock);
        cached = c->root_crl_ok_roots == roots->id;
        pthread_mutex_unlock(&c->lock);
        if (!cached) {
            MR_GUARD(check_root_crl_sig(c->root_crl, roots));
            pthread_mutex_lock(&c->lock);
            c->root_crl_ok_roots = roots->id;
            pthread_mutex_unlock(&c->lock);
        }
        MR_GUARD(check_window("Root CA CRL", c->root_crl_this, c->root_crl_next, when,
                              expired_ok));
        MR_ENSURE(X509_CRL_get0_by_cert(c->root_crl, &rev, intermediate) != 1,
                  MR_ERR_ATTESTATION, "the PCK CA certificate is revoked (Root CA CRL)");
    }
    if (c->pck_crl == NULL)
        return MR_SUCCESS;
    MR_ENSURE(X509_NAME_cmp(X509_CRL_get_issuer(c->pck_crl), X509_get_issuer_name(leaf)) == 0,
              MR_ERR_ATTESTATION, "PCK CRL issuer differs from the PCK certificate issuer");
    pthread_mutex_lock(&c->lock);
    cached = c->pck_crl_ok_issuer != NULL && X509_cmp(c->pck_crl_ok_issuer, intermediate) == 0;
    pthread_mutex_unlock(&c->lock);
    if (!cached) {
        if (X509_CRL_verify(c->pck_crl, X509_get0_pubkey(intermediate)) != 1) {
            ERR_clear_error();
            MR_BAIL(MR_ERR_ATTESTATION, "PCK CRL is not signed by the PCK CA");
        }
        pthread_mutex_lock(&c->lock);
        if (c->pck_crl_ok_issuer == NULL && X509_up_ref(intermediate) == 1)
            c->pck_crl_ok_issuer = intermediate;
        pthread_mutex_unlock(&c->lock);
    }
    MR_GUARD(check_window("PCK CRL", c->pck_crl_this, c->pck_crl_next, when, expired_ok));
    MR_ENSURE(X509_CRL_get0_by_cert(c->pck_crl, &rev, leaf) != 1, MR_ERR_ATTESTATION,
              "the PCK certificate is revoked");
    return MR_SUCCESS;
}
