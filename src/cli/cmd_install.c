/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `marblerun install` (spec §4.5, §5.4) without Helm: the chart (embedded in the binary, or
 * --marblerun-chart-path) is rendered by the CLI's renderer (tpl.h) with the values of §5.4
 * step 7 and every object is applied with server-side apply (field manager "marblerun").
 *
 * Differences from upstream, on purpose: no Helm release record is written (uninstall deletes
 * what the chart can create by name); install does not wait for the Deployments (upstream
 * v1.4 without --wait; run `marblerun check`, which has no controller-free equivalent here);
 * --version must name the chart version the binary carries (there is no repository to
 * download another one from); --enterprise-access-token and --dcap-qpl are accepted and
 * ignored (deprecated upstream too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/chart.h"
#include "cli/commands.h"
#include "cli/install_int.h"
#include "common/file.h"

#define DEFAULT_PCCS "https://global.acccache.azure.net/sgx/certification/v4/"

static bool set_path(json_t *root, const char *a, const char *b, json_t *v)
{
    json_t *o = json_object_get(root, a);
    if (o == NULL) {
        o = json_object();
        if (o == NULL || json_object_set_new(root, a, o) != 0) {
            json_decref(v);
            return false;
        }
    }
    return json_object_set_new(o, b, v) == 0;
}

static MR_RESULT port_flag(mr_cli *cli, const char *name, json_int_t *out)
{
    const char *s = mr_cli_str(cli, name);
    char *end = NULL;
    long v = strtol(s, &end, 10);
    MR_ENSURE(s[0] != '\0' && end != NULL && *end == '\0' && v >= 0 && v <= 65535,
              MR_ERR_USAGE, "invalid argument \"%s\" for \"--%s\" flag: strconv.ParseInt: "
              "parsing \"%s\": invalid syntax", s, name, s);
    *out = v;
    return MR_SUCCESS;
}

static MR_RESULT detect_resource_key(mr_cli *cli, mr_kube *k, char *key, size_t len)
{
    const char *flag = mr_cli_str(cli, "resource-key");
    if (flag[0] != '\0') {
        (void)snprintf(key, len, "%s", flag);
        return MR_SUCCESS;
    }
    json_t *nodes = NULL;
    MR_GUARD(mr_kube_call(k, "GET", "/api/v1/nodes", NULL, NULL, &nodes));
    const char *found = MR_SGX_INTEL;
    static const char *const order[] = {MR_SGX_ALIBABA, MR_SGX_AZURE, MR_SGX_INTEL};
    bool done = false;
    for (size_t o = 0; o < 3 && !done; o++) {
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(nodes, "items"), i, n) {
            const char *kk = NULL;
            if (mr_kube_node_sgx(n, &kk) && strcmp(kk, order[o]) == 0) {
                found = order[o];
                done = true;
                break;
            }
        }
    }
    (void)snprintf(key, len, "%s", found);
    json_decref(nodes);
    return MR_SUCCESS;
}

static MR_RESULT ensure_namespace(mr_kube *k, const char *ns)
{
    char path[512];
    json_t *got = NULL;
    (void)snprintf(path, sizeof(path), "/api/v1/namespaces/%s", ns);
    MR_GUARD(mr_kube_get_opt(k, path, &got));
    if (got != NULL) {
        json_decref(got);
        return MR_SUCCESS;
    }
    json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                            "metadata", "name", ns);
    MR_ENSURE_ALLOC(obj);
    mr_result r = mr_kube_call(k, "POST", "/api/v1/namespaces", NULL, obj, NULL);
    json_decref(obj);
    return r;
}

static bool is_sgx_key(const char *k)
{
    return strcmp(k, MR_SGX_INTEL) == 0 || strcmp(k, "sgx.intel.com/enclave") == 0 ||
           strcmp(k, "sgx.intel.com/provision") == 0 || strcmp(k, MR_SGX_AZURE) == 0 ||
           strcmp(k, MR_SGX_ALIBABA) == 0;
}

/* A chart resource key to drop for resource key rk (§5.4 step 7). */
static bool other_plugin(const char *key, const char *rk)
{
    if (!is_sgx_key(key))
        return false;
    if (strcmp(rk, MR_SGX_INTEL) == 0)
        return strcmp(key, MR_SGX_AZURE) == 0 || strcmp(key, MR_SGX_ALIBABA) == 0;
    if (strcmp(rk, MR_SGX_AZURE) == 0 || strcmp(rk, MR_SGX_ALIBABA) == 0)
        return strcmp(key, rk) != 0;
    return true;
}

