/* SPDX-License-Identifier: Apache-2.0 */
/* The chart template renderer (cli/tpl.h) and the chart (cli/chart.h): Go text/template
 * semantics of the subset, Helm's value coalescing, the embedded chart. The equality with
 * `helm template` is checked by tests/k8s/test_chart_render.py. */
#include "mr_test.h"

#include <string.h>

#include "cli/chart.h"
#include "cli/tpl.h"
#include "common/alloc.h"

static json_t *data(void)
{
    json_t *d = json_loads(
        "{\"Values\": {\"s\": \"Ab\", \"n\": 2001, \"f\": 1.5, \"t\": true, \"e\": \"\", "
        "\"z\": 0, \"m\": {\"b\": \"2\", \"a\": \"1\"}, \"l\": [\"x\", \"y\"], \"em\": {}, "
        "\"q\": \"say \\\"hi\\\"\\n\", \"nul\": null, \"bs\": \"TRUE\"},"
        " \"Release\": {\"Namespace\": \"ns1\"}}", 0, NULL);
    assert_non_null(d);
    return d;
}

static void render_eq(const char *tpl, const char *want)
{
    json_t *d = data();
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    MR_ASSERT_OK(mr_tpl_render("t", tpl, strlen(tpl), d, &out));
    MR_ASSERT_OK(mr_buf_nul_terminate(&out));
    assert_string_equal((const char *)out.data, want);
    mr_buf_free(&out);
    json_decref(d);
}

static void render_fail(const char *tpl, const char *needle)
{
    json_t *d = data();
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    MR_ASSERT_FAIL(mr_tpl_render("t.yaml", tpl, strlen(tpl), d, &out), MR_ERR_USAGE, needle);
    mr_buf_free(&out);
    json_decref(d);
}

static void test_values_and_printing(void **state)
{
    (void)state;
    render_eq("a {{ .Values.s }} {{.Values.n}} {{ .Values.f }} {{ .Values.t }} [{{ .Values.missing.x }}]",
              "a Ab 2001 1.5 true []");
    render_eq("{{ .Release.Namespace }}:{{ .Values.nul }}.", "ns1:.");
    render_eq("{{ \"lit\" }} {{ 42 }} {{ true }} {{ nil }}|", "lit 42 true |");
}

static void test_trim_and_comments(void **state)
{
    (void)state;
    render_eq("a  \n  {{- .Values.s }}  \n b", "aAb  \n b");
    render_eq("a {{ .Values.s -}}  \n\n  b", "a Abb");
    render_eq("x{{/* a comment */}}y", "xy");
    render_eq("x\n{{- /* trimmed comment */ -}}\ny", "xy");
    render_eq("{{-3}}", "-3"); /* no space after '-': a number, not a trim marker */
}

static void test_if_else(void **state)
{
    (void)state;
    render_eq("{{ if .Values.t }}yes{{ else }}no{{ end }}", "yes");
    render_eq("{{ if .Values.e }}1{{ else if .Values.z }}2{{ else if .Values.l }}3{{ else }}4{{ end }}",
              "3");
    render_eq("{{ if .Values.em }}1{{ else }}0{{ end }}{{ if .Values.missing }}1{{ end }}", "0");
    render_eq("{{ if not .Values.e }}empty{{ end }}", "empty");
    render_eq("{{ if and .Values.t .Values.s }}a{{ end }}{{ if and .Values.t .Values.e }}b{{ end }}",
              "a");
    render_eq("{{ if or .Values.e .Values.z }}a{{ else }}b{{ end }}{{ or .Values.e .Values.s }}",
              "bAb");
    render_eq("{{ if and (not .Values.e) (not .Values.z) }}ok{{ end }}", "ok");
    render_eq("{{ if eq .Values.s \"Ab\" }}eq{{ end }}{{ if ne .Values.s \"x\" }}ne{{ end }}",
              "eqne");
    render_eq("{{ if eq (lower (toString .Values.bs)) \"true\" }}T{{ end }}", "T");
    render_eq("{{ if .Values.t }}{{ if .Values.e }}x{{ else }}nested{{ end }}{{ end }}", "nested");
}

static void test_range(void **state)
{
    (void)state;
    render_eq("{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}", "a=1;b=2;");
    render_eq("{{ range $i, $v := .Values.l }}{{ $i }}{{ $v }}{{ end }}", "0x1y");
    render_eq("{{ range $v := .Values.l }}[{{ $v }}]{{ end }}", "[x][y]");
    render_eq("{{ range $k, $v := .Values.missing }}x{{ end }}.", ".");
    render_eq("{{- range $k, $v := .Values.m }}\n  {{ $k }}: {{ quote $v }}\n{{- end }}",
              "\n  a: \"1\"\n  b: \"2\"");
}

