/* SPDX-License-Identifier: Apache-2.0 */
/* DCAP collateral JSON parsing (file shape, TCB Info, QE Identity) and the raw span finder. */
#include <stdint.h>
#include <string.h>

#include "attest/collateral.h"
#include "attest/collateral_int.h"
#include "common/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mr_log_init(MR_LOG_FATAL, MR_LOG_JSON);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_dcap_collateral *c = NULL;
    mr_slice s;

    if (mr_ok(mr_dcap_collateral_parse_json((const char *)data, size, &c)))
        mr_dcap_collateral_free(c);
    if (mr_ok(mr_json_raw_member((const char *)data, size, "tcbInfo", &s))) {
        /* the span lies inside the input */
        if (s.ptr < data || s.ptr + s.len > data + size)
            __builtin_trap();
    }
    mr_error_clear();
    return 0;
}
