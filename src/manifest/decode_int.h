/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the manifest decoder (src/manifest/decode*.c): the engine that maps the
 * duplicate-preserving JSON tree onto C structs with the rules of Go's encoding/json
 * (decode_value.c), shared by the decoders of the manifest's sections (decode.c), of
 * x509.Certificate (decode_cert.c) and of time.Time (decode_time.c). Not part of the module
 * contract.
 *
 * Two kinds of failure exist, as in Go:
 *  - type mismatches are remembered in the dctx (the first one wins) and decoding goes on;
 *    the decoders return MR_SUCCESS for them;
 *  - errors of types with their own UnmarshalJSON (File, Certificate, time, IP) and running
 *    out of memory stop at once: the decoders return a failure.
 * Strings move from the tree into the model (the tree is private to one decode and every
 * node is mapped at most once).
 */
#ifndef MR_MANIFEST_DECODE_INT_H
#define MR_MANIFEST_DECODE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/result.h"
#include "manifest/manifest_int.h"

#define STACK_MAX 32

/* The state of one decode: the first remembered type error and the field path to it. */
typedef struct dctx {
    bool has_saved;
    char saved[MR_ERR_MSG_MAX];
    const char *stack[STACK_MAX];
    size_t depth;
    const char *sname; /* Go name of the struct whose field is being decoded */
} dctx;

typedef MR_RESULT (*field_fn)(dctx *c, mr_mj_node *v, void *obj);

typedef enum fkind {
    F_BOOL,
    F_STR,
    F_UINT,   /* uint / uint64 value */
    F_OPT_U64,
    F_OPT_UINT,
    F_OPT_U16,
    F_OPT_U8,
    F_OPT_BOOL, /* *bool: null resets, true/false set (has_off: the bool "present") */
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

/* One field of a Go struct: its JSON name, how it is decoded and where it is stored. */
typedef struct field {
    const char *name;
    fkind kind;
    size_t off;
    size_t has_off; /* F_OPT_*: offset of the bool */
    const char *gotype;
    field_fn fn;    /* F_CUSTOM: decodes the value into the whole struct */
} field;

#define FLD(T, jname, k, member, gt) {jname, k, offsetof(T, member), 0, gt, NULL}
#define OPT(T, jname, k, member, hasm, gt)                                                     \
    {jname, k, offsetof(T, member), offsetof(T, hasm), gt, NULL}
#define CUS(jname, f) {jname, F_CUSTOM, 0, 0, NULL, f}

typedef MR_RESULT (*elem_fn)(dctx *c, mr_mj_node *v, void *elem);
typedef void (*elem_free_fn)(void *elem);

/* The common layout of the model's maps and slices of structs. */
typedef struct gvec {
    void *items;
    size_t count;
    bool present;
} gvec;

/* Go's UnmarshalTypeError text, remembered when it is the first. with_literal: numbers into
 * numeric kinds show the literal. */
void mr_mdec_type_error(dctx *c, mr_mj_node *n, const char *gotype, bool with_literal);
/* "string", "number", "bool", "array", "object" or "null". */
const char *mr_mdec_kind_word(mr_mj_node *n);
/* Replaces *dst by a copy of s. */
MR_RESULT mr_mdec_mstr_set(mr_mstr *dst, const char *s, size_t len);
/* A JSON string into *out (null keeps it). */
MR_RESULT mr_mdec_string(dctx *c, mr_mj_node *n, mr_mstr *out);
/* Decodes an object into the struct at obj, field by field, on top of its current content.
 * sname and gotype are the Go names used in type errors. */
MR_RESULT mr_mdec_struct(dctx *c, mr_mj_node *n, void *obj, const char *sname,
                         const char *gotype, const field *fields, size_t nfields);
/* map[string]T (elements of esz bytes starting with their mr_mstr name, kept sorted): null
 * gives nil; each member is decoded into a fresh zero value that replaces an entry of the
 * same name (so repeated map fields merge). */
MR_RESULT mr_mdec_map(dctx *c, mr_mj_node *n, gvec *map, size_t esz, elem_fn fn,
                      elem_free_fn ff, const char *gotype);
/* []T of structs: null gives nil; an array is decoded into the existing elements (merging),
 * then truncated. */
MR_RESULT mr_mdec_slice(dctx *c, mr_mj_node *n, gvec *vec, size_t esz, elem_fn fn,
                        elem_free_fn ff, const char *gotype);

/* Secret.Cert (decode_cert.c): an x509.Certificate object, or a base64 DER string. */
MR_RESULT mr_mdec_cert(dctx *c, mr_mj_node *v, void *secret);
/* time.Time.UnmarshalJSON (decode_time.c): strict RFC 3339, Go's error texts. */
MR_RESULT mr_mdec_time(mr_mj_node *v, mr_manifest_time *t);

#endif
