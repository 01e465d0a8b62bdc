/* SPDX-License-Identifier: Apache-2.0 */
/* `marblerun secret set|get` (§4.5). */
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/file.h"
#include "crypto/x509.h"

/* --from-pem: {name: {Cert, Private}} from the PEM blocks of the file. */
static MR_RESULT secret_from_pem(const char *name, const mr_buf *file, json_t **out)
{
    mr_result res = MR_FAILURE;
    mr_cursor cur;
    mr_pem_block blk;
    json_t *s = json_object();
    X509 *x = NULL;
    mr_buf_init(&blk.der, 0, MR_BUF_SECRET);
    mr_cursor_init(&cur, file->data, file->len);
    MR_ENSURE_ALLOC_OUT(s);
    bool have_cert = false, have_key = false;
    while (!(have_cert && have_key)) {
        bool found = false;
        mr_buf_reset(&blk.der);
        MR_GUARD_OUT(mr_pem_next(&cur, &blk, &found));
        if (!found)
            break;
        if (strcmp(blk.label, "CERTIFICATE") == 0) {
            MR_GUARD_OUT(mr_x509_from_der(mr_buf_slice(&blk.der), &x));
            X509_free(x);
            x = NULL;
            json_object_set_new(s, "Cert", mr_cli_json_b64(blk.der.data, blk.der.len));
            have_cert = true;
        } else if (strstr(blk.label, "PRIVATE") != NULL) {
            json_object_set_new(s, "Private", mr_cli_json_b64(blk.der.data, blk.der.len));
            have_key = true;
        } else {
            MR_BAIL_OUT(MR_ERR_USAGE, "unrecognized PEM type for secret: %s", blk.label);
        }
    }
    MR_ENSURE_OUT(have_cert || have_key, MR_ERR_USAGE,
                  "found no certificate or private key in PEM data");
    *out = json_pack("{sO}", name, s);
    MR_ENSURE_ALLOC_OUT(*out);
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        mr_cli_json_wipe(s);
    json_decref(s);
    mr_buf_free(&blk.der);
    return res;
}

/* The JSON secrets file: an object of objects with the UserSecret fields. */
static MR_RESULT secret_from_json(const mr_buf *file, json_t **out)
{
    mr_result res = MR_FAILURE;
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)file->data, file->len, 0, &jerr);
    const char *k;
    json_t *v;

    MR_ENSURE_OUT(json_is_object(doc), MR_ERR_USAGE, "unmarshaling secrets: %s",
                  doc == NULL ? jerr.text : "not a JSON object");
    json_object_foreach(doc, k, v) {
        MR_ENSURE_OUT(json_is_object(v), MR_ERR_USAGE,
                      "unmarshaling secrets: secret %s is not an object", k);
    }
    *out = doc;
    doc = NULL;
    res = MR_SUCCESS;
out:
    json_decref(doc);
    return res;
}

