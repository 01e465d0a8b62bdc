/* SPDX-License-Identifier: Apache-2.0 */
/* Prints docs/configuration.md from the one table of environment variables (common/config.c). */
#include <stdio.h>

#include "common/config.h"

int main(void)
{
    mr_config_write_markdown(stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
