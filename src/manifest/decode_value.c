/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decoder's engine (decode_int.h): Go's encoding/json rules for the primitive kinds,
 * []byte, lists, structs, maps and slices, and Go's type-error texts.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/text.h"
#include "manifest/decode_int.h"

/* ---- errors ---- */

static void save_msg(dctx *c, const char *msg)
{
    if (c->has_saved)
        return;
    c->has_saved = true;
    snprintf(c->saved, sizeof(c->saved), "%s", msg);
}

const char *mr_mdec_kind_word(mr_mj_node *n)
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

void mr_mdec_type_error(dctx *c, mr_mj_node *n, const char *gotype, bool with_literal)
{
    if (c->has_saved)
        return;
    char value[160];
    if (n->kind == MR_MJ_NUMBER && with_literal)
        snprintf(value, sizeof(value), "number %.120s", n->str);
    else
        snprintf(value, sizeof(value), "%s", mr_mdec_kind_word(n));
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

MR_RESULT mr_mdec_mstr_set(mr_mstr *dst, const char *s, size_t len)
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

static MR_RESULT dec_bool(dctx *c, mr_mj_node *n, bool *out)
{
    if (n->kind == MR_MJ_BOOL)
        *out = n->boolean;
    else if (n->kind != MR_MJ_NULL)
        mr_mdec_type_error(c, n, "bool", false);
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

MR_RESULT mr_mdec_string(dctx *c, mr_mj_node *n, mr_mstr *out)
{
    if (n->kind == MR_MJ_STRING) {
        if (n->str != NULL) {
            mstr_take(out, &n->str, n->len);
            return MR_SUCCESS;
        }
        return mr_mdec_mstr_set(out, "", 0);
    }
    if (n->kind != MR_MJ_NULL)
        mr_mdec_type_error(c, n, "string", false);
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

static MR_RESULT dec_uint(dctx *c, mr_mj_node *n, uint64_t max, const char *gotype,
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
        mr_mdec_type_error(c, n, gotype, false);
    } else if (!parse_uint(n->str, n->len, max, &v)) {
        mr_mdec_type_error(c, n, gotype, true);
    } else {
        *out = v;
    }
    return MR_SUCCESS;
}

static MR_RESULT dec_int(dctx *c, mr_mj_node *n, const char *gotype, int64_t *out)
{
    int64_t v;
    if (n->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    if (n->kind != MR_MJ_NUMBER)
        mr_mdec_type_error(c, n, gotype, false);
    else if (!parse_int(n->str, n->len, &v))
        mr_mdec_type_error(c, n, gotype, true);
    else
        *out = v;
    return MR_SUCCESS;
}

/* []byte: padded base64 string (CR/LF skipped), or an array of uint8 numbers. */
static MR_RESULT dec_bytes(dctx *c, mr_mj_node *n, const char *gotype, mr_mbytes *out)
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
        mr_mdec_type_error(c, n, gotype ? gotype : "[]uint8", false);
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
static MR_RESULT grow_vec(void **items, size_t *count, size_t want, size_t esz)
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

static MR_RESULT dec_str_list(dctx *c, mr_mj_node *n, mr_mstr_list *out)
{
    if (n->kind == MR_MJ_NULL) {
        mr_manifest_mstr_list_free(out);
        return MR_SUCCESS;
    }
    if (n->kind != MR_MJ_ARRAY) {
        mr_mdec_type_error(c, n, "[]string", false);
        return MR_SUCCESS;
    }
    if (n->nkids == 0)
        mr_manifest_mstr_list_free(out);
    void *items = out->items;
    MR_GUARD(grow_vec(&items, &out->count, n->nkids, sizeof(mr_mstr)));
    out->items = items;
    out->present = true;
    for (size_t i = 0; i < n->nkids; i++)
        MR_GUARD(mr_mdec_string(c, &n->kids[i], &out->items[i]));
    for (size_t i = n->nkids; i < out->count; i++)
        mr_manifest_mstr_free(&out->items[i]);
    out->count = n->nkids;
    return MR_SUCCESS;
}

static MR_RESULT dec_int_list(dctx *c, mr_mj_node *n, const char *list_type,
                              const char *elem_type, mr_mint_list *out)
{
    if (n->kind == MR_MJ_NULL || (n->kind == MR_MJ_ARRAY && n->nkids == 0)) {
        mr_free(out->items);
        memset(out, 0, sizeof(*out));
        out->present = n->kind == MR_MJ_ARRAY;
        return MR_SUCCESS;
    }
    if (n->kind != MR_MJ_ARRAY) {
        mr_mdec_type_error(c, n, list_type, false);
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

static MR_RESULT dec_oid_list(dctx *c, mr_mj_node *n, mr_moid_list *out)
{
    if (n->kind == MR_MJ_NULL || (n->kind == MR_MJ_ARRAY && n->nkids == 0)) {
        oids_clear(out, 0);
        mr_free(out->items);
        memset(out, 0, sizeof(*out));
        out->present = n->kind == MR_MJ_ARRAY;
        return MR_SUCCESS;
    }
    if (n->kind != MR_MJ_ARRAY) {
        mr_mdec_type_error(c, n, "[]asn1.ObjectIdentifier", false);
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

static void *at(void *obj, size_t off) { return (unsigned char *)obj + off; }

static MR_RESULT dec_field(dctx *c, const field *f, mr_mj_node *v, void *obj)
{
    switch (f->kind) {
    case F_BOOL: return dec_bool(c, v, at(obj, f->off));
    case F_STR: return mr_mdec_string(c, v, at(obj, f->off));
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
    case F_OPT_U8: {
        uint64_t tmp = *(uint8_t *)at(obj, f->off);
        MR_GUARD(dec_uint(c, v, UINT8_MAX, f->gotype, &tmp, at(obj, f->has_off)));
        *(uint8_t *)at(obj, f->off) = (uint8_t)tmp;
        return MR_SUCCESS;
    }
    case F_OPT_BOOL:
        *(bool *)at(obj, f->has_off) = v->kind != MR_MJ_NULL; /* Go allocates, then stores */
        return dec_bool(c, v, at(obj, f->off));
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

MR_RESULT mr_mdec_struct(dctx *c, mr_mj_node *n, void *obj, const char *sname,
                         const char *gotype, const field *fields, size_t nfields)
{
    if (n->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    if (n->kind != MR_MJ_OBJECT) {
        mr_mdec_type_error(c, n, gotype, false);
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

/* The index of the entry named nm in a sorted map (*found), or where it would go. */
static size_t map_slot(const gvec *map, size_t esz, const mr_mstr *nm, bool *found)
{
    const unsigned char *items = map->items;
    size_t lo = 0, hi = map->count;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mr_mstr *mk = (const mr_mstr *)(const void *)(items + mid * esz);
        size_t m = mk->len < nm->len ? mk->len : nm->len;
        int cmp = m ? memcmp(mk->ptr, nm->ptr, m) : 0;
        if (cmp == 0)
            cmp = mk->len < nm->len ? -1 : mk->len > nm->len ? 1 : 0;
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Decodes one member into the zeroed element tmp, whose name (first) takes the key. */
static MR_RESULT map_member(dctx *c, mr_mstr *key, mr_mj_node *v, void *tmp, elem_fn fn)
{
    if (key->ptr != NULL)
        mstr_take((mr_mstr *)tmp, &key->ptr, key->len);
    else
        MR_GUARD(mr_mdec_mstr_set((mr_mstr *)tmp, "", 0));
    return fn(c, v, tmp);
}

/* Moves the decoded element tmp into the map, replacing an entry of the same name. On
 * failure tmp still owns its content. */
static MR_RESULT map_put(gvec *map, size_t esz, const void *tmp, elem_free_fn ff)
{
    bool found = false;
    size_t at = map_slot(map, esz, (const mr_mstr *)tmp, &found);
    if (found) {
        unsigned char *items = map->items;
        ff(items + at * esz);
        memcpy(items + at * esz, tmp, esz);
        return MR_SUCCESS;
    }
    unsigned char *grown = mr_realloc(map->items, (map->count + 1) * esz);
    MR_ENSURE_ALLOC(grown);
    map->items = grown;
    memmove(grown + (at + 1) * esz, grown + at * esz, (map->count - at) * esz);
    memcpy(grown + at * esz, tmp, esz);
    map->count++;
    return MR_SUCCESS;
}

MR_RESULT mr_mdec_map(dctx *c, mr_mj_node *n, gvec *map, size_t esz, elem_fn fn,
                      elem_free_fn ff, const char *gotype)
{
    mr_result res = MR_FAILURE;
    void *tmp = NULL;

    if (n->kind == MR_MJ_NULL) {
        unsigned char *items = map->items;
        for (size_t i = 0; i < map->count; i++)
            ff(items + i * esz);
        mr_free(map->items);
        map->items = NULL;
        map->count = 0;
        map->present = false;
        return MR_SUCCESS;
    }
    if (n->kind != MR_MJ_OBJECT) {
        mr_mdec_type_error(c, n, gotype, false);
        return MR_SUCCESS;
    }
    map->present = true;
    tmp = mr_calloc(1, esz);
    MR_ENSURE_ALLOC(tmp);
    for (size_t k = 0; k < n->nkids; k++) {
        memset(tmp, 0, esz); /* the previous member moved into the map */
        MR_GUARD_OUT(map_member(c, &n->keys[k], &n->kids[k], tmp, fn));
        MR_GUARD_OUT(map_put(map, esz, tmp, ff));
    }
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        ff(tmp);
    mr_free(tmp);
    return res;
}

MR_RESULT mr_mdec_slice(dctx *c, mr_mj_node *n, gvec *vec, size_t esz, elem_fn fn,
                        elem_free_fn ff, const char *gotype)
{
    if (n->kind != MR_MJ_NULL && n->kind != MR_MJ_ARRAY) {
        mr_mdec_type_error(c, n, gotype, false);
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
