/* SPDX-License-Identifier: Apache-2.0 */
/* SEV-SNP evidence verification with VCEK lookup (directory or AMD KDS) and cache; see
 * snp_source.h. */
#include "attest/snp_source.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "attest/collateral_http.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/file.h"
#include "common/log.h"

#define CACHE_MAX 256
#define CERT_MAX ((size_t)64 * 1024)
#define ROOT_FILE_MAX ((size_t)256 * 1024)
#define KDS_TIMEOUT_MS 30000u
#define KDS_HEADERS_MAX ((size_t)64 * 1024)
#define PATH_LEN 4096

typedef struct vcek_entry {
    bool used;
    uint8_t chip_id[64];
    uint64_t tcb;
    mr_buf der;
} vcek_entry;

struct mr_snp_source {
    char *vcek;   /* directory or base URL (no trailing slash); NULL = no lookup */
    bool is_url;
    mr_buf test_root;
    mr_snp_product product;
    pthread_mutex_t lock;
    vcek_entry cache[CACHE_MAX];
    size_t next; /* the slot the next new entry replaces */
    mr_buf chain[3]; /* per product (index mr_snp_product): ASK || ARK PEM, once fetched */
};

MR_RESULT mr_snp_product_parse(const char *name, mr_snp_product *out)
{
    if (name == NULL || name[0] == '\0' || strcasecmp(name, "any") == 0)
        *out = MR_SNP_PRODUCT_ANY;
    else if (strcasecmp(name, "Milan") == 0)
        *out = MR_SNP_PRODUCT_MILAN;
    else if (strcasecmp(name, "Genoa") == 0)
        *out = MR_SNP_PRODUCT_GENOA;
    else
        MR_BAIL(MR_ERR_USAGE, "unknown AMD product \"%s\" (want Milan or Genoa)", name);
    return MR_SUCCESS;
}

void mr_snp_source_free(mr_snp_source *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < CACHE_MAX; i++)
        mr_buf_free(&s->cache[i].der);
    for (size_t i = 0; i < MR_ARRAY_LEN(s->chain); i++)
        mr_buf_free(&s->chain[i]);
    mr_buf_free(&s->test_root);
    pthread_mutex_destroy(&s->lock);
    mr_free(s->vcek);
    mr_free(s);
}

static bool is_url(const char *v)
{
    return strncmp(v, "https://", 8) == 0 || strncmp(v, "http://", 7) == 0;
}

MR_RESULT mr_snp_source_new(const mr_snp_source_opts *o, mr_snp_source **out)
{
    mr_result res = MR_FAILURE;
    MR_ENSURE_REF(o);
    mr_snp_source *s = mr_calloc(1, sizeof(*s));
    MR_ENSURE_ALLOC(s);
    for (size_t i = 0; i < CACHE_MAX; i++)
        mr_buf_init(&s->cache[i].der, CERT_MAX, 0);
    for (size_t i = 0; i < MR_ARRAY_LEN(s->chain); i++)
        mr_buf_init(&s->chain[i], CERT_MAX, 0);
    mr_buf_init(&s->test_root, CERT_MAX, 0);
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        mr_free(s);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    s->product = o->product;
    if (o->vcek != NULL && o->vcek[0] != '\0') {
        s->vcek = mr_strdup(o->vcek);
        MR_ENSURE_ALLOC_OUT(s->vcek);
        s->is_url = is_url(s->vcek);
        for (size_t n = strlen(s->vcek); n > 1 && s->vcek[n - 1] == '/'; n--)
            s->vcek[n - 1] = '\0';
    }
    if (o->test_root.len > 0)
        MR_GUARD_OUT(mr_buf_set(&s->test_root, o->test_root.ptr, o->test_root.len));
    *out = s;
    s = NULL;
    res = MR_SUCCESS;
out:
    mr_snp_source_free(s);
    return res;
}

bool mr_snp_source_has_test_root(const mr_snp_source *s)
{
    return s != NULL && s->test_root.len > 0;
}

