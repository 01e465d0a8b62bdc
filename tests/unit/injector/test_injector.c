/* SPDX-License-Identifier: Apache-2.0 */
/* marblerun-injector's decision (src/injector/review.c): upstream's injector_test cases plus the
 * per-container UUID-volume fix, the error texts, and an allocation sweep. The patch is checked
 * by applying it (a small RFC 6902 "add" applier below) and looking at the resulting pod. */
#include "mr_test.h"

#include <jansson.h>
#include <time.h>

#include "common/buf.h"
#include "common/codec.h"
#include "injector/injector.h"

static const mr_injector_cfg intel = {"coordinator-mesh-api.marblerun:2001", "cluster.local",
                                      "sgx.intel.com/epc"};
static const mr_injector_cfg azure = {"coordinator-mesh-api.marblerun:2001", "cluster.local",
                                      "kubernetes.azure.com/sgx_epc_mem_in_MiB"};

/* An AdmissionReview around the pod JSON, namespace "injectable", uid "uid-1". */
static char *review_doc(const char *pod)
{
    static char buf[8192];
    int n = snprintf(buf, sizeof(buf),
                     "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                     "\"request\":{\"uid\":\"uid-1\",\"namespace\":\"injectable\","
                     "\"operation\":\"CREATE\",\"object\":%s}}", pod);
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    return buf;
}

/* Unescapes one RFC 6901 token in place. */
static void unescape(char *t)
{
    char *w = t;
    for (char *r = t; *r; r++) {
        if (r[0] == '~' && r[1] == '1') { *w++ = '/'; r++; }
        else if (r[0] == '~' && r[1] == '0') { *w++ = '~'; r++; }
        else *w++ = *r;
    }
    *w = '\0';
}

/* Applies the "add" ops of patch to doc (RFC 6902 semantics for objects and arrays, "-"). */
static void apply_patch(json_t *doc, json_t *patch)
{
    size_t i;
    json_t *op;
    json_array_foreach(patch, i, op) {
        assert_string_equal(json_string_value(json_object_get(op, "op")), "add");
        char path[512];
        snprintf(path, sizeof(path), "%s", json_string_value(json_object_get(op, "path")));
        json_t *value = json_object_get(op, "value");
        json_t *parent = doc;
        char *tok = path + 1, *next;
        while ((next = strchr(tok, '/')) != NULL) {
            *next = '\0';
            unescape(tok);
            parent = json_is_array(parent) ? json_array_get(parent, strtoul(tok, NULL, 10))
                                           : json_object_get(parent, tok);
            assert_non_null(parent);
            tok = next + 1;
        }
        unescape(tok);
        if (json_is_array(parent)) {
            assert_string_equal(tok, "-");
            assert_int_equal(json_array_append(parent, value), 0);
        } else {
            assert_null(json_object_get(parent, tok)); /* "add" never replaces here */
            assert_int_equal(json_object_set(parent, tok, value), 0);
        }
    }
}

typedef struct result {
    json_t *answer;  /* the AdmissionReview answer */
    json_t *pod;     /* the pod after the patch */
    json_t *patch;   /* decoded patch or NULL */
} result;

static result run(const mr_injector_cfg *cfg, const char *pod)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    const char *doc = review_doc(pod);
    MR_ASSERT_OK(mr_injector_review(cfg, (const uint8_t *)doc, strlen(doc), &out));
    result r = {0};
    r.answer = json_loadb((const char *)out.data, out.len, 0, NULL);
    assert_non_null(r.answer);
    mr_buf_free(&out);
    r.pod = json_loads(pod, 0, NULL);
    assert_non_null(r.pod);
    json_t *resp = json_object_get(r.answer, "response");
    const char *b64 = json_string_value(json_object_get(resp, "patch"));
    if (b64 != NULL) {
        assert_string_equal(json_string_value(json_object_get(resp, "patchType")), "JSONPatch");
        mr_buf raw;
        mr_buf_init(&raw, 0, 0);
        MR_ASSERT_OK(mr_b64_decode_buf(b64, strlen(b64), MR_B64_STD, 0, &raw));
        r.patch = json_loadb((const char *)raw.data, raw.len, 0, NULL);
        assert_non_null(r.patch);
        mr_buf_free(&raw);
        apply_patch(r.pod, r.patch);
    }
    return r;
}

