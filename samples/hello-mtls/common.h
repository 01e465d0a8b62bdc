/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the hello-mtls sample marbles. */
#ifndef HELLO_MTLS_COMMON_H
#define HELLO_MTLS_COMMON_H

#include <openssl/ssl.h>
#include <stddef.h>

/* Splits "host:port" ("[v6]:port" too) into host and port. Returns 0 on success. */
int hello_split_addr(const char *addr, char *host, size_t host_size, char *port, size_t port_size);
/* The first 8 bytes of SHA-256 over the content of the file named by $HELLO_SHARED_KEY_FILE,
 * as 16 hex digits: a fingerprint of the shared secret that does not reveal it. */
int hello_shared_key_fingerprint(char out[17]);
/* The peer certificate's subject CN (the peer marble's UUID), or "?" */
void hello_peer_cn(SSL *ssl, char *out, size_t out_size);
/* Prints the OpenSSL error queue with a prefix to stderr. */
void hello_ssl_error(const char *what);

#endif
