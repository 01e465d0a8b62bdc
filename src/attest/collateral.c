/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP collateral: JSON parsing (collateral file shape, TCB Info v2/v3, Enclave Identity v2)
 * and the raw-span finder for signed JSON values. The checks of §2 steps 4-5 are
 * collateral_check.c.
 */
#include "attest/collateral_int.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "attest/ossl.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/log.h"

#define MAX_LEVELS 256
#define MAX_MODULE_IDS 32
#define COLLATERAL_MAX ((size_t)4 << 20)

/* ---------------------------------------------------------------------------------------- */
/* Raw JSON span finder                                                                       */

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* i points at '"'; returns the index after the closing quote, or 0 on error. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
    i++;
    while (i < len) {
        if (s[i] == '\\') {
            i += 2;
            continue;
        }
        if (s[i] == '"')
            return i + 1;
        i++;
    }
    return 0;
}

/* Returns the index after the value starting at i, or 0 on error. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    int depth = 0;

    if (i >= len)
        return 0;
    if (s[i] == '"')
        return skip_string(s, len, i);
    if (s[i] != '{' && s[i] != '[') {
        while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' &&
               s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            i++;
        return i;
    }
    while (i < len) {
        char ch = s[i];
        if (ch == '"') {
            i = skip_string(s, len, i);
            if (i == 0)
                return 0;
            continue;
        }
        if (ch == '{' || ch == '[') {
            if (++depth > 64)
                return 0;
        } else if (ch == '}' || ch == ']') {
            if (--depth == 0)
                return i + 1;
        }
        i++;
    }
    return 0;
}

MR_RESULT mr_json_raw_member(const char *json, size_t len, const char *key, mr_slice *out)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(json, len, 0);

    MR_ENSURE(i < len && json[i] == '{', MR_ERR_ATTESTATION, "collateral: not a JSON object");
    i = skip_ws(json, len, i + 1);
    while (i < len && json[i] != '}') {
        size_t kstart = i, kend = 0, vstart = 0, vend = 0;
        MR_ENSURE(json[i] == '"', MR_ERR_ATTESTATION, "collateral: malformed JSON");
        kend = skip_string(json, len, i);
        MR_ENSURE(kend != 0, MR_ERR_ATTESTATION, "collateral: malformed JSON");
        i = skip_ws(json, len, kend);
        MR_ENSURE(i < len && json[i] == ':', MR_ERR_ATTESTATION, "collateral: malformed JSON");
        vstart = skip_ws(json, len, i + 1);
        vend = skip_value(json, len, vstart);
        MR_ENSURE(vend != 0 && vend > vstart, MR_ERR_ATTESTATION, "collateral: malformed JSON");
        if (kend - kstart - 2 == klen && memcmp(json + kstart + 1, key, klen) == 0) {
            *out = MR_SLICE(json + vstart, vend - vstart);
            return MR_SUCCESS;
        }
        i = skip_ws(json, len, vend);
        if (i < len && json[i] == ',')
            i = skip_ws(json, len, i + 1);
    }
    MR_BAIL(MR_ERR_ATTESTATION, "collateral: member \"%s\" not found", key);
}

/* ---------------------------------------------------------------------------------------- */
/* JSON field helpers                                                                         */

static MR_RESULT get_str(json_t *obj, const char *key, const char **s, size_t *len)
{
    json_t *v = json_object_get(obj, key);
    MR_ENSURE(json_is_string(v), MR_ERR_ATTESTATION, "field \"%s\" missing or not a string", key);
    *s = json_string_value(v);
    *len = json_string_length(v);
    return MR_SUCCESS;
}

static MR_RESULT get_hex(json_t *obj, const char *key, uint8_t *out, size_t n)
{
    const char *s = NULL;
    size_t len = 0;
    MR_GUARD(get_str(obj, key, &s, &len));
    MR_ENSURE(len == 2 * n && mr_ok(mr_hex_decode_fixed(s, len, out, n)), MR_ERR_ATTESTATION,
              "field \"%s\" must be %zu hex characters", key, 2 * n);
    return MR_SUCCESS;
}

