/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP verification micro-benchmark. Benchmarks only.
 *   dcap-bench SOFTSGX_DIR [seconds-per-case]
 * Verifies one softsgx quote (real verifier: PCK chain, CRLs, QE report, attestation key,
 * quote signature, TCB Info and QE Identity) repeatedly with the collateral parsed once:
 *   warm  the verifier's process-wide PCK-chain cache is left in place
 *   cold  the cache is dropped before every verification (chain parsed and checked again)
 * and, in the same process, times raw ECDSA P-256 verifications (EVP_DigestVerify of a
 * 1 KiB message) to express the quote cost in "verify units" (perf-anchors §1.3: floor about
 * 5 verifies per quote cold, about 2 with the chain cached). One JSON line on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "attest/collateral.h"
#include "attest/dcap.h"
#include "attest/softsgx.h"
#include "common/buf.h"
#include "common/result.h"
#include "crypto/key.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rate_verify(EVP_PKEY *key, const mr_buf *sig, double seconds)
{
    uint8_t msg[1024];
    memset(msg, 7, sizeof(msg));
    long n = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 50; i++) {
            if (!mr_ok(mr_key_verify(key, (mr_slice){.ptr = msg, .len = sizeof(msg)},
                                     mr_buf_slice(sig))))
                return -1;
            n++;
        }
        t = now_s();
    }
    return (double)n / (t - t0);
}

static double rate_quote(const mr_buf *q, const mr_attest_options *o, bool cold, double seconds)
{
    long n = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 10; i++) {
            mr_attest_claims claims;
            if (cold)
                mr_dcap_cache_clear();
            if (!mr_ok(mr_dcap_verify(q->data, q->len, o, &claims))) {
                fprintf(stderr, "dcap-bench: verify: %s\n", mr_error_get()->msg);
                return -1;
            }
            n++;
        }
        t = now_s();
    }
    return (double)n / (t - t0);
}

int main(int argc, char **argv)
{
    int rc = 1;
    mr_softsgx *sgx = NULL;
    mr_dcap_collateral *coll = NULL;
    mr_attest_roots *roots = NULL;
    EVP_PKEY *key = NULL;
    mr_buf quote, sig, path, pem;
    mr_buf_init(&quote, 0, 0);
    mr_buf_init(&sig, 0, 0);
    mr_buf_init(&path, 0, 0);
    mr_buf_init(&pem, 0, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: dcap-bench SOFTSGX_DIR [seconds]\n");
        return 2;
    }
    double secs = argc > 2 ? strtod(argv[2], NULL) : 2.0;
    const char *dir = argv[1];
    mr_softsgx_identity who;
    memset(&who, 0, sizeof(who));
    uint8_t rd[32];
    memset(rd, 0x5a, sizeof(rd));
    uint8_t msg[1024];
    memset(msg, 7, sizeof(msg));
    char p1[4096];
    FILE *f = NULL;
    (void)snprintf(p1, sizeof(p1), "%s/root-ca.pem", dir);
    f = fopen(p1, "r");
    if (f == NULL) {
        perror(p1);
        goto out;
    }
    char text[16384];
    size_t tl = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[tl] = '\0';
    (void)snprintf(p1, sizeof(p1), "%s/collateral.json", dir);
    if (!mr_ok(mr_softsgx_load(dir, &sgx)) ||
        !mr_ok(mr_softsgx_quote(sgx, &who, rd, sizeof(rd), true, &quote)) ||
        !mr_ok(mr_dcap_collateral_load_file(p1, &coll)) ||
        !mr_ok(mr_attest_roots_from_pem(text, tl, &roots)) ||
        !mr_ok(mr_key_generate(MR_KEY_EC_P256, 0, &key)) ||
        !mr_ok(mr_key_sign(key, (mr_slice){.ptr = msg, .len = sizeof(msg)}, &sig))) {
        fprintf(stderr, "dcap-bench: setup: %s\n", mr_error_get()->msg);
        goto out;
    }
    mr_attest_options o = {.roots = roots, .collateral = coll};
    double v1 = rate_verify(key, &sig, secs);
    double warm = rate_quote(&quote, &o, false, secs);
    double cold = rate_quote(&quote, &o, true, secs);
    double v2 = rate_verify(key, &sig, secs);
    if (v1 <= 0 || warm <= 0 || cold <= 0 || v2 <= 0)
        goto out;
    double v = (v1 + v2) / 2;
    printf("{\"tool\":\"dcap-bench\",\"ecdsa_p256_verify_per_s\":%.1f,"
           "\"ecdsa_p256_verify_per_s_before\":%.1f,\"ecdsa_p256_verify_per_s_after\":%.1f,"
           "\"quote_verify_per_s_warm\":%.1f,\"quote_verify_per_s_cold\":%.1f,"
           "\"quote_us_warm\":%.1f,\"quote_us_cold\":%.1f,"
           "\"verify_units_warm\":%.2f,\"verify_units_cold\":%.2f}\n",
           v, v1, v2, warm, cold, 1e6 / warm, 1e6 / cold, v / warm, v / cold);
    rc = 0;
out:
    mr_buf_free(&quote);
    mr_buf_free(&sig);
    mr_buf_free(&path);
    mr_buf_free(&pem);
    EVP_PKEY_free(key);
    mr_attest_roots_free(roots);
    mr_dcap_collateral_free(coll);
    mr_softsgx_free(sgx);
    return rc;
}
