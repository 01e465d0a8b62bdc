/* SPDX-License-Identifier: Apache-2.0 */
/* The admission decision of marblerun-injector (see injector.h): parse, patch, answer. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "injector/injector.h"
#include "injector/injector_int.h"

#define LABEL_TYPE "marblerun/marbletype"
#define LABEL_CONTAINER "marblerun/marblecontainer"
#define LABEL_RESOURCES "marblerun/resource-injection"
#define ENV_UUID "EDG_MARBLE_UUID_FILE"

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "bool";
    default: return "null";
    }
}

/* obj[key] when it is of the wanted type; absent or null gives NULL. Another type is an error
 * in Go's words ("json: cannot unmarshal <t> into Go struct field <where> of type <want>"). */
MR_RESULT mr_inj_member(json_t *obj, const char *key, json_type want, const char *where,
                        json_t **out)
{
    static const char *const go_types[] = {
        [JSON_OBJECT] = "map", [JSON_ARRAY] = "slice", [JSON_STRING] = "string",
        [JSON_INTEGER] = "int", [JSON_REAL] = "float", [JSON_TRUE] = "bool",
        [JSON_FALSE] = "bool", [JSON_NULL] = "null",
    };
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return MR_SUCCESS;
    MR_ENSURE(json_typeof(v) == want, MR_ERR_USAGE,
              "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
              json_type_name(v), where, key, go_types[want]);
    *out = v;
    return MR_SUCCESS;
}

MR_RESULT mr_inj_add_op(json_t *ops, const char *path, json_t *value)
{
    mr_result res = MR_FAILURE;
    json_t *op = json_pack("{s:s, s:s, s:o}", "op", "add", "path", path, "value", value);
    value = NULL; /* json_pack took it, also on failure */
    MR_ENSURE_ALLOC_OUT(op);
    MR_ENSURE_OUT(json_array_append_new(ops, op) == 0, MR_ERR_INTERNAL, "out of memory");
    op = NULL;
    res = MR_SUCCESS;
out:
    json_decref(op);
    return res;
}

static MR_RESULT parse_review(const uint8_t *body, size_t len, mr_inj_review *r)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, len, 0, &jerr);
    MR_ENSURE(root != NULL, MR_ERR_USAGE, "invalid admission review: %s", jerr.text);
    r->root = root;
    MR_ENSURE(json_is_object(root), MR_ERR_USAGE,
              "invalid admission review: json: cannot unmarshal %s into Go value of type "
              "v1.AdmissionReview", json_type_name(root));
    json_t *av = json_object_get(root, "apiVersion");
    if (json_is_string(av) && strcmp(json_string_value(av), "admission.k8s.io/v1beta1") == 0)
        r->api_version = "admission.k8s.io/v1beta1";
    else
        r->api_version = "admission.k8s.io/v1";
    json_t *req = NULL, *uid = NULL, *ns = NULL;
    if (!mr_ok(mr_inj_member(root, "request", JSON_OBJECT, "AdmissionReview", &req)) ||
        (req != NULL && (!mr_ok(mr_inj_member(req, "uid", JSON_STRING, "AdmissionRequest", &uid)) ||
                         !mr_ok(mr_inj_member(req, "namespace", JSON_STRING, "AdmissionRequest", &ns))))) {
        mr_error_prefix("invalid admission review");
        return MR_FAILURE;
    }
    MR_ENSURE(req != NULL, MR_ERR_USAGE, "empty admission request");
    r->uid = uid ? json_string_value(uid) : "";
    r->ns = (ns && json_string_length(ns) > 0) ? json_string_value(ns) : "default";
    json_t *pod = json_object_get(req, "object");
    MR_ENSURE(pod != NULL && !json_is_null(pod), MR_ERR_USAGE,
              "invalid pod: unexpected end of JSON input");
    MR_ENSURE(json_is_object(pod), MR_ERR_USAGE,
              "invalid pod: json: cannot unmarshal %s into Go value of type v1.Pod",
              json_type_name(pod));
    r->pod = pod;
    return MR_SUCCESS;
}

