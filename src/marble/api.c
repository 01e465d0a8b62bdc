/* SPDX-License-Identifier: Apache-2.0 */
/* libmarble (include/marblerun/marble.h) on top of the premain internals. */
#include "marblerun/marble.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/result.h"
#include "crypto/key.h"
#include "crypto/x509.h"
#include "marble/marble_int.h"

struct marble_params {
    mr_marble_params p;
};

static _Thread_local char g_err[MR_ERR_MSG_MAX];

static void keep_error(void)
{
    (void)snprintf(g_err, sizeof(g_err), "%s", mr_error_get()->msg);
}

const char *marble_last_error(void) { return g_err; }

int marble_activate(marble_params **out)
{
    mr_marble_config cfg;
    g_err[0] = '\0';
    marble_params *p = mr_calloc(1, sizeof(*p));
    if (p == NULL) {
        (void)snprintf(g_err, sizeof(g_err), "out of memory");
        return -1;
    }
    if (!mr_ok(mr_marble_config_from_env(&cfg)) || !mr_ok(mr_marble_activate(&cfg, &p->p))) {
        keep_error();
        mr_free(p);
        return -1;
    }
    /* terminate the (NUL-free) env values once, so the accessors never write */
    for (size_t i = 0; i < p->p.n_env; i++) {
        if (!mr_ok(mr_buf_nul_terminate(&p->p.env[i].value))) {
            keep_error();
            marble_params_free(p);
            return -1;
        }
    }
    *out = p;
    return 0;
}

void marble_params_free(marble_params *p)
{
    if (p == NULL)
        return;
    mr_marble_params_clear(&p->p);
    mr_free(p);
}

size_t marble_params_file_count(const marble_params *p) { return p->p.n_files; }

const char *marble_params_file_path(const marble_params *p, size_t i)
{
    return i < p->p.n_files ? p->p.files[i].name : NULL;
}

const unsigned char *marble_params_file_data(const marble_params *p, size_t i, size_t *len)
{
    if (i >= p->p.n_files)
        return NULL;
    *len = p->p.files[i].value.len;
    return p->p.files[i].value.data != NULL ? p->p.files[i].value.data
                                            : (const unsigned char *)"";
}

size_t marble_params_env_count(const marble_params *p) { return p->p.n_env; }

const char *marble_params_env_name(const marble_params *p, size_t i)
{
    return i < p->p.n_env ? p->p.env[i].name : NULL;
}

const char *marble_params_env_value(const marble_params *p, size_t i, size_t *len)
{
    if (i >= p->p.n_env)
        return NULL;
    const mr_buf *v = &p->p.env[i].value; /* NUL-terminated by marble_activate */
    if (len != NULL)
        *len = v->len;
    return v->data != NULL ? (const char *)v->data : "";
}

const char *marble_params_getenv(const marble_params *p, const char *name)
{
    for (size_t i = 0; i < p->p.n_env; i++)
        if (strcmp(p->p.env[i].name, name) == 0)
            return marble_params_env_value(p, i, NULL);
    return NULL;
}

size_t marble_params_argc(const marble_params *p) { return p->p.argc; }

const char *marble_params_argv(const marble_params *p, size_t i)
{
    return i < p->p.argc ? p->p.argv[i] : NULL;
}

int marble_params_apply(const marble_params *p, unsigned what)
{
    g_err[0] = '\0';
    if ((what & MARBLE_APPLY_FILES) != 0 &&
        !mr_ok(mr_marble_apply_files(&p->p, mr_marble_detect_runtime()))) {
        keep_error();
        return -1;
    }
    if ((what & MARBLE_APPLY_ENV) != 0 && !mr_ok(mr_marble_apply_env(&p->p))) {
        keep_error();
        return -1;
    }
    return 0;
}

/* ---- mTLS contexts ---- */

static MR_RESULT env_pem(const char *name, const char **out)
{
    *out = getenv(name);
    MR_ENSURE(*out != NULL && (*out)[0] != '\0', MR_ERR_USAGE, "environment variable not set: %s",
              name);
    return MR_SUCCESS;
}

static MR_RESULT build_ctx(bool server, bool verify_peer, SSL_CTX **out)
{
    mr_result res = MR_FAILURE;
    SSL_CTX *ctx = NULL;
    X509 *root = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    const char *root_pem = NULL, *chain_pem = NULL, *key_pem = NULL;
    MR_GUARD_OUT(env_pem("MARBLE_PREDEFINED_ROOT_CA", &root_pem));
    MR_GUARD_OUT(env_pem("MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN", &chain_pem));
    MR_GUARD_OUT(env_pem("MARBLE_PREDEFINED_PRIVATE_KEY", &key_pem));
    if (!mr_ok(mr_x509_from_pem(MR_SLICE(root_pem, strlen(root_pem)), &root))) {
        mr_error_prefix("MARBLE_PREDEFINED_ROOT_CA");
        goto out;
    }
    if (!mr_ok(mr_x509_chain_from_pem(MR_SLICE(chain_pem, strlen(chain_pem)), &chain))) {
        mr_error_prefix("MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN");
        goto out;
    }
    if (!mr_ok(mr_key_private_from_pem(MR_SLICE(key_pem, strlen(key_pem)), &key))) {
        mr_error_prefix("MARBLE_PREDEFINED_PRIVATE_KEY");
        goto out;
    }
    ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    MR_ENSURE_ALLOC_OUT(ctx);
    MR_GUARD_OSSL_OUT(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), MR_ERR_INTERNAL,
                      "TLS version");
    MR_GUARD_OSSL_OUT(SSL_CTX_use_certificate(ctx, sk_X509_value(chain, 0)), MR_ERR_USAGE,
                      "marble certificate");
    for (int i = 1; i < sk_X509_num(chain); i++)
        MR_GUARD_OSSL_OUT((int)SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)),
                          MR_ERR_USAGE, "marble certificate chain");
    MR_GUARD_OSSL_OUT(SSL_CTX_use_PrivateKey(ctx, key), MR_ERR_USAGE, "marble private key");
    MR_GUARD_OSSL_OUT(SSL_CTX_check_private_key(ctx), MR_ERR_USAGE,
                      "marble private key does not match the certificate");
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    MR_GUARD_OSSL_OUT(X509_STORE_add_cert(store, root), MR_ERR_INTERNAL, "trust store");
    if (verify_peer)
        SSL_CTX_set_verify(ctx, server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                       : SSL_VERIFY_PEER, NULL);
    if (server) {
        /* the client CA list names the marble root */
        STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
        X509_NAME *nm = names != NULL ? X509_NAME_dup(X509_get_subject_name(root)) : NULL;
        if (nm != NULL && sk_X509_NAME_push(names, nm) > 0) {
            SSL_CTX_set_client_CA_list(ctx, names);
        } else {
            X509_NAME_free(nm);
            sk_X509_NAME_free(names);
        }
    }
    *out = ctx;
    ctx = NULL;
    res = MR_SUCCESS;
out:
    SSL_CTX_free(ctx);
    X509_free(root);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    return res;
}

SSL_CTX *marble_ssl_ctx_server(int require_client_cert)
{
    SSL_CTX *ctx = NULL;
    g_err[0] = '\0';
    if (!mr_ok(build_ctx(true, require_client_cert != 0, &ctx))) {
        keep_error();
        return NULL;
    }
    return ctx;
}

SSL_CTX *marble_ssl_ctx_client(void)
{
    SSL_CTX *ctx = NULL;
    g_err[0] = '\0';
    if (!mr_ok(build_ctx(false, true, &ctx))) {
        keep_error();
        return NULL;
    }
    return ctx;
}
