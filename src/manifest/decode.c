/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maps the duplicate-preserving JSON tree onto the manifest model with the rules of Go's
 * encoding/json (spec §0.2). Two kinds of failure exist, as in Go:
 *  - type mismatches are remembered (the first one wins) and decoding goes on;
 *  - errors of types with their own UnmarshalJSON (File, Certificate, time, IP) stop at once.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/text.h"
#include "manifest/manifest_int.h"

#define STACK_MAX 32

typedef struct dctx {
    bool has_saved;
    char saved[MR_ERR_MSG_MAX];
    const char *stack[STACK_MAX];
    size_t depth;
    const char *sname; /* Go name of the struct whose field is being decoded */
} dctx;

/* ---- errors ---- */

static void save_msg(dctx *c, const char *msg)
{
    if (c->has_saved)
        return;
    c->has_saved = true;
    snprintf(c->saved, sizeof(c->saved), "%s", msg);
}

static const char *kind_word(mr_mj_node *n)
{
    switch (n->kind) {
    case MR_MJ_STRING: return "string";
    case MR_MJ_NUMBER: return "number";
    case MR_MJ_BOOL: return "bool";
    case MR_MJ_ARRAY: return "array";
    case MR_MJ_OBJECT: return "object";
    default: return "null";
    }
}

