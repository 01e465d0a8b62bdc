/* SPDX-License-Identifier: Apache-2.0 */
/* Target: what the premain does with the Coordinator's Activate answer before applying it
 * (marble/rpc.c mr_marble_grpc_unframe, marble/params.c decode/validate/TTLS check). The input
 * is tried both as a framed gRPC body and as a bare ActivationResp.
 * Properties: no crash or leak; a decoded answer has unique file paths and env names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "marble/marble_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(mr_slice msg)
{
    mr_marble_params p;
    if (!mr_ok(mr_marble_params_decode(msg, &p)))
        return;
    for (size_t i = 0; i < p.n_files; i++)
        for (size_t j = i + 1; j < p.n_files; j++)
            if (strcmp(p.files[i].name, p.files[j].name) == 0)
                abort();
    for (size_t i = 0; i < p.n_env; i++)
        for (size_t j = i + 1; j < p.n_env; j++)
            if (strcmp(p.env[i].name, p.env[j].name) == 0)
                abort();
    MR_IGNORE(mr_marble_params_validate(&p));
    MR_IGNORE(mr_marble_params_check_ttls(&p));
    mr_marble_params_clear(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        mr_log_init(MR_LOG_FATAL, MR_LOG_JSON);
        quiet = 1;
    }
    mr_slice msg;
    if (mr_ok(mr_marble_grpc_unframe(MR_SLICE(data, size), &msg)))
        check(msg);
    check(MR_SLICE(data, size));
    mr_error_clear();
    return 0;
}