MR_RESULT mr_snp_source_from_config(mr_snp_source **out)
{
    mr_result res = MR_FAILURE;
    const char *vcek = mr_config_get("EDG_ATTESTATION_SNP_VCEK");
    const char *root = mr_config_get("EDG_ATTESTATION_SNP_ROOT");
    const char *product = mr_config_get("EDG_ATTESTATION_SNP_PRODUCT");
    mr_snp_source_opts o = {.vcek = vcek};
    mr_buf pem;
    mr_buf_init(&pem, ROOT_FILE_MAX, 0);
    *out = NULL;
    if (vcek == NULL && root == NULL && product == NULL)
        return MR_SUCCESS;
    if (!mr_ok(mr_snp_product_parse(product, &o.product))) {
        mr_error_prefix("EDG_ATTESTATION_SNP_PRODUCT");
        goto out;
    }
    if (vcek != NULL && !is_url(vcek)) {
        struct stat st;
        MR_ENSURE_OUT(stat(vcek, &st) == 0 && S_ISDIR(st.st_mode), MR_ERR_USAGE,
                      "EDG_ATTESTATION_SNP_VCEK: %s is neither an http(s) URL nor a directory",
                      vcek);
    }
    if (root != NULL) {
        MR_GUARD_OUT(mr_file_read(root, ROOT_FILE_MAX, &pem));
        o.test_root = mr_buf_slice(&pem);
        MR_LOG_WARN("attestation: SEV-SNP reports are checked against a TEST root instead of "
                    "AMD's (EDG_ATTESTATION_SNP_ROOT); never use this in production",
                    MR_F_STR("root", root));
    }
    MR_GUARD_OUT(mr_snp_source_new(&o, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&pem);
    return res;
}

/* ---- lookup --------------------------------------------------------------------------- */

static mr_snp_product report_product(const mr_snp_source *s, const mr_snp_report *r)
{
    if (s->product != MR_SNP_PRODUCT_ANY)
        return s->product;
    if (r->has_cpuid && r->cpuid_fam_id == 0x19 &&
        ((r->cpuid_mod_id >= 0x10 && r->cpuid_mod_id <= 0x1f) ||
         (r->cpuid_mod_id >= 0xa0 && r->cpuid_mod_id <= 0xaf)))
        return MR_SNP_PRODUCT_GENOA;
    return MR_SNP_PRODUCT_MILAN;
}

static MR_RESULT chip_hex(const mr_snp_report *r, char out[129])
{
    mr_buf h;
    mr_buf_init(&h, 129, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(mr_hex_encode_buf(r->chip_id, sizeof(r->chip_id), &h));
    MR_ENSURE_OUT(h.len == 128, MR_ERR_INTERNAL, "internal error: CHIP_ID hex");
    memcpy(out, h.data, 128);
    out[128] = '\0';
    res = MR_SUCCESS;
out:
    mr_buf_free(&h);
    return res;
}

/* An optional file: appended to out when it exists. */
static MR_RESULT read_optional(const char *path, mr_buf *out, bool *found)
{
    struct stat st;
    *found = stat(path, &st) == 0;
    if (!*found)
        return MR_SUCCESS;
    return mr_file_read(path, CERT_MAX, out);
}

static MR_RESULT dir_vcek(const mr_snp_source *s, const mr_snp_report *r, mr_buf *out)
{
    char hex[129], path[PATH_LEN];
    bool found = false;
    MR_GUARD(chip_hex(r, hex));
    static const char *const ext[] = {"der", "pem"};
    for (size_t i = 0; i < MR_ARRAY_LEN(ext) && !found; i++) {
        int n = snprintf(path, sizeof(path), "%s/%s-%016llx.%s", s->vcek, hex,
                         (unsigned long long)r->reported_tcb.raw, ext[i]);
        MR_ENSURE(n > 0 && (size_t)n < sizeof(path), MR_ERR_USAGE,
                  "SNP VCEK lookup: directory path too long");
        MR_GUARD(read_optional(path, out, &found));
    }
    MR_ENSURE(found, MR_ERR_ATTESTATION,
              "SNP VCEK lookup: no VCEK for this chip and TCB in %s (want %s-%016llx.der)",
              s->vcek, hex, (unsigned long long)r->reported_tcb.raw);
    return MR_SUCCESS;
}

static MR_RESULT kds_get(const char *url, mr_buf *out)
{
    int status = 0;
    mr_http_get_opts o = {.verify_tls = true,
                          .timeout_ms = KDS_TIMEOUT_MS,
                          .max_headers = KDS_HEADERS_MAX,
                          .max_body = CERT_MAX};
    if (!mr_ok(mr_http_get(&o, url, &status, out))) {
        mr_error_prefix("SNP VCEK lookup: fetching %s", url);
        return MR_FAILURE;
    }
    MR_ENSURE(status == 200, MR_ERR_IO, "SNP VCEK lookup: fetching %s: HTTP status %d", url,
              status);
    return MR_SUCCESS;
}

static MR_RESULT kds_vcek(const mr_snp_source *s, const mr_snp_report *r, mr_buf *out)
{
    char hex[129], url[PATH_LEN];
    MR_GUARD(chip_hex(r, hex));
    int n = snprintf(url, sizeof(url), "%s/vcek/v1/%s/%s?blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u",
                     s->vcek, mr_snp_product_name(report_product(s, r)), hex,
                     r->reported_tcb.bl, r->reported_tcb.tee, r->reported_tcb.snp,
                     r->reported_tcb.ucode);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(url), MR_ERR_USAGE, "SNP VCEK lookup: URL too long");
    return kds_get(url, out);
}

static vcek_entry *cache_find(mr_snp_source *s, const mr_snp_report *r)
{
    for (size_t i = 0; i < CACHE_MAX; i++) {
        vcek_entry *e = &s->cache[i];
        if (e->used && e->tcb == r->reported_tcb.raw &&
            memcmp(e->chip_id, r->chip_id, sizeof(e->chip_id)) == 0)
            return e;
    }
    return NULL;
}

/* A copy of the cached VCEK, else one fetched (outside the lock); *fetched says which. */
static MR_RESULT lookup_vcek(mr_snp_source *s, const mr_snp_report *r, mr_buf *out, bool *fetched)
{
    *fetched = false;
    MR_ENSURE(s != NULL && s->vcek != NULL, MR_ERR_ATTESTATION,
              "SNP certificates: the evidence carries no VCEK and no VCEK source is configured "
              "(EDG_ATTESTATION_SNP_VCEK)");
    MR_ENSURE(!r->mask_chip_key, MR_ERR_ATTESTATION,
              "SNP VCEK lookup: the report masks its CHIP_ID; its VCEK must travel in the "
              "evidence");
    pthread_mutex_lock(&s->lock);
    vcek_entry *e = cache_find(s, r);
    mr_result got = e != NULL ? mr_buf_set(out, e->der.data, e->der.len) : MR_SUCCESS;
    pthread_mutex_unlock(&s->lock);
    MR_GUARD(got);
    if (e != NULL)
        return MR_SUCCESS;
    MR_GUARD(s->is_url ? kds_vcek(s, r, out) : dir_vcek(s, r, out));
    *fetched = true;
    return MR_SUCCESS;
}

/* Caches a fetched VCEK once a report verified with it: a certificate that does not verify
 * (a wrong file, a bad answer) is fetched again next time instead of being kept. */
static MR_RESULT cache_put(mr_snp_source *s, const mr_snp_report *r, const mr_buf *der)
{
    mr_result res = MR_FAILURE;
    pthread_mutex_lock(&s->lock);
    vcek_entry *e = cache_find(s, r);
    if (e == NULL) {
        e = &s->cache[s->next];
        s->next = (s->next + 1) % CACHE_MAX;
        e->used = false;
        MR_GUARD_OUT(mr_buf_set(&e->der, der->data, der->len));
        memcpy(e->chip_id, r->chip_id, sizeof(e->chip_id));
        e->tcb = r->reported_tcb.raw;
        e->used = true;
    }
    res = MR_SUCCESS;
out:
    pthread_mutex_unlock(&s->lock);
    return res;
}

/* The ASK/ARK chain of the source, when it has one for the product: the directory's
 * cert_chain.pem, or KDS's cert_chain with a test root. Empty otherwise. */
static MR_RESULT lookup_chain(mr_snp_source *s, const mr_snp_report *r, mr_buf *out)
{
    char where[PATH_LEN];
    bool found = false;
    if (s == NULL || s->vcek == NULL || (s->is_url && s->test_root.len == 0))
        return MR_SUCCESS;
    mr_snp_product p = report_product(s, r);
    pthread_mutex_lock(&s->lock);
    mr_result got = mr_buf_set(out, s->chain[p].data, s->chain[p].len);
    pthread_mutex_unlock(&s->lock);
    MR_GUARD(got);
    if (out->len > 0)
        return MR_SUCCESS;
    int n = s->is_url ? snprintf(where, sizeof(where), "%s/vcek/v1/%s/cert_chain", s->vcek,
                                 mr_snp_product_name(p))
                      : snprintf(where, sizeof(where), "%s/cert_chain.pem", s->vcek);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(where), MR_ERR_USAGE, "SNP VCEK lookup: path too long");
    if (s->is_url)
        MR_GUARD(kds_get(where, out));
    else
        MR_GUARD(read_optional(where, out, &found));
    pthread_mutex_lock(&s->lock);
    got = s->chain[p].len == 0 ? mr_buf_set(&s->chain[p], out->data, out->len) : MR_SUCCESS;
    pthread_mutex_unlock(&s->lock);
    return got;
}

