/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/commands.h"
#include "common/log.h"

int main(int argc, char **argv)
{
    /* The CLI talks to people: warnings from the libraries go to stderr in console form. */
    mr_log_init(MR_LOG_WARN, MR_LOG_CONSOLE);
    return mr_cli_main(mr_cli_commands_init(), argc, argv);
}
