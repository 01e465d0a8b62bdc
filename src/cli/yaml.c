/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manifest loading: a file that is JSON is taken byte-for-byte; YAML is converted to JSON the
 * way MarbleRun's CLI does it (sigs.k8s.io/yaml over yaml.v2: YAML 1.1 scalar resolution of
 * plain scalars, quoted scalars are strings, duplicate keys rejected, aliases expanded up to
 * YAML_NODES_MAX nodes) and written as encoding/json writes it: compact, object keys sorted,
 * strings quoted by mr_json_quote. Numbers are printed by jansson: integers as Go prints
 * them, but floating-point numbers with 17 significant digits ("0.10000000000000001" where Go
 * writes 0.1, "1.0" where it writes 1).
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "cli/client.h"
#include "common/alloc.h"
#include "common/file.h"
#include "common/text.h"

#define YAML_DEPTH_MAX 64
/* Aliases are expanded; this bounds the expansion ("billion laughs"). */
#define YAML_NODES_MAX 1000000

/* libyaml's loader gives every untagged scalar the str tag, so explicit tags cannot be told
 * apart from none: quoted scalars are strings, plain ones are resolved (YAML 1.1). */
static bool is_plain(const yaml_node_t *n)
{
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool any_of(const char *s, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, words[i]) == 0)
            return true;
    return false;
}

/* A plain integer in YAML 1.1 (decimal, 0x hex, 0 octal, 0b binary; '_' separators). */
static bool parse_int(const char *s, json_int_t *out)
{
    char clean[80];
    size_t n = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '_')
            continue;
        if (n + 1 >= sizeof(clean))
            return false;
        clean[n++] = *p;
    }
    clean[n] = '\0';
    if (n == 0)
        return false;
    const char *p = clean;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        base = 2;
        p += 2;
    } else if (p[0] == '0' && p[1] != '\0') {
        base = 8;
        p += 1;
    }
    if (*p == '\0')
        return false;
    for (const char *q = p; *q != '\0'; q++) {
        int d = mr_hex_digit((uint8_t)*q);
        if (d < 0)
            d = 99;
        if (d >= base)
            return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(p, &end, base);
    if (errno != 0 || end == NULL || *end != '\0')
        return false;
    if (neg) {
        if (v > (unsigned long long)INT64_MAX + 1ULL)
            return false;
        *out = v == (unsigned long long)INT64_MAX + 1ULL ? INT64_MIN : -(json_int_t)v;
    } else {
        if (v > (unsigned long long)INT64_MAX)
            return false;
        *out = (json_int_t)v;
    }
    return true;
}

static bool parse_float(const char *s, double *out)
{
    /* YAML 1.1 float: [-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?, plus .inf/.nan (which
     * JSON cannot hold, so they stay strings here). */
    bool digit = false, dot = false;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    for (; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9')
            digit = true;
        else if (*p == '.' && !dot)
            dot = true;
        else if (*p == '_')
            continue;
        else
            break;
    }
    if (!digit)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    } else if (!dot) {
        return false;
    }
    if (*p != '\0' || strchr(s, '_') != NULL)
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == NULL || *end != '\0')
        return false;
    *out = v;
    return true;
}

static json_t *scalar_to_json(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    if (!is_plain(n))
        return json_stringn(s, n->data.scalar.length);
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const trues[] = {"y", "Y", "yes", "Yes", "YES", "true", "True",
                                        "TRUE", "on", "On", "ON"};
    static const char *const falses[] = {"n", "N", "no", "No", "NO", "false", "False",
                                         "FALSE", "off", "Off", "OFF"};
    if (any_of(s, nulls, MR_ARRAY_LEN(nulls)))
        return json_null();
    if (any_of(s, trues, MR_ARRAY_LEN(trues)))
        return json_true();
    if (any_of(s, falses, MR_ARRAY_LEN(falses)))
        return json_false();
    json_int_t i;
    if (parse_int(s, &i))
        return json_integer(i);
    double d;
    if (parse_float(s, &d))
        return json_real(d);
    return json_stringn(s, n->data.scalar.length);
}

static MR_RESULT node_to_json(yaml_document_t *doc, yaml_node_t *n, int depth, size_t *budget,
                              json_t **out);

/* A sequence becomes an array. */
static MR_RESULT seq_to_json(yaml_document_t *doc, yaml_node_t *n, int depth, size_t *budget,
                             json_t **out)
{
    mr_result res = MR_FAILURE;
    json_t *v = json_array();

    MR_ENSURE_ALLOC(v);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        json_t *e = NULL;
        MR_GUARD_OUT(node_to_json(doc, yaml_document_get_node(doc, *it), depth + 1, budget, &e));
        json_array_append_new(v, e);
    }
    *out = v;
    v = NULL;
    res = MR_SUCCESS;
out:
    json_decref(v);
    return res;
}

