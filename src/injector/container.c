/* SPDX-License-Identifier: Apache-2.0 */
/* Per-container part of the injector's patch: UUID mount, marble env, SGX resource limits. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "injector/injector_int.h"

#define ENV_UUID "EDG_MARBLE_UUID_FILE"

MR_RESULT mr_inj_check_container(json_t *c)
{
    json_t *v = NULL, *arr = NULL, *res = NULL, *lim = NULL, *e;
    size_t i;
    MR_ENSURE(json_is_object(c), MR_ERR_USAGE,
              "json: cannot unmarshal non-object into Go struct field PodSpec.spec.containers "
              "of type v1.Container");
    MR_GUARD(mr_inj_member(c, "name", JSON_STRING, "Container", &v));
    MR_GUARD(mr_inj_member(c, "env", JSON_ARRAY, "Container", &arr));
    json_array_foreach(arr, i, e) {
        MR_ENSURE(json_is_object(e), MR_ERR_USAGE,
                  "json: cannot unmarshal non-object into Go struct field Container.env of type "
                  "v1.EnvVar");
        MR_GUARD(mr_inj_member(e, "name", JSON_STRING, "EnvVar", &v));
    }
    MR_GUARD(mr_inj_member(c, "volumeMounts", JSON_ARRAY, "Container", &arr));
    json_array_foreach(arr, i, e) {
        MR_ENSURE(json_is_object(e), MR_ERR_USAGE,
                  "json: cannot unmarshal non-object into Go struct field "
                  "Container.volumeMounts of type v1.VolumeMount");
        MR_GUARD(mr_inj_member(e, "mountPath", JSON_STRING, "VolumeMount", &v));
    }
    MR_GUARD(mr_inj_member(c, "resources", JSON_OBJECT, "Container", &res));
    if (res != NULL)
        MR_GUARD(mr_inj_member(res, "limits", JSON_OBJECT, "ResourceRequirements", &lim));
    return MR_SUCCESS;
}

static MR_RESULT env_var(json_t *list, const char *name, const char *value)
{
    json_t *v = json_pack("{s:s, s:s}", "name", name, "value", value);
    MR_ENSURE_ALLOC(v);
    MR_ENSURE(json_array_append_new(list, v) == 0, MR_ERR_INTERNAL, "out of memory");
    return MR_SUCCESS;
}

MR_RESULT mr_inj_base_env(const mr_injector_cfg *cfg, const mr_inj_review *r,
                          mr_inj_pod_plan *plan)
{
    mr_result res = MR_FAILURE;
    mr_buf dns;
    mr_buf_init(&dns, 0, 0);
    plan->env = json_array();
    MR_ENSURE_ALLOC_OUT(plan->env);
    MR_GUARD_OUT(mr_buf_printf(&dns, "%s,%s.%s,%s.%s.svc.%s", plan->type, plan->type, r->ns,
                               plan->type, r->ns, cfg->cluster_domain));
    for (size_t i = 0; i < dns.len; i++)
        dns.data[i] = (uint8_t)tolower(dns.data[i]); /* Go strings.ToLower; ASCII is what DNS has */
    MR_GUARD_OUT(mr_buf_nul_terminate(&dns));
    MR_GUARD_OUT(env_var(plan->env, "EDG_MARBLE_COORDINATOR_ADDR", cfg->coord_addr));
    MR_GUARD_OUT(env_var(plan->env, "EDG_MARBLE_TYPE", plan->type));
    MR_GUARD_OUT(env_var(plan->env, "EDG_MARBLE_DNS_NAMES", (const char *)dns.data));
    res = MR_SUCCESS;
out:
    mr_buf_free(&dns);
    return res;
}

static bool env_has(json_t *env, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e) {
        json_t *n = json_object_get(e, "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return true;
    }
    return false;
}

static bool has_mount(json_t *mounts, const char *path)
{
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "mountPath")), path) == 0)
            return true;
    }
    return false;
}

/* Adds value at base/field: a new array when the field is absent, else appended with "-". */
static MR_RESULT add_to_list(json_t *ops, const char *base, const char *field, bool exists,
                             json_t *value)
{
    char path[96];
    int n = snprintf(path, sizeof(path), exists ? "%s/%s/-" : "%s/%s", base, field);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        json_decref(value);
        MR_BAIL(MR_ERR_INTERNAL, "patch path too long");
    }
    return mr_inj_add_op(ops, path, exists ? value : json_pack("[o]", value));
}

/* RFC 6901: "~" -> "~0", "/" -> "~1". */
static MR_RESULT pointer_token(mr_buf *path, const char *s)
{
    for (; *s; s++) {
        if (*s == '~')
            MR_GUARD(mr_buf_append_str(path, "~0"));
        else if (*s == '/')
            MR_GUARD(mr_buf_append_str(path, "~1"));
        else
            MR_GUARD(mr_buf_append(path, s, 1));
    }
    return MR_SUCCESS;
}

static MR_RESULT set_limit(json_t *ops, const char *base, json_t *limits, const char *key,
                           const char *qty)
{
    mr_result res = MR_FAILURE;
    mr_buf path;
    mr_buf_init(&path, 0, 0);
    if (json_object_get(limits, key) != NULL)
        return MR_SUCCESS; /* the pod's own value wins */
    MR_GUARD_OUT(mr_buf_printf(&path, "%s/resources/limits/", base));
    MR_GUARD_OUT(pointer_token(&path, key));
    MR_GUARD_OUT(mr_buf_nul_terminate(&path));
    MR_GUARD_OUT(mr_inj_add_op(ops, (const char *)path.data, json_string(qty)));
    res = MR_SUCCESS;
out:
    mr_buf_free(&path);
    return res;
}