/* Go's UnmarshalTypeError text. with_literal: numbers into numeric kinds show the literal. */
static void type_error(dctx *c, mr_mj_node *n, const char *gotype, bool with_literal)
{
    if (c->has_saved)
        return;
    char value[160];
    if (n->kind == MR_MJ_NUMBER && with_literal)
        snprintf(value, sizeof(value), "number %.120s", n->str);
    else
        snprintf(value, sizeof(value), "%s", kind_word(n));
    char path[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < c->depth && used < sizeof(path); i++) {
        int w = snprintf(path + used, sizeof(path) - used, "%s%s", i ? "." : "", c->stack[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    char msg[MR_ERR_MSG_MAX];
    if (c->depth > 0 || c->sname != NULL)
        snprintf(msg, sizeof(msg), "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
                 value, c->sname ? c->sname : "", path, gotype);
    else
        snprintf(msg, sizeof(msg), "json: cannot unmarshal %s into Go value of type %s", value,
                 gotype);
    save_msg(c, msg);
}

/* ---- primitives ---- */

static mr_result mstr_set(mr_mstr *dst, const char *s, size_t len)
{
    char *p = mr_alloc(len + 1);
    MR_ENSURE_ALLOC(p);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    mr_free(dst->ptr);
    dst->ptr = p;
    dst->len = len;
    return MR_SUCCESS;
}

static mr_result dec_bool(dctx *c, mr_mj_node *n, bool *out)
{
    if (n->kind == MR_MJ_BOOL)
        *out = n->boolean;
    else if (n->kind != MR_MJ_NULL)
        type_error(c, n, "bool", false);
    return MR_SUCCESS;
}

/* The tree is private to one decode and every node is mapped at most once, so a string can
 * move from the node into the model instead of being copied. */
static void mstr_take(mr_mstr *dst, char **src, size_t len)
{
    mr_free(dst->ptr);
    dst->ptr = *src;
    dst->len = len;
    *src = NULL;
}

static mr_result dec_string(dctx *c, mr_mj_node *n, mr_mstr *out)
{
    if (n->kind == MR_MJ_STRING) {
        if (n->str != NULL) {
            mstr_take(out, &n->str, n->len);
            return MR_SUCCESS;
        }
        return mstr_set(out, "", 0);
    }
    if (n->kind != MR_MJ_NULL)
        type_error(c, n, "string", false);
    return MR_SUCCESS;
}

/* strconv.ParseUint(s, 10, 64) then the type's range. */
static bool parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_int(const char *s, size_t len, int64_t *out)
{
    bool neg = len > 0 && s[0] == '-';
    uint64_t v;
    if (!parse_uint(s + (neg ? 1 : 0), len - (neg ? 1 : 0), neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX,
                    &v))
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static mr_result dec_uint(dctx *c, mr_mj_node *n, uint64_t max, const char *gotype,
                          uint64_t *out, bool *has)
{
    if (n->kind == MR_MJ_NULL) {
        if (has)
            *has = false;
        return MR_SUCCESS;
    }
    if (has)
        *has = true; /* Go allocates the pointer before storing into it */
    uint64_t v;
    if (n->kind != MR_MJ_NUMBER) {
        type_error(c, n, gotype, false);
    } else if (!parse_uint(n->str, n->len, max, &v)) {
        type_error(c, n, gotype, true);
    } else {
        *out = v;
    }
    return MR_SUCCESS;
}

static mr_result dec_int(dctx *c, mr_mj_node *n, const char *gotype, int64_t *out)
{
    int64_t v;
    if (n->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    if (n->kind != MR_MJ_NUMBER)
        type_error(c, n, gotype, false);
    else if (!parse_int(n->str, n->len, &v))
        type_error(c, n, gotype, true);
    else
        *out = v;
    return MR_SUCCESS;
}

/* []byte: padded base64 string (CR/LF skipped), or an array of uint8 numbers. */
static mr_result dec_bytes(dctx *c, mr_mj_node *n, const char *gotype, mr_mbytes *out)
{
    mr_result res = MR_FAILURE;
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    if (n->kind == MR_MJ_NULL) {
        mr_free(out->ptr);
        memset(out, 0, sizeof(*out));
        return MR_SUCCESS;
    }
    if (n->kind == MR_MJ_STRING) {
        if (!mr_ok(mr_b64_decode_buf(n->str, n->len, MR_B64_STD, MR_B64_IGNORE_NEWLINES, &b))) {
            if (mr_error_get()->cat == MR_ERR_INTERNAL)
                goto out;
            save_msg(c, mr_error_get()->msg);
            mr_error_clear();
            res = MR_SUCCESS;
            goto out;
        }
    } else if (n->kind == MR_MJ_ARRAY) {
        for (size_t i = 0; i < n->nkids; i++) {
            uint64_t v = i < out->len ? out->ptr[i] : 0; /* null keeps the old byte */
            MR_GUARD_OUT(dec_uint(c, &n->kids[i], 255, "uint8", &v, NULL));
            MR_GUARD_OUT(mr_buf_append_u8(&b, (uint8_t)v));
        }
    } else {
        type_error(c, n, gotype ? gotype : "[]uint8", false);
        res = MR_SUCCESS;
        goto out;
    }
    mr_free(out->ptr);
    out->len = 0;
    out->ptr = mr_buf_steal(&b, &out->len);
    out->present = true;
    res = MR_SUCCESS;
out:
    mr_buf_free(&b);
    return res;
}

/* Go decodes a JSON array into an existing slice element by element (so a repeated field
 * merges into the elements it already has), then truncates; `[]` gives a new empty slice. */
static mr_result grow_vec(void **items, size_t *count, size_t want, size_t esz)
{
    if (want <= *count)
        return MR_SUCCESS;
    unsigned char *g = mr_realloc(*items, want * esz);
    MR_ENSURE_ALLOC(g);
    memset(g + *count * esz, 0, (want - *count) * esz);
    *items = g;
    *count = want;
    return MR_SUCCESS;
}

static mr_result dec_str_list(dctx *c, mr_mj_node *n, mr_mstr_list *out)
{
    if (n->kind == MR_MJ_NULL) {
        mr_manifest_mstr_list_free(out);
        return MR_SUCCESS;
    }
    if (n->kind != MR_MJ_ARRAY) {
        type_error(c, n, "[]string", false);
        return MR_SUCCESS;
    }
    if (n->nkids == 0)
        mr_manifest_mstr_list_free(out);
    void *items = out->items;
    MR_GUARD(grow_vec(&items, &out->count, n->nkids, sizeof(mr_mstr)));
    out->items = items;
    out->present = true;
    for (size_t i = 0; i < n->nkids; i++)
        MR_GUARD(dec_string(c, &n->kids[i], &out->items[i]));
    for (size_t i = n->nkids; i < out->count; i++)
        mr_manifest_mstr_free(&out->items[i]);
    out->count = n->nkids;
    return MR_SUCCESS;
}

static mr_result dec_int_list(dctx *c, mr_mj_node *n, const char *list_type,
                              const char *elem_type, mr_mint_list *out)
{
    if (n->kind == MR_MJ_NULL || (n->kind == MR_MJ_ARRAY && n->nkids == 0)) {
        mr_free(out->items);
        memset(out, 0, sizeof(*out));
        out->present = n->kind == MR_MJ_ARRAY;
        return MR_SUCCESS;
    }
    if (n->kind != MR_MJ_ARRAY) {
        type_error(c, n, list_type, false);
        return MR_SUCCESS;
    }
    void *items = out->items;
    MR_GUARD(grow_vec(&items, &out->count, n->nkids, sizeof(int64_t)));
    out->items = items;
    out->present = true;
    for (size_t i = 0; i < n->nkids; i++)
        MR_IGNORE(dec_int(c, &n->kids[i], elem_type, &out->items[i])); /* cannot fail */
    out->count = n->nkids;
    return MR_SUCCESS;
}

static void oids_clear(mr_moid_list *l, size_t from)
{
    for (size_t i = from; i < l->count; i++) {
        mr_free(l->items[i].items);
        memset(&l->items[i], 0, sizeof(l->items[i]));
    }
}

static mr_result dec_oid_list(dctx *c, mr_mj_node *n, mr_moid_list *out)
{
    if (n->kind == MR_MJ_NULL || (n->kind == MR_MJ_ARRAY && n->nkids == 0)) {
        oids_clear(out, 0);
        mr_free(out->items);
        memset(out, 0, sizeof(*out));
        out->present = n->kind == MR_MJ_ARRAY;
        return MR_SUCCESS;
    }
    if (n->kind != MR_MJ_ARRAY) {
        type_error(c, n, "[]asn1.ObjectIdentifier", false);
        return MR_SUCCESS;
    }
    void *items = out->items;
    MR_GUARD(grow_vec(&items, &out->count, n->nkids, sizeof(mr_mint_list)));
    out->items = items;
    out->present = true;
    for (size_t i = 0; i < n->nkids; i++)
        MR_GUARD(dec_int_list(c, &n->kids[i], "asn1.ObjectIdentifier", "int", &out->items[i]));
    oids_clear(out, n->nkids);
    out->count = n->nkids;
    return MR_SUCCESS;
}

/* ---- structs, maps, slices ---- */

typedef mr_result (*field_fn)(dctx *c, mr_mj_node *v, void *obj);

typedef enum fkind {
    F_BOOL,
    F_STR,
    F_UINT,   /* uint / uint64 value */
    F_OPT_U64,
    F_OPT_UINT,
    F_OPT_U16,
    F_INT,
    F_BYTES,
    F_STRLIST,
    F_INTLIST,
    F_OIDLIST,
    F_CUSTOM,
    /* Go fields we do not keep, decoded only so that type errors match Go's */
    F_IGN_INT,
    F_IGN_BOOL,
    F_IGN_BYTES,
    F_IGN_OIDS,
} fkind;

typedef struct field {
    const char *name;
    fkind kind;
    size_t off;
    size_t has_off; /* F_OPT_*: offset of the bool */
    const char *gotype;
    field_fn fn;
} field;

#define FLD(T, jname, k, member, gt) {jname, k, offsetof(T, member), 0, gt, NULL}
#define OPT(T, jname, k, member, hasm, gt)                                                     \
    {jname, k, offsetof(T, member), offsetof(T, hasm), gt, NULL}
#define CUS(jname, f) {jname, F_CUSTOM, 0, 0, NULL, f}

static void *at(void *obj, size_t off) { return (unsigned char *)obj + off; }

static mr_result dec_field(dctx *c, const field *f, mr_mj_node *v, void *obj)
{
    switch (f->kind) {
    case F_BOOL: return dec_bool(c, v, at(obj, f->off));
    case F_STR: return dec_string(c, v, at(obj, f->off));
    case F_UINT: return dec_uint(c, v, UINT64_MAX, f->gotype, at(obj, f->off), NULL);
    case F_OPT_U64:
    case F_OPT_UINT:
        return dec_uint(c, v, UINT64_MAX, f->gotype, at(obj, f->off), at(obj, f->has_off));
    case F_OPT_U16: {
        uint64_t tmp = *(uint16_t *)at(obj, f->off);
        MR_GUARD(dec_uint(c, v, UINT16_MAX, f->gotype, &tmp, at(obj, f->has_off)));
        *(uint16_t *)at(obj, f->off) = (uint16_t)tmp;
        return MR_SUCCESS;
    }
    case F_INT: return dec_int(c, v, f->gotype, at(obj, f->off));
    case F_BYTES: return dec_bytes(c, v, f->gotype, at(obj, f->off));
    case F_STRLIST: return dec_str_list(c, v, at(obj, f->off));
    case F_INTLIST: /* "[]T" has elements of type T; asn1.ObjectIdentifier has int */
        return dec_int_list(c, v, f->gotype, strncmp(f->gotype, "[]", 2) == 0 ? f->gotype + 2 : "int",
                            at(obj, f->off));
    case F_OIDLIST: return dec_oid_list(c, v, at(obj, f->off));
    case F_CUSTOM: return f->fn(c, v, obj);
    case F_IGN_INT: {
        int64_t tmp = 0;
        return dec_int(c, v, f->gotype, &tmp);
    }
    case F_IGN_BOOL: {
        bool tmp = false;
        return dec_bool(c, v, &tmp);
    }
    case F_IGN_BYTES: {
        mr_mbytes tmp = {0};
        mr_result r = dec_bytes(c, v, f->gotype, &tmp);
        mr_free(tmp.ptr);
        return r;
    }
    case F_IGN_OIDS: {
        mr_moid_list tmp = {0};
        mr_result r = dec_oid_list(c, v, &tmp);
        for (size_t i = 0; i < tmp.count; i++)
            mr_free(tmp.items[i].items);
        mr_free(tmp.items);
        return r;
    }
    }
    return MR_SUCCESS;
}

static bool key_matches(const mr_mstr *key, const char *name)
{
    return mr_manifest_equal_fold(key->ptr ? key->ptr : "", key->len, name, strlen(name));
}

/* Decodes an object into the struct at obj, field by field, on top of its current content. */
static mr_result dec_struct(dctx *c, mr_mj_node *n, void *obj, const char *sname,
                            const char *gotype, const field *fields, size_t nfields)
{
    if (n->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    if (n->kind != MR_MJ_OBJECT) {
        type_error(c, n, gotype, false);
        return MR_SUCCESS;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        const field *f = NULL;
        for (size_t j = 0; j < nfields && f == NULL; j++) {
            if (mr_manifest_mstr_eq_c(&n->keys[i], fields[j].name))
                f = &fields[j];
        }
        for (size_t j = 0; j < nfields && f == NULL; j++) {
            if (key_matches(&n->keys[i], fields[j].name))
                f = &fields[j];
        }
        if (f == NULL)
            continue;
        const char *saved_sname = c->sname;
        size_t saved_depth = c->depth;
        c->sname = sname;
        if (c->depth < STACK_MAX)
            c->stack[c->depth++] = f->name;
        mr_result r = dec_field(c, f, &n->kids[i], obj);
        c->sname = saved_sname;
        c->depth = saved_depth;
        MR_GUARD(r);
    }
    return MR_SUCCESS;
}

typedef mr_result (*elem_fn)(dctx *c, mr_mj_node *v, void *elem);
typedef void (*elem_free_fn)(void *elem);

typedef struct gvec {
    void *items;
    size_t count;
    bool present;
} gvec;

/* map[string]T: null → nil; object → entries decoded into fresh zero values, each replacing
 * an entry of the same name (so repeated map fields merge). */
static mr_result dec_map(dctx *c, mr_mj_node *n, gvec *map, size_t esz, elem_fn fn,
                         elem_free_fn ff, const char *gotype)
{
    unsigned char *items;
    if (n->kind == MR_MJ_NULL) {
        items = map->items;
        for (size_t i = 0; i < map->count; i++)
            ff(items + i * esz);
        mr_free(map->items);
        map->items = NULL;
        map->count = 0;
        map->present = false;
        return MR_SUCCESS;
    }
    if (n->kind != MR_MJ_OBJECT) {
        type_error(c, n, gotype, false);
        return MR_SUCCESS;
    }
    map->present = true;
    void *tmp = mr_calloc(1, esz);
    MR_ENSURE_ALLOC(tmp);
    for (size_t k = 0; k < n->nkids; k++) {
        memset(tmp, 0, esz);
        mr_mstr *key = &n->keys[k];
        mr_result r = MR_SUCCESS;
        if (key->ptr != NULL)
            mstr_take((mr_mstr *)tmp, &key->ptr, key->len);
        else
            r = mstr_set((mr_mstr *)tmp, "", 0);
        if (mr_ok(r))
            r = fn(c, &n->kids[k], tmp);
        if (!mr_ok(r)) {
            ff(tmp);
            mr_free(tmp);
            return MR_FAILURE;
        }
        /* binary search for the slot (the key now lives in tmp's name) */
        const mr_mstr *nm = (const mr_mstr *)tmp;
        items = map->items;
        size_t lo = 0, hi = map->count;
        bool found = false;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const mr_mstr *mk = (const mr_mstr *)(const void *)(items + mid * esz);
            size_t m = mk->len < nm->len ? mk->len : nm->len;
            int cmp = m ? memcmp(mk->ptr, nm->ptr, m) : 0;
            if (cmp == 0)
                cmp = mk->len < nm->len ? -1 : mk->len > nm->len ? 1 : 0;
            if (cmp == 0) {
                lo = mid;
                found = true;
                break;
            }
            if (cmp < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (found) {
            ff(items + lo * esz);
            memcpy(items + lo * esz, tmp, esz);
            continue;
        }
        unsigned char *grown = mr_realloc(map->items, (map->count + 1) * esz);
        if (grown == NULL) {
            ff(tmp);
            mr_free(tmp);
            MR_BAIL(MR_ERR_INTERNAL, "out of memory");
        }
        map->items = grown;
        memmove(grown + (lo + 1) * esz, grown + lo * esz, (map->count - lo) * esz);
        memcpy(grown + lo * esz, tmp, esz);
        map->count++;
    }
    mr_free(tmp);
    return MR_SUCCESS;
}

/* []T of structs: null → nil; array → replaced by freshly decoded elements. */
/* []T of structs: null → nil; array → decoded into the existing elements (merging), then
 * truncated. */
static mr_result dec_slice(dctx *c, mr_mj_node *n, gvec *vec, size_t esz, elem_fn fn,
                           elem_free_fn ff, const char *gotype)
{
    if (n->kind != MR_MJ_NULL && n->kind != MR_MJ_ARRAY) {
        type_error(c, n, gotype, false);
        return MR_SUCCESS;
    }
    size_t want = n->kind == MR_MJ_ARRAY ? n->nkids : 0;
    if (want == 0) {
        unsigned char *old = vec->items;
        for (size_t i = 0; i < vec->count; i++)
            ff(old + i * esz);
        mr_free(old);
        vec->items = NULL;
        vec->count = 0;
        vec->present = n->kind == MR_MJ_ARRAY;
        return MR_SUCCESS;
    }
    MR_GUARD(grow_vec(&vec->items, &vec->count, want, esz));
    vec->present = true;
    unsigned char *items = vec->items;
    for (size_t i = 0; i < want; i++)
        MR_GUARD(fn(c, &n->kids[i], items + i * esz));
    for (size_t i = want; i < vec->count; i++) {
        ff(items + i * esz);
        memset(items + i * esz, 0, esz);
    }
    vec->count = want;
    return MR_SUCCESS;
}

/* ---- Package, Infrastructure ---- */

static const field package_fields[] = {
    FLD(mr_manifest_package, "Debug", F_BOOL, debug, "bool"),
    FLD(mr_manifest_package, "UniqueID", F_STR, unique_id, "string"),
    FLD(mr_manifest_package, "SignerID", F_STR, signer_id, "string"),
    OPT(mr_manifest_package, "ProductID", F_OPT_U64, product_id, has_product_id, "uint64"),
    OPT(mr_manifest_package, "SecurityVersion", F_OPT_UINT, security_version,
        has_security_version, "uint"),
    FLD(mr_manifest_package, "AcceptedTCBStatuses", F_STRLIST, accepted_tcb_statuses, "[]string"),
    FLD(mr_manifest_package, "AcceptedAdvisories", F_STRLIST, accepted_advisories, "[]string"),
};

static mr_result dec_package(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "PackageProperties", "quote.PackageProperties", package_fields,
                      MR_ARRAY_LEN(package_fields));
}

static const field infra_fields[] = {
    FLD(mr_manifest_infra, "CPUSVN", F_BYTES, cpusvn, "[]uint8"),
    OPT(mr_manifest_infra, "QESVN", F_OPT_U16, qesvn, has_qesvn, "uint16"),
    OPT(mr_manifest_infra, "PCESVN", F_OPT_U16, pcesvn, has_pcesvn, "uint16"),
    FLD(mr_manifest_infra, "RootCA", F_BYTES, root_ca, "[]uint8"),
};

static mr_result dec_infra(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "InfrastructureProperties", "quote.InfrastructureProperties",
                      infra_fields, MR_ARRAY_LEN(infra_fields));
}

/* ---- File (custom UnmarshalJSON in MarbleRun) ---- */

typedef struct file_obj {
    mr_mstr data;
    mr_mstr encoding;
    bool no_templates;
} file_obj;

static const field file_fields[] = {
    FLD(file_obj, "Data", F_STR, data, "string"),
    FLD(file_obj, "Encoding", F_STR, encoding, "string"),
    FLD(file_obj, "NoTemplates", F_BOOL, no_templates, "bool"),
};

/* hex.DecodeString with Go's error texts (the first bad character wins over odd length). */
static mr_result hex_decode_go(const char *s, size_t len, mr_buf *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
        if (ok)
            continue;
        if (ch >= 0x20 && ch < 0x7f)
            MR_BAIL(MR_ERR_USAGE, "encoding/hex: invalid byte: U+%04X '%c'", ch, ch);
        MR_BAIL(MR_ERR_USAGE, "encoding/hex: invalid byte: U+%04X", ch);
    }
    MR_ENSURE(len % 2 == 0, MR_ERR_USAGE, "encoding/hex: odd length hex string");
    return mr_hex_decode_buf(s, len, out);
}

static mr_result dec_file(dctx *c, mr_mj_node *v, void *e)
{
    (void)c;
    mr_manifest_file *f = e;
    mr_result res = MR_FAILURE;
    file_obj fo = {0};
    dctx inner = {0};
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    char lower[16];

    switch (v->kind) {
    case MR_MJ_STRING:
        MR_GUARD(mstr_set(&f->data, v->str, v->len));
        MR_GUARD(mstr_set(&f->encoding, "string", 6));
        f->no_templates = false;
        return MR_SUCCESS;
    case MR_MJ_NULL:
        MR_BAIL(MR_ERR_USAGE, "got: %%!t(<nil>), expected: string or interface");
    case MR_MJ_BOOL:
        MR_BAIL(MR_ERR_USAGE, "got: %s, expected: string or interface", v->boolean ? "true" : "false");
    case MR_MJ_NUMBER:
        MR_BAIL(MR_ERR_USAGE, "got: %%!t(float64=%.64s), expected: string or interface", v->str);
    case MR_MJ_ARRAY:
        MR_BAIL(MR_ERR_USAGE, "json: cannot unmarshal array into Go value of type struct { Data "
                              "string; Encoding string; NoTemplates bool }");
    case MR_MJ_OBJECT:
        break;
    }
    MR_GUARD_OUT(dec_struct(&inner, v, &fo, "", "", file_fields, MR_ARRAY_LEN(file_fields)));
    MR_ENSURE_OUT(!inner.has_saved, MR_ERR_USAGE, "%s", inner.saved);
    if (fo.encoding.len == 0)
        MR_GUARD_OUT(mstr_set(&fo.encoding, "string", 6));
    if (!mr_manifest_lower(fo.encoding.ptr, fo.encoding.len, lower, sizeof(lower)))
        lower[0] = '\0';
    if (strcmp(lower, "string") == 0) {
        MR_GUARD_OUT(mstr_set(&f->data, fo.data.ptr ? fo.data.ptr : "", fo.data.len));
    } else if (strcmp(lower, "base64") == 0) {
        MR_GUARD_OUT(mr_b64_decode_buf(fo.data.ptr ? fo.data.ptr : "", fo.data.len, MR_B64_STD,
                                       MR_B64_IGNORE_NEWLINES, &b));
        MR_GUARD_OUT(mstr_set(&f->data, b.len ? (const char *)b.data : "", b.len));
    } else if (strcmp(lower, "hex") == 0) {
        MR_GUARD_OUT(hex_decode_go(fo.data.ptr ? fo.data.ptr : "", fo.data.len, &b));
        MR_GUARD_OUT(mstr_set(&f->data, b.len ? (const char *)b.data : "", b.len));
    } else {
        MR_BAIL_OUT(MR_ERR_USAGE, "unknown encoding type: %s", fo.encoding.ptr);
    }
    mr_manifest_mstr_free(&f->encoding);
    f->encoding = fo.encoding;
    fo.encoding = (mr_mstr){0};
    f->no_templates = fo.no_templates;
    res = MR_SUCCESS;
out:
    mr_manifest_mstr_free(&fo.data);
    mr_manifest_mstr_free(&fo.encoding);
    mr_buf_free(&b);
    return res;
}

static void file_free(void *e) { mr_manifest_file_free_(e); }

/* ---- Marble ---- */

static mr_result dec_files(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_marble *m = obj;
    return dec_map(c, v, (gvec *)(void *)&m->parameters.files, sizeof(mr_manifest_file), dec_file,
                   file_free, "map[string]manifest.File");
}

static mr_result dec_env(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_marble *m = obj;
    return dec_map(c, v, (gvec *)(void *)&m->parameters.env, sizeof(mr_manifest_file), dec_file,
                   file_free, "map[string]manifest.File");
}

static const field params_fields[] = {
    CUS("Files", dec_files),
    CUS("Env", dec_env),
    {"Argv", F_STRLIST, offsetof(mr_manifest_marble, parameters.argv), 0, "[]string", NULL},
};

static mr_result dec_params(dctx *c, mr_mj_node *v, void *obj)
{
    return dec_struct(c, v, obj, "Parameters", "manifest.Parameters", params_fields,
                      MR_ARRAY_LEN(params_fields));
}

static const field marble_fields[] = {
    FLD(mr_manifest_marble, "Package", F_STR, package, "string"),
    FLD(mr_manifest_marble, "MaxActivations", F_UINT, max_activations, "uint"),
    CUS("Parameters", dec_params),
    FLD(mr_manifest_marble, "TLS", F_STRLIST, tls, "[]string"),
    FLD(mr_manifest_marble, "DisableSecretBinding", F_BOOL, disable_secret_binding, "bool"),
};

static mr_result dec_marble(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "Marble", "manifest.Marble", marble_fields,
                      MR_ARRAY_LEN(marble_fields));
}

/* ---- Certificate (x509.Certificate JSON, or base64 DER) ---- */

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Strict RFC 3339 as time.Time.UnmarshalJSON accepts it. */
static bool parse_rfc3339(const char *s, size_t len, mr_manifest_time *t)
{
    mr_rfc3339_time rt;
    if (mr_rfc3339_parse(s, len, 0, &rt) != MR_RFC3339_OK)
        return false;
    t->unix_sec = rt.unix_sec;
    t->nsec = rt.nsec;
    /* Go's zero time is 0001-01-01T00:00:00Z */
    t->set = !(rt.unix_sec == mr_days_from_civil(1, 1, 1) * 86400 && rt.nsec == 0);
    return true;
}

#define RFC3339 "2006-01-02T15:04:05Z07:00"

static bool isdig(const char *s, size_t len, size_t i) { return i < len && s[i] >= '0' && s[i] <= '9'; }

/* The error time.Time.UnmarshalJSON reports for a string that is not strict RFC 3339: walks
 * the layout elements as time.Parse does, then applies parseStrictRFC3339's extra checks. */
static mr_result time_error(const char *s, size_t len)
{
    static const char *const elems[] = {"2006", "-", "01", "-", "02", "T", "15", ":",
                                        "04",   ":", "05", "Z07:00"};
    size_t p = 0;
    unsigned month = 0, day = 0, year = 0;
    const char *range = NULL;
    for (size_t e = 0; e < MR_ARRAY_LEN(elems); e++) {
        const char *el = elems[e];
        size_t start = p;
        bool ok = true;
        unsigned v = 0;
        if (strcmp(el, "2006") == 0) {
            ok = len - p >= 4 && isdig(s, len, p) && isdig(s, len, p + 1) && isdig(s, len, p + 2) &&
                 isdig(s, len, p + 3);
            if (ok) {
                (void)digits(s + p, 4, &year);
                p += 4;
            }
        } else if (strcmp(el, "15") == 0) { /* one or two digits */
            ok = isdig(s, len, p);
            if (ok) {
                v = (unsigned)(s[p++] - '0');
                if (isdig(s, len, p))
                    v = v * 10 + (unsigned)(s[p++] - '0');
                if (v > 23 && range == NULL)
                    range = "hour";
            }
        } else if (el[0] >= '0' && el[0] <= '9') { /* fixed two digits */
            ok = isdig(s, len, p) && isdig(s, len, p + 1);
            if (ok) {
                v = (unsigned)(s[p] - '0') * 10 + (unsigned)(s[p + 1] - '0');
                p += 2;
                if (strcmp(el, "01") == 0) {
                    month = v;
                    if ((v < 1 || v > 12) && range == NULL)
                        range = "month";
                } else if (strcmp(el, "02") == 0) {
                    day = v;
                    if ((v < 1 || v > 31) && range == NULL)
                        range = "day";
                } else if (strcmp(el, "04") == 0) {
                    if (v > 59 && range == NULL)
                        range = "minute";
                } else if (v > 59 && range == NULL) {
                    range = "second";
                }
                /* fractional seconds follow the seconds element */
                if (strcmp(el, "05") == 0 && p + 1 < len && (s[p] == '.' || s[p] == ',') &&
                    isdig(s, len, p + 1)) {
                    p++;
                    while (isdig(s, len, p))
                        p++;
                }
            }
        } else if (strcmp(el, "Z07:00") == 0) {
            if (p < len && s[p] == 'Z') {
                p++;
            } else {
                ok = len - p >= 6 && (s[p] == '+' || s[p] == '-') && s[p + 3] == ':' &&
                     isdig(s, len, p + 1) && isdig(s, len, p + 2) && isdig(s, len, p + 4) &&
                     isdig(s, len, p + 5);
                if (ok)
                    p += 6;
            }
        } else { /* literal */
            size_t n = strlen(el);
            ok = len - p >= n && memcmp(s + p, el, n) == 0;
            if (ok)
                p += n;
        }
        if (!ok)
            MR_BAIL(MR_ERR_USAGE,
                    "parsing time \"%.*s\" as \"" RFC3339 "\": cannot parse \"%.*s\" as \"%s\"",
                    (int)len, s, (int)(len - start), s + start, el);
        if (range)
            MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": %s out of range", (int)len, s, range);
    }
    if (p < len)
        MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": extra text: \"%.*s\"", (int)len, s,
                (int)(len - p), s + p);
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > mdays[month - 1] + (month == 2 && leap ? 1u : 0u))
        MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": day out of range", (int)len, s);
    /* accepted by time.Parse but not by the strict RFC 3339 rules */
    if (len > 12 && s[12] == ':')
        MR_BAIL(MR_ERR_USAGE,
                "parsing time \"%.*s\" as \"" RFC3339 "\": cannot parse \"%c\" as \"15\"",
                (int)len, s, s[11]);
    if (len > 19 && s[19] == ',')
        MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\" as \"" RFC3339 "\": cannot parse \",\" as \".\"",
                (int)len, s);
    if (s[len - 1] != 'Z') {
        unsigned th = (unsigned)(s[len - 5] - '0') * 10 + (unsigned)(s[len - 4] - '0');
        unsigned tm = (unsigned)(s[len - 2] - '0') * 10 + (unsigned)(s[len - 1] - '0');
        if (th >= 24)
            MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": timezone hour out of range", (int)len, s);
        if (tm >= 60)
            MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\": timezone minute out of range", (int)len,
                    s);
    }
    MR_BAIL(MR_ERR_USAGE, "parsing time \"%.*s\" as \"" RFC3339 "\": cannot parse \"%.*s\" as \"" RFC3339
            "\"", (int)len, s, (int)len, s);
}

