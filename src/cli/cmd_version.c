/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/kube_cmds.h"

static MR_RESULT run_version(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char v[256] = "";
    /* MarbleRun prints a space before the first newline; scripts may match it. */
    printf("CLI Version: v%s \nCommit: %s\n", mr_cli_version, mr_cli_commit);
    /* The app.kubernetes.io/version label of the Coordinator Deployment; any failure to ask
     * the cluster (no kubeconfig, unreachable) is "Unable to find" and exit 0, as upstream. */
    if (mr_ok(mr_kube_coordinator_version(mr_cli_str(cli, "namespace"), v, sizeof(v))) &&
        v[0] != '\0')
        printf("Coordinator Version: %s\n", v);
    else
        printf("Unable to find MarbleRun Coordinator\n");
    mr_error_clear();
    return MR_SUCCESS;
}

const mr_cmd mr_cmd_version = {
    .name = "version",
    .short_help = "Display version of this CLI and (if running) the MarbleRun Coordinator",
    .long_help = "Display version of this CLI and (if running) the MarbleRun Coordinator",
    .run = run_version,
};
