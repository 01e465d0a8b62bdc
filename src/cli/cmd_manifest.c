/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `marblerun manifest set|get|verify|signature|log|update apply|acknowledge|get|cancel`
 * (spec/marble-cli-k8s.md §4.5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/codec.h"

/* {"manifest": b64(bytes)} */
static json_t *manifest_body(const mr_buf *m)
{
    json_t *b64 = mr_cli_json_b64(m->data, m->len);
    return b64 != NULL ? json_pack("{so}", "manifest", b64) : NULL;
}

static bool has_entries(json_t *o) { return json_is_object(o) && json_object_size(o) > 0; }

/* ---------------------------------------------------------------------------------------- */
/* set                                                                                        */

static MR_RESULT run_set(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    mr_buf m;
    json_t *body = NULL, *data = NULL;
    char hex[65];
    mr_cli_conn_init(&c);
    mr_buf_init(&m, 0, 0);
    MR_GUARD_OUT(mr_cli_conn_attest(cli, argv[1], &c));
    printf("Successfully verified Coordinator, now uploading manifest\n");
    MR_GUARD_OUT(mr_cli_manifest_load(argv[0], &m));
    MR_GUARD_OUT(mr_cli_sha256_hex(m.data, m.len, hex));
    printf("Manifest signature: %s\n", hex);
    body = manifest_body(&m);
    MR_ENSURE_ALLOC_OUT(body);
    if (!mr_ok(mr_cli_api(&c, "POST", "/api/v2/manifest", body, "/manifest", m.data, m.len,
                          "application/json", &data, NULL))) {
        mr_error_prefix("setting manifest");
        goto out;
    }
    printf("Manifest successfully set\n");
    json_t *secrets = mr_cli_json_get(data, "RecoverySecrets");
    if (has_entries(secrets))
        MR_GUARD_OUT(mr_cli_save_recovery(mr_cli_str(cli, "recoverydata"), secrets));
    MR_GUARD_OUT(mr_cli_conn_save_quote(cli, &c));
    MR_GUARD_OUT(mr_cli_conn_save_cache(cli, &c));
    res = MR_SUCCESS;
out:
    json_decref(body);
    json_decref(data);
    mr_buf_free(&m);
    mr_cli_conn_clear(&c);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* get                                                                                        */

/* The manifest as the Coordinator has it: raw bytes, fingerprint, root signature (b64). */
typedef struct remote_manifest {
    mr_buf raw;
    char fingerprint[65];
    char *signature; /* b64, owned, may be NULL */
} remote_manifest;

static void remote_manifest_clear(remote_manifest *r)
{
    mr_buf_free(&r->raw);
    mr_free(r->signature);
    r->signature = NULL;
}

static MR_RESULT fetch_manifest(const mr_cli_conn *c, remote_manifest *out)
{
    mr_result res = MR_FAILURE;
    json_t *data = NULL;
    bool v1 = false;
    MR_GUARD_OUT(mr_cli_api(c, "GET", "/api/v2/manifest", NULL, "/manifest", NULL, 0, NULL,
                            &data, &v1));
    MR_GUARD_OUT(mr_cli_json_b64_member(data, "manifest", &out->raw));
    const char *fp = mr_cli_json_str(data, v1 ? "ManifestSignature" : "manifestFingerprint");
    (void)snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", fp != NULL ? fp : "");
    const char *sig = mr_cli_json_str(data, "manifestSignatureRootECDSA");
    if (sig != NULL) {
        out->signature = mr_strdup(sig);
        MR_ENSURE_ALLOC_OUT(out->signature);
    }
    res = MR_SUCCESS;
out:
    json_decref(data);
    return res;
}

/* Fetches the update log as lines (v2 array, or the v1 string split on newlines). */
static MR_RESULT fetch_log(const mr_cli_conn *c, json_t **lines)
{
    mr_result res = MR_FAILURE;
    json_t *data = NULL, *arr = json_array();
    bool v1 = false;
    MR_ENSURE_ALLOC_OUT(arr);
    MR_GUARD_OUT(mr_cli_api(c, "GET", "/api/v2/update", NULL, "/update", NULL, 0, NULL, &data,
                            &v1));
    if (json_is_string(data)) {
        const char *s = json_string_value(data);
        while (*s != '\0') {
            const char *nl = strchr(s, '\n');
            size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);
            if (n > 0)
                json_array_append_new(arr, json_stringn(s, n));
            s += n + (nl != NULL ? 1 : 0);
        }
    } else {
        json_t *log = mr_cli_json_get(data, "updateLog");
        size_t i;
        json_t *v;
        json_array_foreach(log, i, v) {
            if (json_is_string(v))
                json_array_append(arr, v);
        }
    }
    *lines = arr;
    arr = NULL;
    res = MR_SUCCESS;
out:
    json_decref(arr);
    json_decref(data);
    return res;
}

/* Drops null values and empty objects recursively (the CLI's removeNil). */
static void remove_nil(json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, e) {
            remove_nil(e);
            if (json_is_null(e) || (json_is_object(e) && json_object_size(e) == 0))
                json_object_del(v, k);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            remove_nil(e);
        }
    }
}