static mr_result dec_time(mr_mj_node *v, mr_manifest_time *t)
{
    if (v->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    MR_ENSURE(v->kind == MR_MJ_STRING, MR_ERR_USAGE,
              "Time.UnmarshalJSON: input is not a JSON string");
    mr_manifest_time tmp = {0};
    if (!parse_rfc3339(v->str, v->len, &tmp))
        return time_error(v->str, v->len);
    *t = tmp;
    return MR_SUCCESS;
}

static mr_result dec_not_before(dctx *c, mr_mj_node *v, void *obj)
{
    (void)c;
    return dec_time(v, &((mr_manifest_cert *)obj)->not_before);
}

static mr_result dec_not_after(dctx *c, mr_mj_node *v, void *obj)
{
    (void)c;
    return dec_time(v, &((mr_manifest_cert *)obj)->not_after);
}

static mr_result dec_ip(dctx *c, mr_mj_node *v, void *e)
{
    mr_mbytes *ip = e;
    if (v->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    if (v->kind != MR_MJ_STRING) {
        type_error(c, v, "net.IP", false);
        return MR_SUCCESS;
    }
    if (v->len == 0)
        return MR_SUCCESS;
    uint8_t addr[16];
    size_t n = 0;
    if (strlen(v->str) == v->len && inet_pton(AF_INET, v->str, addr) == 1)
        n = 4;
    else if (strlen(v->str) == v->len && inet_pton(AF_INET6, v->str, addr) == 1)
        n = 16;
    MR_ENSURE(n != 0, MR_ERR_USAGE, "invalid IP address: %.200s", v->str);
    ip->ptr = mr_alloc(n);
    MR_ENSURE_ALLOC(ip->ptr);
    memcpy(ip->ptr, addr, n);
    ip->len = n;
    ip->present = true;
    return MR_SUCCESS;
}

static void bytes_elem_free(void *e)
{
    mr_mbytes *b = e;
    mr_free(b->ptr);
    memset(b, 0, sizeof(*b));
}

static mr_result dec_ips(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_cert *ct = obj;
    return dec_slice(c, v, (gvec *)(void *)&ct->ip_addresses, sizeof(mr_mbytes), dec_ip,
                     bytes_elem_free, "[]net.IP");
}

static mr_result dec_attr_value(dctx *c, mr_mj_node *v, void *obj)
{
    (void)c;
    mr_manifest_attr *a = obj;
    if (v->kind == MR_MJ_STRING) {
        a->value_is_string = true;
        return mstr_set(&a->value, v->str, v->len);
    }
    a->value_is_string = false; /* other JSON values are not kept */
    mr_manifest_mstr_free(&a->value);
    return MR_SUCCESS;
}

static const field attr_fields[] = {
    {"Type", F_INTLIST, offsetof(mr_manifest_attr, type), 0, "asn1.ObjectIdentifier", NULL},
    CUS("Value", dec_attr_value),
};

static mr_result dec_attr(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "AttributeTypeAndValue", "pkix.AttributeTypeAndValue", attr_fields,
                      MR_ARRAY_LEN(attr_fields));
}

static void attr_free(void *e)
{
    mr_manifest_attr *a = e;
    mr_free(a->type.items);
    mr_manifest_mstr_free(&a->value);
    memset(a, 0, sizeof(*a));
}

static mr_result dec_extra_names(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_dn *d = obj;
    return dec_slice(c, v, (gvec *)(void *)&d->extra_names, sizeof(mr_manifest_attr), dec_attr,
                     attr_free, "[]pkix.AttributeTypeAndValue");
}

static const field dn_fields[] = {
    FLD(mr_manifest_dn, "Country", F_STRLIST, country, "[]string"),
    FLD(mr_manifest_dn, "Organization", F_STRLIST, organization, "[]string"),
    FLD(mr_manifest_dn, "OrganizationalUnit", F_STRLIST, organizational_unit, "[]string"),
    FLD(mr_manifest_dn, "Locality", F_STRLIST, locality, "[]string"),
    FLD(mr_manifest_dn, "Province", F_STRLIST, province, "[]string"),
    FLD(mr_manifest_dn, "StreetAddress", F_STRLIST, street_address, "[]string"),
    FLD(mr_manifest_dn, "PostalCode", F_STRLIST, postal_code, "[]string"),
    FLD(mr_manifest_dn, "SerialNumber", F_STR, serial_number, "string"),
    FLD(mr_manifest_dn, "CommonName", F_STR, common_name, "string"),
    CUS("ExtraNames", dec_extra_names),
};

static mr_result dec_subject(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_cert *ct = obj;
    return dec_struct(c, v, &ct->subject, "Name", "pkix.Name", dn_fields, MR_ARRAY_LEN(dn_fields));
}

/* Issuer is always replaced by the Marble root's subject: decoded for type errors only. */
static mr_result dec_issuer(dctx *c, mr_mj_node *v, void *obj)
{
    (void)obj;
    mr_manifest_cert tmp = {0};
    mr_result r = dec_struct(c, v, &tmp.subject, "Name", "pkix.Name", dn_fields,
                             MR_ARRAY_LEN(dn_fields));
    mr_manifest_cert_free_(&tmp);
    return r;
}

static const field ext_fields[] = {
    {"Id", F_INTLIST, offsetof(mr_manifest_ext, id), 0, "asn1.ObjectIdentifier", NULL},
    FLD(mr_manifest_ext, "Critical", F_BOOL, critical, "bool"),
    FLD(mr_manifest_ext, "Value", F_BYTES, value, "[]uint8"),
};

static mr_result dec_ext(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "Extension", "pkix.Extension", ext_fields, MR_ARRAY_LEN(ext_fields));
}

