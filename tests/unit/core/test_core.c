/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Coordinator core tests (src/coordinator/core): SetManifest, Activate in simulation mode
 * (answers, the MaxActivations counter, the stale-epoch redo and the retry limit of the
 * counter commit), users, secrets, marble authentication and monotonic counters.
 *
 * activate.c is included here with two calls renamed to hooks, so that the two races it
 * handles can be provoked deterministically:
 *   core_epoch_is_current -> hook_epoch_is_current: may publish a real state change (a secret
 *                            upload) just before the activation checks whether its epoch is
 *                            still current;
 *   mr_store_commit       -> hook_store_commit: may commit a real concurrent write of the
 *                            activation counter just before the activation's own commit, which
 *                            then fails with the store's conflict.
 * The rest of the core is compiled in unchanged (tests/unit/core/CMakeLists.txt).
 */
#include "mr_test.h"

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "common/uuid.h"
#include "coordinator/core/core_int.h"
#include "coordinator/store/store.h"
#include "../store/store_test_util.h"
#include "core_test_util.h"
#include "crypto/hash.h"
#include "crypto/key.h"
#include "crypto/x509.h"

static bool hook_epoch_is_current(mr_core *c, const core_epoch *e);
static mr_result hook_store_commit(mr_store_txn *t);

#define core_epoch_is_current hook_epoch_is_current
#define mr_store_commit hook_store_commit
#include "coordinator/core/activate.c"
#undef core_epoch_is_current
#undef mr_store_commit

/* ---- hooks ---- */

static struct {
    /* epoch check: the next `changes` checks first publish a new state (a new password) */
    int changes;
    int epoch_checks;
    char password[32];
    /* counter commit: the next `conflicts` commits meet a concurrent write of `key` */
    int conflicts;
    int commits;
    const char *key;
    /* counter commit: the next `fails` commits fail with fail_cat and fail_msg instead */
    int fails;
    mr_errcat fail_cat;
    const char *fail_msg;
} hk;

static void hooks_reset(void) { memset(&hk, 0, sizeof(hk)); }

static bool hook_epoch_is_current(mr_core *c, const core_epoch *e)
{
    hk.epoch_checks++;
    if (hk.changes > 0) {
        hk.changes--;
        (void)snprintf(hk.password, sizeof(hk.password), "changed-%d", hk.epoch_checks);
        MR_ASSERT_OK(ct_set_password(c, hk.password)); /* publishes the next epoch */
    }
    return core_epoch_is_current(c, e);
}

/* Commits a write of the same value to hk.key in its own transaction. */
static void concurrent_write(mr_store *s, const char *key)
{
    mr_store_txn *t = NULL;
    mr_buf v;
    bool found = false;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_store_begin(s, &t));
    MR_ASSERT_OK(mr_store_get(t, key, &v, &found));
    if (!found)
        MR_ASSERT_OK(mr_buf_set(&v, "0", 1));
    MR_ASSERT_OK(mr_store_put(t, key, v.data, v.len));
    MR_ASSERT_OK(mr_store_commit(t));
    mr_buf_free(&v);
}

static mr_result hook_store_commit(mr_store_txn *t)
{
    hk.commits++;
    if (hk.fails > 0) {
        hk.fails--;
        mr_store_abort(t);
        mr_error_set(hk.fail_cat, __FILE__, __LINE__, "%s", hk.fail_msg);
        return MR_FAILURE;
    }
    if (hk.conflicts > 0) {
        hk.conflicts--;
        concurrent_write(t->store, hk.key);
    }
    return mr_store_commit(t);
}

/* ---- fixture ---- */

typedef struct fx {
    ct_core cc;
    mr_core *c;
    ct_identity admin, stranger;
    mr_buf manifest;
} fx;

static void fx_open(fx *f, const char *gates, bool set_manifest)
{
    memset(f, 0, sizeof(*f));
    hooks_reset();
    ct_core_open(&f->cc);
    f->c = f->cc.core;
    ct_identity_new(&f->admin, "admin");
    ct_identity_new(&f->stranger, "stranger");
    ct_manifest(&f->manifest, (const char *)f->admin.pem.data, gates);
    if (set_manifest) {
        ct_set_manifest(f->c, &f->manifest);
        MR_ASSERT_OK(ct_set_password(f->c, "initial"));
    }
}

static void fx_close(fx *f)
{
    hooks_reset();
    ct_identity_free(&f->admin);
    ct_identity_free(&f->stranger);
    mr_buf_free(&f->manifest);
    ct_core_close(&f->cc);
}

/* Activates a new marble of `type`; returns its result, the answer in *resp (free it). */
static mr_result activate_new(fx *f, const char *type, ct_marble *m, mr_core_activation_resp *resp)
{
    ct_marble_new(m);
    mr_core_activation_req req = ct_activation_req(m, type);
    return mr_core_activate(f->c, &req, resp);
}

static void activate_ok(fx *f, const char *type)
{
    ct_marble m;
    mr_core_activation_resp resp;
    MR_ASSERT_OK(activate_new(f, type, &m, &resp));
    mr_core_activation_resp_free(&resp);
    ct_marble_free(&m);
}

static void activate_fails(fx *f, const char *type, mr_errcat cat, const char *text)
{
    ct_marble m;
    mr_core_activation_resp resp;
    MR_ASSERT_FAIL(activate_new(f, type, &m, &resp), cat, text);
    assert_int_equal(resp.n_env, 0); /* nothing is handed out on failure */
    assert_int_equal(resp.n_files, 0);
    mr_core_activation_resp_free(&resp);
    ct_marble_free(&m);
}

