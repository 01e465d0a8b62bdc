/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes API client of the CLI (kube.h). */
#include "cli/kube.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/file.h"

#define KUBE_BODY_MAX ((size_t)64 << 20)

static json_t *named(json_t *list, const char *name, const char *member)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n != NULL && name != NULL && strcmp(n, name) == 0)
            return json_object_get(e, member);
    }
    return NULL;
}

/* "<x>-data" (base64) or "<x>" (a file, relative to the kubeconfig's directory) into out. */
static MR_RESULT data_or_file(json_t *obj, const char *key, const char *dir, mr_buf *out)
{
    char name[96];
    (void)snprintf(name, sizeof(name), "%s-data", key);
    const char *d = json_string_value(json_object_get(obj, name));
    if (d != NULL && d[0] != '\0')
        return mr_b64_decode_buf(d, strlen(d), MR_B64_STD, MR_B64_IGNORE_NEWLINES, out);
    const char *f = json_string_value(json_object_get(obj, key));
    if (f == NULL || f[0] == '\0')
        return MR_SUCCESS;
    char path[4096];
    if (f[0] == '/')
        (void)snprintf(path, sizeof(path), "%s", f);
    else
        (void)snprintf(path, sizeof(path), "%s/%s", dir, f);
    return mr_file_read(path, MR_CLI_FILE_MAX, out);
}

