/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Collateral sources: a file, a directory, or a PCCS/PCS base URL (v4 API) with a
 * thread-safe in-memory cache keyed by TEE type, FMSPC and PCK CA. See collateral.h.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>

#include "attest/collateral_http.h"
#include "attest/collateral_int.h"
#include "attest/ossl.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/log.h"
#include "common/text.h"

#define MAX_ENTRIES 1024
#define HTTP_MAX ((size_t)4 << 20)
#define HTTP_HEADERS_MAX ((size_t)300 * 1024) /* libcurl's cap on a response's headers */
#define HTTP_TIMEOUT_MS 30000u                /* the whole fetch, connecting included */

enum { SRC_FILE, SRC_DIR, SRC_PCCS };

typedef struct entry {
    bool tdx;
    uint8_t fmspc[6];
    char ca[12];
    time_t expires;
    mr_dcap_collateral *col;
} entry;

struct mr_collateral_source {
    int kind;
    char *where; /* path or base URL (no trailing slash) */
    bool insecure_tls;
    pthread_mutex_t lock;
    entry *entries;
    size_t count;
};

static MR_RESULT src_new(int kind, const char *where, mr_collateral_source **out)
{
    mr_collateral_source *s = mr_calloc(1, sizeof(*s));
    MR_ENSURE_ALLOC(s);
    s->kind = kind;
    s->where = mr_strdup(where);
    s->entries = mr_calloc(MAX_ENTRIES, sizeof(entry));
    if (s->where == NULL || s->entries == NULL || pthread_mutex_init(&s->lock, NULL) != 0) {
        mr_free(s->where);
        mr_free(s->entries);
        mr_free(s);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    *out = s;
    return MR_SUCCESS;
}

void mr_collateral_source_free(mr_collateral_source *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->count; i++)
        mr_dcap_collateral_free(s->entries[i].col);
    pthread_mutex_destroy(&s->lock);
    mr_free(s->entries);
    mr_free(s->where);
    mr_free(s);
}

/* Takes the reference in col. Caller holds the lock (or owns s exclusively). */
static MR_RESULT src_put(mr_collateral_source *s, mr_dcap_collateral *col, const char *ca)
{
    entry *e = NULL;
    time_t exp = col->tcb.next_update < col->qe.next_update ? col->tcb.next_update
                                                            : col->qe.next_update;

    if (col->pck_crl != NULL && col->pck_crl_next < exp)
        exp = col->pck_crl_next;
    for (size_t i = 0; i < s->count; i++) {
        e = &s->entries[i];
        if (e->tdx == col->tcb.tdx && memcmp(e->fmspc, col->tcb.fmspc, 6) == 0 &&
            strcmp(e->ca, ca) == 0) {
            mr_dcap_collateral_free(e->col);
            e->col = col;
            e->expires = exp;
            return MR_SUCCESS;
        }
    }
    if (s->count >= MAX_ENTRIES) {
        mr_dcap_collateral_free(col);
        MR_BAIL(MR_ERR_INTERNAL, "collateral cache full");
    }
    e = &s->entries[s->count++];
    e->tdx = col->tcb.tdx;
    memcpy(e->fmspc, col->tcb.fmspc, 6);
    snprintf(e->ca, sizeof(e->ca), "%s", ca);
    e->expires = exp;
    e->col = col;
    return MR_SUCCESS;
}

MR_RESULT mr_collateral_source_file(const char *path, mr_collateral_source **out)
{
    mr_collateral_source *s = NULL;
    mr_dcap_collateral *col = NULL;

    MR_GUARD(mr_dcap_collateral_load_file(path, &col));
    if (!mr_ok(src_new(SRC_FILE, path, &s))) {
        mr_dcap_collateral_free(col);
        return MR_FAILURE;
    }
    if (!mr_ok(src_put(s, col, ""))) {
        mr_collateral_source_free(s);
        return MR_FAILURE;
    }
    *out = s;
    return MR_SUCCESS;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static MR_RESULT dir_load_one(mr_collateral_source *s, const char *path)
{
    mr_dcap_collateral *col = NULL;
    if (!mr_ok(mr_dcap_collateral_load_file(path, &col))) {
        MR_LOG_WARN("skipping unusable collateral file", MR_F_STR("path", path), MR_F_ERR());
        mr_error_clear();
        return MR_SUCCESS;
    }
    return src_put(s, col, "");
}

MR_RESULT mr_collateral_source_dir(const char *path, mr_collateral_source **out)
{
    mr_result res = MR_FAILURE;
    mr_collateral_source *s = NULL;
    DIR *d = opendir(path);
    struct dirent *de = NULL;
    char full[4096];
    struct stat st;

    MR_ENSURE(d != NULL, MR_ERR_IO, "collateral: cannot open directory %s", path);
    MR_GUARD_OUT(src_new(SRC_DIR, path, &s));
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            snprintf(full, sizeof(full), "%s/%s/collateral.json", path, de->d_name);
            if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
                MR_GUARD_OUT(dir_load_one(s, full));
        } else if (S_ISREG(st.st_mode) && ends_with(de->d_name, ".json")) {
            MR_GUARD_OUT(dir_load_one(s, full));
        }
    }
    MR_ENSURE_OUT(s->count > 0, MR_ERR_IO, "collateral: no usable collateral in %s", path);
    *out = s;
    s = NULL;
    res = MR_SUCCESS;
