/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `marblerun check`, `precheck`, `uninstall` and `namespace add|remove|list` (spec §4.5),
 * through the CLI's Kubernetes client (kube.h).
 *
 * check: unlike upstream (spec §8 trap 25) readiness is tested before the attempt counter, so
 * `--timeout 1` succeeds for a ready deployment and a ready one returns without a sleep;
 * `--timeout N` makes at most N probes one second apart, then fails.
 *
 * namespace: upstream's (pre-1.0) command: `add` labels a namespace marblerun/inject=enabled
 * and marblerun/inject-sgx=enabled (disabled with --no-sgx-injection), `remove` drops both
 * labels, `list` shows the labelled namespaces. The chart's webhook selects pods by label
 * (marbleInjector.namespaceSelector is {} by default); set namespaceSelector to
 * {matchLabels: {marblerun/inject: enabled}} to restrict injection to these namespaces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/chart.h"
#include "cli/commands.h"
#include "cli/kube.h"
#include "cli/kube_cmds.h"

/* ---------------------------------------------------------------------------------------- */
/* check                                                                                      */

/* *observed: the Deployment controller has seen the newest spec (status.observedGeneration
 * >= metadata.generation). Upstream counts a Deployment whose status is still empty as ready
 * (0/0) right after install; we wait for its controller to have looked at it. */
static MR_RESULT deployment_status(mr_kube *k, const char *ns, const char *name, bool *found,
                                   long long *avail, long long *replicas, bool *observed)
{
    char path[512];
    json_t *d = NULL;
    (void)snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/%s", ns, name);
    MR_GUARD(mr_kube_get_opt(k, path, &d));
    *found = d != NULL;
    json_t *st = json_object_get(d, "status");
    *avail = json_integer_value(json_object_get(st, "availableReplicas"));
    *replicas = json_integer_value(json_object_get(st, "replicas"));
    *observed = json_integer_value(json_object_get(st, "observedGeneration")) >=
                json_integer_value(json_object_get(json_object_get(d, "metadata"), "generation"));
    json_decref(d);
    return MR_SUCCESS;
}

static MR_RESULT check_one(mr_kube *k, const char *ns, const char *name, unsigned long timeout)
{
    bool found = false, observed = false, tty = isatty(STDOUT_FILENO) == 1;
    long long avail = 0, replicas = 0, shown_a = -1, shown_r = -1;
    MR_GUARD(deployment_status(k, ns, name, &found, &avail, &replicas, &observed));
    if (!found) {
        printf("%s is not installed on this cluster\n", name);
        return MR_SUCCESS;
    }
    if (tty)
        printf("\033[s");
    for (unsigned long tries = 1;; tries++) {
        bool ready = avail == replicas && observed;
        if (tty) {
            printf("\033[u\033[K%s pods ready: %lld/%lld", name, avail, replicas);
            if (ready)
                printf("\n");
        } else if (avail != shown_a || replicas != shown_r || ready) {
            printf("%s pods ready: %lld/%lld\n", name, avail, replicas);
        }
        (void)fflush(stdout);
        shown_a = avail;
        shown_r = replicas;
        if (ready)
            return MR_SUCCESS;
        if (tries >= timeout) {
            if (tty)
                printf("\n");
            MR_BAIL(MR_ERR_UNAVAILABLE,
                    "deployment %s was not ready after %lu seconds (%lld/%lld pods available) ",
                    name, timeout, avail, replicas);
        }
        (void)sleep(1);
        MR_GUARD(deployment_status(k, ns, name, &found, &avail, &replicas, &observed));
        if (!found)
            MR_BAIL(MR_ERR_NOT_FOUND, "deployment %s was removed", name);
    }
}

static MR_RESULT run_check(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mr_kube k;
    const char *t = mr_cli_str(cli, "timeout");
    char *end = NULL;
    unsigned long timeout = strtoul(t, &end, 10);
    MR_ENSURE(t[0] != '\0' && t[0] != '-' && end != NULL && *end == '\0', MR_ERR_USAGE,
              "invalid argument \"%s\" for \"--timeout\" flag: strconv.ParseUint: parsing "
              "\"%s\": invalid syntax", t, t);
    MR_GUARD(mr_kube_open(&k));
    const char *ns = mr_cli_str(cli, "namespace");
    mr_result r = check_one(&k, ns, "marble-injector", timeout);
    if (mr_ok(r))
        r = check_one(&k, ns, "marblerun-coordinator", timeout);
    mr_kube_close(&k);
    return r;
}

