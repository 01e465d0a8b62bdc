/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif
#ifndef MR_COMMIT
#define MR_COMMIT "unknown"
#endif

const char mr_cli_version[] = MR_VERSION;
const char mr_cli_commit[] = MR_COMMIT;

static char cert_cache_default[1024];

/* Persistent flags of the root, as MarbleRun's CLI defines them (spec/marble-cli-k8s.md §4.1). */
static mr_flag global_flags[] = {
    {"accepted-advisories", 0, MR_FLAG_STRINGS, "",
     "List of accepted Intel Security Advisories for SWHardeningNeeded TCB status. If empty, "
     "all advisories are accepted"},
    {"accepted-tcb-statuses", 0, MR_FLAG_STRINGS, "UpToDate,SWHardeningNeeded",
     "List of TCB statuses considered up to date"},
    {"coordinator-cert", 0, MR_FLAG_STRING, cert_cache_default,
     "Path to MarbleRun Coordinator's root certificate to use for TLS connections"},
    {"era-config", 0, MR_FLAG_STRING, "",
     "Path to a remote-attestation config file in JSON format. If none is provided, the "
     "command attempts to use './era-config.json'"},
    {"insecure", 'i', MR_FLAG_BOOL, "false",
     "Set to skip quote verification, needed when running in simulation mode"},
    {"namespace", 'n', MR_FLAG_STRING, "marblerun",
     "Kubernetes namespace of the MarbleRun installation"},
    {"nonce", 0, MR_FLAG_STRING, "", "(Optional) nonce to use for quote verification. If set, "
                                     "the Coordinator will generate a quote over sha256(CoordinatorCert + nonce)"},
    {"save-sgx-quote", 0, MR_FLAG_STRING, "",
     "If set, save the Coordinator's SGX quote to the specified file"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

/* MarbleRun's order (§4.1). quote and completion are additions of this implementation. */
static const mr_cmd *const root_subs[] = {
    &mr_cmd_install,  &mr_cmd_uninstall, &mr_cmd_precheck, &mr_cmd_check,
    &mr_cmd_manifest, &mr_cmd_certificate, &mr_cmd_secret,
    &mr_cmd_status,   &mr_cmd_recover,   &mr_cmd_recover_with_signature,
    &mr_cmd_package_info, &mr_cmd_version, &mr_cmd_namespace, &mr_cmd_quote,
    &mr_cmd_completion, NULL,
};

static const mr_cmd root = {
    .name = "marblerun",
    .short_help = "Install and manage the MarbleRun confidential computing service mesh",
    .long_help = "Install and manage the MarbleRun confidential computing service mesh",
    .persistent_flags = global_flags,
    .subs = root_subs,
};

static void init_cert_cache_default(void)
{
    /* Go's os.UserConfigDir: $XDG_CONFIG_HOME if absolute, else $HOME/.config. */
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n = -1;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(cert_cache_default, sizeof(cert_cache_default),
                     "%s/marblerun/coordinator-cert.pem", xdg);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(cert_cache_default, sizeof(cert_cache_default),
                     "%s/.config/marblerun/coordinator-cert.pem", home);
    if (n < 0 || (size_t)n >= sizeof(cert_cache_default))
        cert_cache_default[0] = '\0';
}

const mr_cmd *mr_cli_commands_init(void)
{
    init_cert_cache_default();
    return &root;
}

bool mr_cli_output_json(const mr_cli *cli)
{
    const char *o = mr_cli_str(cli, "output");
    return o != NULL && strcmp(o, "json") == 0;
}
