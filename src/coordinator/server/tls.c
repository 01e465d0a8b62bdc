/* SPDX-License-Identifier: Apache-2.0 */
/* TLS contexts for the client and mesh listeners (spec §4.1, §5.2). */
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/server/internal.h"

/* Client certificates are requested (client API) or required (mesh) but never verified
 * against a CA: users and marbles are identified by the layers above. OpenSSL still checks
 * the CertificateVerify signature, so the peer proves possession of the key. */
static int accept_any_chain(int preverify_ok, X509_STORE_CTX *ctx)
{
    (void)preverify_ok;
    (void)ctx;
    return 1;
}

/* Installs the listener's current certificate and key on this connection. */
static int cert_cb(SSL *ssl, void *arg)
{
    mr_srv_listener *l = arg;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int ok = 0;
    if (!mr_ok(l->cert_fn(l->cert_arg, &cert, &key)) || cert == NULL || key == NULL) {
        MR_LOG_ERROR("no TLS certificate available", MR_F_ERR());
        goto out;
    }
    if (SSL_use_certificate(ssl, cert) != 1 || SSL_use_PrivateKey(ssl, key) != 1 ||
        SSL_check_private_key(ssl) != 1) {
        MR_LOG_ERROR("TLS certificate and key do not fit together");
        ERR_clear_error();
        goto out;
    }
    ok = 1;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}

/* The ClientHello arrived: the connection is no longer among those that never sent a byte
 * (the first to be evicted from a full listener). */
static int hello_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    mr_srv_conn *c = SSL_get_app_data(ssl);
    if (c != NULL)
        mr_srv_conn_started(c);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* ALPN: the client API prefers h2, then http/1.1; the mesh API accepts only h2. A client
 * offering nothing we speak gets a no_application_protocol alert, as Go's server does. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char client_prefs[] = "\x02h2\x08http/1.1";
    static const unsigned char mesh_prefs[] = "\x02h2";
    mr_srv_listener *l = arg;
    (void)ssl;
    const unsigned char *prefs = l->kind == MR_SRV_LISTENER_MESH ? mesh_prefs : client_prefs;
    unsigned plen = l->kind == MR_SRV_LISTENER_MESH ? sizeof(mesh_prefs) - 1
                                                    : sizeof(client_prefs) - 1;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, prefs, plen, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

MR_RESULT mr_srv_tls_ctx_new(mr_srv_listener *l, SSL_CTX **out)
{
    mr_result res = MR_FAILURE;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    MR_ENSURE_OUT(ctx != NULL, MR_ERR_INTERNAL, "cannot create TLS context");
    MR_GUARD_OSSL_OUT(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), MR_ERR_INTERNAL,
                      "cannot set TLS version");
    /* CLEANSE_PLAINTEXT: received records (user secrets, recovery keys) are wiped from
     * OpenSSL's read buffer once handed over. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_CLEANSE_PLAINTEXT);
    MR_GUARD_OSSL_OUT(SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20"),
                      MR_ERR_INTERNAL, "cannot set TLS 1.2 ciphers");
    /* X25519 first: cheapest key exchange (perf-anchors §2.5). */
    MR_GUARD_OSSL_OUT(SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384"), MR_ERR_INTERNAL,
                      "cannot set TLS groups");
    int mode = SSL_VERIFY_PEER;
    if (l->kind == MR_SRV_LISTENER_MESH)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, accept_any_chain);
    /* Sessions are not resumed: each connection proves its client certificate afresh. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    MR_GUARD_OSSL_OUT(SSL_CTX_set_num_tickets(ctx, 0), MR_ERR_INTERNAL,
                      "cannot disable session tickets");
    SSL_CTX_set_cert_cb(ctx, cert_cb, l);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, l);
    SSL_CTX_set_client_hello_cb(ctx, hello_cb, NULL);
    *out = ctx;
    ctx = NULL;
    res = MR_SUCCESS;
out:
    SSL_CTX_free(ctx);
    return res;
}

MR_RESULT mr_srv_tls_peer_leaf(SSL *ssl, mr_buf *leaf)
{
    mr_buf_init(leaf, 0, 0);
    /* Only the leaf is proven by the handshake (CertificateVerify). The rest of the chain the
     * peer sent is attacker data and is never handed to the layers above. */
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (x == NULL)
        return MR_SUCCESS;
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    MR_ENSURE(len > 0, MR_ERR_INTERNAL, "cannot encode peer certificate");
    mr_result r = mr_buf_append(leaf, der, (size_t)len);
    OPENSSL_free(der);
    return r;
}
