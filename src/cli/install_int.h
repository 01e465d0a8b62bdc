/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of `marblerun install`: cmd_install.c (flow, values) and install_cert.c (the
 * injector's serving certificate through a CertificateSigningRequest). */
#ifndef MR_CLI_INSTALL_INT_H
#define MR_CLI_INSTALL_INT_H

#include <jansson.h>

#include "cli/client.h"
#include "cli/kube.h"
#include "cli/kube_cmds.h"

/* Creates key, CSR, approval, Secret marble-injector-webhook-certs; sets
 * injector_values.CABundle to the base64 of the kubeconfig's cluster CA. Prints a dot per
 * second waited. */
MR_RESULT mr_install_webhook_cert(mr_kube *k, const char *ns, json_t *injector_values);

#endif