out:
    closedir(d);
    mr_collateral_source_free(s);
    return res;
}

/* The fetcher connects directly. Say so when the environment names a proxy that a libcurl
 * based client would have used for this URL (NO_PROXY is not evaluated: a warning too many
 * is harmless). */
static void warn_proxy_env(const char *base_url)
{
    bool tls = strncmp(base_url, "https://", 8) == 0;
    const char *const names[] = {tls ? "https_proxy" : "http_proxy", tls ? "HTTPS_PROXY" : NULL,
                                 "all_proxy", "ALL_PROXY"};

    for (size_t i = 0; i < MR_ARRAY_LEN(names); i++) {
        const char *v = names[i] != NULL ? getenv(names[i]) : NULL;
        if (v != NULL && v[0] != '\0') {
            MR_LOG_WARN("collateral is fetched from the PCCS directly; the proxy in the "
                        "environment is not used",
                        MR_F_STR("variable", names[i]));
            return;
        }
    }
}

MR_RESULT mr_collateral_source_pccs(const char *base_url, bool insecure_tls,
                                    mr_collateral_source **out)
{
    mr_collateral_source *s = NULL;
    size_t n = strlen(base_url);

    MR_ENSURE(n > 0 && n < 1024 && (strncmp(base_url, "https://", 8) == 0 ||
                                    strncmp(base_url, "http://", 7) == 0),
              MR_ERR_USAGE, "collateral: PCCS URL must start with https:// or http://");
    MR_GUARD(src_new(SRC_PCCS, base_url, &s));
    while (n > 0 && s->where[n - 1] == '/')
        s->where[--n] = '\0';
    s->insecure_tls = insecure_tls;
    warn_proxy_env(base_url);
    *out = s;
    return MR_SUCCESS;
}

