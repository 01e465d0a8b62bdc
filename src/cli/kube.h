/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI's Kubernetes API client (install, uninstall, check, precheck, namespace, version):
 *
 *  - configuration as client-go's BuildConfigFromFlags("", path) reads it: $KUBECONFIG (a
 *    single path, spec §4.6 / §8 trap 27) or ~/.kube/config, current context only: the
 *    cluster's server, certificate-authority(-data), insecure-skip-tls-verify; the user's
 *    client-certificate(-data)/client-key(-data), token or tokenFile. Relative file names
 *    resolve against the kubeconfig's directory. JSON or YAML.
 *  - requests: HTTPS (libcurl), JSON answers; a Kubernetes Status answer becomes the error
 *    with its message (404 MR_ERR_NOT_FOUND, 409 MR_ERR_CONFLICT, 401/403 MR_ERR_AUTH, other
 *    4xx MR_ERR_USAGE, 5xx MR_ERR_UNAVAILABLE).
 *  - server-side apply of an object (field manager "marblerun", force).
 *
 * Ownership: mr_kube owns everything in it (mr_kube_close); json_t results are new
 * references. The client key is held in wiped memory.
 */
#ifndef MR_CLI_KUBE_H
#define MR_CLI_KUBE_H

#include <jansson.h>
#include <stdbool.h>

#include "common/buf.h"
#include "common/result.h"

typedef struct mr_kube {
    char server[1024];
    mr_buf ca;   /* PEM; empty: the system trust store */
    mr_buf cert; /* client certificate PEM or empty */
    mr_buf key;  /* client key PEM (MR_BUF_WIPE) */
    mr_buf token;
    bool insecure;
} mr_kube;

MR_RESULT mr_kube_open(mr_kube *k);
void mr_kube_close(mr_kube *k);

/* One request; *status gets the HTTP status and *out the decoded JSON answer (NULL when it is
 * not JSON) for any status. Fails only when the request cannot be made. */
MR_RESULT mr_kube_do(mr_kube *k, const char *method, const char *path, const char *ctype,
                     const json_t *body, long *status, json_t **out);
/* mr_kube_do, and a status outside 200..299 fails with the Status message. out may be NULL. */
MR_RESULT mr_kube_call(mr_kube *k, const char *method, const char *path, const char *ctype,
                       const json_t *body, json_t **out);
/* GET that yields *out = NULL on 404 instead of failing. */
MR_RESULT mr_kube_get_opt(mr_kube *k, const char *path, json_t **out);
/* The REST path of an object (kinds of the chart, CSRs and Namespaces), name included. */
MR_RESULT mr_kube_object_path(const json_t *obj, char *out, size_t out_len);
/* Server-side apply (PATCH application/apply-patch+yaml, fieldManager marblerun, force). */
MR_RESULT mr_kube_apply(mr_kube *k, const json_t *obj);
/* DELETE; 404 counts as done. */
MR_RESULT mr_kube_delete(mr_kube *k, const char *path);
/* The certificate-authority data of the kubeconfig (for the webhook's caBundle). */
const mr_buf *mr_kube_ca(const mr_kube *k);

#endif