static MR_RESULT get_uint(json_t *obj, const char *key, long long max, long long *out)
{
    json_t *v = json_object_get(obj, key);
    MR_ENSURE(json_is_integer(v), MR_ERR_ATTESTATION, "field \"%s\" missing or not an integer",
              key);
    *out = json_integer_value(v);
    MR_ENSURE(*out >= 0 && *out <= max, MR_ERR_ATTESTATION, "field \"%s\" out of range", key);
    return MR_SUCCESS;
}

static MR_RESULT get_date(json_t *obj, const char *key, time_t *out)
{
    const char *s = NULL;
    size_t len = 0;
    MR_GUARD(get_str(obj, key, &s, &len));
    if (!mr_ok(mr_ossl_rfc3339(s, len, out))) {
        mr_error_prefix("field \"%s\"", key);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

static void levels_free(mr_dcap_level *lv, size_t n)
{
    if (lv == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        mr_free(lv[i].adv);
    mr_free(lv);
}

/* tcbDate, tcbStatus, advisoryIDs of one level. */
static MR_RESULT parse_level_common(json_t *o, mr_dcap_level *lv)
{
    const char *s = NULL;
    size_t len = 0;
    json_t *adv = json_object_get(o, "advisoryIDs");

    MR_GUARD(get_str(o, "tcbStatus", &s, &len));
    MR_ENSURE(mr_tcb_status_parse(s, len, &lv->status) && lv->status != MR_TCB_UNKNOWN &&
                  lv->status != MR_TCB_TD_RELAUNCH_ADVISED &&
                  lv->status != MR_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED,
              MR_ERR_ATTESTATION, "unknown tcbStatus");
    if (json_object_get(o, "tcbDate") != NULL)
        MR_GUARD(get_date(o, "tcbDate", &lv->date));
    if (adv == NULL || json_is_null(adv))
        return MR_SUCCESS;
    MR_ENSURE(json_is_array(adv) && json_array_size(adv) <= MR_ATTEST_MAX_ADVISORIES,
              MR_ERR_ATTESTATION, "advisoryIDs must be an array of at most %d strings",
              MR_ATTEST_MAX_ADVISORIES);
    if (json_array_size(adv) == 0)
        return MR_SUCCESS;
    lv->adv = mr_calloc(json_array_size(adv), MR_ATTEST_ADVISORY_MAX);
    MR_ENSURE_ALLOC(lv->adv);
    for (size_t i = 0; i < json_array_size(adv); i++) {
        json_t *a = json_array_get(adv, i);
        MR_ENSURE(json_is_string(a) && json_string_length(a) > 0 &&
                      json_string_length(a) < MR_ATTEST_ADVISORY_MAX &&
                      strlen(json_string_value(a)) == json_string_length(a),
                  MR_ERR_ATTESTATION, "invalid advisory ID");
        memcpy(lv->adv[i], json_string_value(a), json_string_length(a) + 1);
        lv->adv_count++;
    }
    return MR_SUCCESS;
}

static MR_RESULT parse_isv_levels(json_t *arr, mr_dcap_level **out, size_t *count)
{
    mr_dcap_level *lv = NULL;
    size_t n = 0;
    mr_result res = MR_FAILURE;

    MR_ENSURE(json_is_array(arr) && json_array_size(arr) > 0 &&
                  json_array_size(arr) <= MAX_LEVELS,
              MR_ERR_ATTESTATION, "tcbLevels missing or empty");
    n = json_array_size(arr);
    lv = mr_calloc(n, sizeof(*lv));
    MR_ENSURE_ALLOC(lv);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        json_t *tcb = json_object_get(o, "tcb");
        long long v = 0;
        MR_ENSURE_OUT(json_is_object(tcb), MR_ERR_ATTESTATION, "tcbLevels[%zu].tcb missing", i);
        MR_GUARD_OUT(get_uint(tcb, "isvsvn", 0xffff, &v));
        lv[i].isvsvn = (uint16_t)v;
        MR_GUARD_OUT(parse_level_common(o, &lv[i]));
    }
    /* descending isvsvn, stable */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && lv[j - 1].isvsvn < lv[j].isvsvn; j--) {
            mr_dcap_level t = lv[j];
            lv[j] = lv[j - 1];
            lv[j - 1] = t;
        }
    }
    *out = lv;
    *count = n;
    lv = NULL;
    res = MR_SUCCESS;
out:
    levels_free(lv, n);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* TCB Info                                                                                   */

static MR_RESULT parse_components(json_t *arr, uint8_t out[16], const char *what)
{
    MR_ENSURE(json_is_array(arr) && json_array_size(arr) == 16, MR_ERR_ATTESTATION,
              "%s must have 16 entries", what);
    for (size_t i = 0; i < 16; i++) {
        long long v = 0;
        MR_GUARD(get_uint(json_array_get(arr, i), "svn", 255, &v));
        out[i] = (uint8_t)v;
    }
    return MR_SUCCESS;
}

static int level_cmp(const mr_dcap_level *a, const mr_dcap_level *b)
{
    int c = memcmp(a->sgx, b->sgx, 16);
    if (c != 0)
        return c;
    if (a->pcesvn != b->pcesvn)
        return a->pcesvn < b->pcesvn ? -1 : 1;
    return memcmp(a->tdx, b->tdx, 16);
}

static MR_RESULT parse_module(json_t *o, mr_dcap_module_id *m, bool with_levels)
{
    MR_ENSURE(json_is_object(o), MR_ERR_ATTESTATION, "TDX module identity is not an object");
    MR_GUARD(get_hex(o, "mrsigner", m->mrsigner, 48));
    MR_GUARD(get_hex(o, "attributes", m->attributes, 8));
    MR_GUARD(get_hex(o, "attributesMask", m->attributes_mask, 8));
    if (with_levels) {
        const char *s = NULL;
        size_t len = 0;
        MR_GUARD(get_str(o, "id", &s, &len));
        MR_ENSURE(len > 0 && len < sizeof(m->id) && strlen(s) == len, MR_ERR_ATTESTATION,
                  "invalid TDX module identity id");
        memcpy(m->id, s, len + 1);
        MR_GUARD(parse_isv_levels(json_object_get(o, "tcbLevels"), &m->levels, &m->level_count));
    }
    return MR_SUCCESS;
}

static void tcb_info_clear(mr_dcap_tcb_info *t)
{
    levels_free(t->levels, t->level_count);
    for (size_t i = 0; i < t->module_id_count; i++)
        levels_free(t->module_ids[i].levels, t->module_ids[i].level_count);
    mr_free(t->module_ids);
    memset(t, 0, sizeof(*t));
}

static MR_RESULT parse_tcb_level(json_t *o, const mr_dcap_tcb_info *t, mr_dcap_level *lv)
{
    json_t *tcb = json_object_get(o, "tcb");
    long long v = 0;

    MR_ENSURE(json_is_object(tcb), MR_ERR_ATTESTATION, "tcbLevels[].tcb missing");
    if (t->version == 2) {
        for (int c = 0; c < 16; c++) {
            char key[24];
            snprintf(key, sizeof(key), "sgxtcbcomp%02dsvn", c + 1);
            MR_GUARD(get_uint(tcb, key, 255, &v));
            lv->sgx[c] = (uint8_t)v;
        }
    } else {
        MR_GUARD(parse_components(json_object_get(tcb, "sgxtcbcomponents"), lv->sgx,
                                  "sgxtcbcomponents"));
        if (t->tdx) {
            MR_GUARD(parse_components(json_object_get(tcb, "tdxtcbcomponents"), lv->tdx,
                                      "tdxtcbcomponents"));
            lv->has_tdx = true;
        }
    }
    MR_GUARD(get_uint(tcb, "pcesvn", 0xffff, &v));
    lv->pcesvn = (uint16_t)v;
    return parse_level_common(o, lv);
}

/* version, id, dates, FMSPC, PCE-ID, evaluation data number and TCB type */
static MR_RESULT parse_tcb_header(json_t *root, mr_dcap_tcb_info *t)
{
    long long v = 0;

    MR_GUARD(get_uint(root, "version", 100, &v));
    t->version = (int)v;
    MR_ENSURE(t->version == 2 || t->version == 3, MR_ERR_ATTESTATION,
              "TCB Info version %d not supported", t->version);
    if (t->version == 3) {
        const char *s = NULL;
        size_t n = 0;
        MR_GUARD(get_str(root, "id", &s, &n));
        if (n == 3 && memcmp(s, "TDX", 3) == 0)
            t->tdx = true;
        else
            MR_ENSURE(n == 3 && memcmp(s, "SGX", 3) == 0, MR_ERR_ATTESTATION,
                      "TCB Info id must be SGX or TDX");
    } else {
        MR_ENSURE(json_object_get(root, "id") == NULL, MR_ERR_ATTESTATION,
                  "TCB Info v2 must not carry an id");
    }
    MR_GUARD(get_date(root, "issueDate", &t->issue_date));
    MR_GUARD(get_date(root, "nextUpdate", &t->next_update));
    MR_GUARD(get_hex(root, "fmspc", t->fmspc, 6));
    MR_GUARD(get_hex(root, "pceId", t->pceid, 2));
    MR_GUARD(get_uint(root, "tcbEvaluationDataNumber", 0xffffffffLL, &v));
    t->eval_num = (uint32_t)v;
    if (json_object_get(root, "tcbType") != NULL) {
        MR_GUARD(get_uint(root, "tcbType", 100, &v));
        MR_ENSURE(v == 0, MR_ERR_ATTESTATION, "TCB Info tcbType %lld not supported", v);
    }
    return MR_SUCCESS;
}

/* tcbLevels, sorted in descending order as Intel's QVL keeps them */
static MR_RESULT parse_tcb_levels(json_t *root, mr_dcap_tcb_info *t)
{
    json_t *levels = json_object_get(root, "tcbLevels");

    MR_ENSURE(json_is_array(levels) && json_array_size(levels) > 0 &&
                  json_array_size(levels) <= MAX_LEVELS,
              MR_ERR_ATTESTATION, "TCB Info tcbLevels missing or empty");
    t->levels = mr_calloc(json_array_size(levels), sizeof(*t->levels));
    MR_ENSURE_ALLOC(t->levels);
    for (size_t i = 0; i < json_array_size(levels); i++) {
        t->level_count++; /* counted first so that a half-parsed level is freed */
        MR_GUARD(parse_tcb_level(json_array_get(levels, i), t, &t->levels[i]));
    }
    /* stable insertion sort */
    for (size_t i = 1; i < t->level_count; i++) {
        for (size_t j = i; j > 0 && level_cmp(&t->levels[j - 1], &t->levels[j]) < 0; j--) {
            mr_dcap_level tmp = t->levels[j];
            t->levels[j] = t->levels[j - 1];
            t->levels[j - 1] = tmp;
        }
    }
    return MR_SUCCESS;
}

/* TDX only: tdxModule and tdxModuleIdentities */
static MR_RESULT parse_tdx_modules(json_t *root, mr_dcap_tcb_info *t)
{
    json_t *mod = json_object_get(root, "tdxModule");
    json_t *ids = json_object_get(root, "tdxModuleIdentities");

    if (!t->tdx)
        return MR_SUCCESS;
    if (mod != NULL) {
        MR_GUARD(parse_module(mod, &t->module, false));
        t->has_module = true;
    }
    if (ids == NULL)
        return MR_SUCCESS;
    MR_ENSURE(json_is_array(ids) && json_array_size(ids) <= MAX_MODULE_IDS, MR_ERR_ATTESTATION,
              "tdxModuleIdentities must be an array");
    if (json_array_size(ids) > 0) {
        t->module_ids = mr_calloc(json_array_size(ids), sizeof(*t->module_ids));
        MR_ENSURE_ALLOC(t->module_ids);
    }
    for (size_t i = 0; i < json_array_size(ids); i++) {
        t->module_id_count++;
        MR_GUARD(parse_module(json_array_get(ids, i), &t->module_ids[i], true));
    }
    return MR_SUCCESS;
}

static MR_RESULT parse_tcb_info(const char *text, size_t len, mr_dcap_tcb_info *t)
{
    mr_result res = MR_FAILURE;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

    memset(t, 0, sizeof(*t));
    MR_ENSURE_OUT(root != NULL, MR_ERR_ATTESTATION, "TCB Info is not valid JSON (line %d)",
                  jerr.line);
    MR_ENSURE_OUT(json_is_object(root), MR_ERR_ATTESTATION, "TCB Info is not a JSON object");
    MR_GUARD_OUT(parse_tcb_header(root, t));
    MR_GUARD_OUT(parse_tcb_levels(root, t));
    MR_GUARD_OUT(parse_tdx_modules(root, t));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        tcb_info_clear(t);
    json_decref(root);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* QE Identity                                                                                */

static void qe_identity_clear(mr_dcap_qe_identity *q)
{
    levels_free(q->levels, q->level_count);
    memset(q, 0, sizeof(*q));
}

static MR_RESULT parse_qe_identity(const char *text, size_t len, mr_dcap_qe_identity *q)
{
    mr_result res = MR_FAILURE;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *s = NULL;
    size_t n = 0;
    long long v = 0;

    memset(q, 0, sizeof(*q));
    MR_ENSURE_OUT(json_is_object(root), MR_ERR_ATTESTATION,
                  "QE Identity is not a valid JSON object");
    MR_GUARD_OUT(get_uint(root, "version", 100, &v));
    MR_ENSURE_OUT(v == 2, MR_ERR_ATTESTATION, "QE Identity version %lld not supported", v);
    MR_GUARD_OUT(get_str(root, "id", &s, &n));
    MR_ENSURE_OUT(n > 0 && n < sizeof(q->id) && strlen(s) == n, MR_ERR_ATTESTATION,
                  "invalid QE Identity id");
    memcpy(q->id, s, n + 1);
    MR_GUARD_OUT(get_date(root, "issueDate", &q->issue_date));
    MR_GUARD_OUT(get_date(root, "nextUpdate", &q->next_update));
    MR_GUARD_OUT(get_uint(root, "tcbEvaluationDataNumber", 0xffffffffLL, &v));
    q->eval_num = (uint32_t)v;
    MR_GUARD_OUT(get_hex(root, "miscselect", q->miscselect, 4));
    MR_GUARD_OUT(get_hex(root, "miscselectMask", q->miscselect_mask, 4));
    MR_GUARD_OUT(get_hex(root, "attributes", q->attributes, 16));
    MR_GUARD_OUT(get_hex(root, "attributesMask", q->attributes_mask, 16));
    MR_GUARD_OUT(get_hex(root, "mrsigner", q->mrsigner, 32));
    MR_GUARD_OUT(get_uint(root, "isvprodid", 0xffff, &v));
    q->isvprodid = (uint16_t)v;
    MR_GUARD_OUT(parse_isv_levels(json_object_get(root, "tcbLevels"), &q->levels,
                                  &q->level_count));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        qe_identity_clear(q);
    json_decref(root);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* Collateral object                                                                          */

void mr_dcap_collateral_free(mr_dcap_collateral *c)
{
    if (c == NULL)
        return;
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    mr_buf_free(&c->tcb_info_text);
    mr_buf_free(&c->qe_identity_text);
    sk_X509_pop_free(c->tcb_chain, X509_free);
    sk_X509_pop_free(c->qe_chain, X509_free);
    sk_X509_pop_free(c->pck_crl_chain, X509_free);
    X509_CRL_free(c->root_crl);
    X509_CRL_free(c->pck_crl);
    X509_free(c->pck_crl_ok_issuer);
    tcb_info_clear(&c->tcb);
    qe_identity_clear(&c->qe);
    pthread_mutex_destroy(&c->lock);
    mr_free(c);
}

mr_dcap_collateral *mr_dcap_collateral_ref(const mr_dcap_collateral *cc)
{
    /* the count (and the internal cache) are the only mutable parts */
    union {
        const mr_dcap_collateral *in;
        mr_dcap_collateral *out;
    } u = {.in = cc};
    mr_dcap_collateral *c = u.out;
    if (c != NULL)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

/* The signed text of "tcb_info"/"qe_identity": a JSON string holding the exact bytes, or
 * (tolerated) the object itself, whose raw span is then taken from the file text. */
static MR_RESULT signed_text(json_t *root, const char *json, size_t len, const char *key,
                             mr_buf *out)
{
    json_t *v = json_object_get(root, key);
    mr_slice raw;

    if (json_is_string(v))
        return mr_buf_set(out, json_string_value(v), json_string_length(v));
    MR_ENSURE(json_is_object(v), MR_ERR_ATTESTATION, "collateral: \"%s\" missing", key);
    MR_GUARD(mr_json_raw_member(json, len, key, &raw));
    return mr_buf_set(out, raw.ptr, raw.len);
}

static MR_RESULT sig_hex(json_t *root, const char *key, uint8_t out[64])
{
    if (!mr_ok(get_hex(root, key, out, 64))) {
        mr_error_prefix("collateral");
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

static MR_RESULT chain_field(json_t *root, const char *key, bool required, STACK_OF(X509) **out)
{
    json_t *v = json_object_get(root, key);

    if (!required && (v == NULL || json_is_null(v) ||
                      (json_is_string(v) && json_string_length(v) == 0))) {
        *out = sk_X509_new_null();
        MR_ENSURE_ALLOC(*out);
        return MR_SUCCESS;
    }
    MR_ENSURE(json_is_string(v), MR_ERR_ATTESTATION, "collateral: \"%s\" missing", key);
    if (!mr_ok(mr_ossl_pem_certs((const uint8_t *)json_string_value(v), json_string_length(v),
                                 out))) {
        mr_error_prefix("collateral: %s", key);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

static MR_RESULT crl_field(json_t *root, const char *key, X509_CRL **out, time_t *this_upd,
                           time_t *next_upd)
{
    mr_result res = MR_FAILURE;
    json_t *v = json_object_get(root, key);
    mr_buf der;

    mr_buf_init(&der, (size_t)16 << 20, 0);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        res = MR_SUCCESS;
        goto out;
    }
    MR_ENSURE_OUT(json_is_string(v), MR_ERR_ATTESTATION, "collateral: \"%s\" must be hex", key);
    if (!mr_ok(mr_hex_decode_buf(json_string_value(v), json_string_length(v), &der))) {
        /* bad hex is the collateral's fault; out of memory stays what it is */
        MR_ENSURE_OUT(mr_error_get()->cat == MR_ERR_INTERNAL, MR_ERR_ATTESTATION,
                      "collateral: \"%s\" must be hex", key);
        goto out;
    }
    if (!mr_ok(mr_ossl_der_crl(der.data, der.len, out))) {
        mr_error_prefix("collateral: %s", key);
        goto out;
    }
    MR_GUARD_OUT(mr_ossl_asn1_time(X509_CRL_get0_lastUpdate(*out), this_upd));
    MR_ENSURE_OUT(X509_CRL_get0_nextUpdate(*out) != NULL, MR_ERR_ATTESTATION,
                  "collateral: %s has no nextUpdate", key);
    MR_GUARD_OUT(mr_ossl_asn1_time(X509_CRL_get0_nextUpdate(*out), next_upd));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res)) {
        X509_CRL_free(*out);
        *out = NULL;
    }
    mr_buf_free(&der);
    return res;
}

MR_RESULT mr_dcap_collateral_parse_json(const char *json, size_t len, mr_dcap_collateral **out)
{
    mr_result res = MR_FAILURE;
    mr_dcap_collateral *c = NULL;
    json_error_t jerr;
    json_t *root = NULL;

    MR_ENSURE(json != NULL && len <= COLLATERAL_MAX, MR_ERR_ATTESTATION,
              "collateral: too large");
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    MR_ENSURE_OUT(json_is_object(root), MR_ERR_ATTESTATION,
                  "collateral: not a JSON object (line %d: %s)", jerr.line, jerr.text);
    c = mr_calloc(1, sizeof(*c));
    MR_ENSURE_ALLOC_OUT(c);
    atomic_init(&c->refs, 1);
    mr_buf_init(&c->tcb_info_text, COLLATERAL_MAX, 0);
    mr_buf_init(&c->qe_identity_text, COLLATERAL_MAX, 0);
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        mr_free(c);
        c = NULL;
        MR_BAIL_OUT(MR_ERR_INTERNAL, "mutex init failed");
    }

    MR_GUARD_OUT(signed_text(root, json, len, "tcb_info", &c->tcb_info_text));
    MR_GUARD_OUT(signed_text(root, json, len, "qe_identity", &c->qe_identity_text));
    MR_GUARD_OUT(sig_hex(root, "tcb_info_signature", c->tcb_info_sig));
    MR_GUARD_OUT(sig_hex(root, "qe_identity_signature", c->qe_identity_sig));
    MR_GUARD_OUT(chain_field(root, "tcb_info_issuer_chain", true, &c->tcb_chain));
    MR_GUARD_OUT(chain_field(root, "qe_identity_issuer_chain", true, &c->qe_chain));
    MR_GUARD_OUT(chain_field(root, "pck_crl_issuer_chain", false, &c->pck_crl_chain));
    MR_GUARD_OUT(crl_field(root, "root_ca_crl", &c->root_crl, &c->root_crl_this,
                           &c->root_crl_next));
    MR_GUARD_OUT(crl_field(root, "pck_crl", &c->pck_crl, &c->pck_crl_this, &c->pck_crl_next));
    if (c->root_crl == NULL || c->pck_crl == NULL)
        MR_LOG_WARN("attestation collateral lacks a CRL; revocation is not checked for it",
                    MR_F_BOOL("rootCaCrl", c->root_crl != NULL),
                    MR_F_BOOL("pckCrl", c->pck_crl != NULL));
    if (!mr_ok(parse_tcb_info((const char *)c->tcb_info_text.data, c->tcb_info_text.len,
                              &c->tcb))) {
        mr_error_prefix("collateral: TCB Info");
        goto out;
    }
    if (!mr_ok(parse_qe_identity((const char *)c->qe_identity_text.data,
                                 c->qe_identity_text.len, &c->qe))) {
        mr_error_prefix("collateral: QE Identity");
        goto out;
    }
    *out = c;
    c = NULL;
    res = MR_SUCCESS;
out:
    mr_dcap_collateral_free(c);
    json_decref(root);
    return res;
}

MR_RESULT mr_dcap_collateral_load_file(const char *path, mr_dcap_collateral **out)
{
    mr_result res = MR_FAILURE;
    FILE *f = fopen(path, "rb");
    mr_buf b;
    uint8_t chunk[8192];
    size_t n = 0;

    mr_buf_init(&b, COLLATERAL_MAX, 0);
    MR_ENSURE(f != NULL, MR_ERR_IO, "collateral: cannot open %s", path);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        MR_GUARD_OUT(mr_buf_append(&b, chunk, n));
    MR_ENSURE_OUT(!ferror(f), MR_ERR_IO, "collateral: cannot read %s", path);
    res = mr_dcap_collateral_parse_json((const char *)b.data, b.len, out);
    if (!mr_ok(res))
        mr_error_prefix("%s", path);
out:
    fclose(f);
    mr_buf_free(&b);
    return res;
}