static MR_RESULT sgx_resources(json_t *defaults, const char *rk, json_t *over)
{
    json_t *res = json_pack("{s:{}, s:{}}", "limits", "requests");
    MR_ENSURE_ALLOC(res);
    bool deleted = false;
    static const char *const parts[] = {"limits", "requests"};
    for (size_t p = 0; p < 2; p++) {
        json_t *chart = json_object_get(json_object_get(json_object_get(defaults, "coordinator"),
                                                        "resources"), parts[p]);
        const char *key;
        json_t *v;
        json_object_foreach(chart, key, v) {
            if (other_plugin(key, rk)) {
                (void)json_object_set_new(json_object_get(res, parts[p]), key, json_null());
                deleted = true;
            }
        }
    }
    json_t *lim = json_object_get(res, "limits");
    bool intel = strcmp(rk, MR_SGX_INTEL) == 0;
    if (deleted)
        (void)json_object_set_new(lim, rk, intel ? json_string("10Mi") : json_integer(10));
    if (intel) {
        (void)json_object_set_new(lim, "sgx.intel.com/provision", json_integer(1));
        (void)json_object_set_new(lim, "sgx.intel.com/enclave", json_integer(1));
    }
    MR_ENSURE_ALLOC(set_path(over, "coordinator", "resources", res) ? over : NULL);
    return MR_SUCCESS;
}

