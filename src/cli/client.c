/* SPDX-License-Identifier: Apache-2.0 */
/* Coordinator connection, trust establishment and REST conventions of the CLI; see client.h. */
#include "cli/client.h"
#include "common/jsonf.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/collateral.h"
#include "attest/dcap.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/file.h"
#include "crypto/hash.h"
#include "crypto/key.h"
#include "crypto/x509.h"

/* ---------------------------------------------------------------------------------------- */
/* JSON helpers                                                                               */

json_t *mr_cli_json_get(json_t *obj, const char *key) { return mr_json_field(obj, key); }

const char *mr_cli_json_str(json_t *obj, const char *key)
{
    return json_string_value(mr_cli_json_get(obj, key));
}

MR_RESULT mr_cli_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(4) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    MR_ENSURE(s != NULL, MR_ERR_INTERNAL, "encoding JSON failed");
    printf("%s\n", s);
    mr_wipe_free(s); /* jansson allocates with mr_wipe_malloc (common/alloc.c) */
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* JSend                                                                                      */

static const char *status_text(long code)
{
    switch (code) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

static mr_errcat http_cat(long code)
{
    if (code == 401 || code == 403)
        return MR_ERR_AUTH;
    if (code == 404)
        return MR_ERR_NOT_FOUND;
    if (code >= 400 && code < 500)
        return MR_ERR_USAGE;
    return MR_ERR_IO;
}

/* A 200 response: the JSend data (JSON null when there is none). */
static MR_RESULT jsend_data(const char *method, const char *url, json_t *doc,
                            const json_error_t *jerr, json_t **data)
{
    MR_ENSURE(json_is_object(doc), MR_ERR_PROTOCOL, "%s %s: invalid response: %s", method, url,
              doc == NULL ? jerr->text : "not a JSON object");
    json_t *d = mr_cli_json_get(doc, "data");
    *data = d != NULL ? json_incref(d) : json_null();
    return MR_SUCCESS;
}

/* Any other status: the error, with JSend's status and message, or the start of a body that
 * is not JSend (a proxy, a plain-text error). Always fails. */
static MR_RESULT jsend_error(const char *method, const char *url, long http_status,
                             const uint8_t *body, size_t len, json_t *doc)
{
    const char *st = json_is_object(doc) ? mr_cli_json_str(doc, "status") : NULL;
    const char *msg = json_is_object(doc) ? mr_cli_json_str(doc, "message") : NULL;
    char raw[256] = "";
    if (!json_is_object(doc)) {
        size_t n = len < sizeof(raw) - 1 ? len : sizeof(raw) - 1;
        memcpy(raw, body, n);
        raw[n] = '\0';
        while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
            raw[--n] = '\0';
        msg = raw;
    }
    MR_ENSURE(http_status != 401, MR_ERR_AUTH, "%s %s: authorizing user: %s", method, url,
              msg != NULL ? msg : "");
    MR_BAIL(http_cat(http_status), "%s %s: %ld %s: %s: %s", method, url, http_status,
            status_text(http_status), st != NULL ? st : "", msg != NULL ? msg : "");
}

MR_RESULT mr_cli_jsend_parse(const char *method, const char *url, long http_status,
                             const uint8_t *body, size_t len, json_t **data)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)body, len, JSON_DECODE_ANY, &jerr);
    mr_result res = http_status == 200 ? jsend_data(method, url, doc, &jerr, data)
                                       : jsend_error(method, url, http_status, body, len, doc);
    json_decref(doc);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* Era config                                                                                 */

static MR_RESULT era_hex(const json_t *v, const char *name, uint8_t *out, size_t *out_len,
                         bool *has)
{
    if (v == NULL || json_is_null(v))
        return MR_SUCCESS;
    MR_ENSURE(json_is_string(v), MR_ERR_USAGE,
              "parsing era config: %s must be a string of hex digits", name);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0)
        return MR_SUCCESS;
    MR_ENSURE(n % 2 == 0 && n / 2 <= 32, MR_ERR_USAGE,
              "parsing era config: %s must be at most 32 bytes in hex", name);
    MR_GUARD(mr_hex_decode_fixed(s, n, out, n / 2));
    *out_len = n / 2;
    *has = true;
    return MR_SUCCESS;
}

