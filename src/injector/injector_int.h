/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by review.c (decision, answer) and container.c (per-container patch). */
#ifndef MR_INJECTOR_INT_H
#define MR_INJECTOR_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "injector/injector.h"

typedef struct mr_inj_review {
    json_t *root;             /* owned: the parsed request document */
    const char *api_version;  /* of the answer */
    const char *uid;          /* request.uid ("" when absent) */
    const char *ns;           /* request.namespace, "default" when empty */
    json_t *pod;              /* borrowed from root: request.object */
    json_t *labels;           /* metadata.labels or NULL */
    json_t *containers;       /* spec.containers or NULL */
    json_t *volumes;          /* spec.volumes or NULL */
    json_t *tolerations;      /* spec.tolerations or NULL */
} mr_inj_review;

typedef struct mr_inj_pod_plan {
    const char *type;  /* marble type (label value, case kept) */
    bool inject_sgx;   /* label marblerun/resource-injection != disabled */
    bool uuid_volume;  /* some container got the UUID mount: add the pod volume */
    json_t *env;       /* owned: [{name, value}] to inject (EDG_MARBLE_UUID_FILE appended once) */
} mr_inj_pod_plan;

/* obj[key] when of type want (absent/null: *out = NULL); another type fails in Go's words. */
MR_RESULT mr_inj_member(json_t *obj, const char *key, json_type want, const char *where,
                        json_t **out);
/* Appends {"op":"add","path":path,"value":value} to ops; value's reference is taken. */
MR_RESULT mr_inj_add_op(json_t *ops, const char *path, json_t *value);

/* Type checks of one container (name, env[].name, volumeMounts[].mountPath, resources.limits). */
MR_RESULT mr_inj_check_container(json_t *c);
/* plan->env = the three variables every marble gets. */
MR_RESULT mr_inj_base_env(const mr_injector_cfg *cfg, const mr_inj_review *r,
                          mr_inj_pod_plan *plan);
/* The ops for container idx: UUID mount, env, SGX limits. */
MR_RESULT mr_inj_container_patch(const mr_injector_cfg *cfg, const mr_inj_review *r,
                                 mr_inj_pod_plan *plan, size_t idx, json_t *c, json_t *ops);

#endif
