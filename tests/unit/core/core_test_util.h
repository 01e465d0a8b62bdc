/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the core and api unit tests: a Coordinator core in simulation mode (no
 * issuer: marble quotes are not checked) on a temporary seal directory, self-signed client
 * identities, the test manifest and activation requests.
 */
#ifndef MR_CORE_TEST_UTIL_H
#define MR_CORE_TEST_UTIL_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "coordinator/core/core.h"

/* ---- the authentication calls, in one place ----
 * Both take the TLS peer's leaf certificate only (docs/security.md). An empty leaf = no
 * certificate. */
static inline mr_result ct_auth_user(mr_core *c, mr_slice leaf, char *name, size_t size)
{
    return mr_core_auth_user(c, leaf, name, size);
}

static inline mr_result ct_marble_auth(mr_core *c, mr_slice leaf, char *type, size_t tsize,
                                       uint8_t uuid[16])
{
    return mr_core_marble_auth(c, leaf, type, tsize, uuid);
}

/* A P-256 key and a self-signed certificate with CN = cn (a user or a marble's TLS cert). */
typedef struct ct_identity {
    EVP_PKEY *key;
    X509 *cert;
    mr_buf der;
    mr_buf pem; /* NUL-terminated */
} ct_identity;

void ct_identity_new(ct_identity *id, const char *cn);
void ct_identity_free(ct_identity *id);

/* A core in simulation mode on a fresh temporary seal directory (no fsync). */
typedef struct ct_core {
    char *dir;
    mr_core *core;
} ct_core;

void ct_core_open(ct_core *t);
void ct_core_close(ct_core *t);

/* The test manifest (NUL-terminated JSON):
 *   marble "app": Env PASSWORD = {{ string .Secrets.password }}, File /key = hex of the
 *                 per-marble symmetric key symKey, Argv ["app", "--flag"];
 *   marble "limited": MaxActivations 2;
 *   secrets: password (plain, user-defined), symKey (symmetric-key 128, per marble),
 *            fixedKey (symmetric-key 128, shared, not user-defined);
 *   user "admin" (certificate admin_pem) with ReadSecret+WriteSecret on password and
 *   ReadSecret on fixedKey; feature gates as given (a JSON array text, e.g.
 *   "[\"MonotonicCounter\"]"). */
void ct_manifest(mr_buf *out, const char *admin_pem, const char *feature_gates);
void ct_set_manifest(mr_core *c, const mr_buf *manifest);
/* Uploads the plain secret "password" as user "admin". */
mr_result ct_set_password(mr_core *c, const char *value);

/* What the premain sends: a key, a CSR (SAN localhost) and a self-signed TLS certificate. */
typedef struct ct_marble {
    ct_identity tls;
    mr_buf csr;
    char uuid[37];
} ct_marble;

void ct_marble_new(ct_marble *m);
void ct_marble_free(ct_marble *m);
/* An activation request of marble m as type `type` (borrows from m). */
mr_core_activation_req ct_activation_req(const ct_marble *m, const char *type);

/* The Env / Files entry `name` of an activation answer as a NUL-terminated copy in out, or
 * fails the test when it is missing. */
const char *ct_env(const mr_core_activation_resp *r, const char *name, mr_buf *out);
const char *ct_file(const mr_core_activation_resp *r, const char *name, mr_buf *out);

#endif
