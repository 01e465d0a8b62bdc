/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "common/log.h"

int main(int argc, char **argv)
{
    /* `marblerun --version`: the CLI lines of `marblerun version` (an addition, see
     * docs/cli.md; cobra only has the flag when the root command sets a version). */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("CLI Version: v%s \nCommit: %s\n", mr_cli_version, mr_cli_commit);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    /* The CLI talks to people: warnings from the libraries go to stderr in console form. */
    mr_log_init(MR_LOG_WARN, MR_LOG_CONSOLE);
    return mr_cli_main(mr_cli_commands_init(), argc, argv);
}