static void ext_free(void *e)
{
    mr_manifest_ext *x = e;
    mr_free(x->id.items);
    mr_free(x->value.ptr);
    memset(x, 0, sizeof(*x));
}

static mr_result dec_extra_exts(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_cert *ct = obj;
    return dec_slice(c, v, (gvec *)(void *)&ct->extra_extensions, sizeof(mr_manifest_ext), dec_ext,
                     ext_free, "[]pkix.Extension");
}

#define CF(jn, k, m, gt) FLD(mr_manifest_cert, jn, k, m, gt)
#define IGN(jn, k, gt) {jn, k, 0, 0, gt, NULL}
static const field cert_fields[] = {
    CF("Raw", F_BYTES, raw, "[]uint8"),
    IGN("RawTBSCertificate", F_IGN_BYTES, "[]uint8"),
    IGN("RawSubjectPublicKeyInfo", F_IGN_BYTES, "[]uint8"),
    IGN("RawIssuer", F_IGN_BYTES, "[]uint8"),
    IGN("Signature", F_IGN_BYTES, "[]uint8"),
    IGN("PublicKeyAlgorithm", F_IGN_INT, "x509.PublicKeyAlgorithm"),
    IGN("Version", F_IGN_INT, "int"),
    CUS("Issuer", dec_issuer),
    IGN("UnhandledCriticalExtensions", F_IGN_OIDS, "[]asn1.ObjectIdentifier"),
    IGN("BasicConstraintsValid", F_IGN_BOOL, "bool"),
    IGN("InhibitAnyPolicy", F_IGN_INT, "int"),
    IGN("InhibitAnyPolicyZero", F_IGN_BOOL, "bool"),
    IGN("InhibitPolicyMapping", F_IGN_INT, "int"),
    IGN("InhibitPolicyMappingZero", F_IGN_BOOL, "bool"),
    IGN("RequireExplicitPolicy", F_IGN_INT, "int"),
    IGN("RequireExplicitPolicyZero", F_IGN_BOOL, "bool"),
    CF("RawSubject", F_BYTES, raw_subject, "[]uint8"),
    CF("SignatureAlgorithm", F_INT, signature_algorithm, "x509.SignatureAlgorithm"),
    CUS("Subject", dec_subject),
    CUS("NotBefore", dec_not_before),
    CUS("NotAfter", dec_not_after),
    CF("KeyUsage", F_INT, key_usage, "x509.KeyUsage"),
    CUS("ExtraExtensions", dec_extra_exts),
    CF("ExtKeyUsage", F_INTLIST, ext_key_usage, "[]x509.ExtKeyUsage"),
    CF("UnknownExtKeyUsage", F_OIDLIST, unknown_ext_key_usage, "[]asn1.ObjectIdentifier"),
    CF("IsCA", F_BOOL, is_ca, "bool"),
    CF("MaxPathLen", F_INT, max_path_len, "int"),
    CF("MaxPathLenZero", F_BOOL, max_path_len_zero, "bool"),
    CF("SubjectKeyId", F_BYTES, subject_key_id, "[]uint8"),
    CF("AuthorityKeyId", F_BYTES, authority_key_id, "[]uint8"),
    CF("OCSPServer", F_STRLIST, ocsp_server, "[]string"),
    CF("IssuingCertificateURL", F_STRLIST, issuing_certificate_url, "[]string"),
    CF("DNSNames", F_STRLIST, dns_names, "[]string"),
    CF("EmailAddresses", F_STRLIST, email_addresses, "[]string"),
    CUS("IPAddresses", dec_ips),
    CF("PermittedDNSDomainsCritical", F_BOOL, permitted_dns_domains_critical, "bool"),
    CF("PermittedDNSDomains", F_STRLIST, permitted_dns_domains, "[]string"),
    CF("ExcludedDNSDomains", F_STRLIST, excluded_dns_domains, "[]string"),
    CF("PermittedEmailAddresses", F_STRLIST, permitted_email_addresses, "[]string"),
    CF("ExcludedEmailAddresses", F_STRLIST, excluded_email_addresses, "[]string"),
    CF("PermittedURIDomains", F_STRLIST, permitted_uri_domains, "[]string"),
    CF("ExcludedURIDomains", F_STRLIST, excluded_uri_domains, "[]string"),
    CF("CRLDistributionPoints", F_STRLIST, crl_distribution_points, "[]string"),
    CF("PolicyIdentifiers", F_OIDLIST, policy_identifiers, "[]asn1.ObjectIdentifier"),
};
#undef CF
#undef IGN

