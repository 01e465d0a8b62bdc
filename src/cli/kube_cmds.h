/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the Kubernetes commands (cmd_kube.c, cmd_install.c, cmd_namespace.c). */
#ifndef MR_CLI_KUBE_CMDS_H
#define MR_CLI_KUBE_CMDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/result.h"

#define MR_SGX_INTEL "sgx.intel.com/epc"
#define MR_SGX_AZURE "kubernetes.azure.com/sgx_epc_mem_in_MiB"
#define MR_SGX_ALIBABA "alibabacloud.com/sgx_epc_MiB"
#define MR_WEBHOOK_SECRET "marble-injector-webhook-certs"

/* True when the node has SGX capacity (precheck's rules, Alibaba, Azure, Intel in that
 * order); *key is the resource name found. */
bool mr_kube_node_sgx(json_t *node, const char **key);
/* The app.kubernetes.io/version label of Deployment marblerun-coordinator in ns, "" when it
 * is not there. Fails when the cluster cannot be reached. */
MR_RESULT mr_kube_coordinator_version(const char *ns, char *out, size_t out_len);

#endif
