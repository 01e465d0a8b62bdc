/* SPDX-License-Identifier: Apache-2.0 */
#include "mr_test.h"

#include "common/log.h"
#include "store_test_util.h"

int main(void)
{
    mr_log_init(MR_LOG_ERROR, MR_LOG_CONSOLE); /* expected warnings stay out of the output */
    st_suite suites[] = {st_store_suite(), st_seal_suite(), st_crash_suite()};
    int failed = 0;
    for (size_t i = 0; i < MR_ARRAY_LEN(suites); i++)
        failed += _cmocka_run_group_tests(suites[i].name, suites[i].tests, suites[i].count,
                                          NULL, NULL);
    return failed == 0 ? 0 : 1;
}