static void result_free(result *r)
{
    json_decref(r->answer);
    json_decref(r->pod);
    json_decref(r->patch);
}

static json_t *container(const result *r, size_t i)
{
    return json_array_get(json_object_get(json_object_get(r->pod, "spec"), "containers"), i);
}

static const char *env_value(json_t *c, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(c, "env"), i, e) {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return json_string_value(json_object_get(e, "value"));
    }
    return NULL;
}

static const char *limit(json_t *c, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(c, "resources"), "limits"), key));
}

static void assert_allowed(const result *r, const char *msg)
{
    json_t *resp = json_object_get(r->answer, "response");
    assert_string_equal(json_string_value(json_object_get(r->answer, "apiVersion")),
                        "admission.k8s.io/v1");
    assert_string_equal(json_string_value(json_object_get(r->answer, "kind")), "AdmissionReview");
    assert_string_equal(json_string_value(json_object_get(resp, "uid")), "uid-1");
    assert_true(json_is_true(json_object_get(resp, "allowed")));
    json_t *st = json_object_get(resp, "status");
    assert_string_equal(json_string_value(json_object_get(st, "status")), "Success");
    assert_string_equal(json_string_value(json_object_get(st, "message")), msg);
}

#define POD_TWO_CONTAINERS                                                                    \
    "{\"metadata\":{\"name\":\"testpod\",\"labels\":{\"marblerun/marbletype\":\"test\","     \
    "\"marblerun/marblecontainer\":\"test\"}},\"spec\":{\"containers\":[{\"name\":\"not-test\","\
    "\"image\":\"x\"},{\"name\":\"test\",\"image\":\"y\"}]}}"

static void test_azure_selected_container(void **state)
{
    (void)state;
    result r = run(&azure, POD_TWO_CONTAINERS);
    assert_allowed(&r, "Mutation request for pod of marble type [test] successful");
    json_t *c0 = container(&r, 0), *c1 = container(&r, 1);
    assert_null(json_object_get(c0, "env"));
    assert_null(json_object_get(c0, "resources"));
    assert_null(json_object_get(c0, "volumeMounts"));
    assert_string_equal(env_value(c1, "EDG_MARBLE_COORDINATOR_ADDR"),
                        "coordinator-mesh-api.marblerun:2001");
    assert_string_equal(env_value(c1, "EDG_MARBLE_TYPE"), "test");
    assert_string_equal(env_value(c1, "EDG_MARBLE_DNS_NAMES"),
                        "test,test.injectable,test.injectable.svc.cluster.local");
    assert_string_equal(env_value(c1, "EDG_MARBLE_UUID_FILE"), "/test-uid/uuid-file");
    assert_int_equal(json_array_size(json_object_get(c1, "env")), 4);
    assert_string_equal(limit(c1, "kubernetes.azure.com/sgx_epc_mem_in_MiB"), "10");
    assert_int_equal(json_object_size(json_object_get(json_object_get(c1, "resources"), "limits")), 1);
    assert_null(json_object_get(json_object_get(c1, "resources"), "requests"));
    json_t *m = json_array_get(json_object_get(c1, "volumeMounts"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "name")), "uuid-file-uid-1");
    assert_string_equal(json_string_value(json_object_get(m, "mountPath")), "/test-uid");
    json_t *spec = json_object_get(r.pod, "spec");
    json_t *v = json_array_get(json_object_get(spec, "volumes"), 0);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "uuid-file-uid-1");
    json_t *item = json_array_get(json_object_get(json_object_get(v, "downwardAPI"), "items"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "path")), "uuid-file");
    assert_string_equal(json_string_value(json_object_get(json_object_get(item, "fieldRef"),
                                                          "fieldPath")), "metadata.uid");
    json_t *t = json_array_get(json_object_get(spec, "tolerations"), 0);
    assert_string_equal(json_string_value(json_object_get(t, "key")),
                        "kubernetes.azure.com/sgx_epc_mem_in_MiB");
    assert_string_equal(json_string_value(json_object_get(t, "operator")), "Exists");
    assert_string_equal(json_string_value(json_object_get(t, "effect")), "NoSchedule");
    result_free(&r);
}