static MR_RESULT config_path(char *path, size_t len, char *dir, size_t dir_len)
{
    const char *env = getenv("KUBECONFIG");
    const char *home = getenv("HOME");
    if (env != NULL && env[0] != '\0')
        (void)snprintf(path, len, "%s", env);
    else
        (void)snprintf(path, len, "%s/.kube/config", home ? home : "");
    (void)snprintf(dir, dir_len, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        (void)snprintf(dir, dir_len, ".");
    return MR_SUCCESS;
}

static MR_RESULT load_config(const char *path, json_t **out)
{
    mr_result res = MR_FAILURE;
    mr_buf raw, js;
    mr_buf_init(&raw, 0, 0);
    mr_buf_init(&js, 0, 0);
    if (!mr_ok(mr_file_read(path, MR_CLI_FILE_MAX, &raw))) {
        MR_BAIL_OUT(MR_ERR_USAGE, "stat %s: no such file or directory", path);
    }
    MR_GUARD_OUT(mr_cli_yaml_to_json(raw.data ? raw.data : (const uint8_t *)"", raw.len, &js));
    *out = json_loadb((const char *)js.data, js.len, 0, NULL);
    MR_ENSURE_OUT(json_is_object(*out), MR_ERR_USAGE,
                  "invalid configuration: no configuration has been provided");
    res = MR_SUCCESS;
out:
    mr_buf_free(&raw);
    mr_buf_free(&js);
    return res;
}

static MR_RESULT use_user(mr_kube *k, json_t *user, const char *dir)
{
    if (user == NULL)
        return MR_SUCCESS;
    MR_GUARD(data_or_file(user, "client-certificate", dir, &k->cert));
    MR_GUARD(data_or_file(user, "client-key", dir, &k->key));
    const char *tok = json_string_value(json_object_get(user, "token"));
    if (tok != NULL && tok[0] != '\0')
        return mr_buf_set(&k->token, tok, strlen(tok));
    const char *tf = json_string_value(json_object_get(user, "tokenFile"));
    if (tf != NULL && tf[0] != '\0') {
        MR_GUARD(mr_file_read(tf, MR_CLI_FILE_MAX, &k->token));
        while (k->token.len > 0 && (k->token.data[k->token.len - 1] == '\n' ||
                                    k->token.data[k->token.len - 1] == '\r'))
            k->token.len--;
    }
    return MR_SUCCESS;
}

MR_RESULT mr_kube_open(mr_kube *k)
{
    mr_result res = MR_FAILURE;
    json_t *cfg = NULL;
    char path[4096], dir[4096];
    memset(k, 0, sizeof(*k));
    mr_buf_init(&k->ca, 0, 0);
    mr_buf_init(&k->cert, 0, 0);
    mr_buf_init(&k->key, 0, MR_BUF_WIPE);
    mr_buf_init(&k->token, 0, MR_BUF_WIPE);
    MR_GUARD_OUT(config_path(path, sizeof(path), dir, sizeof(dir)));
    MR_GUARD_OUT(load_config(path, &cfg));
    const char *cur = json_string_value(json_object_get(cfg, "current-context"));
    json_t *ctx = named(json_object_get(cfg, "contexts"), cur, "context");
    const char *cname = json_string_value(json_object_get(ctx, "cluster"));
    const char *uname = json_string_value(json_object_get(ctx, "user"));
    json_t *cluster = named(json_object_get(cfg, "clusters"), cname, "cluster");
    const char *server = json_string_value(json_object_get(cluster, "server"));
    MR_ENSURE_OUT(server != NULL && server[0] != '\0', MR_ERR_USAGE,
                  "invalid configuration: no configuration has been provided, try setting "
                  "KUBERNETES_MASTER environment variable");
    (void)snprintf(k->server, sizeof(k->server), "%s", server);
    while (strlen(k->server) > 0 && k->server[strlen(k->server) - 1] == '/')
        k->server[strlen(k->server) - 1] = '\0';
    k->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
    MR_GUARD_OUT(data_or_file(cluster, "certificate-authority", dir, &k->ca));
    MR_GUARD_OUT(use_user(k, named(json_object_get(cfg, "users"), uname, "user"), dir));
    res = MR_SUCCESS;
out:
    json_decref(cfg);
    if (!mr_ok(res))
        mr_kube_close(k);
    return res;
}

void mr_kube_close(mr_kube *k)
{
    mr_buf_free(&k->ca);
    mr_buf_free(&k->cert);
    mr_buf_free(&k->key);
    mr_buf_free(&k->token);
}

const mr_buf *mr_kube_ca(const mr_kube *k)
{
    return &k->ca;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    mr_buf *b = arg;
    return mr_ok(mr_buf_append(b, p, size * n)) ? size * n : 0;
}

static void set_tls(mr_kube *k, CURL *h, struct curl_blob *ca, struct curl_blob *cert,
                    struct curl_blob *key)
{
    if (k->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (k->ca.len > 0) {
        *ca = (struct curl_blob){.data = k->ca.data, .len = k->ca.len, .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, ca);
    }
    if (k->cert.len > 0 && k->key.len > 0) {
        *cert = (struct curl_blob){.data = k->cert.data, .len = k->cert.len,
                                   .flags = CURL_BLOB_NOCOPY};
        *key = (struct curl_blob){.data = k->key.data, .len = k->key.len,
                                  .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, cert);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, key);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
}

static MR_RESULT headers(mr_kube *k, const char *ctype, struct curl_slist **hdrs)
{
    mr_buf auth;
    mr_buf_init(&auth, 0, MR_BUF_WIPE);
    *hdrs = curl_slist_append(*hdrs, "Accept: application/json");
    if (ctype != NULL) {
        char ct[128];
        (void)snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        *hdrs = curl_slist_append(*hdrs, ct);
    }
    if (k->token.len > 0) {
        mr_result r = mr_buf_printf(&auth, "Authorization: Bearer %.*s", (int)k->token.len,
                                    (const char *)k->token.data);
        if (mr_ok(r))
            r = mr_buf_nul_terminate(&auth);
        if (mr_ok(r))
            *hdrs = curl_slist_append(*hdrs, (const char *)auth.data);
        mr_buf_free(&auth);
        MR_GUARD(r);
    }
    MR_ENSURE_ALLOC(*hdrs);
    return MR_SUCCESS;
}

MR_RESULT mr_kube_do(mr_kube *k, const char *method, const char *path, const char *ctype,
                     const json_t *body, long *status, json_t **out)
{
    mr_result res = MR_FAILURE;
    char url[2048], errbuf[CURL_ERROR_SIZE] = "";
    char *data = NULL;
    struct curl_slist *hdrs = NULL;
    struct curl_blob ca, cert, key;
    mr_buf resp;
    mr_buf_init(&resp, KUBE_BODY_MAX, 0);
    *out = NULL;
    CURL *h = curl_easy_init();
    MR_ENSURE_OUT(h != NULL, MR_ERR_INTERNAL, "curl_easy_init failed");
    int n = snprintf(url, sizeof(url), "%s%s", k->server, path);
    MR_ENSURE_OUT(n > 0 && (size_t)n < sizeof(url), MR_ERR_USAGE, "URL too long");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    set_tls(k, h, &ca, &cert, &key);
    MR_GUARD_OUT(headers(k, body ? (ctype ? ctype : "application/json") : NULL, &hdrs));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        data = json_dumps(body, JSON_COMPACT);
        MR_ENSURE_ALLOC_OUT(data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(data));
    }
    CURLcode rc = curl_easy_perform(h);
    MR_ENSURE_OUT(rc == CURLE_OK, MR_ERR_UNAVAILABLE, "%s \"%s\": %s", method, url,
                  errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (resp.len > 0)
        *out = json_loadb((const char *)resp.data, resp.len, 0, NULL);
    res = MR_SUCCESS;
out:
    free(data); /* check-source: allow alloc -- jansson's allocation */
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    mr_buf_free(&resp);
    return res;
}

static mr_errcat status_cat(long st)
{
    return st == 404 ? MR_ERR_NOT_FOUND : st == 409 ? MR_ERR_CONFLICT
         : (st == 401 || st == 403) ? MR_ERR_AUTH : st >= 500 ? MR_ERR_UNAVAILABLE : MR_ERR_USAGE;
}

MR_RESULT mr_kube_call(mr_kube *k, const char *method, const char *path, const char *ctype,
                       const json_t *body, json_t **out)
{
    long st = 0;
    json_t *v = NULL;
    MR_GUARD(mr_kube_do(k, method, path, ctype, body, &st, &v));
    if (st < 200 || st > 299) {
        const char *msg = json_string_value(json_object_get(v, "message"));
        mr_error_set(status_cat(st), __FILE__, __LINE__, "%s",
                     msg ? msg : "the server could not handle the request");
        json_decref(v);
        return MR_FAILURE;
    }
    if (out != NULL)
        *out = v;
    else
        json_decref(v);
    return MR_SUCCESS;
}

MR_RESULT mr_kube_get_opt(mr_kube *k, const char *path, json_t **out)
{
    *out = NULL;
    if (mr_ok(mr_kube_call(k, "GET", path, NULL, NULL, out)))
        return MR_SUCCESS;
    if (mr_error_is(MR_ERR_NOT_FOUND)) {
        mr_error_clear();
        return MR_SUCCESS;
    }
    return MR_FAILURE;
}

MR_RESULT mr_kube_delete(mr_kube *k, const char *path)
{
    if (mr_ok(mr_kube_call(k, "DELETE", path, NULL, NULL, NULL)))
        return MR_SUCCESS;
    if (mr_error_is(MR_ERR_NOT_FOUND)) {
        mr_error_clear();
        return MR_SUCCESS;
    }
    return MR_FAILURE;
}

typedef struct kind_info {
    const char *api, *kind, *plural;
    bool namespaced;
} kind_info;

static const kind_info kinds[] = {
    {"v1", "Namespace", "namespaces", false},
    {"v1", "ServiceAccount", "serviceaccounts", true},
    {"v1", "Secret", "secrets", true},
    {"v1", "ConfigMap", "configmaps", true},
    {"v1", "PersistentVolumeClaim", "persistentvolumeclaims", true},
    {"v1", "Service", "services", true},
    {"rbac.authorization.k8s.io/v1", "Role", "roles", true},
    {"rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", true},
    {"apps/v1", "Deployment", "deployments", true},
    {"admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
     "mutatingwebhookconfigurations", false},
    {"cert-manager.io/v1", "Issuer", "issuers", true},
    {"cert-manager.io/v1", "Certificate", "certificates", true},
    {"certificates.k8s.io/v1", "CertificateSigningRequest", "certificatesigningrequests", false},
};

MR_RESULT mr_kube_object_path(const json_t *obj, char *out, size_t out_len)
{
    const char *api = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    for (size_t i = 0; api && kind && name && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kinds[i].api, api) != 0 || strcmp(kinds[i].kind, kind) != 0)
            continue;
        const char *pre = strcmp(api, "v1") == 0 ? "/api" : "/apis";
        int n = kinds[i].namespaced
                    ? snprintf(out, out_len, "%s/%s/namespaces/%s/%s/%s", pre, api,
                               ns ? ns : "default", kinds[i].plural, name)
                    : snprintf(out, out_len, "%s/%s/%s/%s", pre, api, kinds[i].plural, name);
        MR_ENSURE(n > 0 && (size_t)n < out_len, MR_ERR_USAGE, "object path too long");
        return MR_SUCCESS;
    }
    MR_BAIL(MR_ERR_USAGE, "unsupported object %s %s", api ? api : "?", kind ? kind : "?");
}

MR_RESULT mr_kube_apply(mr_kube *k, const json_t *obj)
{
    char path[1024], full[1100];
    MR_GUARD(mr_kube_object_path(obj, path, sizeof(path)));
    (void)snprintf(full, sizeof(full), "%s?fieldManager=marblerun&force=true", path);
    return mr_kube_call(k, "PATCH", full, "application/apply-patch+yaml", obj, NULL);
}