static mr_result dec_cert(dctx *c, mr_mj_node *v, void *obj)
{
    (void)c;
    mr_manifest_secret *s = obj;
    if (v->kind == MR_MJ_STRING) {
        mr_buf der;
        mr_buf_init(&der, 0, 0);
        if (!mr_ok(mr_b64_decode_buf(v->str, v->len, MR_B64_STD, MR_B64_IGNORE_NEWLINES, &der))) {
            /* MarbleRun ignores a string that is not base64 */
            mr_buf_free(&der);
            bool internal = mr_error_get()->cat == MR_ERR_INTERNAL;
            if (!internal)
                mr_error_clear();
            return internal ? MR_FAILURE : MR_SUCCESS;
        }
        const unsigned char *p = der.data;
        X509 *x = der.len ? d2i_X509(NULL, &p, (long)der.len) : NULL;
        bool whole = x != NULL && p == der.data + der.len;
        X509_free(x);
        if (!whole) {
            mr_buf_free(&der);
            MR_BAIL(MR_ERR_USAGE, "x509: malformed certificate");
        }
        mr_manifest_cert_free_(&s->cert);
        s->cert.raw.len = 0;
        s->cert.raw.ptr = mr_buf_steal(&der, &s->cert.raw.len);
        s->cert.raw.present = true;
        return MR_SUCCESS;
    }
    if (v->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    dctx inner = {0};
    if (v->kind != MR_MJ_OBJECT)
        MR_BAIL(MR_ERR_USAGE, "json: cannot unmarshal %s into Go value of type x509.Certificate",
                kind_word(v));
    MR_GUARD(dec_struct(&inner, v, &s->cert, "Certificate", "x509.Certificate", cert_fields,
                        MR_ARRAY_LEN(cert_fields)));
    MR_ENSURE(!inner.has_saved, MR_ERR_USAGE, "%s", inner.saved);
    return MR_SUCCESS;
}

/* ---- Secret, User, Role, TLS, Config ---- */

static const field secret_fields[] = {
    FLD(mr_manifest_secret, "Type", F_STR, type, "string"),
    FLD(mr_manifest_secret, "Size", F_UINT, size, "uint"),
    FLD(mr_manifest_secret, "Shared", F_BOOL, shared, "bool"),
    FLD(mr_manifest_secret, "UserDefined", F_BOOL, user_defined, "bool"),
    CUS("Cert", dec_cert),
    FLD(mr_manifest_secret, "ValidFor", F_UINT, valid_for, "uint"),
    FLD(mr_manifest_secret, "Private", F_BYTES, private_key, "manifest.PrivateKey"),
    FLD(mr_manifest_secret, "Public", F_BYTES, public_key, "manifest.PublicKey"),
};

static mr_result dec_secret(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "Secret", "manifest.Secret", secret_fields,
                      MR_ARRAY_LEN(secret_fields));
}