static const mr_flag check_flags[] = {
    {"timeout", 0, MR_FLAG_STRING, "60", "Time to wait before aborting in seconds"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

const mr_cmd mr_cmd_check = {
    .name = "check",
    .short_help = "Check the status of MarbleRun's control plane",
    .long_help = "Check the status of MarbleRun's control plane",
    .flags = check_flags,
    .run = run_check,
};

/* ---------------------------------------------------------------------------------------- */
/* precheck                                                                                   */

static bool nonzero(json_t *cap, const char *key)
{
    const char *q = json_string_value(json_object_get(cap, key));
    if (q == NULL)
        return false;
    return strtod(q, NULL) != 0.0;
}

bool mr_kube_node_sgx(json_t *node, const char **key)
{
    json_t *cap = json_object_get(json_object_get(node, "status"), "capacity");
    if (nonzero(cap, MR_SGX_ALIBABA)) {
        *key = MR_SGX_ALIBABA;
        return true;
    }
    if (nonzero(cap, MR_SGX_AZURE)) {
        *key = MR_SGX_AZURE;
        return true;
    }
    if (nonzero(cap, MR_SGX_INTEL) && nonzero(cap, "sgx.intel.com/enclave") &&
        nonzero(cap, "sgx.intel.com/provision")) {
        *key = MR_SGX_INTEL;
        return true;
    }
    return false;
}

static MR_RESULT run_precheck(mr_cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    mr_kube k;
    json_t *nodes = NULL;
    MR_GUARD(mr_kube_open(&k));
    mr_result r = mr_kube_call(&k, "GET", "/api/v1/nodes", NULL, NULL, &nodes);
    mr_kube_close(&k);
    MR_GUARD(r);
    size_t i, n = 0;
    json_t *node;
    json_array_foreach(json_object_get(nodes, "items"), i, node) {
        const char *key = NULL;
        n += mr_kube_node_sgx(node, &key);
    }
    json_decref(nodes);
    if (n == 0) {
        printf("Cluster does not support SGX, you may still run MarbleRun in simulation mode\n"
               "To install MarbleRun run [marblerun install --simulation]\n"
               "If your nodes have SGX support you might be missing an SGX device plugin\n"
               "Check https://edglss.cc/doc-mr-k8s-prereq for more information\n");
    } else {
        printf("Cluster supports SGX on %zu node(s)\nTo install MarbleRun run [marblerun "
               "install]\n", n);
    }
    return MR_SUCCESS;
}

const mr_cmd mr_cmd_precheck = {
    .name = "precheck",
    .short_help = "Check if your Kubernetes cluster supports SGX",
    .long_help = "Check if your Kubernetes cluster supports SGX",
    .run = run_precheck,
};

/* ---------------------------------------------------------------------------------------- */
/* uninstall                                                                                  */

/* What the chart can create in ns (every optional part on), deleted; NotFound ignored. */
static MR_RESULT delete_chart_objects(mr_kube *k, const char *ns)
{
    static const char *const variants[] = {
        "{\"marbleInjector\":{\"start\":true,\"useCertManager\":true}}",
        "{\"coordinator\":{\"distributedDeployment\":true}}"};
    for (size_t v = 0; v < 2; v++) {
        json_t *over = json_loads(variants[v], 0, NULL), *objs = NULL;
        MR_ENSURE_ALLOC(over);
        mr_result r = mr_chart_render(NULL, ns, over, &objs);
        json_decref(over);
        MR_GUARD(r);
        for (size_t i = json_array_size(objs); mr_ok(r) && i > 0; i--) {
            char path[1024];
            r = mr_kube_object_path(json_array_get(objs, i - 1), path, sizeof(path));
            if (mr_ok(r))
                r = mr_kube_delete(k, path);
        }
        json_decref(objs);
        MR_GUARD(r);
    }
    return MR_SUCCESS;
}

static MR_RESULT run_uninstall(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mr_kube k;
    char path[512];
    const char *ns = mr_cli_str(cli, "namespace");
    MR_GUARD(mr_kube_open(&k));
    mr_result r = delete_chart_objects(&k, ns);
    if (mr_ok(r)) {
        (void)snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns,
                       MR_WEBHOOK_SECRET);
        r = mr_kube_delete(&k, path);
    }
    if (mr_ok(r)) {
        (void)snprintf(path, sizeof(path),
                       "/apis/certificates.k8s.io/v1/certificatesigningrequests/marble-injector.%s",
                       ns);
        r = mr_kube_delete(&k, path);
    }
    mr_kube_close(&k);
    MR_GUARD(r);
    printf("MarbleRun successfully removed from your cluster\n");
    return MR_SUCCESS;
}

const mr_cmd mr_cmd_uninstall = {
    .name = "uninstall",
    .short_help = "Remove MarbleRun from a Kubernetes cluster",
    .long_help = "Remove MarbleRun from a Kubernetes cluster",
    .run = run_uninstall,
};

/* ---------------------------------------------------------------------------------------- */
/* version: the Coordinator's version label                                                   */

MR_RESULT mr_kube_coordinator_version(const char *ns, char *out, size_t out_len)
{
    mr_kube k;
    json_t *d = NULL;
    char path[512];
    out[0] = '\0';
    MR_GUARD(mr_kube_open(&k));
    (void)snprintf(path, sizeof(path),
                   "/apis/apps/v1/namespaces/%s/deployments/marblerun-coordinator", ns);
    mr_result r = mr_kube_get_opt(&k, path, &d);
    mr_kube_close(&k);
    MR_GUARD(r);
    const char *v = json_string_value(json_object_get(
        json_object_get(json_object_get(d, "metadata"), "labels"), "app.kubernetes.io/version"));
    (void)snprintf(out, out_len, "%s", v ? v : "");
    json_decref(d);
    return MR_SUCCESS;
}
