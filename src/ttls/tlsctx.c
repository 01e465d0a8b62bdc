/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OpenSSL contexts of the TTLS entries. Peers are verified against the entry's `cacrt` (the
 * marble root, or the certificate of a manifest secret for an external peer); Incoming
 * entries require a client certificate unless client authentication is off. Beyond
 * MarbleRun, an entry may name the marble types allowed as peers: the peer's leaf must carry
 * the marble-type extension (OID 1.3.9903.2.1, raw type bytes, spec/coordinator.md §12.6)
 * with one of them.
 *
 * Servers send TLS 1.3 session tickets so that a client learns that its certificate was
 * accepted (engine.c, "confirm"), but never resume: tickets are stateful (SSL_OP_NO_TICKET)
 * and the server cache is off, so every connection is a full, fully verified handshake.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ttls/ttls.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ex_entry = -1; /* SSL_CTX -> its mr_ttls_entry */
static int g_ex_owner = -1; /* SSL -> its connection */
static ASN1_OBJECT *g_type_oid;
/* The type the verify callback refused last on this thread (for the log line). */
static _Thread_local char g_refused_type[128];
static _Thread_local bool g_refused;

static void init_once(void)
{
    g_ex_entry = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    g_ex_owner = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    g_type_oid = OBJ_txt2obj(MR_TTLS_MARBLE_TYPE_OID, 1);
}

bool mr_ttls_cert_marble_type(X509 *cert, char *out, size_t cap)
{
    (void)pthread_once(&g_once, init_once);
    if (cert == NULL || g_type_oid == NULL || cap == 0)
        return false;
    int idx = X509_get_ext_by_OBJ(cert, g_type_oid, -1);
    X509_EXTENSION *ext = idx >= 0 ? X509_get_ext(cert, idx) : NULL;
    const ASN1_OCTET_STRING *d = ext != NULL ? X509_EXTENSION_get_data(ext) : NULL;
    if (d == NULL)
        return false;
    int n = ASN1_STRING_length(d);
    const unsigned char *p = ASN1_STRING_get0_data(d);
    if (n <= 0 || (size_t)n >= cap)
        return false;
    for (int i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return false;
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    return true;
}

bool mr_ttls_type_allowed(const mr_ttls_entry *e, const char *type)
{
    if (e->n_types == 0)
        return true;
    if (type == NULL)
        return false;
    for (size_t i = 0; i < e->n_types; i++)
        if (strcmp(e->types[i], type) == 0)
            return true;
    return false;
}

static int verify_cb(int ok, X509_STORE_CTX *x)
{
    if (!ok || X509_STORE_CTX_get_error_depth(x) != 0)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    const mr_ttls_entry *e = ssl != NULL ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), g_ex_entry) : NULL;
    if (e == NULL || e->n_types == 0)
        return ok;
    char type[sizeof(g_refused_type)];
    bool has = mr_ttls_cert_marble_type(X509_STORE_CTX_get_current_cert(x), type, sizeof(type));
    if (has && mr_ttls_type_allowed(e, type))
        return 1;
    g_refused = true;
    (void)snprintf(g_refused_type, sizeof(g_refused_type), "%s", has ? type : "");
    X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    (void)sess;
    void *owner = mr_ttls_ssl_owner(ssl);
    if (owner != NULL)
        mr_ttls_conn_confirmed(owner);
    return 0; /* not kept: we never resume */
}

/* Every certificate of a PEM text; at least one. */
static MR_RESULT read_certs(const mr_buf *pem, const char *what, const char *key,
                            STACK_OF(X509) **out)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *b = BIO_new_mem_buf(pem->data, (int)pem->len);
    MR_ENSURE_OUT(sk != NULL && b != NULL && pem->len < (size_t)1 << 30, MR_ERR_INTERNAL,
                  "out of memory");
    for (;;) {
        X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (c == NULL)
            break;
        if (sk_X509_push(sk, c) <= 0) {
            X509_free(c);
            MR_BAIL_OUT(MR_ERR_INTERNAL, "out of memory");
        }
    }
    ERR_clear_error(); /* the read after the last certificate fails: no start line */
    MR_ENSURE_OUT(sk_X509_num(sk) > 0, MR_ERR_USAGE, "TTLS entry %s: %s holds no certificate", key,
                  what);
    *out = sk;
    sk = NULL;
    res = MR_SUCCESS;
out:
    sk_X509_pop_free(sk, X509_free);
    BIO_free(b);
    return res;
}

