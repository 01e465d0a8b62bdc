/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recovery (spec/coordinator.md §12.8, 1.9.1): issuing recovery secrets with their recovery
 * data, and recovering a sealed state from uploaded secrets. See recovery.h.
 */
#include "coordinator/core/recovery.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/file.h"
#include "common/log.h"
#include "coordinator/core/core_int.h"
#include "crypto/hash.h"
#include "crypto/key.h"
#include "crypto/rsa.h"
#include "crypto/share.h"

#define EPHEMERAL_BITS 4096
#define RECOVERY_DATA_MAX (256u << 10)
#define SHAMIR_SHARE_LEN (MR_STORE_DEK_LEN + 1)
/* Secrets collected without recovery data (only the key itself is tested then). */
#define LEGACY_KEY_LEN 16

typedef enum scheme { SCHEME_NONE = 0, SCHEME_XOR, SCHEME_SHAMIR } scheme;

struct core_recovery {
    EVP_PKEY *ephemeral;
    /* recovery data as read from the seal dir (once per recovery mode) */
    bool data_loaded;
    scheme scheme;
    unsigned threshold;
    unsigned keys;
    size_t n_hashes;
    uint8_t (*hashes)[MR_SHA256_LEN];
    bool *used;
    /* collected secrets (back to back, all secret_len long) and their signatures */
    mr_buf secrets; /* MR_BUF_SECRET */
    size_t secret_len;
    size_t count;
    mr_buf *sigs;
    size_t sig_cap;
};

/* ------------------------------------------------------------------------------------------ */
/* recovery state                                                                             */

static void reset_collection(core_recovery *r)
{
    mr_buf_free(&r->secrets);
    for (size_t i = 0; i < r->count && r->sigs != NULL; i++)
        mr_buf_free(&r->sigs[i]);
    r->count = 0;
    r->secret_len = 0;
    for (size_t i = 0; i < r->n_hashes; i++)
        r->used[i] = false;
}

static void forget_data(core_recovery *r)
{
    mr_free(r->hashes);
    mr_free(r->used);
    r->hashes = NULL;
    r->used = NULL;
    r->n_hashes = 0;
    r->scheme = SCHEME_NONE;
    r->threshold = r->keys = 0;
    r->data_loaded = false;
}

void core_recovery_free(core_recovery *r)
{
    if (r == NULL)
        return;
    reset_collection(r);
    forget_data(r);
    mr_free(r->sigs);
    EVP_PKEY_free(r->ephemeral);
    mr_free(r);
}

static MR_RESULT get_state(mr_core *c, core_recovery **out)
{
    if (c->recovery == NULL) {
        c->recovery = mr_calloc(1, sizeof(core_recovery));
        MR_ENSURE_ALLOC(c->recovery);
        mr_buf_init(&c->recovery->secrets, 0, MR_BUF_SECRET);
    }
    *out = c->recovery;
    return MR_SUCCESS;
}

static MR_RESULT data_path(mr_core *c, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", mr_sealer_dir(c->sealer), MR_RECOVERY_DATA_FILE);
    MR_ENSURE(n > 0 && (size_t)n < size, MR_ERR_USAGE, "seal directory path too long");
    return MR_SUCCESS;
}

/* ------------------------------------------------------------------------------------------ */
/* issuing                                                                                    */

static MR_RESULT encrypt_share(const mr_manifest_recovery_key *k, mr_slice share,
                               mr_core_recovery_secret *out)
{
    mr_buf der;
    EVP_PKEY *pub = NULL;
    mr_result res = MR_FAILURE;
    mr_buf_init(&der, 0, 0);
    mr_buf_init(&out->value, 0, 0);
    MR_GUARD_OUT(mr_manifest_recovery_key_der(k, &der));
    MR_GUARD_OUT(mr_key_public_from_der(mr_buf_slice(&der), MR_KEYFMT_PKIX, &pub));
    MR_GUARD_OUT(mr_rsa_oaep_encrypt(pub, share, &out->value));
    out->name = mr_strdup(k->name.ptr != NULL ? k->name.ptr : "");
    MR_ENSURE_ALLOC_OUT(out->name);
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        mr_buf_free(&out->value);
    EVP_PKEY_free(pub);
    mr_buf_free(&der);
    return res;
}

