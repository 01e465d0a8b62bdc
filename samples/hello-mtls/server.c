/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hello-mtls-server: a sample marble. It listens on $HELLO_LISTEN (default 127.0.0.1:8443)
 * with mutual TLS built by libmarble from the MARBLE_PREDEFINED_* variables: only peers with a
 * certificate from this deployment's marble root get through. For every client it reads one
 * line "HELLO <fingerprint>" and answers with the greeting from the manifest and whether both
 * marbles hold the same shared key. Exits after $HELLO_MAX_CONNS connections (default: never).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <marblerun/marble.h>

#include "common.h"

static int listen_on(const char *addr)
{
    char host[256], port[16];
    struct addrinfo hints, *res = NULL;
    if (hello_split_addr(addr, host, sizeof(host), port, sizeof(port)) != 0) {
        fprintf(stderr, "bad listen address %s\n", addr);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || res == NULL) {
        fprintf(stderr, "cannot resolve %s\n", addr);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        perror("listen");
        if (fd >= 0)
            (void)close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void serve(SSL_CTX *ctx, int cfd, const char *greeting, const char *fingerprint)
{
    SSL *ssl = SSL_new(ctx);
    char line[256], peer[128], reply[512];
    if (ssl == NULL || SSL_set_fd(ssl, cfd) != 1) {
        hello_ssl_error("SSL_new");
        goto out;
    }
    if (SSL_accept(ssl) != 1) {
        hello_ssl_error("refused a client: TLS handshake failed");
        goto out;
    }
    hello_peer_cn(ssl, peer, sizeof(peer));
    int n = SSL_read(ssl, line, (int)sizeof(line) - 1);
    if (n <= 0) {
        hello_ssl_error("reading the request");
        goto out;
    }
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    const char *theirs = strncmp(line, "HELLO ", 6) == 0 ? line + 6 : "";
    int same = strcmp(theirs, fingerprint) == 0;
    int len = snprintf(reply, sizeof(reply), "%s, marble %s! shared key matches: %s\n", greeting,
                       peer, same ? "yes" : "no");
    if (len < 0 || (size_t)len >= sizeof(reply))
        len = (int)strlen(reply); /* a long greeting is cut, never read past the buffer */
    if (SSL_write(ssl, reply, len) != len)
        hello_ssl_error("writing the answer");
    else
        printf("served marble %s (shared key matches: %s)\n", peer, same ? "yes" : "no");
    (void)SSL_shutdown(ssl);
out:
    (void)fflush(stdout);
    SSL_free(ssl);
    (void)close(cfd);
}

int main(void)
{
    const char *addr = getenv("HELLO_LISTEN");
    const char *greeting = getenv("HELLO_GREETING");
    const char *max_env = getenv("HELLO_MAX_CONNS");
    char fingerprint[17];
    long max = max_env != NULL ? strtol(max_env, NULL, 10) : 0;
    (void)signal(SIGPIPE, SIG_IGN);
    if (addr == NULL || addr[0] == '\0')
        addr = "127.0.0.1:8443";
    if (greeting == NULL)
        greeting = "Hello";
    if (hello_shared_key_fingerprint(fingerprint) != 0)
        return 1;
    SSL_CTX *ctx = marble_ssl_ctx_server(1);
    if (ctx == NULL) {
        fprintf(stderr, "hello-mtls-server: %s\n", marble_last_error());
        return 1;
    }
    int fd = listen_on(addr);
    if (fd < 0) {
        SSL_CTX_free(ctx);
        return 1;
    }
    printf("hello-mtls-server listening on %s (mTLS, client certificates from the marble root "
           "only)\n", addr);
    (void)fflush(stdout);
    for (long served = 0; max <= 0 || served < max; served++) {
        int cfd = accept(fd, NULL, NULL);
        if (cfd < 0) {
            perror("accept");
            break;
        }
        serve(ctx, cfd, greeting, fingerprint);
    }
    (void)close(fd);
    SSL_CTX_free(ctx);
    return 0;
}
