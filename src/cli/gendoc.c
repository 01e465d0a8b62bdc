/* SPDX-License-Identifier: Apache-2.0 */
/* Writes the man page (`man`) or the bash completion (`bash`) of `marblerun` to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

int main(int argc, char **argv)
{
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
        fprintf(stderr, "usage: marblerun-gendoc man|bash\n");
        return 2;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