static void test_intel_limits_and_existing_values(void **state)
{
    (void)state;
    result r = run(&intel,
                   "{\"metadata\":{\"labels\":{\"marblerun/marbletype\":\"Web\"}},\"spec\":{"
                   "\"tolerations\":[{\"key\":\"sgx.intel.com/epc\",\"operator\":\"Exists\","
                   "\"effect\":\"NoSchedule\"}],\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":"
                   "\"EDG_MARBLE_TYPE\",\"value\":\"mine\"}],\"resources\":{\"limits\":{"
                   "\"sgx.intel.com/epc\":\"20Mi\"},\"requests\":{\"cpu\":\"1\"}}}]}}");
    assert_allowed(&r, "Mutation request for pod of marble type [Web] successful");
    json_t *c = container(&r, 0);
    assert_string_equal(env_value(c, "EDG_MARBLE_TYPE"), "mine"); /* existing value wins */
    assert_string_equal(env_value(c, "EDG_MARBLE_DNS_NAMES"),
                        "web,web.injectable,web.injectable.svc.cluster.local");
    assert_string_equal(env_value(c, "EDG_MARBLE_UUID_FILE"), "/Web-uid/uuid-file");
    assert_int_equal(json_array_size(json_object_get(c, "env")), 4);
    assert_string_equal(limit(c, "sgx.intel.com/epc"), "20Mi");
    assert_string_equal(limit(c, "sgx.intel.com/enclave"), "1");
    assert_string_equal(limit(c, "sgx.intel.com/provision"), "1");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(c, "resources"), "requests"), "cpu")),
                        "1");
    /* appended even though an identical toleration exists (upstream) */
    assert_int_equal(json_array_size(json_object_get(json_object_get(r.pod, "spec"), "tolerations")), 2);
    result_free(&r);
}

static void test_resource_injection_disabled(void **state)
{
    (void)state;
    result r = run(&intel,
                   "{\"metadata\":{\"labels\":{\"marblerun/marbletype\":\"test\","
                   "\"marblerun/resource-injection\":\"disabled\"}},\"spec\":{\"containers\":["
                   "{\"name\":\"a\"}]}}");
    json_t *c = container(&r, 0);
    assert_null(json_object_get(c, "resources"));
    assert_null(json_object_get(json_object_get(r.pod, "spec"), "tolerations"));
    assert_int_equal(json_array_size(json_object_get(c, "env")), 4);
    result_free(&r);
}

static void test_preset_env_and_mount(void **state)
{
    (void)state;
    /* all four variables set and the mount present: env untouched, no mount, no volume */
    result r = run(&intel,
                   "{\"metadata\":{\"labels\":{\"marblerun/marbletype\":\"test\"}},\"spec\":{"
                   "\"containers\":[{\"name\":\"a\",\"env\":["
                   "{\"name\":\"EDG_MARBLE_COORDINATOR_ADDR\",\"value\":\"c\"},"
                   "{\"name\":\"EDG_MARBLE_TYPE\",\"value\":\"t\"},"
                   "{\"name\":\"EDG_MARBLE_DNS_NAMES\",\"value\":\"d\"},"
                   "{\"name\":\"EDG_MARBLE_UUID_FILE\",\"value\":\"u\"}],"
                   "\"volumeMounts\":[{\"name\":\"x\",\"mountPath\":\"/test-uid\"}]}]}}");
    json_t *c = container(&r, 0);
    assert_int_equal(json_array_size(json_object_get(c, "env")), 4);
    assert_string_equal(env_value(c, "EDG_MARBLE_UUID_FILE"), "u");
    assert_int_equal(json_array_size(json_object_get(c, "volumeMounts")), 1);
    assert_null(json_object_get(json_object_get(r.pod, "spec"), "volumes"));
    result_free(&r);

    /* no UUID variable but the mount exists: the variable is added, no second mount/volume */
    r = run(&intel, "{\"metadata\":{\"labels\":{\"marblerun/marbletype\":\"test\"}},\"spec\":{"
                    "\"volumes\":[{\"name\":\"x\",\"emptyDir\":{}}],\"containers\":[{\"name\":\"a\","
                    "\"volumeMounts\":[{\"name\":\"x\",\"mountPath\":\"/test-uid\"}]}]}}");
    c = container(&r, 0);
    assert_string_equal(env_value(c, "EDG_MARBLE_UUID_FILE"), "/test-uid/uuid-file");
    assert_int_equal(json_array_size(json_object_get(c, "volumeMounts")), 1);
    assert_int_equal(json_array_size(json_object_get(json_object_get(r.pod, "spec"), "volumes")), 1);
    result_free(&r);
}

