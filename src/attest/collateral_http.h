/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP(S) GET client that fetches collateral from a PCCS or Intel's PCS (used by
 * collateral_source.c). libevent's evhttp over a bufferevent_openssl, so that the binaries
 * need no libcurl (and none of the ~30 libraries Debian's libcurl loads with it).
 *
 * Each call is self-contained: its own event_base, SSL_CTX and connection, all freed before
 * it returns, so calls from any number of threads at the same time are safe and never touch
 * an event loop of the caller. SIGPIPE is blocked on the calling thread for the duration
 * (the socket writes are plain write()s), and a SIGPIPE it caused is consumed.
 *
 * What it does (the libcurl easy-handle defaults the previous implementation relied on):
 *  - http:// and https:// only; default ports 80 and 443; user:password@ in the URL is sent
 *    as HTTP Basic authorisation; the fragment is not sent.
 *  - The host is resolved with getaddrinfo and its addresses are tried in order; the next one
 *    is tried only when no connection (TCP, and for https the TLS handshake up to the first
 *    record) could be made to the previous one.
 *  - HTTP/1.1 GET with Host, Accept: star-slash-star and Connection: close. Redirects are
 *    not followed: a 3xx is returned as its status.
 *  - TLS 1.2+, SNI (for a host name, not an IP literal). With verify_tls: the server's chain
 *    is verified against ca_file (or, when NULL, the system store that Debian's libcurl uses:
 *    MR_HTTP_CA_FILE and MR_HTTP_CA_DIR, environment not consulted), partial chains to a
 *    trusted intermediate accepted (as curl does), and the host name (or IP address) must
 *    match the certificate (no partial wildcards). Without verify_tls nothing is checked.
 *  - Bounded: timeout_ms for the whole call (resolution included, as far as getaddrinfo
 *    returns), connect_timeout_ms for each connection attempt and as the idle timeout while
 *    it runs; max_headers for the status line plus headers; max_body for the body.
 *
 * Errors (all MR_ERR_IO unless out of memory) say what failed without the URL; callers add
 * it (mr_error_prefix). A non-2xx status is not an error here.
 */
#ifndef MR_ATTEST_COLLATERAL_HTTP_H
#define MR_ATTEST_COLLATERAL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/result.h"

/* The trust store of Debian's libcurl (curl-config --ca, --with-ca-path). */
#ifndef MR_HTTP_CA_FILE
#define MR_HTTP_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#endif
#ifndef MR_HTTP_CA_DIR
#define MR_HTTP_CA_DIR "/etc/ssl/certs"
#endif

typedef struct mr_http_get_opts {
    bool verify_tls;             /* https: verify the chain and the host name */
    const char *ca_file;         /* PEM trust anchors instead of the system store; NULL: system */
    unsigned timeout_ms;         /* the whole call; must be > 0 */
    unsigned connect_timeout_ms; /* per connection attempt and idle; 0 = timeout_ms */
    size_t max_headers;          /* status line + header lines, bytes; must be > 0 */
    size_t max_body;             /* body bytes; must be > 0 */
    /* Called once per response header, in the order received (names as sent, values with
     * surrounding white space removed). A failure ends the call with the callback's error.
     * NULL: headers are not reported. */
    MR_RESULT (*on_header)(void *arg, const char *name, const char *value);
    void *arg;
} mr_http_get_opts;

/* GETs url. On success *status is the HTTP status code and body (its maximum should be at
 * least o->max_body) holds the body, for any status. On failure body may hold a part. */
MR_RESULT mr_http_get(const mr_http_get_opts *o, const char *url, int *status, mr_buf *body);

#endif