/* Limits only (requests default to them); keys the container already has are kept. */
static MR_RESULT sgx_limits(const mr_injector_cfg *cfg, json_t *ops, const char *base, json_t *c)
{
    json_t *res = json_object_get(c, "resources");
    json_t *limits = json_is_object(res) ? json_object_get(res, "limits") : NULL;
    char path[96];
    if (!json_is_object(limits)) {
        int n = snprintf(path, sizeof(path), json_is_object(res) ? "%s/resources/limits"
                                                                  : "%s/resources", base);
        MR_ENSURE(n > 0 && (size_t)n < sizeof(path), MR_ERR_INTERNAL, "patch path too long");
        json_t *empty = json_object();
        MR_ENSURE_ALLOC(empty);
        MR_GUARD(mr_inj_add_op(ops, path, json_is_object(res) ? empty
                                                              : json_pack("{s:o}", "limits", empty)));
    }
    if (strcmp(cfg->sgx_resource, MR_INJECTOR_INTEL_EPC) == 0) {
        MR_GUARD(set_limit(ops, base, limits, MR_INJECTOR_INTEL_EPC, "10Mi"));
        MR_GUARD(set_limit(ops, base, limits, "sgx.intel.com/enclave", "1"));
        MR_GUARD(set_limit(ops, base, limits, "sgx.intel.com/provision", "1"));
    } else {
        MR_GUARD(set_limit(ops, base, limits, cfg->sgx_resource, "10"));
    }
    return MR_SUCCESS;
}

static MR_RESULT uuid_mount(const mr_inj_review *r, mr_inj_pod_plan *plan, const char *base,
                            json_t *c, json_t *ops)
{
    mr_result res = MR_FAILURE;
    mr_buf dir, file, vol;
    mr_buf_init(&dir, 0, 0);
    mr_buf_init(&file, 0, 0);
    mr_buf_init(&vol, 0, 0);
    json_t *mounts = json_object_get(c, "volumeMounts");
    if (env_has(json_object_get(c, "env"), ENV_UUID))
        return MR_SUCCESS; /* the pod brings its own UUID file */
    MR_GUARD_OUT(mr_buf_printf(&dir, "/%s-uid", plan->type));
    MR_GUARD_OUT(mr_buf_nul_terminate(&dir));
    MR_GUARD_OUT(mr_buf_printf(&file, "/%s-uid/uuid-file", plan->type));
    MR_GUARD_OUT(mr_buf_nul_terminate(&file));
    if (!env_has(plan->env, ENV_UUID))
        MR_GUARD_OUT(env_var(plan->env, ENV_UUID, (const char *)file.data));
    if (!has_mount(mounts, (const char *)dir.data)) {
        MR_GUARD_OUT(mr_buf_printf(&vol, "uuid-file-%s", r->uid));
        MR_GUARD_OUT(mr_buf_nul_terminate(&vol));
        json_t *m = json_pack("{s:s, s:s}", "name", (const char *)vol.data, "mountPath",
                              (const char *)dir.data);
        MR_ENSURE_ALLOC_OUT(m);
        MR_GUARD_OUT(add_to_list(ops, base, "volumeMounts", mounts != NULL, m));
        plan->uuid_volume = true;
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&dir);
    mr_buf_free(&file);
    mr_buf_free(&vol);
    return res;
}

/* The variables the container does not define yet: one "add" of a new env array when it has
 * none, else one "add .../env/-" each. */
static MR_RESULT env_patch(const mr_inj_pod_plan *plan, const char *base, json_t *c, json_t *ops)
{
    mr_result res = MR_FAILURE;
    json_t *env = json_object_get(c, "env");
    json_t *fresh = NULL;
    char path[64];
    size_t i;
    json_t *v;
    if (env == NULL) {
        fresh = json_array();
        MR_ENSURE_ALLOC_OUT(fresh);
    }
    json_array_foreach(plan->env, i, v) {
        if (env_has(env, json_string_value(json_object_get(v, "name"))))
            continue;
        if (fresh != NULL)
            MR_ENSURE_OUT(json_array_append(fresh, v) == 0, MR_ERR_INTERNAL, "out of memory");
        else
            MR_GUARD_OUT(add_to_list(ops, base, "env", true, json_incref(v)));
    }
    if (fresh != NULL && json_array_size(fresh) > 0) {
        int n = snprintf(path, sizeof(path), "%s/env", base);
        MR_ENSURE_OUT(n > 0 && (size_t)n < sizeof(path), MR_ERR_INTERNAL, "patch path too long");
        MR_GUARD_OUT(mr_inj_add_op(ops, path, fresh));
        fresh = NULL; /* taken */
    }
    res = MR_SUCCESS;
out:
    json_decref(fresh);
    return res;
}

MR_RESULT mr_inj_container_patch(const mr_injector_cfg *cfg, const mr_inj_review *r,
                                 mr_inj_pod_plan *plan, size_t idx, json_t *c, json_t *ops)
{
    char base[48];
    int n = snprintf(base, sizeof(base), "/spec/containers/%zu", idx);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(base), MR_ERR_INTERNAL, "patch path too long");
    MR_GUARD(uuid_mount(r, plan, base, c, ops));
    MR_GUARD(env_patch(plan, base, c, ops));
    if (plan->inject_sgx)
        MR_GUARD(sgx_limits(cfg, ops, base, c));
    return MR_SUCCESS;
}