static void test_uuid_volume_per_container(void **state)
{
    (void)state;
    /* container 0 brings its own UUID file, container 1 does not: only 1 gets the mount, and the
     * pod gets the volume (upstream's single flag gets this case right, the reverse wrong) */
    const char *pods[2] = {
        "{\"metadata\":{\"labels\":{\"marblerun/marbletype\":\"m\"}},\"spec\":{\"containers\":["
        "{\"name\":\"a\",\"env\":[{\"name\":\"EDG_MARBLE_UUID_FILE\",\"value\":\"/own\"}]},"
        "{\"name\":\"b\"}]}}",
        "{\"metadata\":{\"labels\":{\"marblerun/marbletype\":\"m\"}},\"spec\":{\"containers\":["
        "{\"name\":\"b\"},"
        "{\"name\":\"a\",\"env\":[{\"name\":\"EDG_MARBLE_UUID_FILE\",\"value\":\"/own\"}]}]}}",
    };
    for (int k = 0; k < 2; k++) {
        result r = run(&intel, pods[k]);
        json_t *own = container(&r, k == 0 ? 0 : 1), *other = container(&r, k == 0 ? 1 : 0);
        assert_null(json_object_get(own, "volumeMounts"));
        assert_string_equal(env_value(own, "EDG_MARBLE_UUID_FILE"), "/own");
        assert_int_equal(json_array_size(json_object_get(other, "volumeMounts")), 1);
        assert_string_equal(env_value(other, "EDG_MARBLE_UUID_FILE"), "/m-uid/uuid-file");
        assert_int_equal(json_array_size(json_object_get(json_object_get(r.pod, "spec"), "volumes")), 1);
        result_free(&r);
    }
}

static void test_denied(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
         "Missing [marblerun/marbletype] label, request denied"},
        {"{\"metadata\":{\"labels\":{\"marblerun/marbletype\":\"\"}},\"spec\":{}}",
         "Empty [marblerun/marbletype] label, request denied"},
        {"{\"spec\":{}}", "Missing [marblerun/marbletype] label, request denied"},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        result r = run(&intel, cases[i][0]);
        json_t *resp = json_object_get(r.answer, "response");
        assert_true(json_is_false(json_object_get(resp, "allowed")));
        json_t *st = json_object_get(resp, "status");
        assert_string_equal(json_string_value(json_object_get(st, "status")), "Failure");
        assert_string_equal(json_string_value(json_object_get(st, "message")), cases[i][1]);
        assert_null(json_object_get(resp, "patch"));
        result_free(&r);
    }
}