static MR_RESULT run_set(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    mr_buf file;
    json_t *secrets = NULL, *body = NULL, *data = NULL;
    char *v1 = NULL;
    mr_cli_conn_init(&c);
    mr_buf_init(&file, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(mr_file_read(argv[0], MR_CLI_FILE_MAX, &file));
    const char *pem_name = mr_cli_str(cli, "from-pem");
    if (pem_name[0] != '\0')
        MR_GUARD_OUT(secret_from_pem(pem_name, &file, &secrets));
    else
        MR_GUARD_OUT(secret_from_json(&file, &secrets));
    MR_GUARD_OUT(mr_cli_conn_cached(cli, argv[1], &c));
    MR_GUARD_OUT(mr_cli_conn_client_auth(cli, &c));
    body = json_pack("{sO}", "secrets", secrets);
    v1 = json_dumps(secrets, JSON_COMPACT);
    MR_ENSURE_ALLOC_OUT(body != NULL && v1 != NULL ? v1 : NULL);
    MR_GUARD_OUT(mr_cli_api(&c, "POST", "/api/v2/secrets", body, "/secrets", v1, strlen(v1),
                            "application/json", &data, NULL));
    printf("Secret successfully set\n");
    res = MR_SUCCESS;
out:
    if (v1 != NULL)
        OPENSSL_cleanse(v1, strlen(v1));
    mr_wipe_free(v1); /* jansson allocates with mr_wipe_malloc (common/alloc.c) */
    json_decref(body);
    mr_cli_json_wipe(secrets);
    json_decref(secrets);
    json_decref(data);
    mr_buf_free(&file);
    mr_cli_conn_clear(&c);
    return res;
}

/* Go's %v of a []byte: "[1 2 3]". */
static MR_RESULT print_bytes(const char *label, json_t *secret, const char *key)
{
    mr_result res = MR_FAILURE;
    mr_buf b;
    mr_buf_init(&b, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(mr_cli_json_b64_member(secret, key, &b));
    printf("\t%-14s[", label);
    for (size_t i = 0; i < b.len; i++)
        printf("%s%u", i ? " " : "", b.data[i]);
    printf("]\n");
    res = MR_SUCCESS;
out:
    mr_buf_free(&b);
    return res;
}

/* PEM lines, the first after the label, the others indented under it. */
static void print_pem_lines(const mr_buf *pem)
{
    const char *p = (const char *)pem->data;
    const char *end = p + pem->len;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        printf("%s%.*s\n", first ? "" : "\t\t", (int)n, p);
        first = false;
        p += n + 1;
    }
}

static MR_RESULT print_cert(json_t *secret)
{
    mr_result res = MR_FAILURE;
    mr_buf der, pem;
    mr_buf_init(&der, 0, 0);
    mr_buf_init(&pem, 0, 0);
    MR_GUARD_OUT(mr_cli_json_b64_member(secret, "Cert", &der));
    if (der.len > 0)
        MR_GUARD_OUT(mr_pem_encode_buf("CERTIFICATE", der.data, der.len, &pem));
    printf("\t%-14s", "Certificate:");
    if (pem.len > 0)
        print_pem_lines(&pem);
    else
        printf("<nil>\n");
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    mr_buf_free(&pem);
    return res;
}

static MR_RESULT print_secret(const char *name, json_t *s)
{
    const char *type = mr_cli_json_str(s, "Type");
    json_t *ud = mr_cli_json_get(s, "UserDefined");
    json_t *size = mr_cli_json_get(s, "Size");
    json_t *valid = mr_cli_json_get(s, "ValidFor");
    MR_ENSURE(type != NULL, MR_ERR_PROTOCOL, "unknown secret type");
    bool is_cert = strncmp(type, "cert-", 5) == 0;
    bool is_sym = strcmp(type, "symmetric-key") == 0;
    bool is_plain = strcmp(type, "plain") == 0;
    MR_ENSURE(is_cert || is_sym || is_plain, MR_ERR_PROTOCOL, "unknown secret type");
    printf("%s:\n", name);
    printf("\t%-14s%s\n", "Type:", type);
    if (is_plain)
        return print_bytes("Data:", s, "Private");
    printf("\t%-14s%s\n", "UserDefined:", json_is_true(ud) ? "true" : "false");
    if (is_sym || strcmp(type, "cert-rsa") == 0 || strcmp(type, "cert-ecdsa") == 0)
        printf("\t%-14s%lld\n", "Size:", (long long)json_integer_value(size));
    if (is_sym)
        return print_bytes("Key:", s, "Private");
    printf("\t%-14s%lld\n", "Valid For:", (long long)json_integer_value(valid));
    MR_GUARD(print_cert(s));
    MR_GUARD(print_bytes("Public Key:", s, "Public"));
    return print_bytes("Private Key:", s, "Private");
}

static MR_RESULT run_get(mr_cli *cli, int argc, char **argv)
{
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    mr_buf query;
    json_t *data = NULL;
    char *text = NULL;
    bool v1 = false;
    mr_cli_conn_init(&c);
    mr_buf_init(&query, 0, 0);
    for (int i = 0; i + 1 < argc; i++) {
        MR_GUARD_OUT(mr_buf_append_str(&query, i == 0 ? "?s=" : "&s="));
        char *esc = curl_easy_escape(NULL, argv[i], 0);
        MR_ENSURE_ALLOC_OUT(esc);
        mr_result r = mr_buf_append_str(&query, esc);
        curl_free(esc);
        MR_GUARD_OUT(r);
    }
    MR_GUARD_OUT(mr_buf_nul_terminate(&query));
    char v2p[2048], v1p[2048];
    int n2 = snprintf(v2p, sizeof(v2p), "/api/v2/secrets%s", (const char *)query.data);
    int n1 = snprintf(v1p, sizeof(v1p), "/secrets%s", (const char *)query.data);
    MR_ENSURE_OUT(n2 > 0 && (size_t)n2 < sizeof(v2p) && n1 > 0 && (size_t)n1 < sizeof(v1p),
                  MR_ERR_USAGE, "too many secret names");
    MR_GUARD_OUT(mr_cli_conn_cached(cli, argv[argc - 1], &c));
    MR_GUARD_OUT(mr_cli_conn_client_auth(cli, &c));
    MR_GUARD_OUT(mr_cli_api(&c, "GET", v2p, NULL, v1p, NULL, 0, NULL, &data, &v1));
    json_t *secrets = v1 ? data : mr_cli_json_get(data, "secrets");
    MR_ENSURE_OUT(json_is_object(secrets), MR_ERR_PROTOCOL, "invalid secrets response");
    const char *file = mr_cli_str(cli, "output");
    if (mr_cli_want_json(cli)) {
        MR_GUARD_OUT(mr_cli_print_json(secrets));
    } else if (file[0] != '\0') {
        text = json_dumps(secrets, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        MR_ENSURE_ALLOC_OUT(text);
        MR_GUARD_OUT(mr_cli_write_file(file, text, strlen(text)));
        printf("Saved secrets to: %s\n", file);
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(secrets, k, v) {
            MR_GUARD_OUT(print_secret(k, v));
        }
    }
    res = MR_SUCCESS;
out:
    if (text != NULL)
        OPENSSL_cleanse(text, strlen(text));
    mr_wipe_free(text); /* jansson allocates with mr_wipe_malloc (common/alloc.c) */
    mr_cli_json_wipe(data);
    json_decref(data);
    mr_buf_free(&query);
    mr_cli_conn_clear(&c);
    return res;
}

static const mr_flag secret_flags[] = {
    MR_CLI_AUTH_FLAGS,
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag set_flags[] = {
    {"from-pem", 0, MR_FLAG_STRING, "", "name of the secret to set from a PEM file"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_flag get_flags[] = {
    {"output", 'o', MR_FLAG_STRING, "",
     "File to save the secrets to (\"json\": print them as JSON)"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_cmd set_cmd = {
    .name = "set",
    .args_use = "<secret_file> <IP:PORT>",
    .short_help = "Set a secret for the MarbleRun Coordinator",
    .long_help = "Set a secret for the MarbleRun Coordinator.\nSecrets are loaded from a JSON "
                 "file {name: {Cert, Private, Key}}, or from a PEM file (--from-pem NAME) holding "
                 "a certificate and/or a private key.\nYou need an user certificate with write "
                 "permission for the secret.",
    .example = "marblerun secret set secret.json $MARBLERUN -c admin.crt -k admin.key\n"
               "marblerun secret set certificate.pem $MARBLERUN -c admin.crt -k admin.key "
               "--from-pem certificateSecret",
    .min_args = 2,
    .max_args = 2,
    .flags = set_flags,
    .run = run_set,
};

static const mr_cmd get_cmd = {
    .name = "get",
    .args_use = "SECRETNAME ... <IP:PORT>",
    .short_help = "Retrieve secrets from the MarbleRun Coordinator",
    .long_help = "Retrieve one or more secrets from the MarbleRun Coordinator.\nUsers need to "
                 "provide a certificate with read permission for the secrets.",
    .example = "marblerun secret get genericSecret symmetricKeyShared $MARBLERUN -c admin.crt "
               "-k admin.key",
    .min_args = 2,
    .max_args = -1,
    .flags = get_flags,
    .run = run_get,
};

static const mr_cmd *const subs[] = {&set_cmd, &get_cmd, NULL};

const mr_cmd mr_cmd_secret = {
    .name = "secret",
    .short_help = "Manage secrets for the MarbleRun Coordinator",
    .long_help = "Manage secrets for the MarbleRun Coordinator.\nSet or retrieve a secret "
                 "defined in the manifest.",
    .persistent_flags = secret_flags,
    .subs = subs,
};