static const field user_fields[] = {
    FLD(mr_manifest_user, "Certificate", F_STR, certificate, "string"),
    FLD(mr_manifest_user, "Roles", F_STRLIST, roles, "[]string"),
};

static mr_result dec_user(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "User", "manifest.User", user_fields, MR_ARRAY_LEN(user_fields));
}

static const field role_fields[] = {
    FLD(mr_manifest_role, "ResourceType", F_STR, resource_type, "string"),
    FLD(mr_manifest_role, "ResourceNames", F_STRLIST, resource_names, "[]string"),
    FLD(mr_manifest_role, "Actions", F_STRLIST, actions, "[]string"),
};

static mr_result dec_role(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "Role", "manifest.Role", role_fields, MR_ARRAY_LEN(role_fields));
}

static mr_result dec_reckey(dctx *c, mr_mj_node *v, void *e)
{
    mr_manifest_recovery_key *k = e;
    return dec_string(c, v, &k->pem);
}

static const field tls_entry_fields[] = {
    FLD(mr_manifest_tls_entry, "Port", F_STR, port, "string"),
    FLD(mr_manifest_tls_entry, "Addr", F_STR, addr, "string"),
    FLD(mr_manifest_tls_entry, "Cert", F_STR, cert, "string"),
    FLD(mr_manifest_tls_entry, "DisableClientAuth", F_BOOL, disable_client_auth, "bool"),
    FLD(mr_manifest_tls_entry, "AllowedMarbleTypes", F_STRLIST, allowed_marble_types, "[]string"),
};