static MR_RESULT sgx_tolerations(json_t *defaults, const char *rk, json_t *over)
{
    json_t *tol = json_deep_copy(json_object_get(defaults, "tolerations"));
    if (!json_is_array(tol)) {
        json_decref(tol);
        tol = json_array();
    }
    MR_ENSURE_ALLOC(tol);
    bool have = false;
    size_t i;
    json_t *t;
    json_array_foreach(tol, i, t) {
        const char *key = json_string_value(json_object_get(t, "key"));
        have = have || (key != NULL && strcmp(key, rk) == 0);
    }
    if (!have && json_array_append_new(tol, json_pack("{s:s, s:s, s:s}", "key", rk, "operator",
                                                      "Exists", "effect", "NoSchedule")) != 0) {
        json_decref(tol);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    MR_ENSURE_ALLOC(json_object_set_new(over, "tolerations", tol) == 0 ? over : NULL);
    return MR_SUCCESS;
}

static MR_RESULT dcap_values(mr_cli *cli, json_t *over)
{
    const char *file = mr_cli_str(cli, "dcap-qcnl-config-file");
    json_t *dcap = NULL;
    if (file[0] != '\0') {
        mr_buf b;
        mr_buf_init(&b, 0, 0);
        mr_result r = mr_file_read(file, MR_CLI_FILE_MAX, &b);
        if (mr_ok(r))
            dcap = json_pack("{s:s%}", "qcnlConfig", b.data ? (const char *)b.data : "", b.len);
        mr_buf_free(&b);
        MR_GUARD(r);
    } else {
        dcap = json_pack("{s:s, s:s}", "pccsUrl", mr_cli_str(cli, "dcap-pccs-url"),
                         "useSecureCert", mr_cli_str(cli, "dcap-secure-cert"));
    }
    MR_ENSURE_ALLOC(dcap);
    MR_ENSURE_ALLOC(json_object_set_new(over, "dcap", dcap) == 0 ? over : NULL);
    return MR_SUCCESS;
}

/* --domain values and the chart's coordinator.hostname, comma-joined. */
static MR_RESULT hostname_value(mr_cli *cli, json_t *defaults, json_t *over)
{
    size_t n = 0;
    const char *const *d = mr_cli_strings(cli, "domain", &n);
    const char *chart = json_string_value(
        json_object_get(json_object_get(defaults, "coordinator"), "hostname"));
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    mr_result r = MR_SUCCESS;
    for (size_t i = 0; mr_ok(r) && i <= n; i++) {
        const char *v = i < n ? d[i] : chart;
        if (v == NULL || v[0] == '\0')
            continue;
        r = mr_buf_printf(&b, "%s%s", b.len ? "," : "", v);
    }
    bool ok = mr_ok(r) && set_path(over, "coordinator", "hostname",
                                   json_stringn(b.data ? (const char *)b.data : "", b.len));
    mr_buf_free(&b);
    MR_GUARD(r);
    MR_ENSURE_ALLOC(ok ? over : NULL);
    return MR_SUCCESS;
}

typedef struct install {
    mr_cli *cli;
    mr_kube k;
    const char *ns, *chart_dir;
    char rk[256];
    json_t *defaults, *over, *injector;
} install;

static MR_RESULT build_values(install *in)
{
    json_int_t mesh = 0, client = 0;
    MR_GUARD(port_flag(in->cli, "mesh-server-port", &mesh));
    MR_GUARD(port_flag(in->cli, "client-server-port", &client));
    json_t *o = in->over;
    MR_ENSURE_ALLOC(set_path(o, "coordinator", "meshServerPort", json_integer(mesh)) &&
                            set_path(o, "coordinator", "clientServerPort", json_integer(client))
                        ? o : NULL);
    MR_GUARD(hostname_value(in->cli, in->defaults, o));
    if (mr_cli_bool(in->cli, "simulation")) {
        MR_ENSURE_ALLOC(json_object_set_new(o, "tolerations", json_null()) == 0 &&
                                set_path(o, "coordinator", "simulation", json_true()) &&
                                json_object_set_new(o, "dcap", json_null()) == 0
                            ? o : NULL);
        json_t *lim = json_pack("{s:n}", "limits");
        MR_ENSURE_ALLOC(lim && set_path(o, "coordinator", "resources", lim) ? o : NULL);
    } else {
        MR_GUARD(dcap_values(in->cli, o));
        MR_GUARD(sgx_tolerations(in->defaults, in->rk, o));
        MR_GUARD(sgx_resources(in->defaults, in->rk, o));
    }
    MR_ENSURE_ALLOC(set_path(o, "coordinator", "distributedDeployment",
                             json_boolean(mr_cli_bool(in->cli, "distributed-deployment")))
                        ? o : NULL);
    if (json_object_size(in->injector) > 0) {
        MR_ENSURE_ALLOC(json_object_set_new(in->injector, "resourceKey", json_string(in->rk)) == 0
                            ? o : NULL);
        MR_ENSURE_ALLOC(json_object_set(o, "marbleInjector", in->injector) == 0 ? o : NULL);
    }
    return MR_SUCCESS;
}

static MR_RESULT setup_webhook(install *in, bool *created)
{
    json_t *api = NULL;
    long st = 0;
    printf("Setting up MarbleRun Webhook");
    (void)fflush(stdout);
    MR_GUARD(mr_kube_do(&in->k, "GET", "/apis/cert-manager.io/v1", NULL, NULL, &st, &api));
    json_decref(api);
    MR_ENSURE_ALLOC(json_object_set_new(in->injector, "start", json_true()) == 0 ? in->injector
                                                                               : NULL);
    if (st == 200) {
        MR_ENSURE_ALLOC(json_object_set_new(in->injector, "useCertManager", json_true()) == 0
                            ? in->injector : NULL);
        printf("... Done\n");
        return MR_SUCCESS;
    }
    *created = true;
    MR_GUARD(mr_install_webhook_cert(&in->k, in->ns, in->injector));
    printf(" Done\n");
    return MR_SUCCESS;
}

static MR_RESULT apply_chart(install *in)
{
    json_t *objs = NULL;
    MR_GUARD(mr_chart_render(in->chart_dir, in->ns, in->over, &objs));
    mr_result r = MR_SUCCESS;
    for (size_t i = 0; mr_ok(r) && i < json_array_size(objs); i++)
        r = mr_kube_apply(&in->k, json_array_get(objs, i));
    json_decref(objs);
    return r;
}

static MR_RESULT check_flags(install *in)
{
    bool qcnl = mr_cli_changed(in->cli, "dcap-qcnl-config-file");
    static const char *const others[] = {"dcap-pccs-url", "dcap-secure-cert"};
    for (size_t i = 0; i < 2; i++)
        MR_ENSURE(!(qcnl && mr_cli_changed(in->cli, others[i])), MR_ERR_USAGE,
                  "if any flags in the group [%s dcap-qcnl-config-file] are set none of the "
                  "others can be; [%s dcap-qcnl-config-file] were all set", others[i],
                  others[i]);
    const char *want = mr_cli_str(in->cli, "version");
    if (want[0] != '\0') {
        char have[64];
        MR_GUARD(mr_chart_version(in->chart_dir, have, sizeof(have)));
        const char *w = want[0] == 'v' ? want + 1 : want;
        MR_ENSURE(strcmp(w, have) == 0, MR_ERR_USAGE,
                  "chart \"marblerun\" version \"%s\" not found: this CLI carries version %s "
                  "(use --marblerun-chart-path for another chart)", want, have);
    }
    return MR_SUCCESS;
}

static MR_RESULT install_run(install *in)
{
    bool created = false;
    MR_GUARD(check_flags(in));
    MR_GUARD(mr_kube_open(&in->k));
    MR_GUARD(mr_chart_default_values(in->chart_dir, &in->defaults));
    MR_GUARD(detect_resource_key(in->cli, &in->k, in->rk, sizeof(in->rk)));
    MR_GUARD(ensure_namespace(&in->k, in->ns));
    mr_result r = MR_SUCCESS;
    if (!mr_cli_bool(in->cli, "disable-auto-injection"))
        r = setup_webhook(in, &created);
    if (mr_ok(r))
        r = build_values(in);
    if (mr_ok(r))
        r = apply_chart(in);
    if (!mr_ok(r) && created) {
        mr_error saved;
        char path[512];
        mr_error_take(&saved);
        (void)snprintf(path, sizeof(path),
                       "/apis/certificates.k8s.io/v1/certificatesigningrequests/marble-injector.%s",
                       in->ns);
        MR_IGNORE(mr_kube_delete(&in->k, path));
        (void)snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", in->ns,
                       MR_WEBHOOK_SECRET);
        MR_IGNORE(mr_kube_delete(&in->k, path));
        mr_error_restore(&saved);
    }
    MR_GUARD(r);
    printf("MarbleRun installed successfully\n");
    return MR_SUCCESS;
}

