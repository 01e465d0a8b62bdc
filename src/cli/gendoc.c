/* SPDX-License-Identifier: Apache-2.0 */
/* Writes the man page (`man`) or the bash completion (`bash`) of `marblerun` to stdout.
 * --help / -h: usage on stdout; --version: "marblerun-gendoc <version>"; both exit 0. Anything
 * else: usage on stderr, exit 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif

#define USAGE "usage: marblerun-gendoc man|bash|--help|--version\n"

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(USAGE "\n  man   the man page of marblerun (troff)\n"
                    "  bash  the bash completion of marblerun\n", stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("marblerun-gendoc %s\n", MR_VERSION);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    /* The documented default of --coordinator-cert must not depend on who builds: "~" stands
     * for the user's home directory (reproducible man pages). */
    if (setenv("HOME", "~", 1) != 0 || unsetenv("XDG_CONFIG_HOME") != 0)
        return 1;
    const mr_cmd *root = mr_cli_commands_init();
    if (argc == 2 && strcmp(argv[1], "man") == 0)
        mr_cli_write_man(root, mr_cli_version, stdout);
    else if (argc == 2 && strcmp(argv[1], "bash") == 0)
        mr_cli_write_bash_completion(root, stdout);
    else {
        fputs(USAGE, stderr);
        return 2;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