static X509 *first_cert_of(const char *pem)
{
    X509 *x = NULL;
    MR_ASSERT_OK(mr_x509_from_pem(MR_SLICE(pem, strlen(pem)), &x));
    return x;
}

/* ---- state and SetManifest ---- */

static void test_open_and_quote(void **state)
{
    fx f;
    mr_buf chain, quote, raw, sig;
    bool has_quote = true, present = true;
    char fp[65];
    (void)state;
    fx_open(&f, "[]", false);
    assert_string_equal(mr_core_state_message(MR_STATE_ACCEPTING_MANIFEST),
                        "Coordinator is ready to accept a manifest.");
    mr_buf_init(&chain, 0, 0);
    mr_buf_init(&quote, 0, 0);
    mr_buf_init(&raw, 0, 0);
    mr_buf_init(&sig, 0, 0);
    MR_ASSERT_OK(mr_core_quote(f.c, NULL, 0, &chain, &quote, &has_quote));
    assert_false(has_quote); /* simulation mode: no quote */
    assert_int_equal(quote.len, 0);
    MR_ASSERT_OK(mr_buf_nul_terminate(&chain));
    const char *second = strstr((const char *)chain.data + 1, "-----BEGIN CERTIFICATE-----");
    assert_non_null(second); /* intermediate, then root */
    MR_ASSERT_OK(mr_core_manifest(f.c, &raw, &sig, fp, &present));
    assert_false(present);
    assert_string_equal(fp, "");

    /* TLS identities: the client API presents the root, the mesh the marble root */
    X509 *cert = NULL, *mcert = NULL;
    EVP_PKEY *key = NULL, *mkey = NULL;
    MR_ASSERT_OK(mr_core_client_identity(f.c, &cert, &key));
    MR_ASSERT_OK(mr_core_mesh_identity(f.c, &mcert, &mkey));
    X509 *root = first_cert_of(second);
    assert_int_equal(X509_cmp(cert, root), 0);
    assert_int_not_equal(X509_cmp(cert, mcert), 0);
    X509_free(root);
    X509_free(cert);
    X509_free(mcert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(mkey);
    mr_buf_free(&chain);
    mr_buf_free(&quote);
    mr_buf_free(&raw);
    mr_buf_free(&sig);
    fx_close(&f);
}

static void test_set_manifest(void **state)
{
    fx f;
    mr_core_recovery_secrets rs = {0};
    mr_buf raw, sig, bad;
    bool present = false;
    char fp[65], want_fp[65];
    uint8_t h[32];
    (void)state;
    fx_open(&f, "[]", false);

    /* not JSON, then JSON that fails the checks: refused, state unchanged */
    MR_ASSERT_FAIL(mr_core_set_manifest(f.c, (const uint8_t *)"{", 1, &rs), MR_ERR_USAGE,
                   "unmarshaling manifest");
    mr_buf_init(&bad, 0, 0);
    MR_ASSERT_OK(mr_buf_set(&bad, f.manifest.data, f.manifest.len));
    uint8_t *pkg = (uint8_t *)strstr((char *)bad.data, "\"Package\":\"pkg\"");
    assert_non_null(pkg);
    pkg[12] = 'x'; /* "Package":"pxg": an undefined package */
    MR_ASSERT_FAIL(mr_core_set_manifest(f.c, bad.data, bad.len, &rs), MR_ERR_USAGE,
                   "checking manifest");
    mr_buf_free(&bad);
    assert_int_equal(mr_core_state(f.c), MR_STATE_ACCEPTING_MANIFEST);
    activate_fails(&f, "app", MR_ERR_STATE, "cannot accept marbles in current state");

    ct_set_manifest(f.c, &f.manifest);
    assert_string_equal(mr_core_state_message(mr_core_state(f.c)),
                        "Coordinator is running correctly and ready to accept marbles.");
    /* the manifest as set, its fingerprint and the root key's signature over it */
    mr_buf_init(&raw, 0, 0);
    mr_buf_init(&sig, 0, 0);
    MR_ASSERT_OK(mr_core_manifest(f.c, &raw, &sig, fp, &present));
    assert_true(present);
    assert_int_equal(raw.len, f.manifest.len);
    assert_memory_equal(raw.data, f.manifest.data, raw.len);
    MR_ASSERT_OK(mr_sha256(raw.data, raw.len, h));
    for (size_t i = 0; i < 32; i++)
        (void)snprintf(want_fp + 2 * i, 3, "%02x", h[i]);
    assert_string_equal(fp, want_fp);
    X509 *cert = NULL;
    EVP_PKEY *key = NULL, *pub = NULL;
    MR_ASSERT_OK(mr_core_client_identity(f.c, &cert, &key));
    MR_ASSERT_OK(mr_x509_pubkey(cert, &pub));
    MR_ASSERT_OK(mr_key_verify(pub, mr_buf_slice(&raw), mr_buf_slice(&sig)));
    X509_free(cert);
    EVP_PKEY_free(key);

    /* a second manifest is refused */
    MR_ASSERT_FAIL(mr_core_set_manifest(f.c, f.manifest.data, f.manifest.len, &rs), MR_ERR_STATE,
                   "server is not in expected state");
    assert_int_equal(mr_core_state(f.c), MR_STATE_ACCEPTING_MARBLES);
    mr_buf_free(&raw);
    mr_buf_free(&sig);
    fx_close(&f);
}

/* ---- Activate ---- */

static void test_activate(void **state)
{
    fx f;
    ct_marble m;
    mr_core_activation_resp resp;
    mr_buf v;
    (void)state;
    fx_open(&f, "[]", true);

    /* an upper-case UUID is answered in canonical form */
    ct_marble_new(&m);
    char upper[37];
    for (size_t i = 0; i < sizeof(upper); i++)
        upper[i] = (char)((m.uuid[i] >= 'a' && m.uuid[i] <= 'f') ? m.uuid[i] - 32 : m.uuid[i]);
    mr_core_activation_req req = ct_activation_req(&m, "app");
    req.uuid = upper;
    MR_ASSERT_OK(mr_core_activate(f.c, &req, &resp));
    assert_string_equal(resp.uuid, m.uuid);
    assert_string_equal(resp.marble_type, "app");
    assert_int_equal(resp.argc, 2);
    assert_string_equal(resp.argv[0], "app");
    assert_string_equal(resp.argv[1], "--flag");
    assert_string_equal(ct_env(&resp, "PASSWORD", &v), "initial");
    mr_buf_free(&v);
    assert_int_equal(strlen(ct_file(&resp, "/key", &v)), 32); /* 128-bit key in hex */
    mr_buf_free(&v);

    /* the marble certificate: CN = UUID, chains to the marble root, carries the type; it
     * authenticates the marble (REST endpoints of §12.6) */
    X509 *mroot = NULL;
    EVP_PKEY *ikey = NULL;
    MR_ASSERT_OK(mr_core_mesh_identity(f.c, &mroot, &ikey));
    X509 *leaf = first_cert_of(ct_env(&resp, "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN", &v));
    mr_buf_free(&v);
    mr_x509_verify_opts vo = {.purpose = MR_X509_PURPOSE_SERVER, .fail_cat = MR_ERR_AUTH};
    MR_ASSERT_OK(mr_x509_verify(leaf, mroot, &vo));
    mr_buf cn, der;
    mr_buf_init(&cn, 0, 0);
    mr_buf_init(&der, 0, 0);
    MR_ASSERT_OK(mr_x509_subject_cn(leaf, &cn));
    assert_int_equal(cn.len, 36);
    assert_memory_equal(cn.data, m.uuid, 36);
    /* the private key handed out belongs to the certificate */
    EVP_PKEY *mkey = NULL;
    const char *key_pem = ct_env(&resp, "MARBLE_PREDEFINED_PRIVATE_KEY", &v);
    MR_ASSERT_OK(mr_key_private_from_pem(MR_SLICE(key_pem, strlen(key_pem)), &mkey));
    assert_int_equal(X509_check_private_key(leaf, mkey), 1);
    EVP_PKEY_free(mkey);
    mr_buf_free(&v);
    (void)ct_env(&resp, "MARBLE_PREDEFINED_ROOT_CA", &v);
    mr_buf_free(&v);
    (void)ct_env(&resp, "MARBLE_PREDEFINED_COORDINATOR_ROOT_CA", &v);
    mr_buf_free(&v);

    char type[64];
    uint8_t uuid[16];
    mr_uuid want;
    MR_ASSERT_OK(mr_x509_to_der(leaf, &der));
    MR_ASSERT_OK(ct_marble_auth(f.c, mr_buf_slice(&der), type, sizeof(type), uuid));
    assert_string_equal(type, "app");
    MR_ASSERT_OK(mr_uuid_parse(m.uuid, strlen(m.uuid), &want));
    assert_memory_equal(uuid, want.b, 16);
    MR_ASSERT_FAIL(ct_marble_auth(f.c, mr_buf_slice(&der), type, 3, uuid), MR_ERR_AUTH,
                   "unauthorized marble: the certificate's marble type is too long (limit 2 "
                   "bytes)"); /* the type does not fit: refused, not cut */
    MR_ASSERT_FAIL(ct_marble_auth(f.c, mr_buf_slice(&f.admin.der), type, sizeof(type), uuid),
                   MR_ERR_AUTH, "unauthorized marble");
    MR_ASSERT_FAIL(ct_marble_auth(f.c, MR_SLICE("", 0), type, sizeof(type), uuid), MR_ERR_AUTH,
                   "unauthorized marble: no client certificate provided");
    X509_free(leaf);
    X509_free(mroot);
    EVP_PKEY_free(ikey);
    mr_buf_free(&cn);
    mr_buf_free(&der);
    mr_core_activation_resp_free(&resp);
    assert_int_equal(resp.n_env, 0);

    /* refusals, in MarbleRun's order and categories */
    req.uuid = "not-a-uuid";
    MR_ASSERT_FAIL(mr_core_activate(f.c, &req, &resp), MR_ERR_USAGE, "invalid UUID");
    req = ct_activation_req(&m, "app");
    req.peer_cert = MR_SLICE("", 0);
    MR_ASSERT_FAIL(mr_core_activate(f.c, &req, &resp), MR_ERR_AUTH,
                   "couldn't get marble TLS certificate");
    req = ct_activation_req(&m, "app");
    req.csr = MR_SLICE("\x30\x03\x02\x01\x01", 5);
    MR_ASSERT_FAIL(mr_core_activate(f.c, &req, &resp), MR_ERR_INTERNAL,
                   "generating marble authentication secrets");
    ct_marble_free(&m);
    activate_fails(&f, "nope", MR_ERR_ATTESTATION,
                   "marble verification failed: unknown marble type requested");
    fx_close(&f);
}

static void test_max_activations(void **state)
{
    fx f;
    (void)state;
    fx_open(&f, "[]", true);
    activate_ok(&f, "limited");
    activate_ok(&f, "limited");
    activate_fails(&f, "limited", MR_ERR_ATTESTATION,
                   "reached max activations count (2) for marble type \"limited\"");
    activate_fails(&f, "limited", MR_ERR_ATTESTATION, "reached max activations count (2)");
    activate_ok(&f, "app"); /* the limit is per marble type; "app" has none */
    activate_ok(&f, "app");
    activate_ok(&f, "app");
    fx_close(&f);
}

/* A state change published while an activation runs: the result built on the old epoch is
 * dropped and the activation is redone on the new one (at most 3 times). */
static void test_stale_epoch_redo(void **state)
{
    fx f;
    ct_marble m;
    mr_core_activation_resp resp;
    mr_buf v;
    (void)state;
    fx_open(&f, "[]", true);

    /* one change during the activation: redone once, answered with the new state */
    hk.changes = 1;
    MR_ASSERT_OK(activate_new(&f, "app", &m, &resp));
    assert_int_equal(hk.epoch_checks, 2);
    assert_string_equal(hk.password, "changed-1");
    assert_string_equal(ct_env(&resp, "PASSWORD", &v), "changed-1");
    mr_buf_free(&v);
    mr_core_activation_resp_free(&resp);
    ct_marble_free(&m);

    /* the same for a counted type: the dropped attempt did not count */
    hk.changes = 1;
    hk.epoch_checks = 0;
    activate_ok(&f, "limited");
    assert_int_equal(hk.epoch_checks, 2);
    activate_ok(&f, "limited");
    activate_fails(&f, "limited", MR_ERR_ATTESTATION, "reached max activations count (2)");

    /* the state changes on every attempt: given up after the first try and 3 redos */
    hk.changes = 1000;
    hk.epoch_checks = 0;
    activate_fails(&f, "app", MR_ERR_INTERNAL,
                   "the Coordinator state changed during the activation");
    assert_int_equal(hk.epoch_checks, 4);
    assert_int_equal(hk.changes, 1000 - 4);

    /* and works again once the state is quiet */
    hk.changes = 0;
    MR_ASSERT_OK(activate_new(&f, "app", &m, &resp));
    assert_string_equal(ct_env(&resp, "PASSWORD", &v), "changed-4");
    mr_buf_free(&v);
    mr_core_activation_resp_free(&resp);
    ct_marble_free(&m);
    fx_close(&f);
}

/* The MaxActivations counter is a read-check-write transaction: a concurrent commit of the
 * counter makes it conflict and retry; after 1000 conflicts in a row it gives up. */
static void test_counter_conflicts(void **state)
{
    fx f;
    (void)state;
    fx_open(&f, "[]", true);
    hk.key = P_ACTIVATIONS "limited";

    /* two conflicts: committed on the third try, counted once */
    hk.conflicts = 2;
    activate_ok(&f, "limited");
    assert_int_equal(hk.commits, 3);
    assert_int_equal(hk.conflicts, 0);

    /* conflicts on every try: "too many concurrent updates", nothing counted */
    hk.conflicts = 5000;
    hk.commits = 0;
    activate_fails(&f, "limited", MR_ERR_INTERNAL,
                   "incrementing marble activations: too many concurrent updates");
    assert_int_equal(hk.commits, 1000);
    assert_int_equal(hk.conflicts, 5000 - 1000);

    hk.conflicts = 0;
    activate_ok(&f, "limited"); /* the second activation: the failed ones did not count */
    activate_fails(&f, "limited", MR_ERR_ATTESTATION, "reached max activations count (2)");
    /* an uncounted type never commits */
    hk.commits = 0;
    activate_ok(&f, "app");
    assert_int_equal(hk.commits, 0);
    fx_close(&f);
}

/* The counter commit is retried on the error's category, MR_ERR_CONFLICT, not on its text:
 * a conflict worded differently is retried, a state error that mentions "conflict" is not. */
static void test_counter_retry_on_code(void **state)
{
    fx f;
    (void)state;
    fx_open(&f, "[]", true);
    hk.fails = 2;
    hk.fail_cat = MR_ERR_CONFLICT;
    hk.fail_msg = "a newer revision was committed first";
    activate_ok(&f, "limited");
    assert_int_equal(hk.commits, 3);
    assert_int_equal(hk.fails, 0);

    hk.commits = 0;
    hk.fails = 1;
    hk.fail_cat = MR_ERR_STATE;
    hk.fail_msg = "store transaction conflict, but not MR_ERR_CONFLICT";
    activate_fails(&f, "limited", MR_ERR_INTERNAL,
                   "incrementing marble activations: store transaction conflict, but not");
    assert_int_equal(hk.commits, 1);
    /* a backend that cannot be reached is not retried either, and keeps nothing counted */
    hk.commits = 0;
    hk.fails = 1;
    hk.fail_cat = MR_ERR_UNAVAILABLE;
    hk.fail_msg = "etcd: connection refused";
    activate_fails(&f, "limited", MR_ERR_INTERNAL,
                   "incrementing marble activations: etcd: connection refused");
    assert_int_equal(hk.commits, 1);
    activate_ok(&f, "limited"); /* the second one counted */
    activate_fails(&f, "limited", MR_ERR_ATTESTATION, "reached max activations count (2)");
    fx_close(&f);
}

/* ---- errors that used to be swallowed into a wrong answer ---- */

/* A core in state 3 with a manifest of the test's own: package "pkg", the given Marbles and
 * TLS objects (JSON texts). */
static void fx_open_with(fx *f, const mr_buf *marbles, const mr_buf *tls)
{
    memset(f, 0, sizeof(*f));
    hooks_reset();
    ct_core_open(&f->cc);
    f->c = f->cc.core;
    ct_identity_new(&f->admin, "admin");
    ct_identity_new(&f->stranger, "stranger");
    mr_buf_init(&f->manifest, 0, 0);
    MR_ASSERT_OK(mr_buf_printf(
        &f->manifest,
        "{\"Packages\":{\"pkg\":{\"SignerID\":\"%s\",\"ProductID\":3,\"SecurityVersion\":1}},"
        "\"Marbles\":%.*s,\"TLS\":%.*s}",
        "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", (int)marbles->len,
        (const char *)marbles->data, (int)tls->len, (const char *)tls->data));
    ct_set_manifest(f->c, &f->manifest);
}

/* More than 256 TLS entries (the old fixed table) and "addr:port" keys longer than 300
 * bytes (the old key buffer): every entry reaches MARBLE_TTLS_CONFIG under its full key. */
static void test_ttls_no_entry_dropped(void **state)
{
    enum { N = 300 };
    fx f;
    ct_marble m;
    mr_core_activation_resp resp;
    mr_buf marbles, tls, v;
    char long_addr[400];
    (void)state;
    memset(long_addr, 'a', sizeof(long_addr) - 1);
    long_addr[sizeof(long_addr) - 1] = '\0';
    mr_buf_init(&marbles, 0, 0);
    mr_buf_init(&tls, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(&marbles, "{\"app\":{\"Package\":\"pkg\",\"TLS\":[\"t\"]}}"));
    MR_ASSERT_OK(mr_buf_append_str(&tls, "{\"t\":{\"Outgoing\":["));
    for (int i = 0; i < N; i++)
        MR_ASSERT_OK(mr_buf_printf(&tls, "{\"Addr\":\"host%d\",\"Port\":\"80\"},", i));
    /* two keys that agree in their first 300 bytes */
    MR_ASSERT_OK(mr_buf_printf(&tls, "{\"Addr\":\"%s1\",\"Port\":\"80\"},", long_addr));
    MR_ASSERT_OK(mr_buf_printf(&tls, "{\"Addr\":\"%s2\",\"Port\":\"80\"}", long_addr));
    MR_ASSERT_OK(mr_buf_append_str(&tls, "],\"Incoming\":[{\"Port\":\"443\"}]}}"));
    fx_open_with(&f, &marbles, &tls);
    MR_ASSERT_OK(activate_new(&f, "app", &m, &resp));
    json_error_t jerr;
    json_t *cfg = json_loads(ct_env(&resp, "MARBLE_TTLS_CONFIG", &v), 0, &jerr);
    assert_non_null(cfg);
    json_t *out = json_object_get(json_object_get(cfg, "tls"), "Outgoing");
    assert_int_equal(json_object_size(out), N + 2);
    assert_non_null(json_object_get(out, "host0:80"));
    assert_non_null(json_object_get(out, "host299:80"));
    char key[sizeof(long_addr) + 8];
    (void)snprintf(key, sizeof(key), "%s1:80", long_addr);
    assert_non_null(json_object_get(out, key));
    (void)snprintf(key, sizeof(key), "%s2:80", long_addr);
    assert_non_null(json_object_get(out, key));
    json_t *in = json_object_get(json_object_get(cfg, "tls"), "Incoming");
    assert_int_equal(json_object_size(in), 1);
    assert_non_null(json_object_get(in, "*:443"));
    json_decref(cfg);
    mr_buf_free(&v);
    mr_core_activation_resp_free(&resp);
    ct_marble_free(&m);
    mr_buf_free(&marbles);
    mr_buf_free(&tls);
    fx_close(&f);
}

/* Activation counters of two marble types that agree in their first 300 bytes are two
 * counters (the old key buffer cut both to one key); a type too long for a store key fails
 * with a clear error instead of counting under a shortened key. */
static void test_counter_key_not_truncated(void **state)
{
    fx f;
    mr_buf marbles, tls, t1, t2, t3;
    (void)state;
    mr_buf_init(&t1, 0, 0);
    mr_buf_init(&t2, 0, 0);
    mr_buf_init(&t3, 0, 0);
    for (int i = 0; i < 320; i++)
        MR_ASSERT_OK(mr_buf_append_u8(&t1, 'm'));
    MR_ASSERT_OK(mr_buf_set(&t2, t1.data, t1.len));
    MR_ASSERT_OK(mr_buf_append_str(&t1, "-one"));
    MR_ASSERT_OK(mr_buf_append_str(&t2, "-two"));
    for (unsigned i = 0; i < MR_STORE_KEY_MAX; i++)
        MR_ASSERT_OK(mr_buf_append_u8(&t3, 'x'));
    MR_ASSERT_OK(mr_buf_nul_terminate(&t1));
    MR_ASSERT_OK(mr_buf_nul_terminate(&t2));
    MR_ASSERT_OK(mr_buf_nul_terminate(&t3));
    mr_buf_init(&marbles, 0, 0);
    mr_buf_init(&tls, 0, 0);
    MR_ASSERT_OK(mr_buf_printf(&marbles,
                               "{\"%s\":{\"Package\":\"pkg\",\"MaxActivations\":1},"
                               "\"%s\":{\"Package\":\"pkg\",\"MaxActivations\":1},"
                               "\"%s\":{\"Package\":\"pkg\",\"MaxActivations\":1}}",
                               (const char *)t1.data, (const char *)t2.data,
                               (const char *)t3.data));
    MR_ASSERT_OK(mr_buf_append_str(&tls, "{}"));
    fx_open_with(&f, &marbles, &tls);
    activate_ok(&f, (const char *)t1.data);
    activate_ok(&f, (const char *)t2.data); /* its own counter */
    activate_fails(&f, (const char *)t1.data, MR_ERR_ATTESTATION, "reached max activations");
    activate_fails(&f, (const char *)t3.data, MR_ERR_ATTESTATION,
                   "marble verification failed: store key too long: activations:");
    mr_buf_free(&t1);
    mr_buf_free(&t2);
    mr_buf_free(&t3);
    mr_buf_free(&marbles);
    mr_buf_free(&tls);
    fx_close(&f);
}

/* The marble certificate's subject keeps every CSR attribute MarbleRun keeps (also more than
 * the old fixed table of 30), and a failed copy fails the call instead of dropping the
 * attribute. */
static void test_marble_subject_complete(void **state)
{
    enum { N = 40 };
    mr_x509_attr in[N + 1];
    char vals[N][8];
    mr_x509_name from = {.attrs = in, .count = 0};
    (void)state;
    for (int i = 0; i < N; i++) {
        (void)snprintf(vals[i], sizeof(vals[i]), "ou%d", i);
        in[from.count++] = (mr_x509_attr){.nid = NID_organizationalUnitName, .value = vals[i]};
    }
    in[from.count++] = (mr_x509_attr){.nid = NID_organizationName, .value = "dropped"};
    mr_x509_name out = {0};
    MR_ASSERT_OK(marble_subject(&from, "the-uuid", &out));
    assert_int_equal(out.count, N + 1);
    assert_string_equal(out.attrs[N - 1].value, "ou39");
    assert_int_equal(out.attrs[N].nid, NID_commonName);
    assert_string_equal(out.attrs[N].value, "the-uuid");
    mr_x509_name_clear(&out);
    /* the n-th allocation failing: the call fails, or it succeeds with every attribute */
    for (long n = 0;; n++) {
        mr_error_clear();
        mr_alloc_fail_after(n);
        mr_result r = marble_subject(&from, "the-uuid", &out);
        mr_alloc_fail_reset();
        if (mr_ok(r)) {
            assert_int_equal(out.count, N + 1);
            mr_x509_name_clear(&out);
            assert_true(n > N + 1); /* every allocation before this one did fail the call */
            break;
        }
        assert_int_equal(mr_error_get()->cat, MR_ERR_INTERNAL);
        assert_non_null(strstr(mr_error_get()->msg, "out of memory"));
        mr_x509_name_clear(&out);
    }
}

/* The CA certificates carry every configured DNS name, or the Coordinator does not start:
 * names past the old fixed table were dropped from the certificates. */
static void test_ca_dns_names_limit(void **state)
{
    enum { LIMIT = 64 };
    static const mr_store_options no_fsync = {.no_fsync = true};
    char names[LIMIT + 1][16];
    const char *list[LIMIT + 1];
    (void)state;
    for (int i = 0; i <= LIMIT; i++) {
        (void)snprintf(names[i], sizeof(names[i]), "host%d.test", i);
        list[i] = names[i];
    }
    for (int n = LIMIT; n <= LIMIT + 1; n++) {
        char *dir = st_mkdtemp();
        mr_core_config cfg = {.seal_dir = dir, .dns_names = list, .n_dns_names = (size_t)n,
                              .curve = MR_KEY_EC_P256, .store_opts = &no_fsync};
        mr_core *c = NULL;
        if (n == LIMIT) {
            MR_ASSERT_OK(mr_core_open(&cfg, &c));
            X509 *root = NULL;
            EVP_PKEY *key = NULL;
            mr_x509_san_list sans = {0};
            MR_ASSERT_OK(mr_core_client_identity(c, &root, &key));
            MR_ASSERT_OK(mr_x509_sans(root, &sans));
            assert_int_equal(sans.n_dns, LIMIT);
            assert_string_equal(sans.dns[LIMIT - 1], "host63.test");
            mr_x509_san_list_clear(&sans);
            X509_free(root);
            EVP_PKEY_free(key);
            mr_core_free(c);
        } else {
            MR_ASSERT_FAIL(mr_core_open(&cfg, &c), MR_ERR_USAGE,
                           "too many DNS names for the Coordinator certificates (limit 64)");
        }
        st_rmdir(dir);
    }
}

/* A stored counter is read whole: a value longer than the old 31-byte copy, one with a NUL
 * inside, a signed or an overflowing one is malformed instead of a different number. */
static void test_read_number_whole_value(void **state)
{
    static const struct {
        const char *v;
        size_t len;
        int base;
        bool ok;
        uint64_t want;
    } cases[] = {
        {"2a", 2, 16, true, 42},
        {"18446744073709551615", 20, 10, true, UINT64_MAX},
        {"18446744073709551616", 20, 10, false, 0}, /* overflow */
        {"0000000000000000000000000000000000000007", 40, 10, false, 0}, /* longer than 31 */
        {"12\0" "99", 5, 10, false, 0},
        {"-1", 2, 10, false, 0},
        {"", 0, 10, false, 0},
    };
    mr_store *s = NULL;
    (void)state;
    MR_ASSERT_OK(mr_store_open_memory(&s));
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        mr_store_txn *t = NULL;
        uint64_t v = 99;
        MR_ASSERT_OK(mr_store_begin(s, &t));
        MR_ASSERT_OK(mr_store_put(t, "n", (const uint8_t *)cases[i].v, cases[i].len));
        if (cases[i].ok) {
            MR_ASSERT_OK(core_read_number(t, "n", cases[i].base, "test number", &v));
            assert_true(v == cases[i].want);
        } else {
            MR_ASSERT_FAIL(core_read_number(t, "n", cases[i].base, "test number", &v),
                           MR_ERR_INTERNAL, "stored test number is malformed");
        }
        mr_store_abort(t);
    }
    /* absent: 0 */
    mr_store_txn *t = NULL;
    uint64_t v = 99;
    MR_ASSERT_OK(mr_store_begin(s, &t));
    MR_ASSERT_OK(core_read_number(t, "absent", 10, "test number", &v));
    assert_true(v == 0);
    mr_store_abort(t);
    mr_store_close(s);
}