/* {"version":1,"scheme":"xor"|"shamir","threshold":t,"keys":n,"shareHashes":{"<hex>":true}} */
static MR_RESULT data_json(scheme s, unsigned t, unsigned n, const mr_buf *shares,
                           size_t share_len, mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out, "{\"version\":1,\"scheme\":\"%s\",\"threshold\":%u,\"keys\":%u,"
                                "\"shareHashes\":{",
                           s == SCHEME_XOR ? "xor" : "shamir", t, n));
    for (unsigned i = 0; i < n; i++) {
        uint8_t h[MR_SHA256_LEN];
        MR_GUARD(mr_sha256(shares->data + (size_t)i * share_len, share_len, h));
        MR_GUARD(mr_buf_append_str(out, i == 0 ? "\"" : ",\""));
        MR_GUARD(mr_hex_encode_buf(h, sizeof(h), out));
        MR_GUARD(mr_buf_append_str(out, "\":true"));
    }
    return mr_buf_append_str(out, "}}\n");
}

static MR_RESULT write_data(mr_core *c, scheme s, unsigned t, unsigned n, const mr_buf *shares,
                            size_t share_len)
{
    mr_result res = MR_FAILURE;
    char path[PATH_MAX];
    mr_buf json;
    mr_buf_init(&json, RECOVERY_DATA_MAX, 0);
    MR_GUARD(data_path(c, path, sizeof(path)));
    MR_GUARD_OUT(data_json(s, t, n, shares, share_len, &json));
    MR_GUARD_OUT(mr_file_write_atomic(path, json.data, json.len, 0600));
    res = MR_SUCCESS;
out:
    mr_buf_free(&json);
    if (!mr_ok(res))
        mr_error_prefix("writing recovery data");
    return res;
}

static MR_RESULT remove_data(mr_core *c)
{
    char path[PATH_MAX];
    MR_GUARD(data_path(c, path, sizeof(path)));
    MR_ENSURE(unlink(path) == 0 || errno == ENOENT, MR_ERR_IO,
              "removing the recovery data %s failed: %s", path, strerror(errno));
    return MR_SUCCESS;
}

