/* SPDX-License-Identifier: Apache-2.0 */
/*
 * marblerun-injector: the Kubernetes mutating admission webhook (spec/marble-cli-k8s.md §5.3).
 *
 * mr_injector_review() is the whole decision, without sockets: it reads one
 * `admission.k8s.io/v1` AdmissionReview and writes the AdmissionReview answer. It never talks to
 * the Coordinator, allocates only for the documents at hand, and takes microseconds.
 *
 * Behaviour (upstream's, with the fixes the spec allows):
 *  - pod label `marblerun/marbletype` missing or empty: allowed=false, result.status "Failure",
 *    message "Missing [marblerun/marbletype] label, request denied" / "Empty [...] ...";
 *  - env EDG_MARBLE_COORDINATOR_ADDR, EDG_MARBLE_TYPE (case kept), EDG_MARBLE_DNS_NAMES
 *    (lower-case "<type>,<type>.<ns>,<type>.<ns>.svc.<clusterDomain>") and, where the container
 *    has none, EDG_MARBLE_UUID_FILE=/<type>-uid/uuid-file; existing variables win;
 *  - target containers: the one named by label `marblerun/marblecontainer`, else all of
 *    spec.containers (never initContainers);
 *  - UUID volume: a container that lacks EDG_MARBLE_UUID_FILE and has no mount at /<type>-uid
 *    gets the mount `uuid-file-<request uid>`; the pod gets that downward-API volume (item
 *    uuid-file = metadata.uid, so the marble UUID is the pod UID) iff some container got the
 *    mount. (Upstream tracks this with one flag across containers, which can skip the volume
 *    although a mount was added, spec §8 trap 36; decided per container here.)
 *  - unless label `marblerun/resource-injection` is "disabled": resource limits for missing
 *    keys only (Intel key: sgx.intel.com/epc 10Mi, enclave 1, provision 1; any other key K:
 *    K 10), never requests, and the toleration {key: <sgxResource>, operator: Exists,
 *    effect: NoSchedule} appended (also when an identical one exists, as upstream);
 *  - success: allowed=true, status "Success", message "Mutation request for pod of marble type
 *    [<type>] successful", patchType JSONPatch with a minimal RFC 6902 patch (only "add" ops
 *    of what changes; no normalisation ops), omitted when nothing changes.
 * The answer's apiVersion is admission.k8s.io/v1, or v1beta1 when the request was v1beta1.
 *
 * Errors (the server answers HTTP 500 "unable to mutate request: <message>"), MR_ERR_USAGE:
 *   "invalid admission review: <reason>", "empty admission request", "invalid pod: <reason>".
 * Out of memory: MR_ERR_INTERNAL.
 */
#ifndef MR_INJECTOR_INJECTOR_H
#define MR_INJECTOR_INJECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_INJECTOR_INTEL_EPC "sgx.intel.com/epc"
#define MR_INJECTOR_BODY_MAX ((size_t)8 << 20)

typedef struct mr_injector_cfg {
    const char *coord_addr;     /* -coordAddr, default coordinator-mesh-api.marblerun:2001 */
    const char *cluster_domain; /* -clusterDomain, default cluster.local */
    const char *sgx_resource;   /* -sgxResource, default sgx.intel.com/epc */
} mr_injector_cfg;

/* Answers the AdmissionReview in body[0..len) into out (appended, compact JSON). The bytes
 * are borrowed. On failure out may hold a partial answer; the caller resets it. */
MR_RESULT mr_injector_review(const mr_injector_cfg *cfg, const uint8_t *body, size_t len,
                             mr_buf *out);

#endif
