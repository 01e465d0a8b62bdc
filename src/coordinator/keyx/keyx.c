/* SPDX-License-Identifier: Apache-2.0 */
/* The key API's identities, the release rule and the requesting side (keyx.h). */
#include "coordinator/keyx/keyx.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "attest/dcap.h"
#include "attest/policy.h"
#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/rpc/rpc.h"
#include "crypto/hash.h"
#include "crypto/key.h"
#include "crypto/x509.h"
#include "proto/keypb.pb-c.h"

#define KEY_PATH "/keypb.API/GetKeyEncryptionKey"
#define RESP_MAX ((size_t)256 << 10)

struct mr_keyx {
    mr_issuer *issuer; /* NULL: simulation */
    const mr_attest_options *verify;
    EVP_PKEY *key;
    X509 *cert;
    mr_buf der;
    mr_buf quote;
    mr_attest_claims own;
};

/* ---- identity ---- */

static MR_RESULT make_cert(mr_keyx *k)
{
    mr_x509_attr cn = {.nid = NID_commonName, .value = "MarbleRun Coordinator"};
    time_t now = time(NULL);
    mr_x509_template t = {.subject = {.attrs = &cn, .count = 1},
                          .not_before = now - 60,
                          .not_after = mr_x509_max_not_after(now - 60),
                          .key_usage = MR_KU_DIGITAL_SIGNATURE};
    MR_GUARD(mr_key_generate(MR_KEY_EC_P256, 0, &k->key));
    MR_GUARD(mr_x509_issue(&t, k->key, NULL, k->key, &k->cert));
    return mr_x509_to_der(k->cert, &k->der);
}

MR_RESULT mr_keyx_new(mr_issuer *issuer, const mr_attest_options *verify, mr_keyx **out)
{
    mr_result res = MR_FAILURE;
    mr_keyx *k = mr_calloc(1, sizeof(*k));
    MR_ENSURE_ALLOC(k);
    k->issuer = issuer;
    k->verify = verify;
    mr_buf_init(&k->der, 0, 0);
    mr_buf_init(&k->quote, 0, 0);
    MR_GUARD_OUT(make_cert(k));
    if (issuer != NULL) {
        uint8_t rd[32];
        mr_tee_type tee = MR_TEE_NONE;
        MR_GUARD_OUT(mr_sha256(k->der.data, k->der.len, rd));
        MR_GUARD_OUT(mr_issuer_issue(issuer, rd, sizeof(rd), &k->quote, &tee));
        if (!mr_ok(mr_dcap_verify(k->quote.data, k->quote.len, verify, &k->own))) {
            mr_error_prefix("key API: our own quote does not verify");
            goto out;
        }
        MR_ENSURE_OUT(k->own.tee == MR_TEE_SGX, MR_ERR_USAGE,
                      "key API: state key sharing needs an SGX Coordinator");
    } else {
        MR_LOG_WARN("key API in simulation mode: the state key goes to any peer with a TLS "
                    "certificate (no quotes are checked)");
    }
    *out = k;
    k = NULL;
    res = MR_SUCCESS;
out:
    mr_keyx_free(k);
    return res;
}

void mr_keyx_free(mr_keyx *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->key);
    X509_free(k->cert);
    mr_buf_free(&k->der);
    mr_buf_free(&k->quote);
    mr_free(k);
}

MR_RESULT mr_keyx_tls_identity(mr_keyx *k, X509 **cert, EVP_PKEY **key)
{
    MR_ENSURE(X509_up_ref(k->cert) == 1 && EVP_PKEY_up_ref(k->key) == 1, MR_ERR_INTERNAL,
              "key API: identity unavailable");
    *cert = k->cert;
    *key = k->key;
    return MR_SUCCESS;
}

mr_slice mr_keyx_quote(const mr_keyx *k) { return mr_buf_slice(&k->quote); }

/* ---- the rule ---- */

static const char *hex32(const uint8_t *b, char out[65])
{
    static const char h[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = h[b[i] >> 4];
        out[2 * i + 1] = h[b[i] & 15];
    }
    out[64] = '\0';
    return out;
}

