/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hello-mtls-client: a sample marble. It connects to $HELLO_SERVER (default localhost:8443)
 * with mutual TLS from libmarble (the server must present a certificate from this deployment's
 * marble root with a matching name), sends "HELLO <fingerprint of the shared key>", prints the
 * answer and exits 0 when the server confirms that both hold the same shared key.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <marblerun/marble.h>

#include "common.h"

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        fprintf(stderr, "cannot resolve %s\n", host);
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            (void)close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "cannot connect to %s:%s\n", host, port);
    return fd;
}

int main(void)
{
    const char *addr = getenv("HELLO_SERVER");
    char host[256], port[16], fingerprint[17], request[64], reply[512];
    int rc = 1, fd = -1;
    SSL *ssl = NULL;
    if (addr == NULL || addr[0] == '\0')
        addr = "localhost:8443";
    if (hello_split_addr(addr, host, sizeof(host), port, sizeof(port)) != 0) {
        fprintf(stderr, "bad server address %s\n", addr);
        return 1;
    }
    if (hello_shared_key_fingerprint(fingerprint) != 0)
        return 1;
    SSL_CTX *ctx = marble_ssl_ctx_client();
    if (ctx == NULL) {
        fprintf(stderr, "hello-mtls-client: %s\n", marble_last_error());
        return 1;
    }
    fd = connect_to(host, port);
    if (fd < 0)
        goto out;
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set1_host(ssl, host) != 1 ||
        SSL_set_tlsext_host_name(ssl, host) != 1) {
        hello_ssl_error("SSL setup");
        goto out;
    }
    if (SSL_connect(ssl) != 1) {
        hello_ssl_error("TLS handshake with the server failed");
        goto out;
    }
    int len = snprintf(request, sizeof(request), "HELLO %s\n", fingerprint);
    if (SSL_write(ssl, request, len) != len) {
        hello_ssl_error("sending the request");
        goto out;
    }
    int n = 0, got = 0;
    while (got < (int)sizeof(reply) - 1 &&
           (n = SSL_read(ssl, reply + got, (int)sizeof(reply) - 1 - got)) > 0)
        got += n;
    reply[got] = '\0';
    if (got == 0) {
        hello_ssl_error("reading the answer");
        goto out;
    }
    char server_cn[128];
    hello_peer_cn(ssl, server_cn, sizeof(server_cn));
    printf("hello-mtls-client: server marble %s answered over mTLS: %s", server_cn, reply);
    rc = strstr(reply, "shared key matches: yes") != NULL ? 0 : 1;
out:
    (void)fflush(stdout);
    SSL_free(ssl);
    if (fd >= 0)
        (void)close(fd);
    SSL_CTX_free(ctx);
    return rc;
}