/* The pod's labels and containers, with the types Go's decoder would insist on. */
static MR_RESULT parse_pod(mr_inj_review *r)
{
    json_t *meta = NULL, *labels = NULL, *spec = NULL, *v = NULL;
    const char *key;
    if (!mr_ok(mr_inj_member(r->pod, "metadata", JSON_OBJECT, "Pod", &meta)) ||
        (meta && !mr_ok(mr_inj_member(meta, "labels", JSON_OBJECT, "Pod.metadata", &labels))) ||
        !mr_ok(mr_inj_member(r->pod, "spec", JSON_OBJECT, "Pod", &spec)) ||
        (spec && !mr_ok(mr_inj_member(spec, "containers", JSON_ARRAY, "Pod.spec",
                                      &r->containers))) ||
        (spec && !mr_ok(mr_inj_member(spec, "volumes", JSON_ARRAY, "Pod.spec", &r->volumes))) ||
        (spec && !mr_ok(mr_inj_member(spec, "tolerations", JSON_ARRAY, "Pod.spec",
                                      &r->tolerations)))) {
        mr_error_prefix("invalid pod");
        return MR_FAILURE;
    }
    json_object_foreach(labels, key, v) {
        MR_ENSURE(json_is_string(v), MR_ERR_USAGE,
                  "invalid pod: json: cannot unmarshal %s into Go struct field "
                  "ObjectMeta.metadata.labels of type string", json_type_name(v));
    }
    r->labels = labels;
    size_t i;
    json_t *c;
    json_array_foreach(r->containers, i, c) {
        if (!mr_ok(mr_inj_check_container(c))) {
            mr_error_prefix("invalid pod");
            return MR_FAILURE;
        }
    }
    return MR_SUCCESS;
}

static const char *label(const mr_inj_review *r, const char *name, bool *present)
{
    json_t *v = json_object_get(r->labels, name);
    if (present != NULL)
        *present = v != NULL;
    return v ? json_string_value(v) : "";
}

static MR_RESULT b64_patch(json_t *ops, json_t *resp)
{
    mr_result res = MR_FAILURE;
    char *text = NULL;
    mr_buf b64;
    mr_buf_init(&b64, 0, 0);
    text = json_dumps(ops, JSON_COMPACT);
    MR_ENSURE_ALLOC_OUT(text);
    MR_GUARD_OUT(mr_b64_encode_buf((const uint8_t *)text, strlen(text), MR_B64_STD, &b64));
    MR_ENSURE_OUT(json_object_set_new(resp, "patch",
                                      json_stringn((const char *)b64.data, b64.len)) == 0 &&
                      json_object_set_new(resp, "patchType", json_string("JSONPatch")) == 0,
                  MR_ERR_INTERNAL, "out of memory");
    res = MR_SUCCESS;
out:
    mr_wipe_free(text);
    mr_buf_free(&b64);
    return res;
}

/* The AdmissionReview answer: allowed or not, the message, and the patch when there is one. */
static MR_RESULT answer(const mr_inj_review *r, bool allowed, const char *msg, json_t *ops,
                        mr_buf *out)
{
    mr_result res = MR_FAILURE;
    char *text = NULL;
    json_t *resp = json_pack("{s:s, s:b, s:{s:{}, s:s, s:s}}", "uid", r->uid, "allowed", allowed,
                             "status", "metadata", "status", allowed ? "Success" : "Failure",
                             "message", msg);
    json_t *review = NULL;
    MR_ENSURE_ALLOC_OUT(resp);
    if (ops != NULL && json_array_size(ops) > 0)
        MR_GUARD_OUT(b64_patch(ops, resp));
    review = json_pack("{s:s, s:s, s:O}", "kind", "AdmissionReview", "apiVersion",
                       r->api_version, "response", resp);
    MR_ENSURE_ALLOC_OUT(review);
    text = json_dumps(review, JSON_COMPACT);
    MR_ENSURE_ALLOC_OUT(text);
    MR_GUARD_OUT(mr_buf_append_str(out, text));
    res = MR_SUCCESS;
out:
    mr_wipe_free(text);
    json_decref(review);
    json_decref(resp);
    return res;
}

