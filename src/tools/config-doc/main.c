/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prints docs/configuration.md from the one table of environment variables (common/config.c).
 *   marblerun-config-doc              the Markdown on stdout
 *   marblerun-config-doc --help | -h  usage, exit 0
 *   marblerun-config-doc --version    "marblerun-config-doc <version>", exit 0
 * Any other argument: usage on stderr, exit 2.
 */
#include <stdio.h>
#include <string.h>

#include "common/config.h"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif

static const char USAGE[] =
    "Usage: marblerun-config-doc [--help | --version]\n"
    "\n"
    "Prints every environment variable MarbleRun-C reads (docs/configuration.md) as Markdown.\n";

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return fputs(USAGE, stdout) < 0 || fflush(stdout) != 0 ? 1 : 0;
    if (argc == 2 && strcmp(argv[1], "--version") == 0)
        return printf("marblerun-config-doc %s\n", MR_VERSION) < 0 || fflush(stdout) != 0 ? 1 : 0;
    if (argc > 1) {
        fprintf(stderr, "marblerun-config-doc: unknown argument \"%s\"\n%s", argv[argc > 2 ? 2 : 1],
                USAGE);
        return 2;
    }
    mr_config_write_markdown(stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