static MR_RESULT issue(mr_core *c, const mr_manifest *m, mr_slice dek,
                       mr_core_recovery_secrets *out, mr_buf *data)
{
    mr_result res = MR_FAILURE;
    size_t n = m->recovery_keys.count;
    uint64_t t = m->config.recovery_threshold;
    size_t share_len = dek.len;
    scheme s = SCHEME_NONE;
    mr_buf shares;
    mr_buf_init(&shares, 0, MR_BUF_SECRET);
    memset(out, 0, sizeof(*out));
    /* a new state key ends any recovery in progress */
    core_recovery_free(c->recovery);
    c->recovery = NULL;
    if (n < 2) {
        if (data == NULL)
            MR_GUARD_OUT(remove_data(c));
        if (n == 0) {
            res = MR_SUCCESS;
            goto out;
        }
        MR_GUARD_OUT(mr_buf_set(&shares, dek.ptr, dek.len));
    } else if (t == 0 || t == n) {
        s = SCHEME_XOR;
        MR_GUARD_OUT(mr_xor_split(dek, (unsigned)n, &shares));
    } else {
        MR_ENSURE_OUT(t >= 2 && t < n && n <= MR_SHARE_MAX, MR_ERR_USAGE,
                      "invalid configuration to create recovery key: %zu recovery keys with "
                      "recovery threshold of %llu", n, (unsigned long long)t);
        s = SCHEME_SHAMIR;
        MR_GUARD_OUT(mr_shamir_split(dek, (unsigned)t, (unsigned)n, &shares));
        share_len = dek.len + 1;
    }
    out->items = mr_calloc(n, sizeof(*out->items));
    MR_ENSURE_ALLOC_OUT(out->items);
    for (size_t i = 0; i < n; i++) {
        MR_GUARD_OUT(encrypt_share(&m->recovery_keys.items[i],
                                   MR_SLICE(shares.data + i * share_len, share_len),
                                   &out->items[i]));
        out->count++;
    }
    if (s != SCHEME_NONE && data != NULL)
        MR_GUARD_OUT(data_json(s, s == SCHEME_XOR ? (unsigned)n : (unsigned)t, (unsigned)n,
                               &shares, share_len, data));
    else if (s != SCHEME_NONE)
        MR_GUARD_OUT(write_data(c, s, s == SCHEME_XOR ? (unsigned)n : (unsigned)t, (unsigned)n,
                                &shares, share_len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&shares);
    if (!mr_ok(res))
        mr_core_recovery_secrets_free(out);
    return res;
}

MR_RESULT core_recovery_issue(mr_core *c, const mr_manifest *m, mr_slice dek,
                              mr_core_recovery_secrets *out)
{
    return issue(c, m, dek, out, NULL);
}

MR_RESULT core_recovery_issue_shared(mr_core *c, const mr_manifest *m, mr_slice dek,
                                     mr_core_recovery_secrets *out, mr_buf *data)
{
    return issue(c, m, dek, out, data);
}

/* ------------------------------------------------------------------------------------------ */
/* recovery data                                                                              */

static MR_RESULT parse_data(core_recovery *r, const mr_buf *text)
{
    json_error_t err;
    mr_result res = MR_FAILURE;
    json_t *root = json_loadb((const char *)text->data, text->len, 0, &err);
    MR_ENSURE(root != NULL, MR_ERR_PROTOCOL, "malformed recovery data: %s", err.text);
    json_t *sch = json_object_get(root, "scheme");
    json_t *thr = json_object_get(root, "threshold");
    json_t *keys = json_object_get(root, "keys");
    json_t *hashes = json_object_get(root, "shareHashes");
    MR_ENSURE_OUT(json_is_string(sch) && json_is_integer(thr) && json_is_integer(keys) &&
                      json_is_object(hashes),
                  MR_ERR_PROTOCOL, "malformed recovery data");
    const char *name = json_string_value(sch);
    json_int_t t = json_integer_value(thr), n = json_integer_value(keys);
    size_t count = json_object_size(hashes);
    MR_ENSURE_OUT(n >= 2 && n <= MR_SHARE_MAX && (size_t)n == count && t >= 2 && t <= n,
                  MR_ERR_PROTOCOL, "malformed recovery data: inconsistent counts");
    if (strcmp(name, "xor") == 0 && t == n)
        r->scheme = SCHEME_XOR;
    else if (strcmp(name, "shamir") == 0 && t < n)
        r->scheme = SCHEME_SHAMIR;
    else
        MR_BAIL_OUT(MR_ERR_PROTOCOL, "malformed recovery data: unknown scheme");
    r->hashes = mr_calloc(count, sizeof(*r->hashes));
    r->used = mr_calloc(count, sizeof(bool));
    MR_ENSURE_ALLOC_OUT(r->hashes);
    MR_ENSURE_ALLOC_OUT(r->used);
    const char *k;
    json_t *v;
    json_object_foreach(hashes, k, v)
    {
        MR_ENSURE_OUT(json_is_true(v), MR_ERR_PROTOCOL, "malformed recovery data");
        MR_GUARD_OUT(mr_hex_decode_fixed(k, strlen(k), r->hashes[r->n_hashes], MR_SHA256_LEN));
        r->n_hashes++;
    }
    r->threshold = (unsigned)t;
    r->keys = (unsigned)n;
    res = MR_SUCCESS;
out:
    json_decref(root);
    return res;
}

MR_RESULT core_recovery_data_check(const uint8_t *json, size_t len)
{
    core_recovery r;
    mr_result res = MR_FAILURE;
    mr_buf text;
    memset(&r, 0, sizeof(r));
    mr_buf_init(&text, RECOVERY_DATA_MAX, 0);
    MR_GUARD_OUT(mr_buf_set(&text, json, len));
    MR_GUARD_OUT(parse_data(&r, &text));
    res = MR_SUCCESS;
out:
    forget_data(&r);
    mr_buf_free(&text);
    return res;
}

/* The recovery data from the seal dir, or a shared state's meta entry; *found = false when
 * there is none. */
static MR_RESULT read_data(mr_core *c, core_recovery *r, bool *found)
{
    mr_result res = MR_FAILURE;
    char path[PATH_MAX];
    mr_buf text;
    mr_buf_init(&text, RECOVERY_DATA_MAX, 0);
    *found = false;
    if (c->dist != NULL) {
        MR_GUARD_OUT(core_dist_get_recovery_data(c, &text, found));
    } else {
        MR_GUARD_OUT(data_path(c, path, sizeof(path)));
        *found = access(path, F_OK) == 0;
        if (*found)
            MR_GUARD_OUT(mr_file_read(path, RECOVERY_DATA_MAX, &text));
    }
    if (*found)
        MR_GUARD_OUT(parse_data(r, &text));
    res = MR_SUCCESS;
out:
    mr_buf_free(&text);
    return res;
}

/* Reads <seal dir>/recovery_data (a shared state: its meta entry) once per recovery mode.
 * Absent or unreadable data means "no recovery data": the uploaded secret is then tried as
 * the key itself. */
static MR_RESULT load_data(mr_core *c, core_recovery *r)
{
    if (r->data_loaded)
        return MR_SUCCESS;
    bool found = false;
    if (!mr_ok(read_data(c, r, &found))) {
        if (mr_error_is(MR_ERR_UNAVAILABLE)) /* etcd: try again with the next upload */
            return MR_FAILURE;
        MR_LOG_WARN("recovery data cannot be used; uploaded secrets are tried as the state key",
                    MR_F_ERR());
        mr_error_clear();
        forget_data(r);
    }
    r->data_loaded = true;
    return MR_SUCCESS;
}

/* ------------------------------------------------------------------------------------------ */
/* ephemeral key                                                                              */

static MR_RESULT require_recovery_state(mr_core *c)
{
    core_epoch *e = core_epoch_get(c);
    int s = e->state;
    core_epoch_put(e);
    MR_ENSURE(s == MR_STATE_RECOVERY, MR_ERR_STATE, "server is not in expected state");
    return MR_SUCCESS;
}

MR_RESULT mr_core_recovery_public_key(mr_core *c, mr_buf *der)
{
    mr_result res = MR_FAILURE;
    core_recovery *r = NULL;
    pthread_mutex_lock(&c->writer);
    MR_GUARD_OUT(require_recovery_state(c));
    MR_GUARD_OUT(get_state(c, &r));
    if (r->ephemeral == NULL) {
        if (!mr_ok(mr_key_generate(MR_KEY_RSA, EPHEMERAL_BITS, &r->ephemeral))) {
            mr_error_prefix("getting ephemeral public key");
            goto out;
        }
        MR_LOG_INFO("created an ephemeral key for encrypting recovery secrets");
    }
    MR_GUARD_OUT(mr_key_public_to_der(r->ephemeral, MR_KEYFMT_PKIX, der));
    res = MR_SUCCESS;
out:
    pthread_mutex_unlock(&c->writer);
    return res;
}

MR_RESULT mr_core_recovery_decrypt(mr_core *c, mr_slice ciphertext, mr_buf *plain)
{
    mr_result res = MR_FAILURE;
    pthread_mutex_lock(&c->writer);
    MR_GUARD_OUT(require_recovery_state(c));
    MR_ENSURE_OUT(c->recovery != NULL && c->recovery->ephemeral != NULL, MR_ERR_USAGE,
                  "no ephemeral recovery key has been requested");
    MR_GUARD_OUT(mr_rsa_oaep_decrypt(c->recovery->ephemeral, ciphertext, plain));
    res = MR_SUCCESS;
out:
    pthread_mutex_unlock(&c->writer);
    return res;
}

/* ------------------------------------------------------------------------------------------ */
/* recovering                                                                                 */

static mr_slice collected(const core_recovery *r, size_t i)
{
    return MR_SLICE(r->secrets.data + i * r->secret_len, r->secret_len);
}

/* Stores a secret and its signature in the collection. */
static MR_RESULT collect(core_recovery *r, mr_slice secret, mr_slice sig)
{
    if (r->count == r->sig_cap) {
        size_t cap = r->sig_cap == 0 ? 4 : r->sig_cap * 2;
        mr_buf *n = mr_realloc(r->sigs, cap * sizeof(mr_buf));
        MR_ENSURE_ALLOC(n);
        r->sigs = n;
        r->sig_cap = cap;
    }
    mr_buf_init(&r->sigs[r->count], 0, 0);
    MR_GUARD(mr_buf_set(&r->sigs[r->count], sig.ptr, sig.len));
    if (!mr_ok(mr_buf_append(&r->secrets, secret.ptr, secret.len))) {
        mr_buf_free(&r->sigs[r->count]);
        return MR_FAILURE;
    }
    r->secret_len = secret.len;
    r->count++;
    return MR_SUCCESS;
}

static MR_RESULT check_length(const core_recovery *r, mr_slice secret, bool shamir)
{
    bool ok = shamir ? secret.len == SHAMIR_SHARE_LEN
                     : secret.len == LEGACY_KEY_LEN || secret.len == MR_STORE_DEK_LEN;
    MR_ENSURE(ok, MR_ERR_USAGE, "setting recovery key: invalid secret length");
    MR_ENSURE(r->count == 0 || r->secret_len == secret.len, MR_ERR_USAGE,
              "setting recovery key: recovery secrets must match in length: provided secret "
              "has length %zu, but previous provided secrets have length %zu",
              secret.len, r->secret_len);
    return MR_SUCCESS;
}

/* Marks the unused recovery-data entry of secret's hash as used. */
static MR_RESULT take_hash(core_recovery *r, mr_slice secret)
{
    uint8_t h[MR_SHA256_LEN];
    MR_GUARD(mr_sha256(secret.ptr, secret.len, h));
    for (size_t i = 0; i < r->n_hashes; i++) {
        if (!r->used[i] && CRYPTO_memcmp(h, r->hashes[i], MR_SHA256_LEN) == 0) {
            r->used[i] = true;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_USAGE, "setting recovery key: uploaded an invalid or already used secret");
}

static size_t used_count(const core_recovery *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_hashes; i++)
        n += r->used[i] ? 1 : 0;
    return n;
}

/* Opens the sealed state read-only with a candidate key. A key that does not decrypt (or a
 * state that does not verify) is *wrong with the store's message in the error slot. */
static MR_RESULT try_key(mr_core *c, mr_slice key, mr_store **st, bool *wrong)
{
    bool exists = false;
    *wrong = false;
    *st = NULL;
    if (c->dist != NULL)
        return core_dist_try_key(c, key, st, wrong);
    MR_GUARD(mr_store_embedded_exists(mr_sealer_dir(c->sealer), &exists));
    if (!exists) {
        *wrong = true;
        MR_BAIL(MR_ERR_NOT_FOUND, "loading sealed state: no sealed state found");
    }
    if (key.len != MR_STORE_DEK_LEN) {
        *wrong = true;
        MR_BAIL(MR_ERR_USAGE, "loading sealed state: the state key must be %u bytes",
                MR_STORE_DEK_LEN);
    }
    /* Read-only use: nothing is committed to this store; it is closed before the key is
     * installed. */
    if (mr_ok(mr_store_open_embedded(mr_sealer_dir(c->sealer), key.ptr, key.len,
                                     c->cfg.store_opts, st)))
        return MR_SUCCESS;
    *wrong = mr_error_is(MR_ERR_PROTOCOL); /* MR_ERR_CORRUPT: wrong key or modified files */
    mr_error_prefix("loading sealed state");
    return MR_FAILURE;
}

static MR_RESULT load_manifest(mr_store *st, mr_manifest **m)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    mr_buf raw;
    mr_buf_init(&raw, 0, 0);
    MR_GUARD_OUT(mr_store_begin(st, &t));
    MR_GUARD_OUT(core_get_required(t, K_MANIFEST, &raw));
    MR_GUARD_OUT(mr_manifest_decode(raw.data, raw.len, m));
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    mr_buf_free(&raw);
    if (!mr_ok(res))
        mr_error_prefix("loading manifest from store");
    return res;
}

