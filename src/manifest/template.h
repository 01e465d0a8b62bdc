/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manifest template engine: the subset of Go's text/template that MarbleRun manifests use in
 * Marble `Parameters.Files` and `Parameters.Env` (spec coordinator.md §6.12).
 *
 * Supported syntax
 *   text outside actions (copied byte for byte), actions `{{ pipeline }}`, trim markers
 *   `{{- ` / ` -}}`, comments (`{{` slash-star ... star-slash `}}`), field chains `.A.B.C`
 *   (also from `$`),
 *   parenthesised pipelines `( ... )` and chains on them `(index .Secrets "a").Cert`,
 *   pipelines `x | f | g`, string literals ("..." with Go escapes, `raw`), decimal integers,
 *   `true`/`false`/`nil`, the builtin `index`, and the MarbleRun functions
 *     Files: pem hex raw base64        Env: pem hex string base64
 *   with exactly MarbleRun's argument rules and error texts (§6.12.3).
 * Not supported (rejected at parse time with a positioned error, although Go would accept
 * them): if/range/with/define/template/block, variable declarations (`$x := ...`), the other
 * Go builtins (len, print, printf, eq, ...), character constants and numbers other than
 * decimal integers. (A stray end/else/break/continue fails with Go's own text.)
 * Printing a whole Secret, Certificate, or one of the maps/structs is rejected at execution
 * time (Go would print its %v form, which contains key material and pointer addresses).
 * Approximated: Go's Unicode letter/digit classes in names (a small table of non-letter
 * ranges; exotic scripts' punctuation may differ). The Go type names in a few texts are those
 * of the dry run's types (manifest.SecretsWrapper, manifest.Secret, ...).
 *
 * Errors (category MR_ERR_USAGE) use Go's formats:
 *   parse:      "template: <name>:<line>: <message>"
 *   execution:  "template: <name>:<line>:<col>: executing \"<name>\" at <<node>>: <message>"
 *               e.g. `... at <pem .Secrets.foo>: error calling pem: secret does not exist`
 *   (<col> is the 0-based byte offset in the line and <node> the node's text, both as Go
 *   1.25 writes them). MarbleRun names every template "data" (MR_TMPL_NAME).
 * Out of memory is MR_ERR_INTERNAL.
 *
 * Usage: parse once, render many. A parsed template is immutable; several threads may render
 * the same template concurrently. Rendering writes function results of an action straight
 * into the output; only nested results (e.g. `index (hex .X) 0`) use a scratch buffer in
 * secret memory, wiped after each action. The provider's bytes are borrowed, never kept.
 * Exceeding out->max fails with "template: <name>: rendered output exceeds the limit of N
 * bytes" (MR_ERR_USAGE).
 *
 * Files: template_lex.c (lexer), template.c (parser, parse API), template_exec.c (execution).
 *
 * Secrets: rendered output can contain key material. Render into an mr_buf created with
 * MR_BUF_SECRET; its `max` bounds the output size.
 */
#ifndef MR_MANIFEST_TEMPLATE_H
#define MR_MANIFEST_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

/* The template name MarbleRun uses for every File/Env template (appears in error texts). */
#define MR_TMPL_NAME "data"
/* Largest template source accepted by mr_tmpl_parse. */
#define MR_TMPL_SOURCE_MAX ((size_t)4 << 20)
/* Deepest nesting of parenthesised pipelines. */
#define MR_TMPL_DEPTH_MAX 32

/* Which function set applies (§6.12.3): `raw` only in Files, `string` only in Env. Using a
 * function of the other set is a parse error (`function "raw" not defined`). */
typedef enum mr_tmpl_mode { MR_TMPL_FILES = 0, MR_TMPL_ENV = 1 } mr_tmpl_mode;

/*
 * One secret as the template sees it (Go's manifest.Secret). All pointers are borrowed for the
 * duration of one mr_tmpl_render call.
 *   .Type .Size .Shared .UserDefined .ValidFor   print as Go does (string, decimal, true/false)
 *   .Cert      certificate (DER in `cert`; empty = the zero certificate of symmetric/plain)
 *   .Cert.Raw  the same DER as plain bytes
 *   .Private   PKCS#8 DER for cert-* secrets; the key bytes for symmetric-key/plain
 *   .Public    PKIX DER for cert-* secrets; the key bytes for symmetric-key/plain
 * `placeholder` (dry run, §6.12.5): the value parts are ignored and replaced by dummies that
 * are non-empty exactly where a real value would be: for user-defined secrets (and any
 * non-generated type) Cert, Private and Public are the single byte 0x41 (as MarbleRun's
 * dummies); for generated cert-* the same; for generated symmetric-key Private = Public = 0x41
 * and Cert stays empty.
 */
typedef struct mr_tmpl_secret {
    const char *type; /* NUL-terminated; NULL means "" */
    uint64_t size;
    bool shared;
    bool user_defined;
    uint64_t valid_for;
    mr_slice cert;
    mr_slice priv;
    mr_slice pub;
    bool placeholder;
} mr_tmpl_secret;

/* Resolves a secret name (exact, case-sensitive bytes; not NUL-terminated) to a secret, or
 * NULL when the map has no such entry. Must not fail otherwise; called during rendering. */
typedef const mr_tmpl_secret *(*mr_tmpl_lookup_fn)(void *ctx, const char *name, size_t name_len);

/*
 * The data ("dot") of a render (§6.12.2):
 *   .MarbleRun.RootCA / .MarbleCert / .CoordinatorRoot / .CoordinatorIntermediate
 *       NULL pointer = the zero Secret (all parts empty).
 *   .Secrets.<name>, index .Secrets "<name>"            via `secrets` (NULL fn = empty map)
 *   .Previous.Secrets.<name>                             via `previous_secrets`
 * A name missing from a map yields Go's "no value" for field access (reaching a function as
 * nil: "secret does not exist"; printed bare as "<no value>") and the zero Secret for `index`.
 */
typedef struct mr_tmpl_data {
    const mr_tmpl_secret *root_ca;
    const mr_tmpl_secret *marble_cert;
    const mr_tmpl_secret *coordinator_root;
    const mr_tmpl_secret *coordinator_intermediate;
    mr_tmpl_lookup_fn secrets;
    void *secrets_ctx;
    mr_tmpl_lookup_fn previous_secrets;
    void *previous_ctx;
} mr_tmpl_data;

/* A ready-made map for mr_tmpl_data: pass mr_tmpl_table_lookup as the function and a
 * `const mr_tmpl_secret_table *` as its ctx. Linear search; names are NUL-terminated. */
typedef struct mr_tmpl_named_secret {
    const char *name;
    mr_tmpl_secret secret;
} mr_tmpl_named_secret;

typedef struct mr_tmpl_secret_table {
    const mr_tmpl_named_secret *entries;
    size_t count;
} mr_tmpl_secret_table;

const mr_tmpl_secret *mr_tmpl_table_lookup(void *table, const char *name, size_t name_len);

/* Opaque parsed template. */
typedef struct mr_tmpl mr_tmpl;

/* Parses `src` (len bytes, need not be NUL-terminated, may contain any bytes outside actions)
 * under the function set of `mode`. `name` is used in error texts (pass MR_TMPL_NAME). On
 * success *out owns a new template (free with mr_tmpl_free). Errors: MR_ERR_USAGE with Go's
 * parse-error text; MR_ERR_INTERNAL when out of memory. */
MR_RESULT mr_tmpl_parse(const char *name, const uint8_t *src, size_t len, mr_tmpl_mode mode,
                        mr_tmpl **out);
/* NULL-safe. */
void mr_tmpl_free(mr_tmpl *t);

/* True when the template has no actions except comments: rendering yields the text as is. */
bool mr_tmpl_is_static(const mr_tmpl *t);
enum {
    /* Dry run (§6.12.5): `.MarbleRun.*` take MarbleRun's dummy values whatever `data` says
     * (RootCA, CoordinatorRoot, CoordinatorIntermediate: Cert = 0x41; MarbleCert: Cert,
     * Private, Public = 0x41). `data` may then leave them NULL. */
    MR_TMPL_DRY_RUN = 1u << 0,
};

/* Executes the template against `data` and appends the output to `out`. On failure nothing
 * is appended (a partial output is wiped and cut off) and the error is MR_ERR_USAGE with
 * Go's execution-error text (also when the output would exceed out->max), or
 * MR_ERR_INTERNAL when out of memory. */
MR_RESULT mr_tmpl_render(const mr_tmpl *t, const mr_tmpl_data *data, unsigned flags,
                         mr_buf *out);

/* Dry run of one File/Env template as SetManifest and POST /secrets do: parse, then render
 * with MR_TMPL_DRY_RUN into a scratch buffer that is discarded. `data` may be NULL (no
 * secrets at all). Same errors as parse/render. */
MR_RESULT mr_tmpl_check(const char *name, const uint8_t *src, size_t len, mr_tmpl_mode mode,
                        const mr_tmpl_data *data);

#ifdef MR_TMPL_INTERNAL
/* ---- Private to src/manifest/template*.c: the parsed form. Not part of the API. ---- */

typedef enum tok_type {
    TK_ERROR, TK_EOF, TK_TEXT, TK_LDELIM, TK_RDELIM, TK_SPACE, TK_FIELD, TK_DOT, TK_IDENT,
    TK_VAR, TK_STRING, TK_RAWSTRING, TK_NUMBER, TK_COMPLEX, TK_CHARCONST, TK_BOOL, TK_NIL,
    TK_PIPE, TK_LPAREN, TK_RPAREN, TK_CHAR, TK_DECLARE, TK_ASSIGN, TK_KEYWORD,
} tok_type;

typedef struct token {
    uint8_t type;
    uint32_t pos; /* byte offset in the source */
    uint32_t len;
} token;

typedef enum node_type {
    N_TEXT, N_ACTION, N_PIPE, N_CMD, N_FIELD, N_CHAIN, N_VAR, N_IDENT, N_DOT, N_NIL, N_BOOL,
    N_NUM, N_STR,
} node_type;

typedef enum fn_id { FN_NONE = 0, FN_INDEX, FN_PEM, FN_HEX, FN_RAW, FN_BASE64, FN_STRING } fn_id;

#define NONE UINT32_MAX
#define MR_TMPL_MAX_ARGS 16 /* operands per command */
#define MR_TMPL_MAX_CMDS 16 /* commands per pipeline */

typedef struct span {
    uint32_t off, len; /* into the source */
} span;

/* One node of the tree; children and names are contiguous ranges of mr_tmpl.kids/.names.
 *   N_TEXT    off/len: source bytes           N_ACTION  kid: the pipe
 *   N_PIPE    kids: commands                  N_CMD     kids: arguments (first = operand)
 *   N_FIELD   names: .A.B                     N_VAR     names: "$" then fields
 *   N_CHAIN   kid: base operand; names        N_IDENT   fn; names: the identifier
 *   N_STR     off/len: decoded literal in lits   N_NUM num; N_BOOL bval
 * pos is Go's node position (used for line:col); src_off/src_len the token text. */
typedef struct node {
    uint8_t type;
    uint8_t fn;
    bool bval;
    uint32_t pos;
    uint32_t kid0, nkids;
    uint32_t name0, nnames;
    uint32_t off, len;
    uint32_t src_off, src_len;
    int64_t num;
} node;

struct mr_tmpl {
    char *name;
    uint8_t *src; /* private copy, NUL-terminated */
    size_t src_len;
    mr_tmpl_mode mode;
    bool has_actions;
    node *nodes;
    uint32_t nnodes, capnodes;
    uint32_t *kids;
    uint32_t nkids, capkids;
    span *names;
    uint32_t nnames, capnames;
    mr_buf lits;
    uint32_t root0, nroot; /* top-level N_TEXT/N_ACTION nodes, in kids */
};

/* Appends item to a growable array of elem-sized items. */
MR_RESULT mr_tmpl_vec_push_(void **data, uint32_t *count, uint32_t *cap, size_t elem,
                            const void *item);
/* Cuts src into tokens; ends with TK_EOF or TK_ERROR (message in *errmsg, NUL-terminated).
 * The caller frees *toks (mr_free) and *errmsg. */
MR_RESULT mr_tmpl_lex_(const uint8_t *src, size_t len, token **toks, uint32_t *ntoks,
                       mr_buf *errmsg);
/* Go's strconv.Quote of s (at most max_runes characters). */
MR_RESULT mr_tmpl_quote_(mr_buf *b, const uint8_t *s, size_t n, size_t max_runes);
/* 1-based line of a source offset. */
size_t mr_tmpl_line_(const mr_tmpl *t, size_t pos);
/* Go's Node.String() of node idx. */
MR_RESULT mr_tmpl_node_string_(const mr_tmpl *t, uint32_t idx, mr_buf *b);
#endif /* MR_TMPL_INTERNAL */

#endif