static void test_functions(void **state)
{
    (void)state;
    render_eq("{{ quote .Values.s }} {{ .Values.n | quote }} {{ quote .Values.q }}",
              "\"Ab\" \"2001\" \"say \\\"hi\\\"\\n\"");
    render_eq("{{ toJson .Values.m }} {{ toJson .Values.l }} {{ toJson .Values.s }}",
              "{\"a\":\"1\",\"b\":\"2\"} [\"x\",\"y\"] \"Ab\"");
    render_eq("{{ lower .Values.s }} {{ toString .Values.t }} {{ b64enc .Values.s }}", "ab true QWI=");
    render_eq("{{ default \"d\" .Values.e }} {{ default \"d\" .Values.s }}", "d Ab");
    render_eq("{{ print \"a\" .Values.t \"b\" 1 2 }}", "atrueb1 2");
    render_eq("{{ .Values.s | lower | quote }}", "\"ab\"");
}

static void test_errors(void **state)
{
    (void)state;
    render_fail("{{ .Values.s", "template: t.yaml:1: unclosed action");
    render_fail("a\n{{ end }}", "template: t.yaml:2: unexpected {{end}}");
    render_fail("{{ if .Values.t }}", "unexpected EOF");
    render_fail("{{ nosuch .Values.s }}", "function \"nosuch\" not defined");
    render_fail("{{ quote \"a }}", "unterminated quoted string");
    render_fail("{{ not }}", "wrong number of args for not");
    render_fail("{{ .Values.s .Values.n }}", "can't give argument to non-function");
    render_fail("{{ $x }}", "undefined variable \"$x\"");
    render_fail("{{ (quote .Values.s }}", "unclosed left paren");
    render_fail("{{ range $k, $v := .Values.s }}{{ end }}", "range can't iterate over a scalar");
}

static void test_coalesce(void **state)
{
    (void)state;
    json_t *dst = json_loads("{\"a\": {\"b\": 1, \"c\": 2}, \"t\": [1], \"k\": 1}", 0, NULL);
    json_t *src = json_loads("{\"a\": {\"c\": null, \"d\": 4}, \"t\": null, \"n\": \"x\"}", 0, NULL);
    MR_ASSERT_OK(mr_chart_coalesce(dst, src));
    json_t *want = json_loads("{\"a\": {\"b\": 1, \"d\": 4}, \"k\": 1, \"n\": \"x\"}", 0, NULL);
    assert_true(json_equal(dst, want));
    json_decref(dst);
    json_decref(src);
    json_decref(want);
}

static void test_embedded_chart(void **state)
{
    (void)state;
    char v[64];
    MR_ASSERT_OK(mr_chart_version(NULL, v, sizeof(v)));
    assert_string_equal(v, "1.9.1");
    json_t *over = json_loads("{\"coordinator\": {\"distributedDeployment\": true}}", 0, NULL);
    json_t *objs = NULL;
    MR_ASSERT_OK(mr_chart_render(NULL, "ha", over, &objs));
    /* install order: ServiceAccount first, the Deployment after the Services */
    json_t *first = json_array_get(objs, 0);
    assert_string_equal(json_string_value(json_object_get(first, "kind")), "ServiceAccount");
    size_t svc = 0, dep = 0, i;
    json_t *o;
    json_array_foreach(objs, i, o) {
        const char *k = json_string_value(json_object_get(o, "kind"));
        if (strcmp(k, "Service") == 0)
            svc = i;
        if (strcmp(k, "Deployment") == 0)
            dep = i;
        assert_string_not_equal(k, "PersistentVolumeClaim"); /* none in distributed mode */
    }
    assert_true(svc < dep);
    json_decref(objs);
    json_decref(over);
}

static mr_result sweep_op(void *ctx)
{
    (void)ctx;
    json_t *objs = NULL;
    mr_result r = mr_chart_render(NULL, "sweep", NULL, &objs);
    json_decref(objs);
    return r;
}

static void test_alloc_sweep(void **state)
{
    (void)state;
    assert_true(mr_test_alloc_sweep("chart render", sweep_op, NULL) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_printing), cmocka_unit_test(test_trim_and_comments),
        cmocka_unit_test(test_if_else),             cmocka_unit_test(test_range),
        cmocka_unit_test(test_functions),           cmocka_unit_test(test_errors),
        cmocka_unit_test(test_coalesce),            cmocka_unit_test(test_embedded_chart),
        cmocka_unit_test(test_alloc_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