static mr_result dec_tls_entry(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "TLSTagEntry", "manifest.TLSTagEntry", tls_entry_fields,
                      MR_ARRAY_LEN(tls_entry_fields));
}

static void tls_entry_free(void *e)
{
    mr_manifest_tls_entry *t = e;
    mr_manifest_mstr_free(&t->port);
    mr_manifest_mstr_free(&t->addr);
    mr_manifest_mstr_free(&t->cert);
    mr_manifest_mstr_list_free(&t->allowed_marble_types);
}

static mr_result dec_outgoing(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_tls_tag *t = obj;
    return dec_slice(c, v, (gvec *)(void *)&t->outgoing, sizeof(mr_manifest_tls_entry),
                     dec_tls_entry, tls_entry_free, "[]manifest.TLSTagEntry");
}

static mr_result dec_incoming(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_tls_tag *t = obj;
    return dec_slice(c, v, (gvec *)(void *)&t->incoming, sizeof(mr_manifest_tls_entry),
                     dec_tls_entry, tls_entry_free, "[]manifest.TLSTagEntry");
}

static const field tls_tag_fields[] = {
    CUS("Outgoing", dec_outgoing),
    CUS("Incoming", dec_incoming),
};

static mr_result dec_tls_tag(dctx *c, mr_mj_node *v, void *e)
{
    return dec_struct(c, v, e, "TLStag", "manifest.TLStag", tls_tag_fields,
                      MR_ARRAY_LEN(tls_tag_fields));
}

