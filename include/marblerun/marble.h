/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libmarble: the MarbleRun marble side as a C library.
 *
 *  - marble_activate() does what marblerun-premain does up to applying the parameters
 *    (ephemeral key and self-signed certificate, UUID file, CSR, quote, gRPC Activate over
 *    mutual TLS, optional Coordinator pinning), configured by the same environment variables
 *    (EDG_MARBLE_TYPE, EDG_MARBLE_COORDINATOR_ADDR, EDG_MARBLE_DNS_NAMES, EDG_MARBLE_UUID_FILE,
 *    EDG_MARBLE_KEY_CURVE, EDG_MARBLE_COORDINATOR_ROOT_CA/_POLICY/_CLIENT_ADDR, EDG_ATTESTATION;
 *    see docs/marble.md). It returns the parameters instead of executing anything; the caller
 *    may apply them with marble_params_apply().
 *  - marble_ssl_ctx_server() / marble_ssl_ctx_client() build OpenSSL contexts for mTLS between
 *    marbles from MARBLE_PREDEFINED_ROOT_CA, MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN and
 *    MARBLE_PREDEFINED_PRIVATE_KEY: they present the chain and verify peers against the
 *    marble root.
 *
 * Ownership: a marble_params is owned by the caller and released with marble_params_free()
 * (NULL-safe), which wipes the file contents and env values (they contain private keys).
 * Pointers returned by the accessors borrow from the params and are valid until it is freed.
 * SSL_CTX objects are owned by the caller (SSL_CTX_free).
 *
 * Errors: functions return 0 / a non-NULL pointer on success, -1 / NULL on failure; the
 * reason is available from marble_last_error() on the same thread (never contains secrets).
 * Thread safety: all functions may be called from several threads; a marble_params must not
 * be freed while another thread reads it.
 */
#ifndef MARBLERUN_MARBLE_H
#define MARBLERUN_MARBLE_H

#include <stddef.h>

#include <openssl/ssl.h>

#ifndef MR_API
#define MR_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct marble_params marble_params;

/* Activates this process as a marble. On success *out receives the parameters. */
MR_API int marble_activate(marble_params **out);
MR_API void marble_params_free(marble_params *p);

MR_API size_t marble_params_file_count(const marble_params *p);
MR_API const char *marble_params_file_path(const marble_params *p, size_t i);
MR_API const unsigned char *marble_params_file_data(const marble_params *p, size_t i,
                                                    size_t *len);
MR_API size_t marble_params_env_count(const marble_params *p);
MR_API const char *marble_params_env_name(const marble_params *p, size_t i);
/* NUL-terminated value (len excludes the terminator). */
MR_API const char *marble_params_env_value(const marble_params *p, size_t i, size_t *len);
/* The value of one variable, or NULL. */
MR_API const char *marble_params_getenv(const marble_params *p, const char *name);
MR_API size_t marble_params_argc(const marble_params *p);
MR_API const char *marble_params_argv(const marble_params *p, size_t i);

enum {
    MARBLE_APPLY_FILES = 1u << 0, /* write Files (all-or-nothing, 0700 dirs, 0600 files) */
    MARBLE_APPLY_ENV = 1u << 1,   /* setenv every Env entry */
};
/* Applies the parameters as the premain does (files first, then env). */
MR_API int marble_params_apply(const marble_params *p, unsigned what);

/* mTLS contexts from the MARBLE_PREDEFINED_* variables (TLS 1.2+). The server requires and
 * verifies a client certificate when require_client_cert != 0. Clients should set the
 * expected server name with SSL_set1_host() and SSL_set_tlsext_host_name(). */
MR_API SSL_CTX *marble_ssl_ctx_server(int require_client_cert);
MR_API SSL_CTX *marble_ssl_ctx_client(void);

/* The reason of the last failure on this thread ("" if none). */
MR_API const char *marble_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
