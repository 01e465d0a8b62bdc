/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "cli/commands.h"

static MR_RESULT run_bash(mr_cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    mr_cli_write_bash_completion(mr_cli_commands_init(), stdout);
    return MR_SUCCESS;
}

static const mr_cmd bash_cmd = {
    .name = "bash",
    .short_help = "Generate the autocompletion script for bash",
    .long_help = "Generate the autocompletion script for bash.\n\nTo load completions in your "
                 "current shell session:\n\n\tsource <(marblerun completion bash)",
    .run = run_bash,
};

static const mr_cmd *const subs[] = {&bash_cmd, NULL};

const mr_cmd mr_cmd_completion = {
    .name = "completion",
    .short_help = "Generate the autocompletion script for the specified shell",
    .subs = subs,
};