static MR_RESULT pod_level_patch(const mr_injector_cfg *cfg, const mr_inj_review *r,
                                 const mr_inj_pod_plan *plan, json_t *ops)
{
    if (plan->uuid_volume) {
        json_t *vol = json_pack("{s:s+, s:{s:[{s:s, s:{s:s}}]}}", "name", "uuid-file-", r->uid,
                                "downwardAPI", "items", "path", "uuid-file", "fieldRef",
                                "fieldPath", "metadata.uid");
        MR_ENSURE_ALLOC(vol);
        MR_GUARD(r->volumes ? mr_inj_add_op(ops, "/spec/volumes/-", vol)
                            : mr_inj_add_op(ops, "/spec/volumes", json_pack("[o]", vol)));
    }
    if (plan->inject_sgx) {
        json_t *tol = json_pack("{s:s, s:s, s:s}", "key", cfg->sgx_resource, "operator", "Exists",
                                "effect", "NoSchedule");
        MR_ENSURE_ALLOC(tol);
        MR_GUARD(r->tolerations ? mr_inj_add_op(ops, "/spec/tolerations/-", tol)
                                : mr_inj_add_op(ops, "/spec/tolerations", json_pack("[o]", tol)));
    }
    return MR_SUCCESS;
}

static MR_RESULT mutate(const mr_injector_cfg *cfg, const mr_inj_review *r, const char *type,
                        mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_inj_pod_plan plan = {.type = type};
    json_t *ops = json_array();
    mr_buf msg;
    mr_buf_init(&msg, 0, 0);
    MR_ENSURE_ALLOC_OUT(ops);
    plan.inject_sgx = strcmp(label(r, LABEL_RESOURCES, NULL), "disabled") != 0;
    const char *only = label(r, LABEL_CONTAINER, NULL);
    MR_GUARD_OUT(mr_inj_base_env(cfg, r, &plan));
    size_t i;
    json_t *c;
    json_array_foreach(r->containers, i, c) {
        json_t *name = json_object_get(c, "name");
        const char *n = json_is_string(name) ? json_string_value(name) : "";
        if (only[0] != '\0' && strcmp(n, only) != 0)
            continue;
        MR_GUARD_OUT(mr_inj_container_patch(cfg, r, &plan, i, c, ops));
    }
    MR_GUARD_OUT(pod_level_patch(cfg, r, &plan, ops));
    MR_GUARD_OUT(mr_buf_printf(&msg, "Mutation request for pod of marble type [%s] successful",
                               type));
    MR_GUARD_OUT(mr_buf_nul_terminate(&msg));
    MR_GUARD_OUT(answer(r, true, (const char *)msg.data, ops, out));
    res = MR_SUCCESS;
out:
    json_decref(plan.env);
    json_decref(ops);
    mr_buf_free(&msg);
    return res;
}

MR_RESULT mr_injector_review(const mr_injector_cfg *cfg, const uint8_t *body, size_t len,
                             mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_inj_review r = {0};
    MR_ENSURE_REF(cfg);
    MR_GUARD_OUT(parse_review(body, len, &r));
    MR_GUARD_OUT(parse_pod(&r));
    bool present = false;
    const char *type = label(&r, LABEL_TYPE, &present);
    if (!present) {
        MR_GUARD_OUT(answer(&r, false, "Missing [" LABEL_TYPE "] label, request denied", NULL, out));
    } else if (type[0] == '\0') {
        MR_GUARD_OUT(answer(&r, false, "Empty [" LABEL_TYPE "] label, request denied", NULL, out));
    } else {
        MR_GUARD_OUT(mutate(cfg, &r, type, out));
    }
    res = MR_SUCCESS;
out:
    json_decref(r.root);
    return res;
}
