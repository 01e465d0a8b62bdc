/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to src/manifest: the JSON tree with duplicate keys preserved, shared helpers of the
 * decoder, encoder and validator. Not part of the module contract.
 */
#ifndef MR_MANIFEST_INT_H
#define MR_MANIFEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/result.h"
#include "manifest/manifest.h"

typedef enum mr_mj_kind {
    MR_MJ_NULL = 0,
    MR_MJ_BOOL,
    MR_MJ_NUMBER,
    MR_MJ_STRING,
    MR_MJ_ARRAY,
    MR_MJ_OBJECT,
} mr_mj_kind;

/* One JSON value. Strings are unescaped with invalid UTF-8 and lone surrogates replaced by
 * U+FFFD (as Go does); numbers keep their literal text. Objects keep every member in input
 * order, duplicates included. Everything is owned by the node. */
typedef struct mr_mj_node {
    mr_mj_kind kind;
    bool boolean;
    char *str; /* string value or number literal, NUL-terminated */
    size_t len;
    struct mr_mj_node *kids; /* array elements / object member values */
    mr_mstr *keys;           /* object member names (nkids of them) */
    size_t nkids;
} mr_mj_node;

/* RFC 8259 parse of exactly one value (json.Unmarshal): only whitespace may follow. Errors use
 * Go's scanner texts, e.g. "invalid character 'x' looking for beginning of value",
 * "unexpected end of JSON input". */
MR_RESULT mr_manifest_json_parse(const uint8_t *in, size_t len, mr_mj_node *root);
void mr_manifest_json_free(mr_mj_node *n);

/* Go's strings.ToLower for the ASCII range plus the two runes that lower to ASCII (U+0130,
 * U+212A); other bytes are copied. Writes a NUL-terminated copy into out (cap bytes). Returns
 * false when it does not fit. */
bool mr_manifest_lower(const char *s, size_t len, char *out, size_t cap);
/* Go's strings.EqualFold. */
bool mr_manifest_equal_fold(const char *a, size_t alen, const char *b, size_t blen);

bool mr_manifest_mstr_eq(const mr_mstr *a, const mr_mstr *b);
bool mr_manifest_mstr_eq_c(const mr_mstr *a, const char *s);
/* Binary search of a sorted map whose elements start with an mr_mstr name. */
const void *mr_manifest_map_find(const void *items, size_t count, size_t esz, const char *name,
                                 size_t name_len);

void mr_manifest_mstr_free(mr_mstr *s);
void mr_manifest_mstr_list_free(mr_mstr_list *l);

/* Element destructors (model.c), used by the decoder for replaced map entries. */
void mr_manifest_package_free_(mr_manifest_package *p);
void mr_manifest_tdx_free_(mr_manifest_tdx *t);
void mr_manifest_snp_free_(mr_manifest_snp *s);
void mr_manifest_infra_free_(mr_manifest_infra *i);
void mr_manifest_file_free_(mr_manifest_file *f);
void mr_manifest_marble_free_(mr_manifest_marble *m);
void mr_manifest_cert_free_(mr_manifest_cert *c);
void mr_manifest_secret_free_(mr_manifest_secret *s);
void mr_manifest_user_free_(mr_manifest_user *u);
void mr_manifest_role_free_(mr_manifest_role *r);
void mr_manifest_reckey_free_(mr_manifest_recovery_key *k);
void mr_manifest_tls_list_free_(mr_manifest_tls_list *l);
void mr_manifest_tls_tag_free_(mr_manifest_tls_tag *t);

/* The MarbleRun-C checks of one TLS entry (validate_ttls.c), after MarbleRun's. */
MR_RESULT mr_manifest_check_tls_ext_(const mr_manifest *m, const char *tag, bool incoming,
                                     const mr_manifest_tls_entry *e);
/* Package.TDX / Package.SNP (tee.c): formats and combinations of every package's fields;
 * and, for a package a marble uses, the identity rule (a measurement is set; with Debug a
 * missing one only logs a warning). Texts name the package and the field. */
MR_RESULT mr_manifest_check_tee_packages_(const mr_manifest *m);
MR_RESULT mr_manifest_check_tee_identity_(const mr_manifest_package *p);

#endif