static void test_errors(void **state)
{
    (void)state;
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    const char *bad[][2] = {
        {"garbage", "invalid admission review: "},
        {"[1]", "invalid admission review: json: cannot unmarshal array"},
        {"{\"kind\":\"AdmissionReview\"}", "empty admission request"},
        {"{\"request\":null}", "empty admission request"},
        {"{\"request\":{\"uid\":\"u\"}}", "invalid pod: unexpected end of JSON input"},
        {"{\"request\":{\"uid\":7,\"object\":{}}}", "invalid admission review: json: cannot "
                                                    "unmarshal number into Go struct field "
                                                    "AdmissionRequest.uid of type string"},
        {"{\"request\":{\"object\":\"pod\"}}", "invalid pod: json: cannot unmarshal string"},
        {"{\"request\":{\"object\":{\"metadata\":{\"labels\":{\"a\":1}}}}}",
         "invalid pod: json: cannot unmarshal number"},
        {"{\"request\":{\"object\":{\"spec\":{\"containers\":[{\"env\":[{\"name\":1}]}]}}}}",
         "invalid pod: json: cannot unmarshal number into Go struct field EnvVar.name"},
        {"{\"request\":{\"object\":{\"spec\":{\"containers\":{}}}}}",
         "invalid pod: json: cannot unmarshal object into Go struct field Pod.spec.containers"},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(bad); i++) {
        mr_buf_reset(&out);
        MR_ASSERT_FAIL(mr_injector_review(&intel, (const uint8_t *)bad[i][0], strlen(bad[i][0]),
                                          &out),
                       MR_ERR_USAGE, bad[i][1]);
    }
    mr_buf_free(&out);
}

static void test_v1beta1_and_no_containers(void **state)
{
    (void)state;
    const char *doc = "{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"request\":{\"uid\":\"u2\","
                      "\"object\":{\"metadata\":{\"labels\":{\"marblerun/marbletype\":\"x\","
                      "\"marblerun/resource-injection\":\"disabled\"}}}}}";
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    MR_ASSERT_OK(mr_injector_review(&intel, (const uint8_t *)doc, strlen(doc), &out));
    json_t *a = json_loadb((const char *)out.data, out.len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(a, "apiVersion")),
                        "admission.k8s.io/v1beta1");
    json_t *resp = json_object_get(a, "response");
    assert_string_equal(json_string_value(json_object_get(resp, "uid")), "u2");
    assert_null(json_object_get(resp, "patch")); /* nothing to change: no patch */
    json_decref(a);
    mr_buf_free(&out);
}

static mr_result sweep_op(void *ctx)
{
    (void)ctx;
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    const char *doc = review_doc(POD_TWO_CONTAINERS);
    mr_result r = mr_injector_review(&intel, (const uint8_t *)doc, strlen(doc), &out);
    mr_buf_free(&out);
    return r;
}

/* The issue asks for answers in well under a millisecond: the mean over 2000 reviews of a
 * two-container pod must stay below 250 us even on a loaded shared machine (typically tens;
 * ten times the bound under the sanitizers). */
#if defined(__SANITIZE_ADDRESS__)
#define LATENCY_MAX_US 2500.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LATENCY_MAX_US 2500.0
#endif
#endif
#ifndef LATENCY_MAX_US
#define LATENCY_MAX_US 250.0
#endif

static void test_latency(void **state)
{
    (void)state;
    const char *doc = review_doc(POD_TWO_CONTAINERS);
    size_t len = strlen(doc);
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 2000; i++) {
        mr_buf_reset(&out);
        MR_ASSERT_OK(mr_injector_review(&intel, (const uint8_t *)doc, len, &out));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                1e3 / 2000;
    print_message("mean review time: %.1f us\n", us);
    assert_true(us < LATENCY_MAX_US);
    mr_buf_free(&out);
}

static void test_alloc_sweep(void **state)
{
    (void)state;
    assert_true(mr_test_alloc_sweep("injector review", sweep_op, NULL) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_azure_selected_container),
        cmocka_unit_test(test_intel_limits_and_existing_values),
        cmocka_unit_test(test_resource_injection_disabled),
        cmocka_unit_test(test_preset_env_and_mount),
        cmocka_unit_test(test_uuid_volume_per_container),
        cmocka_unit_test(test_denied),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_v1beta1_and_no_containers),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_alloc_sweep),
    };
    return cmocka_run_group_tests_name("injector", tests, NULL, NULL);
}