static MR_RESULT key_of(const mr_manifest_recovery_key *k, EVP_PKEY **pub)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    mr_buf_init(&der, 0, 0);
    MR_GUARD_OUT(mr_manifest_recovery_key_der(k, &der));
    MR_GUARD_OUT(mr_key_public_from_der(mr_buf_slice(&der), MR_KEYFMT_PKIX, pub));
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    if (!mr_ok(res))
        mr_error_prefix("parsing recovery public key \"%s\"", k->name.ptr ? k->name.ptr : "");
    return res;
}

/* The 1.7.0 rule: every secret of this attempt must be signed by a distinct recovery key of
 * the sealed manifest; all keys (XOR / single key) or exactly `threshold` keys (Shamir). */
static MR_RESULT check_signatures(const core_recovery *r, const mr_manifest *m)
{
    mr_result res = MR_FAILURE;
    size_t n = m->recovery_keys.count;
    uint64_t t = m->config.recovery_threshold;
    bool threshold_mode = n >= 2 && t != 0 && t != n;
    size_t expected = threshold_mode ? (size_t)t : n;
    EVP_PKEY **pubs = NULL;
    bool *sig_used = NULL, *key_used = NULL;
    MR_ENSURE(r->count == expected, MR_ERR_AUTH,
              "recovery keys in manifest do not match the keys used for recovery: expected %zu, "
              "got %zu", expected, r->count);
    pubs = mr_calloc(n + 1, sizeof(EVP_PKEY *));
    sig_used = mr_calloc(r->count + 1, sizeof(bool));
    key_used = mr_calloc(n + 1, sizeof(bool));
    MR_ENSURE_ALLOC_OUT(pubs);
    MR_ENSURE_ALLOC_OUT(sig_used);
    MR_ENSURE_ALLOC_OUT(key_used);
    for (size_t k = 0; k < n; k++)
        MR_GUARD_OUT(key_of(&m->recovery_keys.items[k], &pubs[k]));
    if (!threshold_mode) {
        /* each manifest key needs its own signature */
        for (size_t k = 0; k < n; k++) {
            bool found = false;
            for (size_t i = 0; i < r->count && !found; i++) {
                if (sig_used[i])
                    continue;
                if (mr_ok(mr_rsa_verify_pkcs1_sha256(pubs[k], collected(r, i),
                                                     mr_buf_slice(&r->sigs[i])))) {
                    sig_used[i] = found = true;
                }
            }
            mr_error_clear();
            MR_ENSURE_OUT(found, MR_ERR_AUTH,
                          "no matching recovery key found for recovery public key \"%s\"",
                          m->recovery_keys.items[k].name.ptr ? m->recovery_keys.items[k].name.ptr
                                                             : "");
        }
    } else {
        /* each signature must come from a distinct manifest key */
        for (size_t i = 0; i < r->count; i++) {
            bool found = false;
            for (size_t k = 0; k < n && !found; k++) {
                if (key_used[k])
                    continue;
                if (mr_ok(mr_rsa_verify_pkcs1_sha256(pubs[k], collected(r, i),
                                                     mr_buf_slice(&r->sigs[i])))) {
                    key_used[k] = found = true;
                }
            }
            mr_error_clear();
            MR_ENSURE_OUT(found, MR_ERR_AUTH,
                          "no matching recovery key found for recovery secret %zu: its signature "
                          "does not verify with any unused recovery key of the manifest", i + 1);
        }
    }
    res = MR_SUCCESS;
out:
    for (size_t k = 0; pubs != NULL && k < n; k++)
        EVP_PKEY_free(pubs[k]);
    mr_free(pubs);
    mr_free(sig_used);
    mr_free(key_used);
    return res;
}