/* The peer's quote binds cert_der and shows our product; with min_svn also SVN >= ours. */
static MR_RESULT check_peer(const mr_keyx *k, mr_slice quote, mr_slice cert_der, bool min_svn)
{
    mr_attest_claims c;
    char a[65], b[65];
    MR_ENSURE(quote.len > 0, MR_ERR_AUTH, "key API: the peer sent no quote");
    if (!mr_ok(mr_dcap_verify(quote.ptr, quote.len, k->verify, &c))) {
        mr_error_prefix("key API: the peer's quote does not verify");
        return MR_FAILURE;
    }
    if (!mr_ok(mr_policy_check_cert_binding(&c, cert_der.ptr, cert_der.len))) {
        mr_error_prefix("key API: the peer's quote is not about its TLS certificate");
        return MR_FAILURE;
    }
    MR_ENSURE(c.tee == MR_TEE_SGX, MR_ERR_AUTH, "key API: the peer is not an SGX enclave");
    const mr_attest_sgx_claims *p = &c.u.sgx, *o = &k->own.u.sgx;
    MR_ENSURE(CRYPTO_memcmp(p->mrsigner, o->mrsigner, 32) == 0, MR_ERR_AUTH,
              "key API: the peer's SignerID %s is not ours (%s)", hex32(p->mrsigner, a),
              hex32(o->mrsigner, b));
    MR_ENSURE(p->isvprodid == o->isvprodid, MR_ERR_AUTH,
              "key API: the peer's ProductID %u is not ours (%u)", p->isvprodid, o->isvprodid);
    MR_ENSURE(c.debug == k->own.debug, MR_ERR_AUTH, "key API: the peer's debug attribute (%s) "
              "differs from ours", c.debug ? "on" : "off");
    MR_ENSURE(!min_svn || p->isvsvn >= o->isvsvn, MR_ERR_AUTH,
              "key API: the peer's SecurityVersion %u is below ours (%u)", p->isvsvn, o->isvsvn);
    MR_ENSURE(c.tcb.status == MR_TCB_UP_TO_DATE || c.tcb.status == k->own.tcb.status, MR_ERR_AUTH,
              "key API: the peer's TCB status %s is neither UpToDate nor ours (%s)",
              mr_tcb_status_name(c.tcb.status), mr_tcb_status_name(k->own.tcb.status));
    return MR_SUCCESS;
}

MR_RESULT mr_keyx_check_requester(mr_keyx *k, mr_slice quote, mr_slice peer_leaf)
{
    MR_ENSURE(peer_leaf.len > 0, MR_ERR_AUTH, "key API: no client certificate");
    if (k->issuer == NULL)
        return MR_SUCCESS; /* simulation */
    return check_peer(k, quote, peer_leaf, true);
}

/* ---- requesting ---- */

static MR_RESULT client_ctx(mr_keyx *k, SSL_CTX **out)
{
    mr_result res = MR_FAILURE;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    MR_ENSURE_ALLOC(ctx);
    MR_GUARD_OSSL_OUT(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), MR_ERR_INTERNAL,
                      "key API: TLS set-up");
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT | SSL_OP_NO_RENEGOTIATION);
    /* the server is judged by its quote, not by a CA */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    MR_GUARD_OSSL_OUT(SSL_CTX_use_certificate(ctx, k->cert), MR_ERR_INTERNAL, "key API: TLS set-up");
    MR_GUARD_OSSL_OUT(SSL_CTX_use_PrivateKey(ctx, k->key), MR_ERR_INTERNAL, "key API: TLS set-up");
    *out = ctx;
    ctx = NULL;
    res = MR_SUCCESS;
out:
    SSL_CTX_free(ctx);
    return res;
}

typedef struct asker {
    mr_keyx *k;
    SSL_CTX *ctx;
    uint64_t deadline;
    mr_keyx_accept_fn accept;
    void *arg;
    mr_buf *key;
    mr_buf req;
} asker;

/* Checks the answer of one address; success means the key is in a->key. */
static MR_RESULT judge(asker *a, mr_rpc_conn *c, const mr_buf *resp)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    X509 *peer = mr_rpc_peer_cert(c);
    mr_buf_init(&der, 0, 0);
    Keypb__GetKeyEncryptionKeyResponse *r =
        keypb__get_key_encryption_key_response__unpack(NULL, resp->len, resp->data);
    MR_ENSURE_OUT(r != NULL, MR_ERR_PROTOCOL, "key API: malformed answer");
    MR_ENSURE_OUT(peer != NULL, MR_ERR_AUTH, "key API: the peer has no certificate");
    MR_GUARD_OUT(mr_x509_to_der(peer, &der));
    if (a->k->issuer != NULL)
        MR_GUARD_OUT(check_peer(a->k, MR_SLICE(r->quote.data, r->quote.len), mr_buf_slice(&der),
                                false));
    bool ok = false;
    MR_GUARD_OUT(a->accept(a->arg, MR_SLICE(r->key.data, r->key.len), &ok));
    MR_ENSURE_OUT(ok, MR_ERR_AUTH, "key API: the peer's key does not open this state");
    MR_GUARD_OUT(mr_buf_set(a->key, r->key.data, r->key.len));
    res = MR_SUCCESS;
out:
    if (r != NULL) {
        OPENSSL_cleanse(r->key.data, r->key.len);
        keypb__get_key_encryption_key_response__free_unpacked(r, NULL);
    }
    X509_free(peer);
    mr_buf_free(&der);
    return res;
}