/* -u: the manifest with the package SecurityVersions from the update log. */
static MR_RESULT consolidate(const mr_cli_conn *c, const mr_buf *raw, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    json_t *m = NULL, *lines = NULL;
    char *text = NULL;
    json_error_t jerr;
    m = json_loadb((const char *)raw->data, raw->len, JSON_PRESERVE_ORDER, &jerr);
    MR_ENSURE_OUT(json_is_object(m), MR_ERR_PROTOCOL, "decoding manifest: %s",
                  m == NULL ? jerr.text : "not an object");
    MR_GUARD_OUT(fetch_log(c, &lines));
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        json_t *e = json_loads(json_string_value(line), 0, NULL);
        const char *pkg = mr_cli_json_str(e, "package");
        json_t *ver = json_object_get(e, "new version");
        if (pkg != NULL && json_is_integer(ver)) {
            json_t *p = json_object_get(mr_cli_json_get(m, "Packages"), pkg);
            if (!json_is_object(p)) {
                json_decref(e);
                MR_BAIL_OUT(MR_ERR_PROTOCOL, "package %s from the update log is not in the "
                                             "manifest", pkg);
            }
            json_object_set(p, "SecurityVersion", ver);
        }
        json_decref(e);
    }
    remove_nil(m);
    text = json_dumps(m, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    MR_ENSURE_ALLOC_OUT(text);
    MR_GUARD_OUT(mr_buf_append_str(out, text));
    res = MR_SUCCESS;
out:
    mr_wipe_free(text); /* jansson allocates with mr_wipe_malloc (common/alloc.c) */
    json_decref(lines);
    json_decref(m);
    return res;
}