static MR_RESULT era_uint(const json_t *v, const char *name, uint64_t max, uint64_t *out)
{
    if (v == NULL || json_is_null(v))
        return MR_SUCCESS;
    MR_ENSURE(json_is_integer(v) && json_integer_value(v) >= 0 &&
                  (uint64_t)json_integer_value(v) <= max,
              MR_ERR_USAGE, "parsing era config: %s must be an unsigned integer (max %llu)", name,
              (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return MR_SUCCESS;
}

static MR_RESULT era_bool(const json_t *v, const char *name, bool *out)
{
    if (v == NULL || json_is_null(v))
        return MR_SUCCESS;
    MR_ENSURE(json_is_boolean(v), MR_ERR_USAGE, "parsing era config: %s must be true or false",
              name);
    *out = json_is_true(v);
    return MR_SUCCESS;
}

MR_RESULT mr_cli_era_parse(const char *json, size_t len, mr_cli_era *out)
{
    mr_result res = MR_FAILURE;
    json_error_t jerr;
    memset(out, 0, sizeof(*out));
    json_t *doc = json_loadb(json, len, 0, &jerr);
    MR_ENSURE_OUT(json_is_object(doc), MR_ERR_USAGE, "parsing era config: %s",
                  doc == NULL ? jerr.text : "not a JSON object");
    uint64_t svn = 0, pid = 0;
    MR_GUARD_OUT(era_uint(mr_cli_json_get(doc, "SecurityVersion"), "SecurityVersion",
                          UINT32_MAX, &svn));
    MR_GUARD_OUT(era_uint(mr_cli_json_get(doc, "ProductID"), "ProductID", UINT16_MAX, &pid));
    MR_GUARD_OUT(era_bool(mr_cli_json_get(doc, "Debug"), "Debug", &out->debug));
    MR_GUARD_OUT(era_bool(mr_cli_json_get(doc, "InsecureSkipVerify"), "InsecureSkipVerify",
                          &out->insecure_skip_verify));
    MR_GUARD_OUT(era_hex(mr_cli_json_get(doc, "UniqueID"), "UniqueID", out->unique_id,
                         &out->unique_id_len, &out->has_unique_id));
    MR_GUARD_OUT(era_hex(mr_cli_json_get(doc, "SignerID"), "SignerID", out->signer_id,
                         &out->signer_id_len, &out->has_signer_id));
    out->security_version = svn;
    out->product_id = (uint16_t)pid;
    res = MR_SUCCESS;
out:
    json_decref(doc);
    return res;
}

MR_RESULT mr_cli_era_check(const mr_cli_era *era, const mr_cli_report *rep,
                           const uint8_t *root_der, size_t root_len, const char *nonce,
                           FILE *info)
{
    uint8_t h[MR_SHA256_LEN];
    mr_slice parts[2] = {MR_SLICE(root_der, root_len),
                         MR_SLICE(nonce != NULL ? nonce : "", nonce != NULL ? strlen(nonce) : 0)};
    MR_GUARD(mr_sha256_v(parts, 2, h));
    MR_ENSURE(memcmp(h, rep->report_data, sizeof(h)) == 0, MR_ERR_ATTESTATION,
              "report data does not match the certificate's hash");
    if (!era->has_unique_id) {
        MR_ENSURE(era->security_version != 0, MR_ERR_ATTESTATION,
                  "missing SecurityVersion in config");
        MR_ENSURE(era->product_id != 0, MR_ERR_ATTESTATION, "missing ProductID in config");
    }
    MR_ENSURE(rep->security_version >= era->security_version, MR_ERR_ATTESTATION,
              "invalid SecurityVersion: enclave has %u, config requires at least %llu",
              rep->security_version, (unsigned long long)era->security_version);
    MR_ENSURE(rep->product_id == era->product_id, MR_ERR_ATTESTATION,
              "invalid ProductID: enclave has %u, config requires %u", rep->product_id,
              era->product_id);
    MR_ENSURE(!rep->debug || era->debug, MR_ERR_ATTESTATION, "debug enclave not allowed");
    MR_ENSURE(!era->has_unique_id || (era->unique_id_len == 32 &&
                                      memcmp(era->unique_id, rep->unique_id, 32) == 0),
              MR_ERR_ATTESTATION, "invalid UniqueID");
    MR_ENSURE(!era->has_signer_id || (era->signer_id_len == 32 &&
                                      memcmp(era->signer_id, rep->signer_id, 32) == 0),
              MR_ERR_ATTESTATION, "invalid SignerID");
    if (!era->has_unique_id && !era->has_signer_id)
        fprintf(info, "Warning: Configuration contains neither UniqueID nor SignerID!\n");
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* Files                                                                                      */

MR_RESULT mr_cli_write_file(const char *path, const void *data, size_t len)
{
    mr_result res = MR_FAILURE;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    MR_ENSURE_OUT(fd >= 0, MR_ERR_IO, "open %s: %s", path, strerror(errno));
    const uint8_t *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        MR_ENSURE_OUT(n > 0, MR_ERR_IO, "write %s: %s", path, strerror(errno));
        off += (size_t)n;
    }
    int rc = close(fd);
    fd = -1;
    MR_ENSURE_OUT(rc == 0, MR_ERR_IO, "close %s: %s", path, strerror(errno));
    res = MR_SUCCESS;
out:
    if (fd >= 0)
        close(fd);
    return res;
}

MR_RESULT mr_cli_write_new_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    MR_ENSURE(fd >= 0, MR_ERR_IO, "open %s: %s", path, strerror(errno));
    close(fd);
    return mr_cli_write_file(path, data, len);
}

MR_RESULT mr_cli_cache_write(const char *path, const char *chain_pem, size_t len)
{
    MR_ENSURE(path != NULL && path[0] != '\0', MR_ERR_USAGE,
              "no certificate cache path: set --coordinator-cert, $XDG_CONFIG_HOME or $HOME");
    char dir[1024];
    int n = snprintf(dir, sizeof(dir), "%s", path);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(dir), MR_ERR_USAGE, "path too long: %s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        MR_GUARD(mr_mkdir_p(dir, 0755));
    }
    return mr_file_write_atomic(path, chain_pem, len, 0600);
}

