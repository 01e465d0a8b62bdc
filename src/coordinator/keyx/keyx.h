/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key exchange between Coordinator instances (docs/distributed.md): an instance that holds the
 * state key releases it over the key API (gRPC keypb.API/GetKeyEncryptionKey, mutual TLS) to
 * a peer that proves, with a quote over its TLS client certificate, to be the same enclave
 * product as the server; the answer carries the server's quote over its own TLS certificate,
 * so the requester knows it too.
 *
 * The identity rule (both ends): same TEE type, SignerID (MRSIGNER) and ProductID (ISVPRODID),
 * same DEBUG attribute, and the TCB status UpToDate or the same as our own. The server also
 * requires SecurityVersion (ISVSVN) >= its own: a newer build of the same product can join a
 * running group (rolling upgrades), an older one — possibly one with a known weakness — cannot
 * take the key. The requester accepts a key only when it opens the state's keycheck (the
 * caller's accept callback), so a peer can never talk it into a key of the peer's choosing.
 * UniqueID (MRENCLAVE) equality would forbid every upgrade without a recovery, which is why
 * it is not the rule (seal mode ProductKey follows the same reasoning).
 *
 * Simulation (no issuer): no quotes are made or checked; any peer with a certificate gets
 * the key. Only for simulation mode, with a loud warning, like the rest of simulation.
 *
 * Each instance's key-API identity is an ephemeral P-256 key with a self-signed certificate
 * (CN "MarbleRun Coordinator") and, outside simulation, a quote binding SHA-256 of its DER.
 */
#ifndef MR_COORDINATOR_KEYX_H
#define MR_COORDINATOR_KEYX_H

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/attest.h"
#include "attest/issuer.h"
#include "common/buf.h"
#include "common/result.h"

typedef struct mr_keyx mr_keyx;

/* Makes the key-API identity; with an issuer also its quote, and our own claims from
 * verifying it (verify: the Coordinator's attestation options, borrowed). issuer NULL means
 * simulation. */
MR_RESULT mr_keyx_new(mr_issuer *issuer, const mr_attest_options *verify, mr_keyx **out);
void mr_keyx_free(mr_keyx *k);

/* The TLS identity of the key API (new references), for a listener's certificate provider. */
MR_RESULT mr_keyx_tls_identity(mr_keyx *k, X509 **cert, EVP_PKEY **key);
/* Our quote over SHA-256(our key-API certificate DER); empty in simulation. */
mr_slice mr_keyx_quote(const mr_keyx *k);

/* Server side: may the peer whose TLS leaf is peer_leaf (DER) and whose request carried
 * `quote` receive the key? Errors: MR_ERR_AUTH with the reason (the check that failed). */
MR_RESULT mr_keyx_check_requester(mr_keyx *k, mr_slice quote, mr_slice peer_leaf);

/* Client side: asks the peers (comma-separated host:port; a host name stands for all its
 * addresses) in turn until one releases a key that `accept` takes (it appends nothing and
 * sets *ok). The key goes to key (an MR_BUF_SECRET buffer). Fails (MR_ERR_UNAVAILABLE "no peer
 * released the state key: ...") with the last reason when none did. */
typedef MR_RESULT (*mr_keyx_accept_fn)(void *arg, mr_slice key, bool *ok);
MR_RESULT mr_keyx_fetch(mr_keyx *k, const char *peers, unsigned timeout_ms, mr_keyx_accept_fn accept,
                        void *arg, mr_buf *key);

#endif