static const field config_fields[] = {
    FLD(mr_manifest_config, "SealMode", F_STR, seal_mode, "string"),
    FLD(mr_manifest_config, "FeatureGates", F_STRLIST, feature_gates, "[]string"),
    FLD(mr_manifest_config, "UpdateThreshold", F_UINT, update_threshold, "uint"),
    FLD(mr_manifest_config, "RecoveryThreshold", F_UINT, recovery_threshold, "uint"),
    FLD(mr_manifest_config, "RotateRootSecret", F_BOOL, rotate_root_secret, "bool"),
};

static mr_result dec_config(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest *m = obj;
    return dec_struct(c, v, &m->config, "Config", "manifest.Config", config_fields,
                      MR_ARRAY_LEN(config_fields));
}

/* ---- top level ---- */

#define MAPFN(fname, member, T, efn, ffn, gt)                                                  \
    static void fname##_free(void *e) { ffn((T *)e); }                                        \
    static mr_result fname(dctx *c, mr_mj_node *v, void *obj)                           \
    {                                                                                         \
        mr_manifest *m = obj;                                                                 \
        return dec_map(c, v, (gvec *)(void *)&m->member, sizeof(T), efn, fname##_free, gt);  \
    }

MAPFN(dec_packages, packages, mr_manifest_package, dec_package, mr_manifest_package_free_,
      "map[string]quote.PackageProperties")
MAPFN(dec_infras, infrastructures, mr_manifest_infra, dec_infra, mr_manifest_infra_free_,
      "map[string]quote.InfrastructureProperties")
MAPFN(dec_marbles, marbles, mr_manifest_marble, dec_marble, mr_manifest_marble_free_,
      "map[string]manifest.Marble")
MAPFN(dec_users, users, mr_manifest_user, dec_user, mr_manifest_user_free_,
      "map[string]manifest.User")
MAPFN(dec_secrets, secrets, mr_manifest_secret, dec_secret, mr_manifest_secret_free_,
      "map[string]manifest.Secret")
MAPFN(dec_reckeys, recovery_keys, mr_manifest_recovery_key, dec_reckey, mr_manifest_reckey_free_,
      "map[string]string")
MAPFN(dec_roles, roles, mr_manifest_role, dec_role, mr_manifest_role_free_,
      "map[string]manifest.Role")
MAPFN(dec_tls, tls, mr_manifest_tls_tag, dec_tls_tag, mr_manifest_tls_tag_free_,
      "map[string]manifest.TLStag")

static const field manifest_fields[] = {
    CUS("Packages", dec_packages),
    CUS("Infrastructures", dec_infras),
    CUS("Marbles", dec_marbles),
    CUS("Users", dec_users),
    CUS("Secrets", dec_secrets),
    CUS("RecoveryKeys", dec_reckeys),
    CUS("Roles", dec_roles),
    CUS("TLS", dec_tls),
    CUS("Config", dec_config),
};

static mr_result decode(const uint8_t *json, size_t len, mr_manifest **out)
{
    mr_result res = MR_FAILURE;
    mr_mj_node root = {0};
    mr_manifest *m = NULL;
    dctx c = {0};

    *out = NULL;
    MR_ENSURE(json != NULL || len == 0, MR_ERR_INTERNAL, "internal error: json is NULL");
    MR_GUARD_OUT(mr_manifest_json_parse(json ? json : (const uint8_t *)"", len, &root));
    m = mr_calloc(1, sizeof(*m));
    MR_ENSURE_ALLOC_OUT(m);
    MR_GUARD_OUT(dec_struct(&c, &root, m, "Manifest", "manifest.Manifest", manifest_fields,
                            MR_ARRAY_LEN(manifest_fields)));
    if (c.has_saved)
        MR_BAIL_OUT(MR_ERR_USAGE, "%s", c.saved);
    m->raw.ptr = mr_alloc(len ? len : 1);
    MR_ENSURE_ALLOC_OUT(m->raw.ptr);
    if (len)
        memcpy(m->raw.ptr, json, len);
    m->raw.len = len;
    m->raw.present = true;
    MR_GUARD_OUT(mr_manifest_fingerprint(m->raw.ptr, len, m->fingerprint));
    *out = m;
    m = NULL;
    res = MR_SUCCESS;
out:
    mr_manifest_json_free(&root);
    mr_manifest_free(m);
    return res;
}

mr_result mr_manifest_decode(const uint8_t *json, size_t len, mr_manifest **out)
{
    return decode(json, len, out);
}