/* ---- users ---- */

static void test_users(void **state)
{
    fx f;
    char name[64];
    (void)state;
    fx_open(&f, "[]", false);
    /* before a manifest there are no users */
    MR_ASSERT_FAIL(ct_auth_user(f.c, mr_buf_slice(&f.admin.der), name, sizeof(name)), MR_ERR_AUTH,
                   "unauthorized user: client certificate did not match any MarbleRun users");
    ct_set_manifest(f.c, &f.manifest);

    MR_ASSERT_OK(ct_auth_user(f.c, mr_buf_slice(&f.admin.der), name, sizeof(name)));
    assert_string_equal(name, "admin");
    MR_ASSERT_FAIL(ct_auth_user(f.c, mr_buf_slice(&f.stranger.der), name, sizeof(name)),
                   MR_ERR_AUTH, "unauthorized user: client certificate did not match any MarbleRun users");
    MR_ASSERT_FAIL(ct_auth_user(f.c, MR_SLICE("", 0), name, sizeof(name)), MR_ERR_AUTH,
                   "no client certificate provided");
    /* a name that does not fit is refused, never shortened */
    MR_ASSERT_FAIL(ct_auth_user(f.c, mr_buf_slice(&f.admin.der), name, 5), MR_ERR_AUTH,
                   "unauthorized user");
    /* a certificate that differs in one byte is another certificate */
    mr_buf other;
    mr_buf_init(&other, 0, 0);
    MR_ASSERT_OK(mr_buf_set(&other, f.admin.der.data, f.admin.der.len));
    other.data[other.len - 1] ^= 1;
    MR_ASSERT_FAIL(ct_auth_user(f.c, mr_buf_slice(&other), name, sizeof(name)), MR_ERR_AUTH,
                   "unauthorized user");
    mr_buf_free(&other);

    fx_close(&f);
}