MR_RESULT mr_collateral_source_from_config(mr_collateral_source **out)
{
    const char *path = mr_config_get("EDG_ATTESTATION_COLLATERAL");
    const char *url = mr_config_get("EDG_ATTESTATION_PCCS_URL");
    struct stat st;

    *out = NULL;
    if (path != NULL) {
        MR_ENSURE(stat(path, &st) == 0, MR_ERR_IO,
                  "EDG_ATTESTATION_COLLATERAL: cannot access %s", path);
        return S_ISDIR(st.st_mode) ? mr_collateral_source_dir(path, out)
                                   : mr_collateral_source_file(path, out);
    }
    if (url != NULL) {
        /* A PCCS usually has a self-signed certificate; the collateral is signed by Intel
         * and verified anyway. Intel's own PCS gets full TLS verification. */
        bool intel = strstr(url, "://api.trustedservices.intel.com") != NULL;
        return mr_collateral_source_pccs(url, !intel, out);
    }
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* PCCS fetching                                                                              */

typedef struct http_resp {
    mr_buf body;
    mr_buf chain;          /* URL-decoded issuer chain header */
    const char *chain_hdr[3];
} http_resp;

/* An issuer chain header: the value, URL-decoded (%XX only, '+' stays), replaces what an
 * earlier chain header gave. */
static MR_RESULT on_header(void *arg, const char *name, const char *value)
{
    http_resp *r = arg;
    size_t len = strlen(value);

    for (int h = 0; h < 3 && r->chain_hdr[h] != NULL; h++) {
        if (strcasecmp(name, r->chain_hdr[h]) != 0)
            continue;
        mr_buf_reset(&r->chain);
        MR_GUARD(mr_percent_decode(value, len, 0, &r->chain));
    }
    return MR_SUCCESS;
}

/* GET url into r; anything but 200 is an error. PCCS's certificate is checked unless the
 * source was made with insecure_tls (see mr_collateral_source_from_config). */
static MR_RESULT http_get(const mr_collateral_source *s, const char *url, http_resp *r)
{
    int status = 0;
    mr_http_get_opts o = {.verify_tls = !s->insecure_tls,
                          .timeout_ms = HTTP_TIMEOUT_MS,
                          .max_headers = HTTP_HEADERS_MAX,
                          .max_body = HTTP_MAX,
                          .on_header = on_header,
                          .arg = r};

    if (!mr_ok(mr_http_get(&o, url, &status, &r->body))) {
        mr_error_prefix("fetching %s", url);
        return MR_FAILURE;
    }
    MR_ENSURE(status == 200, MR_ERR_IO, "fetching %s: HTTP status %d", url, status);
    return MR_SUCCESS;
}

static void resp_init(http_resp *r, const char *h1, const char *h2)
{
    memset(r, 0, sizeof(*r));
    mr_buf_init(&r->body, HTTP_MAX, 0);
    mr_buf_init(&r->chain, (size_t)64 * 1024, 0);
    r->chain_hdr[0] = h1;
    r->chain_hdr[1] = h2;
}

static void resp_free(http_resp *r)
{
    mr_buf_free(&r->body);
    mr_buf_free(&r->chain);
}

/* A signed PCS document {"<key>":{...},"signature":"hex"}: sets the exact text, the
 * signature and the chain in the collateral JSON being assembled. */
static MR_RESULT signed_doc(json_t *doc, const http_resp *r, const char *key,
                            const char *text_field, const char *sig_field,
                            const char *chain_field)
{
    mr_slice raw, sig;
    json_t *s = NULL;

    MR_GUARD(mr_json_raw_member((const char *)r->body.data, r->body.len, key, &raw));
    MR_GUARD(mr_json_raw_member((const char *)r->body.data, r->body.len, "signature", &sig));
    MR_ENSURE(sig.len >= 2 && sig.ptr[0] == '"', MR_ERR_ATTESTATION,
              "collateral: %s signature is not a string", key);
    MR_ENSURE(r->chain.len > 0, MR_ERR_ATTESTATION, "collateral: %s issuer chain header missing",
              key);
    s = json_stringn((const char *)raw.ptr, raw.len);
    MR_ENSURE_ALLOC(s);
    MR_ENSURE(json_object_set_new(doc, text_field, s) == 0, MR_ERR_INTERNAL, "out of memory");
    s = json_stringn((const char *)sig.ptr + 1, sig.len - 2);
    MR_ENSURE_ALLOC(s);
    MR_ENSURE(json_object_set_new(doc, sig_field, s) == 0, MR_ERR_INTERNAL, "out of memory");
    s = json_stringn((const char *)r->chain.data, r->chain.len);
    MR_ENSURE_ALLOC(s);
    MR_ENSURE(json_object_set_new(doc, chain_field, s) == 0, MR_ERR_INTERNAL, "out of memory");
    return MR_SUCCESS;
}

/* A CRL body in DER, PEM or hex (PCCS's /rootcacrl quirk), stored as lower-case hex. */
static MR_RESULT crl_doc(json_t *doc, const http_resp *r, const char *field)
{
    mr_result res = MR_FAILURE;
    mr_buf hex;
    const uint8_t *p = r->body.data;
    size_t n = r->body.len;
    bool is_hex = n > 0 && n % 2 == 0;
    json_t *s = NULL;

    mr_buf_init(&hex, 2 * HTTP_MAX, 0);
    for (size_t i = 0; i < n && is_hex; i++)
        is_hex = mr_hex_digit(p[i]) >= 0;
    if (is_hex) {
        MR_GUARD_OUT(mr_buf_set(&hex, p, n));
    } else if (n > 10 && memcmp(p, "-----BEGIN", 10) == 0) {
        mr_pem_block blk;
        mr_cursor c;
        bool found = false;
        memset(&blk, 0, sizeof(blk));
        mr_buf_init(&blk.der, HTTP_MAX, 0);
        mr_cursor_init(&c, p, n);
        if (!mr_ok(mr_pem_next(&c, &blk, &found)) || !found) {
            mr_buf_free(&blk.der);
            MR_BAIL_OUT(MR_ERR_ATTESTATION, "collateral: %s is not a CRL", field);
        }
        res = mr_hex_encode_buf(blk.der.data, blk.der.len, &hex);
        mr_buf_free(&blk.der);
        MR_GUARD_OUT(res);
        res = MR_FAILURE;
    } else {
        MR_GUARD_OUT(mr_hex_encode_buf(p, n, &hex));
    }
    s = json_stringn((const char *)hex.data, hex.len);
    MR_ENSURE_ALLOC_OUT(s);
    MR_ENSURE_OUT(json_object_set_new(doc, field, s) == 0, MR_ERR_INTERNAL, "out of memory");
    res = MR_SUCCESS;
out:
    mr_buf_free(&hex);
    return res;
}

static MR_RESULT pccs_fetch(const mr_collateral_source *s, bool tdx, const uint8_t fmspc[6],
                            const char *ca, mr_dcap_collateral **out)
{
    mr_result res = MR_FAILURE;
    json_t *doc = json_object();
    char url[2048], fm[13];
    const char *tee = tdx ? "tdx" : "sgx";
    http_resp r;
    char *text = NULL;

    resp_init(&r, "TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain");
    MR_ENSURE_ALLOC_OUT(doc);
    for (size_t i = 0; i < 6; i++)
        snprintf(fm + 2 * i, 3, "%02X", fmspc[i]);

    snprintf(url, sizeof(url), "%s/%s/certification/v4/tcb?fmspc=%s", s->where, tee, fm);
    MR_GUARD_OUT(http_get(s, url, &r));
    MR_GUARD_OUT(signed_doc(doc, &r, "tcbInfo", "tcb_info", "tcb_info_signature",
                            "tcb_info_issuer_chain"));
    resp_free(&r);

    resp_init(&r, "SGX-Enclave-Identity-Issuer-Chain", NULL);
    snprintf(url, sizeof(url), "%s/%s/certification/v4/qe/identity", s->where, tee);
    MR_GUARD_OUT(http_get(s, url, &r));
    MR_GUARD_OUT(signed_doc(doc, &r, "enclaveIdentity", "qe_identity", "qe_identity_signature",
                            "qe_identity_issuer_chain"));
    resp_free(&r);

    resp_init(&r, "SGX-PCK-CRL-Issuer-Chain", NULL);
    snprintf(url, sizeof(url), "%s/sgx/certification/v4/pckcrl?ca=%s&encoding=der", s->where,
             ca);
    MR_GUARD_OUT(http_get(s, url, &r));
    MR_GUARD_OUT(crl_doc(doc, &r, "pck_crl"));
    if (r.chain.len > 0) {
        json_t *c = json_stringn((const char *)r.chain.data, r.chain.len);
        MR_ENSURE_ALLOC_OUT(c);
        MR_ENSURE_OUT(json_object_set_new(doc, "pck_crl_issuer_chain", c) == 0, MR_ERR_INTERNAL,
                      "out of memory");
    }
    resp_free(&r);

    resp_init(&r, NULL, NULL);
    snprintf(url, sizeof(url), "%s/sgx/certification/v4/rootcacrl", s->where);
    if (!mr_ok(http_get(s, url, &r))) {
        /* Intel PCS itself has no /rootcacrl: use the root's CRL distribution point */
        mr_buf_reset(&r.body);
        MR_GUARD_OUT(http_get(
            s, "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der", &r));
    }
    MR_GUARD_OUT(crl_doc(doc, &r, "root_ca_crl"));

    text = json_dumps(doc, JSON_COMPACT);
    MR_ENSURE_ALLOC_OUT(text);
    MR_GUARD_OUT(mr_dcap_collateral_parse_json(text, strlen(text), out));
    res = MR_SUCCESS;
out:
    resp_free(&r);
    free(text); /* check-source: allow alloc -- jansson's json_dumps allocates with malloc */
    json_decref(doc);
    return res;
}

MR_RESULT mr_collateral_source_get(mr_collateral_source *s, bool tdx, const uint8_t fmspc[6],
                                   const char *pck_ca, time_t now, mr_dcap_collateral **out)
{
    mr_dcap_collateral *col = NULL;
    const char *ca = s->kind == SRC_PCCS ? pck_ca : "";

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->count; i++) {
        entry *e = &s->entries[i];
        if (s->kind == SRC_FILE ||
            (e->tdx == tdx && memcmp(e->fmspc, fmspc, 6) == 0 && strcmp(e->ca, ca) == 0 &&
             (s->kind != SRC_PCCS || now <= e->expires))) {
            col = mr_dcap_collateral_ref(e->col);
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (col != NULL) {
        *out = col;
        return MR_SUCCESS;
    }
    MR_ENSURE(s->kind == SRC_PCCS, MR_ERR_ATTESTATION,
              "no %s collateral for FMSPC %02x%02x%02x%02x%02x%02x in %s", tdx ? "TDX" : "SGX",
              fmspc[0], fmspc[1], fmspc[2], fmspc[3], fmspc[4], fmspc[5], s->where);
    MR_GUARD(pccs_fetch(s, tdx, fmspc, ca, &col));
    if (col->tcb.tdx != tdx || memcmp(col->tcb.fmspc, fmspc, 6) != 0) {
        mr_dcap_collateral_free(col);
        MR_BAIL(MR_ERR_ATTESTATION, "PCCS returned TCB Info for another platform");
    }
    *out = mr_dcap_collateral_ref(col);
    pthread_mutex_lock(&s->lock);
    {
        mr_result r = src_put(s, col, ca);
        pthread_mutex_unlock(&s->lock);
        if (!mr_ok(r)) {
            mr_dcap_collateral_free(*out);
            *out = NULL;
            return MR_FAILURE;
        }
    }
    return MR_SUCCESS;
}