MR_RESULT mr_ttls_entry_tls(mr_ttls_entry *e)
{
    mr_result res = MR_FAILURE;
    SSL_CTX *ctx = NULL;
    STACK_OF(X509) *own = NULL, *cas = NULL;
    BIO *kb = NULL;
    EVP_PKEY *key = NULL;
    (void)pthread_once(&g_once, init_once);
    MR_ENSURE(g_ex_entry >= 0 && g_ex_owner >= 0 && g_type_oid != NULL, MR_ERR_INTERNAL,
              "OpenSSL initialisation failed");
    MR_ENSURE(e->creds, MR_ERR_INTERNAL, "internal error: TTLS entry without credentials");
    ctx = SSL_CTX_new(TLS_method());
    MR_ENSURE_OUT(ctx != NULL, MR_ERR_INTERNAL, "out of memory");
    MR_GUARD_OSSL_OUT(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), MR_ERR_INTERNAL,
                      "TTLS: setting the TLS version");
    (void)SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                    SSL_MODE_RELEASE_BUFFERS);
    /* read whole batches of records per read(2), not a header and then a body */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
    MR_GUARD_OUT(read_certs(&e->clicrt, "clicrt", e->key, &own));
    MR_GUARD_OSSL_OUT(SSL_CTX_use_certificate(ctx, sk_X509_value(own, 0)), MR_ERR_USAGE,
                      "TTLS entry %s: clicrt is not usable", e->key);
    for (int i = 1; i < sk_X509_num(own); i++)
        MR_GUARD_OSSL_OUT((int)SSL_CTX_add1_chain_cert(ctx, sk_X509_value(own, i)), MR_ERR_INTERNAL,
                          "TTLS entry %s: adding a chain certificate", e->key);
    kb = BIO_new_mem_buf(e->clikey.data, (int)e->clikey.len);
    MR_ENSURE_OUT(kb != NULL, MR_ERR_INTERNAL, "out of memory");
    key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    MR_ENSURE_OUT(key != NULL, MR_ERR_USAGE, "TTLS entry %s: clikey is not a PEM private key",
                  e->key);
    MR_GUARD_OSSL_OUT(SSL_CTX_use_PrivateKey(ctx, key), MR_ERR_USAGE,
                      "TTLS entry %s: clikey is not usable", e->key);
    MR_GUARD_OSSL_OUT(SSL_CTX_check_private_key(ctx), MR_ERR_USAGE,
                      "TTLS entry %s: clikey does not match clicrt", e->key);
    MR_GUARD_OUT(read_certs(&e->cacrt, "cacrt", e->key, &cas));
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    for (int i = 0; i < sk_X509_num(cas); i++)
        MR_GUARD_OSSL_OUT(X509_STORE_add_cert(st, sk_X509_value(cas, i)), MR_ERR_INTERNAL,
                          "TTLS entry %s: adding a trust anchor", e->key);
    MR_GUARD_OSSL_OUT(X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN), MR_ERR_INTERNAL,
                      "TTLS: store flags");
    int mode = SSL_VERIFY_NONE;
    if (e->dir == MR_TTLS_OUTGOING)
        mode = SSL_VERIFY_PEER;
    else if (e->client_auth)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, verify_cb);
    MR_GUARD_OSSL_OUT(SSL_CTX_set_ex_data(ctx, g_ex_entry, e), MR_ERR_INTERNAL, "TTLS: ex data");
    if (e->dir == MR_TTLS_INCOMING) {
        static const unsigned char sid[] = "marblerun-ttls";
        (void)SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        (void)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        MR_GUARD_OSSL_OUT(SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1),
                          MR_ERR_INTERNAL, "TTLS: session id context");
        MR_GUARD_OSSL_OUT(SSL_CTX_set_num_tickets(ctx, 1), MR_ERR_INTERNAL, "TTLS: tickets");
    } else {
        (void)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                                      SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    }
    SSL_CTX_free(e->ctx);
    e->ctx = ctx;
    ctx = NULL;
    res = MR_SUCCESS;
out:
    SSL_CTX_free(ctx);
    sk_X509_pop_free(own, X509_free);
    sk_X509_pop_free(cas, X509_free);
    EVP_PKEY_free(key);
    BIO_free(kb);
    return res;
}

SSL *mr_ttls_ssl_new(const mr_ttls_entry *e, int fd, bool client, const char *name, void *owner)
{
    SSL *ssl = e->ctx != NULL ? SSL_new(e->ctx) : NULL;
    if (ssl == NULL)
        return NULL;
    bool ok = SSL_set_fd(ssl, fd) == 1 && SSL_set_ex_data(ssl, g_ex_owner, owner) == 1;
    if (ok && client) {
        SSL_set_connect_state(ssl);
        if (name != NULL) {
            /* a mutable copy: the SNI macro casts its argument to void * (clang -Wcast-qual) */
            char sni[MR_TTLS_HOST_MAX];
            ok = snprintf(sni, sizeof(sni), "%s", name) < (int)sizeof(sni) &&
                 SSL_set_tlsext_host_name(ssl, sni) == 1 && SSL_set1_host(ssl, name) == 1;
        }
    } else if (ok) {
        SSL_set_accept_state(ssl);
    }
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    return ssl;
}

void *mr_ttls_ssl_owner(const SSL *ssl)
{
    return g_ex_owner >= 0 ? SSL_get_ex_data(ssl, g_ex_owner) : NULL;
}

void mr_ttls_ssl_reason(SSL *ssl, int ret, char *out, size_t cap)
{
    long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long err = ERR_peek_error();
    if (v == X509_V_ERR_APPLICATION_VERIFICATION && g_refused) {
        if (g_refused_type[0] != '\0')
            (void)snprintf(out, cap, "peer marble type \"%s\" is not allowed", g_refused_type);
        else
            (void)snprintf(out, cap, "peer certificate carries no marble type");
    } else if (v != X509_V_OK) {
        (void)snprintf(out, cap, "peer certificate verification failed: %s",
                       X509_verify_cert_error_string(v));
    } else if (err != 0) {
        char buf[256];
        ERR_error_string_n(err, buf, sizeof(buf));
        (void)snprintf(out, cap, "%s", buf);
    } else if (ret == 0) {
        (void)snprintf(out, cap, "connection closed by the peer");
    } else {
        (void)snprintf(out, cap, "connection failed");
    }
    g_refused = false;
    ERR_clear_error();
}