/* ---- secrets ---- */

static const char *get_secrets(mr_core *c, const char *user, const char *const *names, size_t n,
                               mr_buf *out)
{
    mr_buf_init(out, 0, 0);
    MR_ASSERT_OK(mr_core_get_secrets(c, user, names, n, out));
    MR_ASSERT_OK(mr_buf_nul_terminate(out));
    return (const char *)out->data;
}

static void test_secrets(void **state)
{
    fx f;
    mr_buf out;
    (void)state;
    fx_open(&f, "[]", false);
    const char *pw[] = {"password"};
    mr_buf_init(&out, 0, 0);
    MR_ASSERT_FAIL(mr_core_get_secrets(f.c, "admin", pw, 1, &out), MR_ERR_STATE,
                   "server is not in expected state");
    MR_ASSERT_FAIL(ct_set_password(f.c, "x"), MR_ERR_STATE, "server is not in expected state");
    ct_set_manifest(f.c, &f.manifest);

    /* a user-defined secret before it is set: the definition without a value */
    const char *j = get_secrets(f.c, "admin", pw, 1, &out);
    assert_non_null(strstr(j, "\"password\":{\"Type\":\"plain\""));
    assert_null(strstr(j, "\"Private\":\""));
    mr_buf_free(&out);

    MR_ASSERT_OK(ct_set_password(f.c, "hunter2"));
    j = get_secrets(f.c, "admin", pw, 1, &out);
    assert_non_null(strstr(j, "\"Private\":\"aHVudGVyMg==\"")); /* base64("hunter2") */
    mr_buf_free(&out);
    /* a repeated name appears once; a generated shared key is readable with its value */
    const char *names[] = {"fixedKey", "password", "password"};
    j = get_secrets(f.c, "admin", names, 3, &out);
    assert_non_null(strstr(j, "{\"fixedKey\":{\"Type\":\"symmetric-key\",\"Size\":128"));
    assert_non_null(strstr(j, "\"Private\":\"aHVudGVyMg==\""));
    assert_null(strstr(strstr(j, "\"password\"") + 1, "\"password\""));
    mr_buf_free(&out);

    /* permissions and definitions */
    const char *sym[] = {"symKey"};
    MR_ASSERT_FAIL(mr_core_get_secrets(f.c, "admin", sym, 1, &out), MR_ERR_AUTH,
                   "user admin is not allowed to read one or more secrets of: [symKey]");
    MR_ASSERT_FAIL(mr_core_get_secrets(f.c, "nobody", pw, 1, &out), MR_ERR_AUTH,
                   "user nobody is not allowed to read one or more secrets of: [password]");
    mr_core_user_secret up = {.name = "fixedKey", .has_key = true, .key = MR_SLICE("0123456789abcdef", 16)};
    MR_ASSERT_FAIL(mr_core_set_secrets(f.c, "admin", &up, 1), MR_ERR_USAGE,
                   "parsing new secrets: secret fixedKey is not writeable");
    up.name = "unknown";
    MR_ASSERT_FAIL(mr_core_set_secrets(f.c, "admin", &up, 1), MR_ERR_USAGE,
                   "secret manifest specifies a secret which the original manifest does not contain");
    MR_ASSERT_FAIL(mr_core_set_secrets(f.c, "admin", &up, 0), MR_ERR_USAGE, "no new secrets defined");
    up = (mr_core_user_secret){.name = "password", .has_key = true, .key = MR_SLICE("x", 1)};
    MR_ASSERT_FAIL(mr_core_set_secrets(f.c, "stranger", &up, 1), MR_ERR_AUTH,
                   "user stranger is not allowed to update secret: password");
    up.has_cert = true;
    up.cert = mr_buf_slice(&f.admin.der);
    MR_ASSERT_FAIL(mr_core_set_secrets(f.c, "admin", &up, 1), MR_ERR_USAGE,
                   "specified values for a certificate");
    /* refused uploads changed nothing */
    j = get_secrets(f.c, "admin", pw, 1, &out);
    assert_non_null(strstr(j, "\"Private\":\"aHVudGVyMg==\""));
    mr_buf_free(&out);
    fx_close(&f);
}