/* A mapping becomes an object: scalar keys only, each at most once. */
static MR_RESULT map_to_json(yaml_document_t *doc, yaml_node_t *n, int depth, size_t *budget,
                             json_t **out)
{
    mr_result res = MR_FAILURE;
    json_t *v = json_object();

    MR_ENSURE_ALLOC(v);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        json_t *e = NULL;
        MR_ENSURE_OUT(k != NULL && k->type == YAML_SCALAR_NODE, MR_ERR_USAGE,
                      "yaml: only scalar mapping keys are supported");
        const char *key = (const char *)k->data.scalar.value;
        MR_ENSURE_OUT(strlen(key) == k->data.scalar.length, MR_ERR_USAGE,
                      "yaml: line %zu: a mapping key contains a NUL character",
                      k->start_mark.line + 1);
        MR_ENSURE_OUT(json_object_get(v, key) == NULL, MR_ERR_USAGE,
                      "yaml: line %zu: key \"%s\" already set in map", k->start_mark.line + 1,
                      key);
        MR_GUARD_OUT(
            node_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1, budget, &e));
        json_object_set_new(v, key, e);
    }
    *out = v;
    v = NULL;
    res = MR_SUCCESS;
out:
    json_decref(v);
    return res;
}

static MR_RESULT node_to_json(yaml_document_t *doc, yaml_node_t *n, int depth, size_t *budget,
                              json_t **out)
{
    MR_ENSURE(n != NULL, MR_ERR_USAGE, "yaml: invalid node reference");
    MR_ENSURE(depth < YAML_DEPTH_MAX, MR_ERR_USAGE, "yaml: document nested too deeply");
    MR_ENSURE(*budget > 0, MR_ERR_USAGE, "yaml: document expands to too many nodes");
    (*budget)--;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        *out = scalar_to_json(n);
        MR_ENSURE(*out != NULL, MR_ERR_USAGE, "yaml: invalid UTF-8 in a scalar");
        return MR_SUCCESS;
    case YAML_SEQUENCE_NODE:
        return seq_to_json(doc, n, depth, budget, out);
    case YAML_MAPPING_NODE:
        return map_to_json(doc, n, depth, budget, out);
    default:
        MR_BAIL(MR_ERR_USAGE, "yaml: empty document");
    }
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Writes v as encoding/json does: compact, object keys sorted bytewise, strings quoted by
 * mr_json_quote. Numbers keep jansson's formatting. */
static MR_RESULT emit_json(const json_t *v, mr_buf *out)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        mr_result res = MR_FAILURE;
        size_t n = json_object_size(v), k = 0;
        const char **keys = mr_calloc(n > 0 ? n : 1, sizeof(*keys));
        const char *key;
        json_t *e;
        MR_ENSURE_ALLOC(keys);
        json_object_foreach((json_t *)(uintptr_t)v, key, e)
            keys[k++] = key;
        qsort(keys, n, sizeof(*keys), key_cmp);
        MR_GUARD_OUT(mr_buf_append_u8(out, '{'));
        for (k = 0; k < n; k++) {
            if (k > 0)
                MR_GUARD_OUT(mr_buf_append_u8(out, ','));
            MR_GUARD_OUT(mr_json_quote(out, keys[k], strlen(keys[k])));
            MR_GUARD_OUT(mr_buf_append_u8(out, ':'));
            MR_GUARD_OUT(emit_json(json_object_get(v, keys[k]), out));
        }
        MR_GUARD_OUT(mr_buf_append_u8(out, '}'));
        res = MR_SUCCESS;
    out:
        mr_free(keys);
        return res;
    }
    case JSON_ARRAY:
        MR_GUARD(mr_buf_append_u8(out, '['));
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                MR_GUARD(mr_buf_append_u8(out, ','));
            MR_GUARD(emit_json(json_array_get(v, i), out));
        }
        return mr_buf_append_u8(out, ']');
    case JSON_STRING:
        return mr_json_quote(out, json_string_value(v), json_string_length(v));
    default: {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        MR_ENSURE_ALLOC(text);
        mr_result r = mr_buf_append_str(out, text);
        mr_wipe_free(text); /* jansson allocates with mr_wipe_malloc (common/alloc.c) */
        return r;
    }
    }
}

MR_RESULT mr_cli_yaml_to_json(const uint8_t *yaml, size_t len, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_parser = false, have_doc = false;
    json_t *root = NULL;
    MR_ENSURE_OUT(yaml_parser_initialize(&parser) == 1, MR_ERR_INTERNAL,
                  "yaml parser initialisation failed");
    have_parser = true;
    yaml_parser_set_input_string(&parser, yaml, len);
    MR_ENSURE_OUT(yaml_parser_load(&parser, &doc) == 1, MR_ERR_USAGE, "yaml: line %zu: %s",
                  parser.problem_mark.line + 1,
                  parser.problem != NULL ? parser.problem : "invalid document");
    have_doc = true;
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    if (top == NULL) {
        root = json_null();
    } else {
        size_t budget = YAML_NODES_MAX;
        MR_GUARD_OUT(node_to_json(&doc, top, 0, &budget, &root));
    }
    MR_GUARD_OUT(emit_json(root, out));
    res = MR_SUCCESS;
out:
    json_decref(root);
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    return res;
}

MR_RESULT mr_cli_manifest_load(const char *path, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf file;
    mr_buf_init(&file, 0, 0);
    MR_GUARD_OUT(mr_file_read(path, MR_CLI_FILE_MAX, &file));
    json_error_t jerr;
    json_t *j = json_loadb((const char *)file.data, file.len, JSON_DECODE_ANY, &jerr);
    if (j != NULL) {
        json_decref(j);
        MR_GUARD_OUT(mr_buf_append(out, file.data, file.len));
    } else if (!mr_ok(mr_cli_yaml_to_json(file.data, file.len, out))) {
        mr_error_prefix("loading manifest %s", path);
        goto out;
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&file);
    return res;
}