/* The candidate key opened the sealed state (ro). Verifies the signatures against the sealed
 * manifest, then installs the key and switches the core to the recovered state. */
static MR_RESULT finish(mr_core *c, core_recovery *r, mr_slice key, mr_store *ro)
{
    mr_result res = MR_FAILURE;
    mr_manifest *m = NULL;
    mr_store *st = NULL;
    core_epoch *prev = NULL, *e = NULL;
    mr_seal_outcome outcome = MR_SEAL_NO_STATE;
    MR_GUARD_OUT(load_manifest(ro, &m));
    MR_GUARD_OUT(check_signatures(r, m));
    if (c->dist != NULL) { /* the store on the shared state becomes ours */
        mr_store *shared = ro;
        ro = NULL;
        MR_GUARD_OUT(core_dist_adopt(c, key, shared));
        res = MR_SUCCESS;
        goto out;
    }
    mr_store_close(ro);
    ro = NULL;
    /* the manifest's seal mode applies to the re-sealed key */
    MR_GUARD_OUT(mr_sealer_set_mode(c->sealer, core_seal_mode(m)));
    if (!mr_ok(mr_sealer_recover(c->sealer, key.ptr, key.len, c->cfg.store_opts, &outcome,
                                 &st))) {
        mr_error_prefix("loading state");
        goto out;
    }
    MR_ENSURE_OUT(outcome == MR_SEAL_LOADED, MR_ERR_PROTOCOL, "loading state: %s",
                  outcome == MR_SEAL_NO_STATE ? "no sealed state found"
                                              : mr_sealer_reason(c->sealer));
    prev = core_epoch_get(c);
    /* re-issues the own quote for the recovered root certificate */
    MR_GUARD_OUT(core_epoch_from_store(c, st, prev, &e));
    core_store_replace(c, st); /* closes the temporary in-memory store */
    st = NULL;
    core_epoch_publish(c, e);
    res = MR_SUCCESS;
out:
    mr_store_close(ro);
    mr_store_close(st);
    core_epoch_put(prev);
    mr_manifest_free(m);
    return res;
}

