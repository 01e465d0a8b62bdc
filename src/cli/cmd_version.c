/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "cli/commands.h"

static MR_RESULT run_version(mr_cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    /* MarbleRun prints a space before the first newline; scripts may match it. */
    printf("CLI Version: v%s \nCommit: %s\n", mr_cli_version, mr_cli_commit);
    /* The Coordinator version comes from the Kubernetes deployment label, which this build
     * does not query yet. */
    printf("Unable to find MarbleRun Coordinator\n");
    return MR_SUCCESS;
}

const mr_cmd mr_cmd_version = {
    .name = "version",
    .short_help = "Display version of this CLI and (if running) the MarbleRun Coordinator",
    .long_help = "Display version of this CLI and (if running) the MarbleRun Coordinator",
    .run = run_version,
};
