/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP quote parsing and full verification with fixed collateral (sgx-v3-phala and
 * tdx-v4-phala, at fixed times inside their windows). The collateral comes from the project's
 * test data, $MR_TESTDATA_DIR/attestation (default: the build's tests/data).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/collateral.h"
#include "attest/dcap.h"
#include "attest/ossl.h"
#include "common/log.h"

static mr_dcap_collateral *sgx_col, *tdx_col;
static time_t sgx_time, tdx_time;

static mr_dcap_collateral *load(const char *dir)
{
    const char *data = getenv("MR_TESTDATA_DIR");
    char path[1024];
    mr_dcap_collateral *c = NULL;
    if (data == NULL || data[0] == '\0')
        data = MR_TESTDATA_DIR;
    snprintf(path, sizeof(path), "%s/attestation/%s/collateral.json", data, dir);
    if (!mr_ok(mr_dcap_collateral_load_file(path, &c))) {
        fprintf(stderr, "fuzz-quote: %s\n", mr_error_get()->msg);
        abort();
    }
    return c;
}

static time_t at(const char *s)
{
    time_t t = 0;
    if (!mr_ok(mr_ossl_rfc3339(s, strlen(s), &t)))
        abort();
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mr_log_init(MR_LOG_FATAL, MR_LOG_JSON);
    sgx_col = load("sgx-v3-phala");
    tdx_col = load("tdx-v4-phala");
    sgx_time = at("2025-07-04T10:28:44Z");
    tdx_time = at("2025-07-04T10:16:31Z");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_slice raw;
    mr_dcap_quote q;
    mr_attest_claims c;
    mr_attest_options o;

    if (mr_ok(mr_dcap_unwrap(data, size, &raw)) && mr_ok(mr_dcap_parse(raw.ptr, raw.len, &q))) {
        if (!mr_ok(mr_dcap_quote_claims(&q, &c)))
            abort(); /* a parsed quote always has a complete body */
        memset(&o, 0, sizeof(o));
        o.collateral = q.tee_type == MR_DCAP_TEE_TDX ? tdx_col : sgx_col;
        o.verify_time = q.tee_type == MR_DCAP_TEE_TDX ? tdx_time : sgx_time;
        MR_IGNORE(mr_dcap_verify(data, size, &o, &c)); /* outcome is irrelevant; no crash */
    }
    mr_error_clear();
    return 0;
}
