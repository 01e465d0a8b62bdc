/* SPDX-License-Identifier: Apache-2.0 */
/* `marblerun namespace add|remove|list` (see cmd_kube.c for the labels). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/kube.h"

#define LABEL_INJECT "marblerun/inject"
#define LABEL_INJECT_SGX "marblerun/inject-sgx"

static MR_RESULT label_namespace(mr_kube *k, const char *ns, json_t *labels)
{
    char path[512];
    json_t *patch = json_pack("{s:{s:O}}", "metadata", "labels", labels);
    MR_ENSURE_ALLOC(patch);
    (void)snprintf(path, sizeof(path), "/api/v1/namespaces/%s", ns);
    mr_result r = mr_kube_call(k, "PATCH", path, "application/merge-patch+json", patch, NULL);
    json_decref(patch);
    return r;
}

static MR_RESULT run_add(mr_cli *cli, int argc, char **argv)
{
    mr_kube k;
    bool no_sgx = mr_cli_bool(cli, "no-sgx-injection");
    json_t *labels = json_pack("{s:s, s:s}", LABEL_INJECT, "enabled", LABEL_INJECT_SGX,
                               no_sgx ? "disabled" : "enabled");
    MR_ENSURE_ALLOC(labels);
    mr_result r = mr_kube_open(&k);
    for (int i = 0; mr_ok(r) && i < argc; i++) {
        r = label_namespace(&k, argv[i], labels);
        if (mr_ok(r))
            printf("Added namespace [%s] to the MarbleRun mesh\n", argv[i]);
    }
    mr_kube_close(&k);
    json_decref(labels);
    return r;
}

static MR_RESULT run_remove(mr_cli *cli, int argc, char **argv)
{
    (void)cli;
    mr_kube k;
    json_t *labels = json_pack("{s:n, s:n}", LABEL_INJECT, LABEL_INJECT_SGX);
    MR_ENSURE_ALLOC(labels);
    mr_result r = mr_kube_open(&k);
    for (int i = 0; mr_ok(r) && i < argc; i++) {
        r = label_namespace(&k, argv[i], labels);
        if (mr_ok(r))
            printf("Namespace [%s] successfully removed from the MarbleRun mesh\n", argv[i]);
    }
    mr_kube_close(&k);
    json_decref(labels);
    return r;
}

static MR_RESULT run_list(mr_cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    mr_kube k;
    json_t *list = NULL;
    MR_GUARD(mr_kube_open(&k));
    mr_result r = mr_kube_call(&k, "GET", "/api/v1/namespaces?labelSelector=" LABEL_INJECT
                               "%3Denabled", NULL, NULL, &list);
    mr_kube_close(&k);
    MR_GUARD(r);
    json_t *items = json_object_get(list, "items"), *ns;
    size_t i;
    if (json_array_size(items) == 0)
        printf("No namespaces have been added to the MarbleRun mesh\n");
    json_array_foreach(items, i, ns) {
        const char *sgx = json_string_value(
            json_object_get(json_object_get(json_object_get(ns, "metadata"), "labels"),
                            LABEL_INJECT_SGX));
        printf("%s%s\n", json_string_value(json_object_get(json_object_get(ns, "metadata"),
                                                           "name")),
               sgx != NULL && strcmp(sgx, "disabled") == 0 ? " (no SGX injection)" : "");
    }
    json_decref(list);
    return MR_SUCCESS;
}

static const mr_flag add_flags[] = {
    {"no-sgx-injection", 0, MR_FLAG_BOOL, "false",
     "Set to disable automatic injection of SGX tolerations for namespace"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_cmd ns_add = {
    .name = "add",
    .args_use = "NAMESPACE ...",
    .short_help = "Add namespaces to the MarbleRun mesh",
    .long_help = "Add namespaces to the MarbleRun mesh",
    .example = "marblerun namespace add default testspace",
    .min_args = 1,
    .max_args = -1,
    .flags = add_flags,
    .run = run_add,
};

static const mr_cmd ns_remove = {
    .name = "remove",
    .args_use = "NAMESPACE ...",
    .short_help = "Remove namespaces from the MarbleRun mesh",
    .long_help = "Remove namespaces from the MarbleRun mesh",
    .example = "marblerun namespace remove default",
    .min_args = 1,
    .max_args = -1,
    .run = run_remove,
};

static const mr_cmd ns_list = {
    .name = "list",
    .short_help = "List all namespaces added to the MarbleRun mesh",
    .long_help = "List all namespaces added to the MarbleRun mesh",
    .run = run_list,
};

static const mr_cmd *const ns_subs[] = {&ns_add, &ns_list, &ns_remove, NULL};

const mr_cmd mr_cmd_namespace = {
    .name = "namespace",
    .short_help = "Manages namespaces associated with MarbleRun installations",
    .long_help = "Manages namespaces associated with MarbleRun installations.\n"
                 "Add, remove or list the namespaces whose pods MarbleRun injects.",
    .subs = ns_subs,
};