static MR_RESULT run_install(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    install in = {.cli = cli, .ns = mr_cli_str(cli, "namespace")};
    memset(&in.k, 0, sizeof(in.k));
    const char *dir = mr_cli_str(cli, "marblerun-chart-path");
    in.chart_dir = dir[0] != '\0' ? dir : NULL;
    in.over = json_object();
    in.injector = json_object();
    mr_result r = MR_FAILURE;
    if (in.over == NULL || in.injector == NULL)
        mr_error_set(MR_ERR_INTERNAL, __FILE__, __LINE__, "out of memory");
    else
        r = install_run(&in);
    mr_kube_close(&in.k);
    json_decref(in.defaults);
    json_decref(in.over);
    json_decref(in.injector);
    return r;
}

static const mr_flag install_flags[] = {
    {"client-server-port", 0, MR_FLAG_STRING, "4433",
     "Set the client server port. Needs to be configured to the same port as in your "
     "client tool stack"},
    {"dcap-pccs-url", 0, MR_FLAG_STRING, DEFAULT_PCCS, "Provisioning Certificate Caching "
     "Service (PCCS) server address. Mutually exclusive with --dcap-qcnl-config-file"},
    {"dcap-qcnl-config-file", 0, MR_FLAG_STRING, "", "Path to a custom QCNL configuration "
     "file. Mutually exclusive with --dcap-pccs-url and --dcap-secure-cert"},
    {"dcap-qpl", 0, MR_FLAG_STRING, "", "Deprecated: All platforms use the same QPL now. Set "
     "your DCAP settings using --dcap-pccs-url and --dcap-secure-cert"},
    {"dcap-secure-cert", 0, MR_FLAG_STRING, "TRUE", "To accept insecure HTTPS certificate "
     "from the PCCS, set this option to FALSE. Mutually exclusive with --dcap-qcnl-config-file"},
    {"disable-auto-injection", 0, MR_FLAG_BOOL, "false",
     "Install MarbleRun without auto-injection webhook"},
    {"distributed-deployment", 0, MR_FLAG_BOOL, "false",
     "Install MarbleRun in distributed mode, allowing multiple Coordinator instances"},
    {"domain", 0, MR_FLAG_STRINGS, "", "Sets additional DNS names and IPs for the "
     "Coordinator TLS certificate"},
    {"enterprise-access-token", 0, MR_FLAG_STRING, "", "Deprecated: this flag does nothing"},
    {"marblerun-chart-path", 0, MR_FLAG_STRING, "", "Path to MarbleRun helm chart"},
    {"mesh-server-port", 0, MR_FLAG_STRING, "2001", "Set the mesh server port. Needs to be "
     "configured to the same port as in the data-plane marbles"},
    {"resource-key", 0, MR_FLAG_STRING, "", "Resource providing SGX, different depending on "
     "used device plugin. Use this to set tolerations/resources if your device plugin is not "
     "supported by MarbleRun"},
    {"simulation", 0, MR_FLAG_BOOL, "false", "Set MarbleRun to start in simulation mode"},
    {"version", 0, MR_FLAG_STRING, "", "Version of the Coordinator to install, latest by "
     "default"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

const mr_cmd mr_cmd_install = {
    .name = "install",
    .short_help = "Installs MarbleRun on a Kubernetes cluster",
    .long_help = "Installs MarbleRun on a Kubernetes cluster",
    .example = "# Install MarbleRun in simulation mode\nmarblerun install --simulation\n\n"
               "# Install MarbleRun using the Intel QPL and custom PCCS\nmarblerun install "
               "--dcap-pccs-url https://pccs.example.com/sgx/certification/v4/ "
               "--dcap-secure-cert FALSE",
    .flags = install_flags,
    .run = run_install,
};
