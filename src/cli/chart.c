/* SPDX-License-Identifier: Apache-2.0 */
/* The chart: files (directory or embedded), values, rendering into objects (chart.h). */
#include "cli/chart.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/tpl.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/file.h"

#define CHART_FILE_MAX ((size_t)1 << 20)
#define CHART_TEMPLATES_MAX 64

/* One chart file's bytes, from the directory or the embedded copy. */
static MR_RESULT chart_file(const char *dir, const char *rel, mr_buf *out)
{
    if (dir == NULL) {
        for (size_t i = 0; i < mr_chart_embedded_count; i++)
            if (strcmp(mr_chart_embedded[i].path, rel) == 0)
                return mr_buf_set(out, mr_chart_embedded[i].data, mr_chart_embedded[i].len);
        MR_BAIL(MR_ERR_IO, "chart file %s missing", rel);
    }
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, rel);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(path), MR_ERR_USAGE, "chart path too long");
    return mr_file_read(path, CHART_FILE_MAX, out);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .yaml files in templates/, sorted; names[] owned by the caller (mr_free each). */
static MR_RESULT template_names(const char *dir, char **names, size_t *n)
{
    *n = 0;
    if (dir == NULL) {
        for (size_t i = 0; i < mr_chart_embedded_count && *n < CHART_TEMPLATES_MAX; i++) {
            const char *p = mr_chart_embedded[i].path;
            size_t l = strlen(p);
            if (strncmp(p, "templates/", 10) == 0 && l > 5 && strcmp(p + l - 5, ".yaml") == 0) {
                names[*n] = mr_strdup(p);
                MR_ENSURE_ALLOC(names[*n]);
                (*n)++;
            }
        }
    } else {
        char path[4096];
        (void)snprintf(path, sizeof(path), "%s/templates", dir);
        DIR *d = opendir(path);
        MR_ENSURE(d != NULL, MR_ERR_IO, "reading chart templates in %s failed", path);
        struct dirent *e;
        while ((e = readdir(d)) != NULL && *n < CHART_TEMPLATES_MAX) {
            size_t l = strlen(e->d_name);
            if (l <= 5 || strcmp(e->d_name + l - 5, ".yaml") != 0)
                continue;
            char rel[512];
            (void)snprintf(rel, sizeof(rel), "templates/%s", e->d_name);
            names[*n] = mr_strdup(rel);
            if (names[*n] == NULL) {
                closedir(d);
                MR_BAIL(MR_ERR_INTERNAL, "out of memory");
            }
            (*n)++;
        }
        closedir(d);
    }
    qsort(names, *n, sizeof(*names), cmp_str);
    return MR_SUCCESS;
}

static MR_RESULT yaml_value(const mr_buf *yaml, json_t **out)
{
    mr_result res = MR_FAILURE;
    mr_buf js;
    mr_buf_init(&js, 0, 0);
    MR_GUARD_OUT(mr_cli_yaml_to_json(yaml->data ? yaml->data : (const uint8_t *)"", yaml->len,
                                     &js));
    json_error_t err;
    *out = json_loadb((const char *)js.data, js.len, JSON_DECODE_ANY, &err);
    MR_ENSURE_OUT(*out != NULL, MR_ERR_USAGE, "converting YAML: %s", err.text);
    res = MR_SUCCESS;
out:
    mr_buf_free(&js);
    return res;
}

static MR_RESULT yaml_file(const char *dir, const char *rel, json_t **out)
{
    mr_buf b;
    mr_buf_init(&b, CHART_FILE_MAX, 0);
    mr_result r = chart_file(dir, rel, &b);
    if (mr_ok(r))
        r = yaml_value(&b, out);
    mr_buf_free(&b);
    if (!mr_ok(r))
        mr_error_prefix("chart %s", rel);
    return r;
}

MR_RESULT mr_chart_default_values(const char *dir, json_t **out)
{
    MR_GUARD(yaml_file(dir, "values.yaml", out));
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = json_object();
        MR_ENSURE_ALLOC(*out);
    }
    return MR_SUCCESS;
}

MR_RESULT mr_chart_version(const char *dir, char *out, size_t out_len)
{
    json_t *c = NULL;
    MR_GUARD(yaml_file(dir, "Chart.yaml", &c));
    const char *v = json_string_value(json_object_get(c, "version"));
    (void)snprintf(out, out_len, "%s", v ? v : "");
    json_decref(c);
    return MR_SUCCESS;
}

MR_RESULT mr_chart_coalesce(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        json_t *d = json_object_get(dst, k);
        if (json_is_null(v)) {
            (void)json_object_del(dst, k); /* absent is fine */
        } else if (json_is_object(v) && json_is_object(d)) {
            MR_GUARD(mr_chart_coalesce(d, v));
        } else {
            MR_ENSURE_ALLOC(json_object_set(dst, k, v) == 0 ? dst : NULL);
        }
    }
    return MR_SUCCESS;
}

