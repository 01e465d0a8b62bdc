/* SPDX-License-Identifier: Apache-2.0 */
/*
 * marblerun-injector: flags as upstream's marble-injector (Go flag package syntax: -name=value,
 * -name value, --name=value; -h/-help prints the usage), spec §5.3:
 *   -coordAddr      coordinator-mesh-api.marblerun:2001
 *   -tlsCertFile    /etc/webhook/certs/tls.crt
 *   -tlsKeyFile     /etc/webhook/certs/tls.key
 *   -clusterDomain  cluster.local
 *   -sgxResource    sgx.intel.com/epc
 * plus -addr (default :8443; upstream has it fixed) for running beside other listeners.
 * Environment: EDG_HTTP_ERROR_LOG_LEVEL (debug|info|warn|error, default error) for TLS and
 * HTTP error lines; EDG_LOG_FORMAT / EDG_LOG_LEVEL as in every MarbleRun-C binary.
 * Exit status: 0 after SIGTERM/SIGINT or -h, 2 on a flag error (Go's flag package), 1 when the
 * server cannot start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "injector/injector.h"
#include "injector/server.h"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif
#ifndef MR_COMMIT
#define MR_COMMIT "unknown"
#endif

typedef struct flag_def {
    const char *name;
    const char **value;
    const char *usage;
} flag_def;

static void usage(const flag_def *flags, size_t n, FILE *f)
{
    fprintf(f, "Usage of marblerun-injector:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  -%s string\n    \t%s (default \"%s\")\n", flags[i].name, flags[i].usage,
                *flags[i].value);
}

/* Go's flag.Parse: stops at the first non-flag or "--"; 0 = ok, 1 = help, 2 = error. */
static int parse_flags(int argc, char **argv, const flag_def *flags, size_t n)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0')
            return 0;
        a += (a[1] == '-') ? 2 : 1;
        if (a[0] == '\0')
            return 0; /* "--" */
        if (strcmp(a, "h") == 0 || strcmp(a, "help") == 0)
            return 1;
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const flag_def *f = NULL;
        for (size_t k = 0; k < n; k++)
            if (strlen(flags[k].name) == nl && strncmp(flags[k].name, a, nl) == 0)
                f = &flags[k];
        if (f == NULL) {
            fprintf(stderr, "flag provided but not defined: -%.*s\n", (int)nl, a);
            return 2;
        }
        if (eq != NULL) {
            *f->value = eq + 1;
        } else if (i + 1 < argc) {
            *f->value = argv[++i];
        } else {
            fprintf(stderr, "flag needs an argument: -%s\n", f->name);
            return 2;
        }
    }
    return 0;
}

static mr_log_level error_level(void)
{
    const char *v = getenv("EDG_HTTP_ERROR_LOG_LEVEL");
    if (v == NULL || v[0] == '\0')
        return MR_LOG_ERROR;
    if (strcasecmp(v, "debug") == 0)
        return MR_LOG_DEBUG;
    if (strcasecmp(v, "info") == 0)
        return MR_LOG_INFO;
    if (strcasecmp(v, "warn") == 0)
        return MR_LOG_WARN;
    return MR_LOG_ERROR;
}

int main(int argc, char **argv)
{
    const char *coord = "coordinator-mesh-api.marblerun:2001";
    const char *cert = "/etc/webhook/certs/tls.crt";
    const char *key = "/etc/webhook/certs/tls.key";
    const char *domain = "cluster.local";
    const char *sgx = MR_INJECTOR_INTEL_EPC;
    const char *addr = ":8443";
    const flag_def flags[] = {
        {"addr", &addr, "Address to serve the webhook on"},
        {"clusterDomain", &domain, "Domain name of the kubernetes cluster"},
        {"coordAddr", &coord, "Address of the MarbleRun coordinator"},
        {"sgxResource", &sgx, "Name of the SGX resource to inject"},
        {"tlsCertFile", &cert, "File containing the x509 Certificate for HTTPS."},
        {"tlsKeyFile", &key, "File containing the x509 private key to --tlsCertFile."},
    };
    int rc = parse_flags(argc, argv, flags, sizeof(flags) / sizeof(flags[0]));
    if (rc != 0) {
        usage(flags, sizeof(flags) / sizeof(flags[0]), stderr);
        return rc == 1 ? 0 : 2;
    }
    mr_log_init_from_env(false);
    mr_injector_cfg cfg = {.coord_addr = coord, .cluster_domain = domain, .sgx_resource = sgx};
    mr_injector_server_opts opts = {.addr = addr, .cert_file = cert, .key_file = key,
                                    .http_error_level = error_level()};
    MR_LOG_INFO("Starting marble-injector", MR_F_STR("version", MR_VERSION),
                MR_F_STR("commit", MR_COMMIT), MR_F_STR("addr", addr),
                MR_F_STR("coordAddr", coord), MR_F_STR("sgxResource", sgx));
    mr_injector_server *s = NULL;
    if (!mr_ok(mr_injector_server_new(&cfg, &opts, &s)) || !mr_ok(mr_injector_server_run(s))) {
        MR_LOG_ERROR("marble-injector failed", MR_F_ERR());
        mr_injector_server_free(s);
        return 1;
    }
    mr_injector_server_free(s);
    return 0;
}