/* A completed attempt: the candidate key is tried; success or failure, the collection is
 * discarded afterwards. */
static MR_RESULT attempt(mr_core *c, core_recovery *r, mr_slice key, mr_store *ro)
{
    mr_result res = finish(c, r, key, ro);
    reset_collection(r);
    if (mr_ok(res)) {
        EVP_PKEY_free(r->ephemeral);
        r->ephemeral = NULL;
        forget_data(r);
    }
    return res;
}

/* XOR of the collected shares (or the single collected key) into a secret buffer. */
static MR_RESULT combine(const core_recovery *r, bool shamir, mr_buf *key)
{
    mr_slice *parts = mr_calloc(r->count, sizeof(mr_slice));
    MR_ENSURE_ALLOC(parts);
    for (size_t i = 0; i < r->count; i++)
        parts[i] = collected(r, i);
    mr_result res = shamir ? mr_shamir_combine(parts, r->count, key)
                           : mr_xor_combine(parts, r->count, key);
    mr_free(parts);
    if (!mr_ok(res))
        mr_error_prefix("setting recovery key");
    return res;
}

/* No recovery data (a single key, or the data is gone): the secret must be the key itself. */
static MR_RESULT recover_single(mr_core *c, core_recovery *r, mr_slice secret, mr_slice sig,
                                int *remaining)
{
    mr_store *ro = NULL;
    bool wrong = false;
    MR_GUARD(check_length(r, secret, false));
    reset_collection(r);
    MR_GUARD(collect(r, secret, sig));
    if (!mr_ok(try_key(c, secret, &ro, &wrong))) {
        reset_collection(r);
        return MR_FAILURE;
    }
    MR_GUARD(attempt(c, r, secret, ro)); /* takes the store over */
    *remaining = 0;
    return MR_SUCCESS;
}

