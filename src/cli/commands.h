/* SPDX-License-Identifier: Apache-2.0 */
/* The `marblerun` command table and the command groups' entry points. */
#ifndef MR_CLI_COMMANDS_H
#define MR_CLI_COMMANDS_H

#include "cli/cli.h"

extern const char mr_cli_version[];
extern const char mr_cli_commit[];

/* The root command; mr_cli_commands_init() fills run-time defaults (the certificate cache path)
 * and must be called once before use. */
const mr_cmd *mr_cli_commands_init(void);

/* Command groups (one file each). */
extern const mr_cmd mr_cmd_version;
extern const mr_cmd mr_cmd_quote;
extern const mr_cmd mr_cmd_completion;
extern const mr_cmd mr_cmd_manifest;
extern const mr_cmd mr_cmd_certificate;
extern const mr_cmd mr_cmd_secret;
extern const mr_cmd mr_cmd_status;
extern const mr_cmd mr_cmd_recover;
extern const mr_cmd mr_cmd_recover_with_signature;
extern const mr_cmd mr_cmd_package_info;
extern const mr_cmd mr_cmd_install;
extern const mr_cmd mr_cmd_uninstall;
extern const mr_cmd mr_cmd_check;
extern const mr_cmd mr_cmd_precheck;
extern const mr_cmd mr_cmd_namespace;

/* Output helpers shared by the commands. */
bool mr_cli_output_json(const mr_cli *cli);

#endif