/* Splits a PEM bundle into its CERTIFICATE blocks, each re-encoded as PEM into pems[]. */
static MR_RESULT split_pem(const uint8_t *pem, size_t len, mr_buf *pems, size_t max,
                           size_t *count)
{
    mr_result res = MR_FAILURE;
    mr_cursor cur;
    mr_pem_block blk;
    mr_buf_init(&blk.der, 0, 0);
    mr_cursor_init(&cur, pem, len);
    *count = 0;
    for (;;) {
        bool found = false;
        mr_buf_reset(&blk.der);
        MR_GUARD_OUT(mr_pem_next(&cur, &blk, &found));
        if (!found)
            break;
        MR_ENSURE_OUT(strcmp(blk.label, "CERTIFICATE") == 0, MR_ERR_PROTOCOL,
                      "unexpected PEM block %s (want CERTIFICATE)", blk.label);
        MR_ENSURE_OUT(*count < max, MR_ERR_PROTOCOL, "too many certificates");
        MR_GUARD_OUT(mr_pem_encode_buf("CERTIFICATE", blk.der.data, blk.der.len, &pems[*count]));
        (*count)++;
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&blk.der);
    return res;
}

MR_RESULT mr_cli_cache_read_root(const char *path, mr_buf *root_pem)
{
    mr_result res = MR_FAILURE;
    mr_buf file, pems[8];
    size_t count = 0;
    mr_buf_init(&file, 0, 0);
    for (size_t i = 0; i < MR_ARRAY_LEN(pems); i++)
        mr_buf_init(&pems[i], 0, 0);
    MR_ENSURE_OUT(path != NULL && path[0] != '\0', MR_ERR_USAGE,
                  "no certificate cache path: set --coordinator-cert, $XDG_CONFIG_HOME or $HOME");
    MR_ENSURE_OUT(access(path, F_OK) == 0, MR_ERR_USAGE,
                  "loading root certificate from local cache: open %s: %s (run 'marblerun "
                  "manifest verify' or 'marblerun manifest set' first, or use --insecure)",
                  path, strerror(errno));
    MR_GUARD_OUT(mr_file_read(path, MR_CLI_FILE_MAX, &file));
    if (!mr_ok(split_pem(file.data, file.len, pems, MR_ARRAY_LEN(pems), &count))) {
        mr_error_prefix("parsing root certificate from local cache %s", path);
        goto out;
    }
    MR_ENSURE_OUT(count >= 2, MR_ERR_USAGE,
                  "parsing root certificate from local cache %s: expected the intermediate "
                  "and the root certificate, found %zu certificate(s)",
                  path, count);
    MR_GUARD_OUT(mr_buf_set(root_pem, pems[1].data, pems[1].len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&file);
    for (size_t i = 0; i < MR_ARRAY_LEN(pems); i++)
        mr_buf_free(&pems[i]);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* Connection and HTTP                                                                        */

void mr_cli_conn_init(mr_cli_conn *c)
{
    memset(c, 0, sizeof(*c));
    c->info = stdout;
    mr_buf_init(&c->anchor_pem, 0, 0);
    mr_buf_init(&c->chain_pem, 0, 0);
    mr_buf_init(&c->quote, 0, 0);
    mr_buf_init(&c->cert_pem, 0, 0);
    mr_buf_init(&c->key_pem, 0, MR_BUF_SECRET);
}

void mr_cli_conn_clear(mr_cli_conn *c)
{
    mr_buf_free(&c->anchor_pem);
    mr_buf_free(&c->chain_pem);
    mr_buf_free(&c->quote);
    mr_buf_free(&c->cert_pem);
    mr_buf_free(&c->key_pem);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    mr_buf *b = ud;
    size_t n = size * nmemb;
    if (!mr_ok(mr_buf_append(b, ptr, n)))
        return 0; /* curl reports a write error */
    return n;
}

static const char *go_method(const char *m)
{
    return strcmp(m, "GET") == 0 ? "Get" : strcmp(m, "POST") == 0 ? "Post" : m;
}

MR_RESULT mr_cli_http(const mr_cli_conn *c, const char *method, const char *path,
                      const void *body, size_t body_len, const char *content_type, long *status,
                      mr_buf *resp)
{
    mr_result res = MR_FAILURE;
    char url[1024], errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    CURL *h = curl_easy_init();
    MR_ENSURE_OUT(h != NULL, MR_ERR_INTERNAL, "curl_easy_init failed");
    int n = snprintf(url, sizeof(url), "https://%s%s", c->host, path);
    MR_ENSURE_OUT(n > 0 && (size_t)n < sizeof(url), MR_ERR_USAGE, "URL too long");
    mr_buf_reset(resp);
    resp->max = MR_CLI_FILE_MAX;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c->insecure || c->anchor_pem.len == 0) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        /* the Coordinator root is the only anchor; the system store is not consulted */
        struct curl_blob ca = {.data = c->anchor_pem.data, .len = c->anchor_pem.len,
                               .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (c->cert_pem.len > 0) {
        struct curl_blob cert = {.data = c->cert_pem.data, .len = c->cert_pem.len,
                                 .flags = CURL_BLOB_NOCOPY};
        struct curl_blob key = {.data = c->key_pem.data, .len = c->key_pem.len,
                                .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != NULL ? (const char *)body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        char ct[128];
        (void)snprintf(ct, sizeof(ct), "Content-Type: %s",
                       content_type != NULL ? content_type : "application/json");
        hdrs = curl_slist_append(hdrs, ct);
        hdrs = curl_slist_append(hdrs, "Expect:");
        MR_ENSURE_ALLOC_OUT(hdrs);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(h);
    MR_ENSURE_OUT(rc == CURLE_OK, MR_ERR_IO, "%s \"%s\": %s", go_method(method), url,
                  errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    res = MR_SUCCESS;
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return res;
}

MR_RESULT mr_cli_api(const mr_cli_conn *c, const char *method, const char *v2_path,
                     const json_t *v2_body, const char *v1_path, const void *v1_body,
                     size_t v1_len, const char *v1_ctype, json_t **data, bool *used_v1)
{
    mr_result res = MR_FAILURE;
    mr_buf resp;
    char *body = NULL;
    long status = 0;
    char url[1024];
    mr_buf_init(&resp, 0, 0);
    if (used_v1 != NULL)
        *used_v1 = false;
    size_t blen = 0;
    if (v2_body != NULL) {
        body = json_dumps(v2_body, JSON_COMPACT);
        MR_ENSURE_ALLOC_OUT(body);
        blen = strlen(body);
    }
    const char *path = v2_path;
    MR_GUARD_OUT(mr_cli_http(c, method, path, body, blen, "application/json", &status, &resp));
    if (status == 405 && v1_path != NULL) {
        path = v1_path;
        if (used_v1 != NULL)
            *used_v1 = true;
        MR_GUARD_OUT(mr_cli_http(c, method, path, v1_body, v1_len, v1_ctype, &status, &resp));
    }
    (void)snprintf(url, sizeof(url), "https://%s%s", c->host, path);
    MR_GUARD_OUT(mr_cli_jsend_parse(method, url, status, resp.data, resp.len, data));
    res = MR_SUCCESS;
out:
    if (body != NULL)
        OPENSSL_cleanse(body, blen); /* may carry recovery secrets or user secrets */
    mr_wipe_free(body); /* jansson allocates with mr_wipe_malloc (common/alloc.c) */
    mr_buf_free(&resp);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* Trust                                                                                      */

static MR_RESULT set_host(mr_cli_conn *c, const char *host)
{
    int n = snprintf(c->host, sizeof(c->host), "%s", host);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(c->host), MR_ERR_USAGE, "address too long: %s", host);
    MR_ENSURE(strchr(host, '/') == NULL && strchr(host, '?') == NULL, MR_ERR_USAGE,
              "invalid address %s: want <IP:PORT>", host);
    return MR_SUCCESS;
}

MR_RESULT mr_cli_conn_cached(const mr_cli *cli, const char *host, mr_cli_conn *c)
{
    MR_GUARD(set_host(c, host));
    if (mr_cli_bool(cli, "insecure")) {
        c->insecure = true;
        return MR_SUCCESS;
    }
    return mr_cli_cache_read_root(mr_cli_str(cli, "coordinator-cert"), &c->anchor_pem);
}

static MR_RESULT load_era(const mr_cli *cli, FILE *info, mr_cli_era *era)
{
    mr_result res = MR_FAILURE;
    mr_buf file;
    mr_buf_init(&file, 0, 0);
    const char *path = mr_cli_str(cli, "era-config");
    if (path[0] == '\0') {
        MR_ENSURE_OUT(access("era-config.json", F_OK) == 0, MR_ERR_USAGE,
                      "no era config: pass --era-config FILE or put era-config.json into the "
                      "current directory (it holds the Coordinator's UniqueID or SignerID, "
                      "ProductID and SecurityVersion; this CLI does not download it), or use "
                      "--insecure to skip attestation");
        fprintf(info, "Reusing existing config file\n");
        path = "era-config.json";
    }
    MR_GUARD_OUT(mr_file_read(path, MR_CLI_FILE_MAX, &file));
    MR_GUARD_OUT(mr_cli_era_parse((const char *)file.data, file.len, era));
    res = MR_SUCCESS;
out:
    mr_buf_free(&file);
    return res;
}

static bool listed(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static void print_advisories(const mr_attest_claims *cl, FILE *info)
{
    fprintf(info, "TCB Advisories: [");
    for (size_t i = 0; i < cl->tcb.advisory_count; i++)
        fprintf(info, "%s%s", i ? " " : "", cl->tcb.advisories[i]);
    fprintf(info, "]\n");
}

/* §4.2 step 5 (v1.6.0+ behaviour). */
static MR_RESULT check_tcb(const mr_cli *cli, const mr_attest_claims *cl, FILE *info)
{
    mr_tcb_status st = cl->tcb.status;
    if (st == MR_TCB_UP_TO_DATE)
        return MR_SUCCESS;
    const char *name = mr_tcb_status_name(st);
    size_t n = 0, na = 0;
    const char *const *acc = mr_cli_strings(cli, "accepted-tcb-statuses", &n);
    const char *const *adv = mr_cli_strings(cli, "accepted-advisories", &na);
    MR_ENSURE(listed(acc, n, name), MR_ERR_ATTESTATION, "invalid TCB status: %s", name);
    if (st == MR_TCB_SW_HARDENING_NEEDED) {
        if (na > 0) {
            for (size_t i = 0; i < cl->tcb.advisory_count; i++) {
                bool ok = false;
                for (size_t k = 0; k < na && !ok; k++)
                    ok = strcasecmp(adv[k], cl->tcb.advisories[i]) == 0;
                MR_ENSURE(ok, MR_ERR_ATTESTATION,
                          "invalid TCB status: SWHardeningNeeded: advisories not accepted by "
                          "configuration: [%s]",
                          cl->tcb.advisories[i]);
            }
        }
        fprintf(info, "TCB level accepted by configuration: SWHardeningNeeded\n");
    } else {
        fprintf(info, "Warning: TCB level invalid, but accepted by configuration: %s\n", name);
    }
    print_advisories(cl, info);
    return MR_SUCCESS;
}

static MR_RESULT verify_quote(const mr_cli *cli, const mr_cli_era *era, mr_cli_conn *c,
                              const mr_buf *root_der)
{
    mr_result res = MR_FAILURE;
    mr_attest_roots *roots = NULL;
    mr_collateral_source *src = NULL;
    mr_attest_claims cl;
    memset(&cl, 0, sizeof(cl));
    MR_ENSURE_OUT(c->quote.len > 0, MR_ERR_ATTESTATION,
                  "no quote received (a Coordinator in simulation mode has none: use "
                  "--insecure)");
    MR_GUARD_OUT(mr_attest_roots_from_config(&roots));
    MR_GUARD_OUT(mr_collateral_source_from_config(&src));
    MR_ENSURE_OUT(src != NULL, MR_ERR_USAGE,
                  "no DCAP collateral to verify the Coordinator's quote: set "
                  "EDG_ATTESTATION_COLLATERAL (file or directory) or EDG_ATTESTATION_PCCS_URL");
    mr_attest_options opts = {.roots = roots, .source = src};
    MR_GUARD_OUT(mr_dcap_verify(c->quote.data, c->quote.len, &opts, &cl));
    MR_ENSURE_OUT(cl.tee == MR_TEE_SGX, MR_ERR_ATTESTATION,
                  "the Coordinator's quote is not an SGX quote");
    MR_GUARD_OUT(check_tcb(cli, &cl, c->info));
    mr_cli_report rep;
    memcpy(rep.report_data, cl.report_data, sizeof(rep.report_data));
    memcpy(rep.unique_id, cl.u.sgx.mrenclave, 32);
    memcpy(rep.signer_id, cl.u.sgx.mrsigner, 32);
    rep.product_id = cl.u.sgx.isvprodid;
    rep.security_version = cl.u.sgx.isvsvn;
    rep.debug = cl.debug;
    const char *nonce = mr_cli_str(cli, "nonce");
    MR_GUARD_OUT(mr_cli_era_check(era, &rep, root_der->data, root_der->len,
                                  nonce[0] != '\0' ? nonce : NULL, c->info));
    res = MR_SUCCESS;
out:
    mr_collateral_source_free(src);
    mr_attest_roots_free(roots);
    return res;
}

/* "/api/v2/quote", with the nonce (base64url) when one is given; NUL-terminated. */
static MR_RESULT quote_path(const char *nonce, mr_buf *path)
{
    MR_GUARD(mr_buf_append_str(path, "/api/v2/quote"));
    if (nonce[0] != '\0') {
        MR_GUARD(mr_buf_append_str(path, "?nonce="));
        MR_GUARD(mr_b64_encode_buf((const uint8_t *)nonce, strlen(nonce), MR_B64_URL, path));
    }
    return mr_buf_nul_terminate(path);
}

/* GETs the quote, from /quote when the Coordinator has no /api/v2, and its JSend data. */
static MR_RESULT fetch_quote(mr_cli_conn *c, const char *nonce, const char *path, json_t **data)
{
    mr_result res = MR_FAILURE;
    mr_buf resp;
    bool used_v1 = false;
    long status = 0;
    char url[600];

    mr_buf_init(&resp, 0, 0);
    MR_GUARD_OUT(mr_cli_http(c, "GET", path, NULL, 0, NULL, &status, &resp));
    if (status == 405) {
        MR_ENSURE_OUT(nonce[0] == '\0', MR_ERR_USAGE,
                      "using custom nonce requires /api/v2, but the Coordinator does not "
                      "support /api/v2");
        used_v1 = true;
        MR_GUARD_OUT(mr_cli_http(c, "GET", "/quote", NULL, 0, NULL, &status, &resp));
    }
    (void)snprintf(url, sizeof(url), "https://%s%s", c->host, used_v1 ? "/quote" : path);
    MR_GUARD_OUT(mr_cli_jsend_parse("GET", url, status, resp.data, resp.len, data));
    res = MR_SUCCESS;
out:
    mr_buf_free(&resp);
    return res;
}

/* The answer's certificate chain (pems[0] the intermediate, pems[1] the root, whose DER goes
 * to root_der) and quote (into c->quote; none is fine). */
static MR_RESULT read_quote_answer(json_t *data, mr_cli_conn *c, mr_buf *pems, size_t npems,
                                   mr_buf *root_der)
{
    const char *cert = mr_cli_json_str(data, "cert");
    const char *quote = mr_cli_json_str(data, "quote");
    size_t count = 0;
    mr_cursor cur;
    mr_pem_block blk;
    bool found = false;

    MR_ENSURE(cert != NULL, MR_ERR_PROTOCOL,
              "retrieving Coordinator certificate: no certificate in the answer");
    MR_GUARD(split_pem((const uint8_t *)cert, strlen(cert), pems, npems, &count));
    MR_ENSURE(count >= 2, MR_ERR_PROTOCOL,
              "retrieving Coordinator certificate: expected intermediate and root "
              "certificate, got %zu certificate(s)",
              count);
    if (quote != NULL && quote[0] != '\0' &&
        !mr_ok(mr_b64_decode_buf(quote, strlen(quote), MR_B64_STD, 0, &c->quote))) {
        mr_error_prefix("decoding the Coordinator's quote");
        return MR_FAILURE;
    }
    mr_cursor_init(&cur, pems[1].data, pems[1].len);
    blk.der = *root_der;
    mr_result r = mr_pem_next(&cur, &blk, &found);
    *root_der = blk.der; /* the buffer may have grown either way */
    return r;
}

MR_RESULT mr_cli_conn_attest(const mr_cli *cli, const char *host, mr_cli_conn *c)
{
    mr_result res = MR_FAILURE;
    json_t *data = NULL;
    mr_buf path, pems[8], root_der;
    mr_cli_era era;
    bool insecure = mr_cli_bool(cli, "insecure");
    memset(&era, 0, sizeof(era));
    mr_buf_init(&path, 0, 0);
    mr_buf_init(&root_der, 0, 0);
    for (size_t i = 0; i < MR_ARRAY_LEN(pems); i++)
        mr_buf_init(&pems[i], 0, 0);
    MR_GUARD_OUT(set_host(c, host));
    if (!insecure) {
        MR_GUARD_OUT(load_era(cli, c->info, &era));
        insecure = era.insecure_skip_verify;
    }
    /* the quote is fetched without TLS verification; the quote vouches for the certificate */
    c->insecure = true;
    const char *nonce = mr_cli_str(cli, "nonce");
    MR_GUARD_OUT(quote_path(nonce, &path));
    MR_GUARD_OUT(fetch_quote(c, nonce, (const char *)path.data, &data));
    MR_GUARD_OUT(read_quote_answer(data, c, pems, MR_ARRAY_LEN(pems), &root_der));
    if (insecure) {
        fprintf(c->info, "Warning: skipping quote verification\n");
    } else {
        MR_GUARD_OUT(verify_quote(cli, &era, c, &root_der));
    }
    MR_GUARD_OUT(mr_buf_set(&c->chain_pem, pems[0].data, pems[0].len));
    MR_GUARD_OUT(mr_buf_append(&c->chain_pem, pems[1].data, pems[1].len));
    if (mr_cli_bool(cli, "insecure")) {
        c->insecure = true;
    } else {
        c->insecure = false;
        MR_GUARD_OUT(mr_buf_set(&c->anchor_pem, pems[1].data, pems[1].len));
    }
    res = MR_SUCCESS;
out:
    json_decref(data);
    mr_buf_free(&path);
    mr_buf_free(&root_der);
    for (size_t i = 0; i < MR_ARRAY_LEN(pems); i++)
        mr_buf_free(&pems[i]);
    return res;
}

MR_RESULT mr_cli_conn_save_cache(const mr_cli *cli, const mr_cli_conn *c)
{
    return mr_cli_cache_write(mr_cli_str(cli, "coordinator-cert"), (const char *)c->chain_pem.data,
                              c->chain_pem.len);
}

MR_RESULT mr_cli_conn_save_quote(const mr_cli *cli, const mr_cli_conn *c)
{
    const char *path = mr_cli_str(cli, "save-sgx-quote");
    if (path[0] == '\0')
        return MR_SUCCESS;
    return mr_cli_write_file(path, c->quote.data, c->quote.len);
}

MR_RESULT mr_cli_conn_client_auth(const mr_cli *cli, mr_cli_conn *c)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    EVP_PKEY *pub = NULL;
    static const char *const p11[] = {"pkcs11-config", "pkcs11-key-id", "pkcs11-key-label",
                                      "pkcs11-cert-id", "pkcs11-cert-label"};
    for (size_t i = 0; i < MR_ARRAY_LEN(p11); i++)
        MR_ENSURE_OUT(!mr_cli_changed(cli, p11[i]), MR_ERR_USAGE,
                      "--%s: PKCS #11 is not supported by this build of the CLI; use --cert "
                      "and --key with PEM files",
                      p11[i]);
    const char *cp = mr_cli_str(cli, "cert");
    const char *kp = mr_cli_str(cli, "key");
    MR_ENSURE_OUT(cp[0] != '\0' || kp[0] != '\0', MR_ERR_USAGE,
                  "at least one of the flags in the group [cert pkcs11-config] is required");
    MR_ENSURE_OUT(cp[0] != '\0' && kp[0] != '\0', MR_ERR_USAGE,
                  "if any flags in the group [cert key] are set they must all be set; missing "
                  "[%s]",
                  cp[0] == '\0' ? "cert" : "key");
    MR_GUARD_OUT(mr_file_read(cp, MR_CLI_FILE_MAX, &c->cert_pem));
    MR_GUARD_OUT(mr_file_read(kp, MR_CLI_FILE_MAX, &c->key_pem));
    if (!mr_ok(mr_x509_from_pem(mr_buf_slice(&c->cert_pem), &cert))) {
        mr_error_prefix("loading client certificate %s", cp);
        goto out;
    }
    if (!mr_ok(mr_key_private_from_pem(mr_buf_slice(&c->key_pem), &key))) {
        mr_error_prefix("loading client key %s", kp);
        goto out;
    }
    MR_GUARD_OUT(mr_x509_pubkey(cert, &pub));
    MR_ENSURE_OUT(mr_key_public_equal(pub, key), MR_ERR_USAGE,
                  "tls: private key does not match public key");
    res = MR_SUCCESS;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    return res;
}