/* ---- monotonic counters (§12.6) ---- */

static void test_monotonic_counter(void **state)
{
    fx f;
    uint64_t prev = 99;
    mr_uuid u1, u2;
    (void)state;
    fx_open(&f, "[\"MonotonicCounter\"]", true);
    MR_ASSERT_OK(mr_uuid_random(&u1));
    MR_ASSERT_OK(mr_uuid_random(&u2));

    MR_ASSERT_OK(mr_core_counter(f.c, "app", u1.b, "ctr", 5, &prev));
    assert_int_equal(prev, 0);
    MR_ASSERT_OK(mr_core_counter(f.c, "app", u1.b, "ctr", 3, &prev)); /* never lowered */
    assert_int_equal(prev, 5);
    MR_ASSERT_OK(mr_core_counter(f.c, "app", u1.b, "ctr", 7, &prev));
    assert_int_equal(prev, 5);
    MR_ASSERT_OK(mr_core_counter(f.c, "app", u1.b, "ctr", 0, &prev));
    assert_int_equal(prev, 7);
    /* counters are per marble type, UUID and name */
    MR_ASSERT_OK(mr_core_counter(f.c, "app", u2.b, "ctr", 1, &prev));
    assert_int_equal(prev, 0);
    MR_ASSERT_OK(mr_core_counter(f.c, "app", u1.b, "other", 1, &prev));
    assert_int_equal(prev, 0);
    MR_ASSERT_OK(mr_core_counter(f.c, "limited", u1.b, "ctr", 1, &prev));
    assert_int_equal(prev, 0);
    MR_ASSERT_OK(mr_core_counter(f.c, "app", u1.b, "ctr", UINT64_MAX, &prev));
    assert_int_equal(prev, 7);
    MR_ASSERT_OK(mr_core_counter(f.c, "app", u1.b, "ctr", 0, &prev));
    assert_true(prev == UINT64_MAX);
    fx_close(&f);

    /* without the feature gate */
    fx_open(&f, "[]", true);
    MR_ASSERT_FAIL(mr_core_counter(f.c, "app", u1.b, "ctr", 1, &prev), MR_ERR_AUTH,
                   "MonotonicCounter feature is not enabled in the manifest");
    fx_close(&f);
}

int main(void)
{
    mr_log_init(MR_LOG_ERROR, MR_LOG_CONSOLE); /* expected warnings stay out of the output */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_quote),    cmocka_unit_test(test_set_manifest),
        cmocka_unit_test(test_activate),          cmocka_unit_test(test_max_activations),
        cmocka_unit_test(test_stale_epoch_redo),  cmocka_unit_test(test_counter_conflicts),
        cmocka_unit_test(test_counter_retry_on_code),
        cmocka_unit_test(test_ttls_no_entry_dropped),
        cmocka_unit_test(test_counter_key_not_truncated),
        cmocka_unit_test(test_marble_subject_complete),
        cmocka_unit_test(test_ca_dns_names_limit),
        cmocka_unit_test(test_read_number_whole_value),
        cmocka_unit_test(test_users),             cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_monotonic_counter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
