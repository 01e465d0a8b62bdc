/* SPDX-License-Identifier: Apache-2.0 */
/* Trust anchors for DCAP verification and the TCB status names. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <pthread.h>

#include <openssl/crypto.h>

#include "attest/collateral_int.h"
#include "attest/dcap.h"
#include "attest/ossl.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"

static const char *const status_names[MR_TCB__COUNT] = {
    [MR_TCB_UP_TO_DATE] = "UpToDate",
    [MR_TCB_OUT_OF_DATE] = "OutOfDate",
    [MR_TCB_REVOKED] = "Revoked",
    [MR_TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
    [MR_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
    [MR_TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
    [MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
    [MR_TCB_UNKNOWN] = "Unknown",
    [MR_TCB_TD_RELAUNCH_ADVISED] = "TDRelaunchAdvised",
    [MR_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED] = "TDRelaunchAdvisedConfigurationNeeded",
};

const char *mr_tcb_status_name(mr_tcb_status s)
{
    if ((int)s < 0 || s >= MR_TCB__COUNT)
        return "Unknown";
    return status_names[s];
}

bool mr_tcb_status_parse(const char *name, size_t len, mr_tcb_status *out)
{
    for (int i = 0; i < MR_TCB__COUNT; i++) {
        if (strlen(status_names[i]) == len && memcmp(status_names[i], name, len) == 0) {
            *out = (mr_tcb_status)i;
            return true;
        }
    }
    return false;
}

static atomic_ulong next_roots_id = 1;

static MR_RESULT roots_new(mr_attest_roots **out)
{
    mr_attest_roots *r = mr_calloc(1, sizeof(*r));
    MR_ENSURE_ALLOC(r);
    r->certs = sk_X509_new_null();
    if (r->certs == NULL) {
        mr_free(r);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    r->id = atomic_fetch_add(&next_roots_id, 1);
    *out = r;
    return MR_SUCCESS;
}

void mr_attest_roots_free(mr_attest_roots *r)
{
    if (r == NULL)
        return;
    sk_X509_pop_free(r->certs, X509_free);
    mr_free(r);
}

/* Takes ownership of cert. */
static MR_RESULT roots_add(mr_attest_roots *r, X509 *cert, bool quiet)
{
    uint8_t h[32];

    if (!mr_ok(mr_ossl_spki_sha256(cert, h)) || sk_X509_push(r->certs, cert) <= 0) {
        X509_free(cert);
        MR_BAIL(MR_ERR_INTERNAL, "adding trust anchor");
    }
    if (memcmp(h, mr_intel_sgx_root_spki_sha256, 32) == 0) {
        r->intel = true;
    } else if (!quiet) {
        char cn[128];
        mr_ossl_subject_cn(cert, cn, sizeof(cn));
        MR_LOG_WARN("attestation root CA is NOT the Intel SGX Root CA: quotes from a "
                    "non-Intel (test) hierarchy will be accepted",
                    MR_F_STR("rootCN", cn));
    }
    return MR_SUCCESS;
}

MR_RESULT mr_attest_roots_from_der(const uint8_t *der, size_t len, mr_attest_roots **out)
{
    mr_attest_roots *r = NULL;
    X509 *cert = NULL;

    MR_GUARD(mr_ossl_der_cert(der, len, &cert));
    if (!mr_ok(roots_new(&r))) {
        X509_free(cert);
        return MR_FAILURE;
    }
    if (!mr_ok(roots_add(r, cert, false))) {
        mr_attest_roots_free(r);
        return MR_FAILURE;
    }
    *out = r;
    return MR_SUCCESS;
}

MR_RESULT mr_attest_roots_from_pem(const char *pem, size_t len, mr_attest_roots **out)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *sk = NULL;
    mr_attest_roots *r = NULL;

    if (!mr_ok(mr_ossl_pem_certs((const uint8_t *)pem, len, &sk))) {
        mr_error_prefix("attestation root CA");
        return MR_FAILURE;
    }
    MR_GUARD_OUT(roots_new(&r));
    while (sk_X509_num(sk) > 0)
        MR_GUARD_OUT(roots_add(r, sk_X509_shift(sk), false));
    *out = r;
    r = NULL;
    res = MR_SUCCESS;
out:
    sk_X509_pop_free(sk, X509_free);
    mr_attest_roots_free(r);
    return res;
}

/* Built on first use; a failed attempt (out of memory) is retried on the next call. */
static _Atomic(mr_attest_roots *) intel_roots;
static pthread_mutex_t intel_lock = PTHREAD_MUTEX_INITIALIZER;

static mr_attest_roots *intel_build(void)
{
    mr_attest_roots *r = NULL;
    X509 *cert = NULL;

    if (!mr_ok(mr_ossl_der_cert(mr_intel_sgx_root_der, mr_intel_sgx_root_der_len, &cert)))
        return NULL;
    if (!mr_ok(roots_new(&r))) {
        X509_free(cert);
        return NULL;
    }
    if (!mr_ok(roots_add(r, cert, true)) || !r->intel) {
        mr_attest_roots_free(r);
        return NULL;
    }
    return r;
}

const mr_attest_roots *mr_attest_roots_intel(void)
{
    mr_attest_roots *r = atomic_load(&intel_roots);

    if (r != NULL)
        return r;
    pthread_mutex_lock(&intel_lock);
    r = atomic_load(&intel_roots);
    if (r == NULL) {
        r = intel_build();
        if (r != NULL)
            atomic_store(&intel_roots, r);
    }
    pthread_mutex_unlock(&intel_lock);
    return r;
}

bool mr_attest_roots_is_intel(const mr_attest_roots *r) { return r != NULL && r->intel; }

MR_RESULT mr_attest_roots_from_config(mr_attest_roots **out)
{
    mr_result res = MR_FAILURE;
    const char *path = mr_config_get("EDG_ATTESTATION_ROOT_CA");
    FILE *f = NULL;
    mr_buf b;
    uint8_t chunk[4096];
    size_t n = 0;

    mr_buf_init(&b, (size_t)1 << 20, 0);
    if (path == NULL)
        return mr_attest_roots_from_der(mr_intel_sgx_root_der, mr_intel_sgx_root_der_len, out);
    f = fopen(path, "rb");
    MR_ENSURE(f != NULL, MR_ERR_IO, "EDG_ATTESTATION_ROOT_CA: cannot open %s", path);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        MR_GUARD_OUT(mr_buf_append(&b, chunk, n));
    MR_ENSURE_OUT(!ferror(f), MR_ERR_IO, "EDG_ATTESTATION_ROOT_CA: cannot read %s", path);
    MR_GUARD_OUT(mr_attest_roots_from_pem((const char *)b.data, b.len, out));
    res = MR_SUCCESS;
out:
    fclose(f);
    mr_buf_free(&b);
    return res;
}
