/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-recovery_data: the recovery data a Coordinator reads back in recovery mode (the seal
 * directory's recovery_data file, or with the etcd store the unsealed meta entry that anyone
 * with write access to etcd can change). It must parse or fail cleanly: no crash, no leak.
 */
#include <stdint.h>

#include "common/log.h"
#include "coordinator/core/recovery.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mr_log_init(MR_LOG_FATAL, MR_LOG_JSON);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)core_recovery_data_check(data, size);
    mr_error_clear();
    return 0;
}