/* ---- verification --------------------------------------------------------------------- */

MR_RESULT mr_snp_source_verify(mr_snp_source *s, mr_slice report, mr_slice aux, time_t when,
                               mr_snp_claims *out)
{
    mr_result res = MR_FAILURE;
    mr_snp_report r;
    mr_snp_cert_table tab;
    mr_buf vek, chain;
    memset(&tab, 0, sizeof(tab));
    mr_buf_init(&vek, CERT_MAX, 0);
    mr_buf_init(&chain, CERT_MAX, 0);
    MR_GUARD_OUT(mr_snp_report_parse(report.ptr, report.len, &r));
    if (aux.len > 0)
        MR_GUARD_OUT(mr_snp_cert_table_parse(aux, &tab));
    mr_snp_evidence ev = {.report = report, .chain = tab.ask, .chain2 = tab.ark};
    ev.vek = r.signing_key == MR_SNP_KEY_VLEK ? tab.vlek : tab.vcek;
    bool fetched = false;
    if (ev.vek.len == 0 && r.signing_key == MR_SNP_KEY_VCEK) {
        MR_GUARD_OUT(lookup_vcek(s, &r, &vek, &fetched));
        ev.vek = mr_buf_slice(&vek);
    }
    MR_ENSURE_OUT(ev.vek.len > 0 || r.signing_key == MR_SNP_KEY_NONE, MR_ERR_ATTESTATION,
                  "SNP certificates: the report is signed by a VLEK, but the evidence carries "
                  "none");
    if (ev.chain.len == 0) {
        MR_GUARD_OUT(lookup_chain(s, &r, &chain));
        ev.chain = mr_buf_slice(&chain);
    }
    mr_snp_verify_opts vo = {.time = when, .product = s != NULL ? s->product : MR_SNP_PRODUCT_ANY};
    if (s != NULL)
        vo.test_root = mr_buf_slice(&s->test_root);
    MR_GUARD_OUT(mr_snp_verify(&ev, &vo, out));
    if (fetched)
        MR_GUARD_OUT(cache_put(s, &r, &vek));
    res = MR_SUCCESS;
out:
    mr_buf_free(&vek);
    mr_buf_free(&chain);
    return res;
}