/* Combines the collected shares and tries the result: *ro is set when it opened the state,
 * *pending when a Shamir key does not open it yet but more shares can still come. A key that
 * fails otherwise ends the attempt (*remaining = -1). */
static MR_RESULT try_shares(mr_core *c, core_recovery *r, bool shamir, mr_buf *key,
                            mr_store **ro, bool *pending, int *remaining)
{
    bool wrong = false;
    *pending = false;
    MR_GUARD(combine(r, shamir, key));
    if (mr_ok(try_key(c, mr_buf_slice(key), ro, &wrong)))
        return MR_SUCCESS;
    if (shamir && wrong && used_count(r) < r->n_hashes) {
        mr_error_clear(); /* not enough shares yet */
        *pending = true;
        return MR_SUCCESS;
    }
    reset_collection(r);
    *remaining = -1;
    return MR_FAILURE;
}

/* With recovery data: XOR shares (all of them needed) or Shamir shares (from two on, the
 * combination is tried until it opens the state). */
static MR_RESULT recover_shares(mr_core *c, core_recovery *r, mr_slice secret, mr_slice sig,
                                int *remaining)
{
    mr_result res = MR_FAILURE;
    mr_store *ro = NULL;
    bool pending = false;
    bool shamir = secret.len == SHAMIR_SHARE_LEN;
    mr_buf key;
    mr_buf_init(&key, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(check_length(r, secret, shamir));
    MR_GUARD_OUT(take_hash(r, secret));
    if (!mr_ok(collect(r, secret, sig))) {
        reset_collection(r);
        goto out;
    }
    size_t used = used_count(r);
    *remaining = (int)(r->n_hashes - used);
    bool complete = shamir ? r->count >= 2 : used == r->n_hashes;
    if (complete) {
        MR_GUARD_OUT(try_shares(c, r, shamir, &key, &ro, &pending, remaining));
        if (!pending) {
            mr_store *owned = ro; /* attempt() takes the store over */
            ro = NULL;
            if (!mr_ok(attempt(c, r, mr_buf_slice(&key), owned))) {
                *remaining = -1;
                goto out;
            }
            *remaining = 0;
        }
    }
    res = MR_SUCCESS;
out:
    mr_store_close(ro);
    mr_buf_free(&key);
    return res;
}

static MR_RESULT recover_locked(mr_core *c, mr_slice secret, mr_slice sig, int *remaining)
{
    core_recovery *r = NULL;
    *remaining = -1;
    MR_GUARD(require_recovery_state(c));
    MR_GUARD(get_state(c, &r));
    MR_GUARD(load_data(c, r));
    if (r->scheme == SCHEME_NONE)
        return recover_single(c, r, secret, sig, remaining);
    return recover_shares(c, r, secret, sig, remaining);
}

MR_RESULT mr_core_recover(mr_core *c, mr_slice secret, mr_slice signature, int *remaining)
{
    pthread_mutex_lock(&c->writer);
    mr_result r = recover_locked(c, secret, signature, remaining);
    pthread_mutex_unlock(&c->writer);
    if (mr_ok(r) && *remaining == 0)
        MR_LOG_INFO("recovery successful: the sealed state was loaded");
    else if (mr_ok(r))
        MR_LOG_INFO("recovery secret accepted", MR_F_INT("remaining", *remaining));
    else
        MR_LOG_WARN("recovery attempt failed", MR_F_ERR());
    return r;
}