static MR_RESULT ask_address(asker *a, const char *host, const char *port)
{
    mr_rpc_conn *c = NULL;
    mr_buf resp;
    mr_buf_init(&resp, RESP_MAX, MR_BUF_SECRET);
    mr_rpc_target t = {.host = host, .port = port, .tls = a->ctx};
    mr_result r = mr_rpc_connect(&t, a->deadline, &c);
    if (mr_ok(r))
        r = mr_rpc_call(c, KEY_PATH, mr_buf_slice(&a->req), RESP_MAX, a->deadline, &resp, NULL);
    if (mr_ok(r))
        r = judge(a, c, &resp);
    mr_rpc_close(c);
    mr_buf_free(&resp);
    return r;
}

/* host:port, [v6]:port */
static MR_RESULT split_peer(const char *p, size_t n, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon = NULL;
    const char *h = p;
    size_t hl = 0;
    if (n > 0 && p[0] == '[') {
        const char *rb = memchr(p, ']', n);
        MR_ENSURE(rb != NULL && rb + 1 < p + n && rb[1] == ':', MR_ERR_USAGE,
                  "EDG_COORDINATOR_PEERS: %.*s: bad address", (int)n, p);
        h = p + 1;
        hl = (size_t)(rb - p - 1);
        colon = rb + 1;
    } else {
        for (size_t i = 0; i < n; i++)
            if (p[i] == ':')
                colon = p + i;
        MR_ENSURE(colon != NULL, MR_ERR_USAGE, "EDG_COORDINATOR_PEERS: %.*s: the port is missing",
                  (int)n, p);
        hl = (size_t)(colon - p);
    }
    size_t pl = (size_t)(p + n - colon - 1);
    MR_ENSURE(hl > 0 && hl < hn && pl > 0 && pl < pn, MR_ERR_USAGE,
              "EDG_COORDINATOR_PEERS: %.*s: bad address", (int)n, p);
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl);
    port[pl] = '\0';
    return MR_SUCCESS;
}

/* Every address of one peer entry, in turn. */
static MR_RESULT ask_peer(asker *a, const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    MR_ENSURE(rc == 0, MR_ERR_UNAVAILABLE, "cannot resolve %s: %s", host, gai_strerror(rc));
    mr_result r = MR_FAILURE;
    mr_error_set(MR_ERR_UNAVAILABLE, __FILE__, __LINE__, "%s has no address", host);
    for (const struct addrinfo *ai = res; ai != NULL && !mr_ok(r); ai = ai->ai_next) {
        char num[NI_MAXHOST];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, num, sizeof(num), NULL, 0,
                        NI_NUMERICHOST) != 0)
            continue;
        r = ask_address(a, num, port);
        if (!mr_ok(r))
            MR_LOG_INFO("key API: peer did not release the state key", MR_F_STR("peer", num),
                        MR_F_STR("port", port), MR_F_ERR());
    }
    freeaddrinfo(res);
    return r;
}

MR_RESULT mr_keyx_fetch(mr_keyx *k, const char *peers, unsigned timeout_ms,
                        mr_keyx_accept_fn accept, void *arg, mr_buf *key)
{
    mr_result res = MR_FAILURE;
    asker a = {.k = k, .deadline = mr_rpc_now_ms() + timeout_ms, .accept = accept, .arg = arg,
               .key = key};
    char why[MR_ERR_MSG_MAX] = "no peer configured (EDG_COORDINATOR_PEERS)";
    mr_buf_init(&a.req, 0, 0);
    Keypb__GetKeyEncryptionKeyRequest req = KEYPB__GET_KEY_ENCRYPTION_KEY_REQUEST__INIT;
    mr_slice q = mr_keyx_quote(k);
    req.quote = (ProtobufCBinaryData){q.len, (uint8_t *)(uintptr_t)q.ptr};
    MR_GUARD_OUT(mr_buf_reserve(&a.req, keypb__get_key_encryption_key_request__get_packed_size(&req)));
    a.req.len = keypb__get_key_encryption_key_request__pack(&req, a.req.data);
    MR_GUARD_OUT(client_ctx(k, &a.ctx));
    for (const char *p = peers != NULL ? peers : ""; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char host[256], port[16];
        if (n > 0) {
            MR_GUARD_OUT(split_peer(p, n, host, sizeof(host), port, sizeof(port)));
            if (mr_ok(ask_peer(&a, host, port))) {
                res = MR_SUCCESS;
                goto out;
            }
            (void)snprintf(why, sizeof(why), "%s", mr_error_get()->msg);
        }
        if (comma == NULL || mr_rpc_now_ms() >= a.deadline)
            break;
        p = comma + 1;
    }
    MR_BAIL_OUT(MR_ERR_UNAVAILABLE, "no peer released the state key: %s", why);
out:
    SSL_CTX_free(a.ctx);
    mr_buf_free(&a.req);
    return res;
}