static MR_RESULT run_get(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    remote_manifest rm;
    mr_buf shown, wrapped;
    memset(&rm, 0, sizeof(rm));
    mr_cli_conn_init(&c);
    mr_buf_init(&rm.raw, 0, 0);
    mr_buf_init(&shown, 0, 0);
    mr_buf_init(&wrapped, 0, 0);
    bool json_out = mr_cli_want_json(cli);
    const char *out_file = mr_cli_str(cli, "output");
    if (json_out)
        c.info = stderr; /* keep stdout pure JSON */
    MR_GUARD_OUT(mr_cli_conn_attest(cli, argv[0], &c));
    if (!json_out)
        printf("Successfully verified Coordinator, now requesting manifest\n");
    MR_GUARD_OUT(fetch_manifest(&c, &rm));
    if (mr_cli_bool(cli, "display-update"))
        MR_GUARD_OUT(consolidate(&c, &rm.raw, &shown));
    else
        MR_GUARD_OUT(mr_buf_append(&shown, rm.raw.data, rm.raw.len));
    if (json_out) {
        json_error_t jerr;
        json_t *mj = json_loadb((const char *)shown.data, shown.len, JSON_PRESERVE_ORDER, &jerr);
        json_t *o = json_pack("{s:o*, s:s, s:s?}", "manifest", mj, "manifestFingerprint",
                              rm.fingerprint, "manifestSignatureRootECDSA", rm.signature);
        MR_ENSURE_ALLOC_OUT(o);
        mr_result r = mr_cli_print_json(o);
        json_decref(o);
        MR_GUARD_OUT(r);
    } else {
        const mr_buf *what = &shown;
        if (mr_cli_bool(cli, "signature")) {
            MR_GUARD_OUT(mr_buf_printf(&wrapped, "{\n\"ManifestSignature\": \"%s\",\n\"Manifest\": ",
                                       rm.fingerprint));
            MR_GUARD_OUT(mr_buf_append(&wrapped, shown.data, shown.len));
            MR_GUARD_OUT(mr_buf_append_str(&wrapped, "}"));
            what = &wrapped;
        }
        if (out_file[0] != '\0') {
            MR_GUARD_OUT(mr_cli_write_file(out_file, what->data, what->len));
        } else {
            printf("%.*s\n", (int)what->len, what->len > 0 ? (const char *)what->data : "");
        }
    }
    if (mr_cli_bool(cli, "keep-cert"))
        MR_GUARD_OUT(mr_cli_conn_save_cache(cli, &c));
    MR_GUARD_OUT(mr_cli_conn_save_quote(cli, &c));
    res = MR_SUCCESS;
out:
    remote_manifest_clear(&rm);
    mr_buf_free(&shown);
    mr_buf_free(&wrapped);
    mr_cli_conn_clear(&c);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* signature, verify                                                                          */

/* The hex SHA-256 of a manifest file (JSON or YAML, as it is sent). */
static MR_RESULT manifest_hash(const char *path, char hex[65])
{
    mr_result res = MR_FAILURE;
    mr_buf m;
    mr_buf_init(&m, 0, 0);
    MR_GUARD_OUT(mr_cli_manifest_load(path, &m));
    MR_GUARD_OUT(mr_cli_sha256_hex(m.data, m.len, hex));
    res = MR_SUCCESS;
out:
    mr_buf_free(&m);
    return res;
}

static MR_RESULT run_signature(mr_cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    char hex[65] = "";
    MR_GUARD(manifest_hash(argv[0], hex));
    printf("%s\n", hex);
    return MR_SUCCESS;
}

/* The local hash: of the file when it exists, else the argument as a 64-digit hex hash. */
static MR_RESULT local_hash(const char *arg, char hex[65])
{
    struct stat st;
    if (stat(arg, &st) == 0)
        return manifest_hash(arg, hex);
    MR_ENSURE(strlen(arg) == 64, MR_ERR_USAGE,
              "%s is not a file and of invalid length to be a signature (needs to be 32 bytes)",
              arg);
    uint8_t raw[32];
    mr_result r = mr_hex_decode_fixed(arg, 64, raw, sizeof(raw));
    MR_ENSURE(mr_ok(r), MR_ERR_USAGE,
              "%s is not a file and not a valid signature (needs to be in hex format)", arg);
    for (size_t i = 0; i < 64; i++)
        hex[i] = (char)(arg[i] >= 'A' && arg[i] <= 'F' ? arg[i] - 'A' + 'a' : arg[i]);
    hex[64] = '\0';
    return MR_SUCCESS;
}

static MR_RESULT run_verify(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    remote_manifest rm;
    char hex[65];
    memset(&rm, 0, sizeof(rm));
    mr_cli_conn_init(&c);
    mr_buf_init(&rm.raw, 0, 0);
    MR_GUARD_OUT(local_hash(argv[0], hex));
    MR_GUARD_OUT(mr_cli_conn_attest(cli, argv[1], &c));
    MR_GUARD_OUT(fetch_manifest(&c, &rm));
    MR_ENSURE_OUT(rm.fingerprint[0] != '\0', MR_ERR_STATE,
                  "Coordinator returned no manifest signature. Is the Coordinator in the "
                  "correct state?");
    uint8_t a[32], b[32];
    MR_ENSURE_OUT(strlen(rm.fingerprint) == 64 &&
                      mr_ok(mr_hex_decode_fixed(rm.fingerprint, 64, a, sizeof(a))),
                  MR_ERR_PROTOCOL, "invalid manifest fingerprint from the Coordinator: %s",
                  rm.fingerprint);
    MR_GUARD_OUT(mr_hex_decode_fixed(hex, 64, b, sizeof(b)));
    MR_ENSURE_OUT(memcmp(a, b, sizeof(a)) == 0, MR_ERR_ATTESTATION,
                  "MarbleRun deployment is using a different manifest than expected: manifest "
                  "hash does not match local hash: %s != %s",
                  rm.fingerprint, hex);
    printf("OK\n");
    MR_GUARD_OUT(mr_cli_conn_save_quote(cli, &c));
    MR_GUARD_OUT(mr_cli_conn_save_cache(cli, &c));
    res = MR_SUCCESS;
out:
    remote_manifest_clear(&rm);
    mr_cli_conn_clear(&c);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* log                                                                                        */

static MR_RESULT run_log(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    json_t *lines = NULL;
    mr_buf text;
    mr_cli_conn_init(&c);
    mr_buf_init(&text, 0, 0);
    bool json_out = mr_cli_want_json(cli);
    const char *out_file = mr_cli_str(cli, "output");
    MR_GUARD_OUT(mr_cli_conn_cached(cli, argv[0], &c));
    if (!json_out)
        printf("Successfully verified Coordinator, now requesting update log\n");
    MR_GUARD_OUT(fetch_log(&c, &lines));
    if (json_out) {
        json_t *o = json_pack("{sO}", "updateLog", lines);
        MR_ENSURE_ALLOC_OUT(o);
        mr_result r = mr_cli_print_json(o);
        json_decref(o);
        MR_GUARD_OUT(r);
    } else {
        size_t i;
        json_t *l;
        /* the lines joined with newlines; the output adds one final newline */
        json_array_foreach(lines, i, l) {
            if (i > 0)
                MR_GUARD_OUT(mr_buf_append_str(&text, "\n"));
            MR_GUARD_OUT(mr_buf_append_str(&text, json_string_value(l)));
        }
        MR_GUARD_OUT(mr_buf_append_str(&text, "\n"));
        if (out_file[0] != '\0')
            MR_GUARD_OUT(mr_cli_write_file(out_file, text.data, text.len));
        else
            printf("Update log:\n%.*s", (int)text.len, (const char *)text.data);
    }
    res = MR_SUCCESS;
out:
    json_decref(lines);
    mr_buf_free(&text);
    mr_cli_conn_clear(&c);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* update apply | acknowledge | cancel | get                                                  */

static void print_users(json_t *users, const char *sep)
{
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u) {
        printf("%s%s", i ? sep : "", json_string_value(u) ? json_string_value(u) : "");
    }
}

/* New recovery secrets from an update: saved like `manifest set`; base64 printed if that
 * fails, so they are not lost. */
static MR_RESULT handle_update_recovery(const mr_cli *cli, json_t *data)
{
    json_t *secrets = mr_cli_json_get(data, "recoverySecrets");
    if (!has_entries(secrets))
        return MR_SUCCESS;
    if (mr_ok(mr_cli_save_recovery(mr_cli_str(cli, "recoverydata"), secrets)))
        return MR_SUCCESS;
    fprintf(stderr, "Failed to save recovery data: %s\n", mr_error_get()->msg);
    const char *k;
    json_t *v;
    json_object_foreach(secrets, k, v) {
        printf("%s: %s\n", k, json_string_value(v) ? json_string_value(v) : "");
    }
    return MR_SUCCESS;
}

static MR_RESULT run_update_apply(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    mr_buf m;
    json_t *body = NULL, *data = NULL;
    mr_cli_conn_init(&c);
    mr_buf_init(&m, 0, 0);
    MR_GUARD_OUT(mr_cli_manifest_load(argv[0], &m));
    MR_GUARD_OUT(mr_cli_conn_cached(cli, argv[1], &c));
    MR_GUARD_OUT(mr_cli_conn_client_auth(cli, &c));
    body = manifest_body(&m);
    MR_ENSURE_ALLOC_OUT(body);
    if (!mr_ok(mr_cli_api(&c, "POST", "/api/v2/update", body, "/update", m.data, m.len,
                          "application/json", &data, NULL))) {
        mr_error_prefix("applying update");
        goto out;
    }
    json_t *missing = mr_cli_json_get(data, "missingAcknowledgments");
    json_int_t n = json_is_integer(missing) ? json_integer_value(missing) : 0;
    if (n == 0) {
        printf("Update manifest set successfully\n");
    } else {
        printf("Update manifest submitted successfully.\nChanges are pending and have not been "
               "applied yet.\n");
        if (n == 1)
            printf("1 user still needs to acknowledge the update manifest.\n");
        else
            printf("%lld users still need to acknowledge the update manifest.\n", (long long)n);
        printf("\nThe following users may acknowledge the update: ");
        print_users(mr_cli_json_get(data, "missingUsers"), ", ");
        printf("\n");
    }
    MR_GUARD_OUT(handle_update_recovery(cli, data));
    res = MR_SUCCESS;
out:
    json_decref(body);
    json_decref(data);
    mr_buf_free(&m);
    mr_cli_conn_clear(&c);
    return res;
}

static MR_RESULT run_update_ack(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    mr_buf m;
    json_t *body = NULL, *data = NULL;
    mr_cli_conn_init(&c);
    mr_buf_init(&m, 0, 0);
    MR_GUARD_OUT(mr_cli_manifest_load(argv[0], &m));
    MR_GUARD_OUT(mr_cli_conn_cached(cli, argv[1], &c));
    MR_GUARD_OUT(mr_cli_conn_client_auth(cli, &c));
    body = manifest_body(&m);
    MR_ENSURE_ALLOC_OUT(body);
    if (!mr_ok(mr_cli_api(&c, "POST", "/api/v2/update-manifest", body, "/update-manifest",
                          m.data, m.len, "application/json", &data, NULL))) {
        mr_error_prefix("acknowledging update manifest");
        goto out;
    }
    const char *msg = json_is_string(data) ? json_string_value(data)
                                           : mr_cli_json_str(data, "message");
    printf("Acknowledgement successful: %s\n", msg != NULL ? msg : "");
    MR_GUARD_OUT(handle_update_recovery(cli, data));
    res = MR_SUCCESS;
out:
    json_decref(body);
    json_decref(data);
    mr_buf_free(&m);
    mr_cli_conn_clear(&c);
    return res;
}

static MR_RESULT run_update_cancel(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    json_t *data = NULL;
    mr_cli_conn_init(&c);
    MR_GUARD_OUT(mr_cli_conn_cached(cli, argv[0], &c));
    MR_GUARD_OUT(mr_cli_conn_client_auth(cli, &c));
    if (!mr_ok(mr_cli_api(&c, "POST", "/api/v2/update-cancel", NULL, "/update-cancel", NULL, 0,
                          "application/json", &data, NULL))) {
        mr_error_prefix("canceling update");
        goto out;
    }
    printf("Cancellation successful\n");
    res = MR_SUCCESS;
out:
    json_decref(data);
    mr_cli_conn_clear(&c);
    return res;
}

static MR_RESULT run_update_get(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    json_t *data = NULL;
    mr_buf m;
    mr_cli_conn_init(&c);
    mr_buf_init(&m, 0, 0);
    bool json_out = mr_cli_want_json(cli);
    const char *out_file = json_out ? "" : mr_cli_str(cli, "output");
    bool created = false;
    MR_GUARD_OUT(mr_cli_conn_cached(cli, argv[0], &c));
    if (out_file[0] != '\0') {
        MR_GUARD_OUT(mr_cli_write_file(out_file, "", 0));
        created = true;
    }
    MR_GUARD_OUT(mr_cli_api(&c, "GET", "/api/v2/update-manifest", NULL, "/update-manifest",
                            NULL, 0, NULL, &data, NULL));
    MR_GUARD_OUT(mr_cli_json_b64_member(data, "manifest", &m));
    json_t *users = mr_cli_json_get(data, "missingUsers");
    if (json_out) {
        json_error_t jerr;
        json_t *mj = json_loadb((const char *)m.data, m.len, JSON_PRESERVE_ORDER, &jerr);
        json_t *o = json_pack("{s:o*, s:s?, s:O*}", "manifest", mj, "message",
                              mr_cli_json_str(data, "message"), "missingUsers", users);
        MR_ENSURE_ALLOC_OUT(o);
        mr_result r = mr_cli_print_json(o);
        json_decref(o);
        MR_GUARD_OUT(r);
    } else if (mr_cli_bool(cli, "missing")) {
        printf("The following users have not yet acknowledged the update: [");
        print_users(users, " ");
        printf("]\n");
    } else if (out_file[0] != '\0') {
        MR_GUARD_OUT(mr_cli_write_file(out_file, m.data, m.len));
    } else {
        printf("%.*s\n", (int)m.len, m.len > 0 ? (const char *)m.data : "");
    }
    res = MR_SUCCESS;
out:
    if (!mr_ok(res) && created)
        (void)unlink(out_file);
    json_decref(data);
    mr_buf_free(&m);
    mr_cli_conn_clear(&c);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* command table                                                                              */

static const mr_flag set_flags[] = {
    {"recoverydata", 'r', MR_FLAG_STRING, "", "File to write recovery data to, print to stdout if "
                                               "non specified"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag get_flags[] = {
    {"display-update", 'u', MR_FLAG_BOOL, "false",
     "Set to merge updates into the displayed manifest"},
    {"keep-cert", 0, MR_FLAG_BOOL, "false", "Set to keep the certificate of the Coordinator"},
    {"output", 'o', MR_FLAG_STRING, "",
     "Save output to file instead of printing to stdout (\"json\": print as JSON)"},
    {"signature", 's', MR_FLAG_BOOL, "false", "Set to additionally display the manifests signature"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag log_flags[] = {
    {"output", 'o', MR_FLAG_STRING, "",
     "Save log to file instead of printing to stdout (\"json\": print as JSON)"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag update_apply_flags[] = {
    MR_CLI_AUTH_FLAGS,
    {"recoverydata", 'r', MR_FLAG_STRING, "", "File to write recovery data to, print to stdout if "
                                               "non specified"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag update_auth_flags[] = {
    MR_CLI_AUTH_FLAGS,
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag update_get_flags[] = {
    {"missing", 0, MR_FLAG_BOOL, "false", "Display number of missing acknowledgements"},
    {"output", 'o', MR_FLAG_STRING, "",
     "Save output to file instead of printing to stdout (\"json\": print as JSON)"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_cmd set_cmd = {
    .name = "set",
    .args_use = "<manifest.json> <IP:PORT>",
    .short_help = "Sets the manifest for the MarbleRun Coordinator",
    .long_help = "Sets the manifest for the MarbleRun Coordinator",
    .example = "marblerun manifest set manifest.json $MARBLERUN --recoverydata=recovery-secret.json "
               "--era-config=era.json",
    .min_args = 2,
    .max_args = 2,
    .flags = set_flags,
    .run = run_set,
};

static const mr_cmd get_cmd = {
    .name = "get",
    .args_use = "<IP:PORT>",
    .short_help = "Get the manifest from the MarbleRun Coordinator",
    .long_help = "Get the manifest from the MarbleRun Coordinator.\nOptionally get the manifests "
                 "signature or merge updates into the displayed manifest.",
    .example = "marblerun manifest get $MARBLERUN -s --era-config=era.json",
    .min_args = 1,
    .max_args = 1,
    .flags = get_flags,
    .run = run_get,
};

static const mr_cmd log_cmd = {
    .name = "log",
    .args_use = "<IP:PORT>",
    .short_help = "Get the update log from the MarbleRun Coordinator",
    .long_help = "Get the update log from the MarbleRun Coordinator.\nThe log is list of all "
                 "successful changes to the Coordinator,\nincluding a timestamp and user "
                 "performing the operation.",
    .example = "marblerun manifest log $MARBLERUN",
    .min_args = 1,
    .max_args = 1,
    .flags = log_flags,
    .run = run_log,
};

static const mr_cmd signature_cmd = {
    .name = "signature",
    .args_use = "<manifest.json>",
    .short_help = "Prints the signature of a MarbleRun manifest",
    .long_help = "Prints the signature of a MarbleRun manifest",
    .example = "marblerun manifest signature manifest.json",
    .min_args = 1,
    .max_args = 1,
    .run = run_signature,
};

static const mr_cmd verify_cmd = {
    .name = "verify",
    .args_use = "<manifest/signature> <IP:PORT>",
    .short_help = "Verify the signature of a MarbleRun manifest",
    .long_help = "Verify that the MarbleRun Coordinator is running the same manifest as the one "
                 "provided.\nThe argument is a manifest file or the hex SHA-256 of one.",
    .example = "marblerun manifest verify manifest.json $MARBLERUN",
    .min_args = 2,
    .max_args = 2,
    .run = run_verify,
};

static const mr_cmd update_apply_cmd = {
    .name = "apply",
    .args_use = "<manifest.json> <IP:PORT>",
    .short_help = "Update the MarbleRun Coordinator with the specified manifest",
    .long_help = "Update the MarbleRun Coordinator with the specified manifest.\nAn admin "
                 "certificate specified in the original manifest is needed to verify the "
                 "authenticity of the update manifest.",
    .example = "marblerun manifest update apply update-manifest.json $MARBLERUN "
               "--cert=admin-cert.pem --key=admin-key.pem",
    .min_args = 2,
    .max_args = 2,
    .flags = update_apply_flags,
    .run = run_update_apply,
};

static const mr_cmd update_ack_cmd = {
    .name = "acknowledge",
    .args_use = "<manifest.json> <IP:PORT>",
    .short_help = "Acknowledge a pending update for a MarbleRun Coordinator",
    .long_help = "Acknowledge a pending update for a MarbleRun Coordinator.\nThe manifest must "
                 "equal the pending update manifest byte for byte.",
    .example = "marblerun manifest update acknowledge update-manifest.json $MARBLERUN "
               "--cert=admin-cert.pem --key=admin-key.pem",
    .min_args = 2,
    .max_args = 2,
    .flags = update_apply_flags,
    .run = run_update_ack,
};

static const mr_cmd update_cancel_cmd = {
    .name = "cancel",
    .args_use = "<IP:PORT>",
    .short_help = "Cancel a pending manifest update for a MarbleRun Coordinator",
    .long_help = "Cancel a pending manifest update for a MarbleRun Coordinator",
    .example = "marblerun manifest update cancel $MARBLERUN --cert=admin-cert.pem "
               "--key=admin-key.pem",
    .min_args = 1,
    .max_args = 1,
    .flags = update_auth_flags,
    .run = run_update_cancel,
};

static const mr_cmd update_get_cmd = {
    .name = "get",
    .args_use = "<IP:PORT>",
    .short_help = "View a pending manifest update",
    .long_help = "View a pending manifest update",
    .example = "marblerun manifest update get $MARBLERUN --era-config=era.json",
    .min_args = 1,
    .max_args = 1,
    .flags = update_get_flags,
    .run = run_update_get,
};

static const mr_cmd *const update_subs[] = {&update_apply_cmd, &update_ack_cmd,
                                            &update_cancel_cmd, &update_get_cmd, NULL};

static const mr_cmd update_cmd = {
    .name = "update",
    .short_help = "Manage manifest updates for the MarbleRun Coordinator",
    .long_help = "Manage manifest updates for the MarbleRun Coordinator.",
    .subs = update_subs,
};

static const mr_cmd *const subs[] = {&set_cmd,       &get_cmd,    &log_cmd, &signature_cmd,
                                     &verify_cmd,    &update_cmd, NULL};

const mr_cmd mr_cmd_manifest = {
    .name = "manifest",
    .short_help = "Manages manifest for the MarbleRun Coordinator",
    .long_help = "Manages manifest for the MarbleRun Coordinator.\nUsed to either set the "
                 "manifest, update an already set manifest,\nor return a signature of the "
                 "currently set manifest to the user",
    .example = "manifest set manifest.json example.com:4433 [--era-config=config.json] "
               "[--insecure]",
    .subs = subs,
};
