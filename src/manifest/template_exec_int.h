/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the template executor (src/manifest/template_exec.c, template_data.c,
 * template_fn.c): the values it computes with and the state of one rendering. Not part of the
 * API (see template.h).
 *
 * Values mirror the Go types MarbleRun puts into the template data (manifest.SecretsWrapper,
 * manifest.Secret, Certificate, PublicKey, PrivateKey, ...) so that field access, `index`, the
 * secret functions and printing behave and fail as Go's text/template does with them.
 * Provider bytes are borrowed; function results that are new bytes (pem, hex, base64) go to
 * a scratch buffer in secret memory that is wiped after every action, or, for the last
 * command of an action, straight into the output.
 *
 * Failures: execution errors are MR_ERR_USAGE with Go's text (mr_tmpl_x_fail_); a secret
 * function's own error (Go's "error calling pem: ...") is handed back as a Go error text in
 * *goerr with MR_SUCCESS; out of memory is MR_ERR_INTERNAL.
 */
#ifndef MR_MANIFEST_TEMPLATE_EXEC_INT_H
#define MR_MANIFEST_TEMPLATE_EXEC_INT_H

#define MR_TMPL_INTERNAL 1
#include "manifest/template.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

typedef enum vkind {
    V_NONE,     /* Go's "no value" (missing map entry, or anything reached through it) */
    V_NIL,      /* an untyped nil handed to a function */
    V_ROOT,     /* the data: SecretsWrapper */
    V_RESERVED, /* .MarbleRun */
    V_PREVIOUS, /* .Previous */
    V_MAP,      /* .Secrets or .Previous.Secrets */
    V_SECRET,
    V_CERT,
    V_PUBLIC,
    V_PRIVATE,
    V_BYTES, /* []byte (Cert.Raw) */
    V_STRING,
    V_UINT,
    V_INT,
    V_UINT8,
    V_BOOL,
    V_EMITTED, /* a function result already written to the output (top-level last command) */
} vkind;

typedef struct val {
    const mr_tmpl_secret *sec; /* V_SECRET */
    mr_slice bytes;            /* byte kinds and V_STRING (ptr unused when scratch) */
    size_t off;                /* V_STRING in the scratch buffer */
    uint64_t u;                /* V_UINT, V_UINT8 */
    int64_t i;                 /* V_INT */
    uint8_t kind;
    uint8_t map;  /* V_MAP: 0 = .Secrets, 1 = .Previous.Secrets */
    bool scratch; /* V_STRING stored in the scratch buffer at `off` */
    bool b;       /* V_BOOL */
} val;

typedef struct exec {
    const mr_tmpl *t;
    const mr_tmpl_data *data;
    bool dry;
    mr_buf scratch;
    size_t out_max;
    mr_buf *out;
    uint32_t direct_cmd; /* the action's last command: its result goes straight to `out` */
    uint32_t at;         /* node for the error context (Go's state.at) */
    char goerr[160];
} exec;

/* The parts of a secret a value can stand for. */
enum part { P_CERT, P_PRIV, P_PUB };

static inline val v_root(void) { return (val){.kind = V_ROOT}; }
static inline const node *nd(const exec *x, uint32_t idx) { return &x->t->nodes[idx]; }
static inline uint32_t kid(const exec *x, const node *n, uint32_t i)
{
    return x->t->kids[n->kid0 + i];
}

/* ---- template_exec.c ---- */

/* Go's state.errorf: "template: <name>:<line>:<col>: executing "<name>" at <<ctx>>: <msg>",
 * at node x->at. Always fails. */
MR_RESULT mr_tmpl_x_fail_(exec *x, const char *fmt, ...) MR_PRINTF(2, 3);
/* "template: <name>: rendered output exceeds the limit of <max> bytes" unless `need` more
 * bytes fit into dst. */
MR_RESULT mr_tmpl_check_room_(const exec *x, const mr_buf *dst, size_t need);

/* ---- template_data.c: the data model ---- */

/* Go's type name of a value, for messages. */
const char *mr_tmpl_type_name_(const val *v);
/* A secret's certificate, private or public key (a placeholder's dummy bytes in dry runs). */
mr_slice mr_tmpl_secret_part_(const mr_tmpl_secret *s, enum part which);
/* The bytes of a byte or string value (in the scratch buffer or borrowed). */
mr_slice mr_tmpl_vbytes_(const exec *x, const val *v);
/* A Secret value; NULL gives the zero Secret. */
val mr_tmpl_v_secret_(const mr_tmpl_secret *s);
/* The secret `name` of .Secrets (map 0) or .Previous.Secrets (map 1); NULL when absent. */
const mr_tmpl_secret *mr_tmpl_lookup_(const exec *x, int map, const uint8_t *name, size_t n);
/* Go's evalFieldChain over names[from..] of node n on *v (replaced by the result); only the
 * last name sees the arguments (has_args). */
MR_RESULT mr_tmpl_eval_names_(exec *x, const node *n, uint32_t from, bool has_args, val *v);

/* ---- template_fn.c: index, pem, hex, raw, base64, string ---- */

/* Calls function fn with argc values; the result is *out, new bytes are appended to dst
 * (the output or the scratch buffer). A Go error of the function is *goerr. */
MR_RESULT mr_tmpl_call_fn_(exec *x, mr_buf *dst, uint8_t fn, const val *argv, size_t argc,
                           val *out, const char **goerr);

#endif
