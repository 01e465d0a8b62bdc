/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The injector's HTTPS server (libevent evhttp over OpenSSL), spec §5.3:
 *   POST /mutate   AdmissionReview in, AdmissionReview out (mr_injector_review)
 *   GET  /healthz  200
 * Request checks in upstream's order and words (HTTP 400 "unable to handle requests other
 * than POST", 400 "wrong application type", 500 "unable to mutate request: <err>", bodies
 * ending in a newline as Go's http.Error writes them), other paths 404 "404 page not found".
 *
 * Certificates: the PEM pair is loaded at start (a failure there is fatal) and looked at
 * again (stat: device, inode, size, mtime of both files, following symlinks, so a Secret
 * volume's atomic ..data swap counts) before every TLS handshake; when either changed it is
 * re-read and the new pair serves from that handshake on. A pair that fails to load is logged
 * and the previous one stays in use. cert-manager renewals therefore apply without a restart.
 *
 * One thread, one event loop; every request is answered from memory (no Coordinator
 * contact). SIGTERM/SIGINT end mr_injector_server_run() cleanly.
 */
#ifndef MR_INJECTOR_SERVER_H
#define MR_INJECTOR_SERVER_H

#include "common/log.h"
#include "injector/injector.h"

typedef struct mr_injector_server mr_injector_server;

typedef struct mr_injector_server_opts {
    const char *addr;      /* "host:port", ":port" (all IPv4 addresses) or "[v6]:port" */
    const char *cert_file; /* PEM certificate (chain) */
    const char *key_file;  /* PEM private key */
    mr_log_level http_error_level; /* level of TLS/HTTP error lines (EDG_HTTP_ERROR_LOG_LEVEL) */
} mr_injector_server_opts;

/* cfg and opts must outlive the server. Fails (MR_ERR_IO / MR_ERR_USAGE) when the address is
 * invalid or cannot be bound, or the certificate pair cannot be loaded. */
MR_RESULT mr_injector_server_new(const mr_injector_cfg *cfg, const mr_injector_server_opts *opts,
                                 mr_injector_server **out);
/* Serves until SIGTERM or SIGINT. */
MR_RESULT mr_injector_server_run(mr_injector_server *s);
/* The bound port (for ":0"). */
int mr_injector_server_port(const mr_injector_server *s);
void mr_injector_server_free(mr_injector_server *s);

#endif
