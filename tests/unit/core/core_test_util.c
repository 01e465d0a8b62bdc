/* SPDX-License-Identifier: Apache-2.0 */
#include "mr_test.h"

#include <time.h>

#include "../store/store_test_util.h"
#include "common/uuid.h"
#include "coordinator/store/store.h"
#include "core_test_util.h"
#include "crypto/csr.h"
#include "crypto/key.h"
#include "crypto/x509.h"
#include "manifest/manifest.h"

void ct_identity_new(ct_identity *id, const char *cn)
{
    mr_x509_attr attr = {.nid = NID_commonName, .value = (char *)(uintptr_t)cn};
    mr_x509_template t;
    memset(id, 0, sizeof(*id));
    memset(&t, 0, sizeof(t));
    mr_buf_init(&id->der, 0, 0);
    mr_buf_init(&id->pem, 0, 0);
    t.subject.attrs = &attr;
    t.subject.count = 1;
    t.not_before = time(NULL) - 60;
    t.not_after = t.not_before + 86400;
    t.key_usage = MR_KU_DIGITAL_SIGNATURE;
    MR_ASSERT_OK(mr_key_generate(MR_KEY_EC_P256, 0, &id->key));
    MR_ASSERT_OK(mr_x509_issue(&t, id->key, NULL, id->key, &id->cert));
    MR_ASSERT_OK(mr_x509_to_der(id->cert, &id->der));
    MR_ASSERT_OK(mr_x509_to_pem(id->cert, &id->pem));
    MR_ASSERT_OK(mr_buf_nul_terminate(&id->pem));
}

void ct_identity_free(ct_identity *id)
{
    EVP_PKEY_free(id->key);
    X509_free(id->cert);
    mr_buf_free(&id->der);
    mr_buf_free(&id->pem);
    memset(id, 0, sizeof(*id));
}

static const mr_store_options no_fsync = {.no_fsync = true};
static const char *const dns_names[] = {"localhost"};

void ct_core_open(ct_core *t)
{
    t->dir = st_mkdtemp();
    mr_core_config cfg = {
        .seal_dir = t->dir,
        .dns_names = dns_names,
        .n_dns_names = 1,
        .curve = MR_KEY_EC_P256,
        .issuer = NULL, /* simulation mode */
        .store_opts = &no_fsync,
    };
    t->core = NULL;
    MR_ASSERT_OK(mr_core_open(&cfg, &t->core));
    assert_int_equal(mr_core_state(t->core), MR_STATE_ACCEPTING_MANIFEST);
}

void ct_core_close(ct_core *t)
{
    mr_core_free(t->core);
    t->core = NULL;
    st_rmdir(t->dir);
    t->dir = NULL;
}

void ct_manifest(mr_buf *out, const char *admin_pem, const char *feature_gates)
{
    mr_buf_init(out, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(
        out,
        "{\"Packages\":{\"pkg\":{\"SignerID\":\"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\","
        "\"ProductID\":3,\"SecurityVersion\":1}},"
        "\"Marbles\":{"
        "\"app\":{\"Package\":\"pkg\",\"Parameters\":{"
        "\"Env\":{\"PASSWORD\":\"{{ string .Secrets.password }}\"},"
        "\"Files\":{\"/key\":\"{{ hex .Secrets.symKey }}\"},"
        "\"Argv\":[\"app\",\"--flag\"]}},"
        "\"limited\":{\"Package\":\"pkg\",\"MaxActivations\":2}},"
        "\"Secrets\":{"
        "\"password\":{\"Type\":\"plain\",\"UserDefined\":true},"
        "\"symKey\":{\"Type\":\"symmetric-key\",\"Size\":128},"
        "\"fixedKey\":{\"Type\":\"symmetric-key\",\"Size\":128,\"Shared\":true}},"
        "\"Users\":{\"admin\":{\"Certificate\":"));
    MR_ASSERT_OK(mr_manifest_json_string(admin_pem, strlen(admin_pem), out));
    MR_ASSERT_OK(mr_buf_append_str(
        out,
        ",\"Roles\":[\"rw\",\"readFixed\"]}},"
        "\"Roles\":{"
        "\"rw\":{\"ResourceType\":\"Secrets\",\"ResourceNames\":[\"password\"],"
        "\"Actions\":[\"ReadSecret\",\"WriteSecret\"]},"
        "\"readFixed\":{\"ResourceType\":\"Secrets\",\"ResourceNames\":[\"fixedKey\"],"
        "\"Actions\":[\"ReadSecret\"]}},"
        "\"Config\":{\"FeatureGates\":"));
    MR_ASSERT_OK(mr_buf_append_str(out, feature_gates));
    MR_ASSERT_OK(mr_buf_append_str(out, "}}"));
    MR_ASSERT_OK(mr_buf_nul_terminate(out));
}

void ct_set_manifest(mr_core *c, const mr_buf *manifest)
{
    mr_core_recovery_secrets rs = {0};
    MR_ASSERT_OK(mr_core_set_manifest(c, manifest->data, manifest->len, &rs));
    assert_int_equal(rs.count, 0); /* no recovery keys in the test manifest */
    mr_core_recovery_secrets_free(&rs);
    assert_int_equal(mr_core_state(c), MR_STATE_ACCEPTING_MARBLES);
}

mr_result ct_set_password(mr_core *c, const char *value)
{
    mr_core_user_secret s = {.name = "password", .has_key = true,
                             .key = MR_SLICE(value, strlen(value))};
    return mr_core_set_secrets(c, "admin", &s, 1);
}

void ct_marble_new(ct_marble *m)
{
    static const char *const dns[] = {"localhost"};
    mr_x509_name empty = {0};
    mr_uuid u;
    memset(m, 0, sizeof(*m));
    ct_identity_new(&m->tls, "MarbleRun Marble");
    mr_buf_init(&m->csr, 0, 0);
    MR_ASSERT_OK(mr_csr_create(m->tls.key, &empty, dns, 1, NULL, 0, &m->csr));
    MR_ASSERT_OK(mr_uuid_random(&u));
    mr_uuid_format(&u, m->uuid);
}

void ct_marble_free(ct_marble *m)
{
    ct_identity_free(&m->tls);
    mr_buf_free(&m->csr);
}

mr_core_activation_req ct_activation_req(const ct_marble *m, const char *type)
{
    mr_core_activation_req r = {
        .quote = MR_SLICE("", 0), /* simulation mode: not checked */
        .csr = mr_buf_slice(&m->csr),
        .marble_type = type,
        .uuid = m->uuid,
        .peer_cert = mr_buf_slice(&m->tls.der),
    };
    return r;
}

static const char *kv(const mr_core_kv *items, size_t n, const char *name, mr_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i].name, name) == 0) {
            mr_buf_init(out, 0, 0);
            MR_ASSERT_OK(mr_buf_set(out, items[i].value.data, items[i].value.len));
            MR_ASSERT_OK(mr_buf_nul_terminate(out));
            return (const char *)out->data;
        }
    }
    fail_msg("no entry %s in the activation answer", name);
    return NULL;
}

const char *ct_env(const mr_core_activation_resp *r, const char *name, mr_buf *out)
{
    return kv(r->env, r->n_env, name, out);
}

const char *ct_file(const mr_core_activation_resp *r, const char *name, mr_buf *out)
{
    return kv(r->files, r->n_files, name, out);
}