static int kind_rank(const json_t *obj)
{
    static const char *const order[] = {
        "Namespace", "ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim",
        "Role", "RoleBinding", "Service", "Deployment", "MutatingWebhookConfiguration",
        "Issuer", "Certificate"};
    const char *k = json_string_value(json_object_get(obj, "kind"));
    for (size_t i = 0; k != NULL && i < sizeof(order) / sizeof(order[0]); i++)
        if (strcmp(k, order[i]) == 0)
            return (int)i;
    return 100;
}

/* Splits rendered text at "---" lines, appending each non-empty document to objs. */
static MR_RESULT split_docs(const mr_buf *text, json_t *objs)
{
    const char *p = text->data ? (const char *)text->data : "", *end = p + text->len;
    const char *doc = p;
    while (doc <= end) {
        const char *q = doc;
        const char *next = NULL, *stop = end;
        while (q < end) {
            const char *eol = memchr(q, '\n', (size_t)(end - q));
            const char *le = eol ? eol : end;
            if (le - q >= 3 && memcmp(q, "---", 3) == 0 && (le - q == 3 || q[3] == ' ')) {
                stop = q;
                next = eol ? eol + 1 : end + 1;
                break;
            }
            q = eol ? eol + 1 : end;
        }
        mr_buf one;
        mr_buf_init(&one, 0, 0);
        json_t *v = NULL;
        mr_result r = mr_buf_append(&one, doc, (size_t)(stop - doc));
        if (mr_ok(r))
            r = yaml_value(&one, &v);
        mr_buf_free(&one);
        MR_GUARD(r);
        if (json_is_object(v))
            MR_ENSURE_ALLOC(json_array_append_new(objs, v) == 0 ? objs : NULL);
        else
            json_decref(v);
        if (next == NULL)
            break;
        doc = next;
    }
    return MR_SUCCESS;
}

static MR_RESULT render_one(const char *dir, const char *rel, json_t *data, json_t *objs)
{
    mr_result res = MR_FAILURE;
    mr_buf src, text;
    mr_buf_init(&src, CHART_FILE_MAX, 0);
    mr_buf_init(&text, CHART_FILE_MAX * 4, 0);
    MR_GUARD_OUT(chart_file(dir, rel, &src));
    MR_GUARD_OUT(mr_tpl_render(rel, src.data ? (const char *)src.data : "", src.len, data,
                               &text));
    MR_GUARD_OUT(split_docs(&text, objs));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        mr_error_prefix("rendering chart %s", rel);
    mr_buf_free(&src);
    mr_buf_free(&text);
    return res;
}

static MR_RESULT render_data(const char *dir, const char *ns, json_t *overrides, json_t **out)
{
    json_t *values = NULL, *chart = NULL;
    MR_GUARD(mr_chart_default_values(dir, &values));
    mr_result r = overrides ? mr_chart_coalesce(values, overrides) : MR_SUCCESS;
    if (mr_ok(r))
        r = yaml_file(dir, "Chart.yaml", &chart);
    if (!mr_ok(r)) {
        json_decref(values);
        return r;
    }
    *out = json_pack("{s:o, s:{s:s, s:s, s:s}, s:{s:O?, s:O?, s:O?}}", "Values", values,
                     "Release", "Name", "marblerun", "Namespace", ns, "Service", "Helm",
                     "Chart", "Name", json_object_get(chart, "name"), "Version",
                     json_object_get(chart, "version"), "AppVersion",
                     json_object_get(chart, "appVersion"));
    json_decref(chart);
    MR_ENSURE_ALLOC(*out);
    return MR_SUCCESS;
}

static void sort_objects(json_t *objs)
{
    /* stable insertion sort by kind rank (a dozen objects) */
    for (size_t i = 1; i < json_array_size(objs); i++) {
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(objs, j - 1), *b = json_array_get(objs, j);
            if (kind_rank(a) <= kind_rank(b))
                break;
            json_incref(a);
            (void)json_array_set(objs, j - 1, b); /* in range: cannot fail */
            (void)json_array_set_new(objs, j, a);
        }
    }
}

MR_RESULT mr_chart_render(const char *dir, const char *ns, json_t *overrides, json_t **out)
{
    mr_result res = MR_FAILURE;
    char *names[CHART_TEMPLATES_MAX];
    size_t n = 0;
    json_t *data = NULL, *objs = json_array();
    MR_ENSURE_ALLOC_OUT(objs);
    MR_GUARD_OUT(render_data(dir, ns, overrides, &data));
    MR_GUARD_OUT(template_names(dir, names, &n));
    for (size_t i = 0; i < n; i++)
        MR_GUARD_OUT(render_one(dir, names[i], data, objs));
    sort_objects(objs);
    *out = objs;
    objs = NULL;
    res = MR_SUCCESS;
out:
    for (size_t i = 0; i < n; i++)
        mr_free(names[i]);
    json_decref(objs);
    json_decref(data);
    return res;
}
