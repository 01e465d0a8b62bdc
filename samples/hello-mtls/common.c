/* SPDX-License-Identifier: Apache-2.0 */
#include "common.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hello_split_addr(const char *addr, char *host, size_t host_size, char *port, size_t port_size)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon[1] == '\0')
        return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= host_size || strlen(colon + 1) >= port_size)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    (void)snprintf(port, port_size, "%s", colon + 1);
    return 0;
}

int hello_shared_key_fingerprint(char out[17])
{
    const char *path = getenv("HELLO_SHARED_KEY_FILE");
    unsigned char key[4096];
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (path == NULL) {
        fprintf(stderr, "HELLO_SHARED_KEY_FILE is not set (is this process a marble?)\n");
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t n = fread(key, 1, sizeof(key), f);
    (void)fclose(f);
    int ok = n > 0 && EVP_Digest(key, n, digest, &dlen, EVP_sha256(), NULL) == 1;
    OPENSSL_cleanse(key, sizeof(key));
    if (!ok)
        return -1;
    for (size_t i = 0; i < 8; i++)
        (void)snprintf(out + 2 * i, 3, "%02x", digest[i]);
    return 0;
}

void hello_peer_cn(SSL *ssl, char *out, size_t out_size)
{
    X509 *peer = SSL_get1_peer_certificate(ssl);
    (void)snprintf(out, out_size, "?");
    if (peer != NULL) {
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, out,
                                      (int)out_size) < 0)
            (void)snprintf(out, out_size, "?");
        X509_free(peer);
    }
}

void hello_ssl_error(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    fprintf(stderr, "%s: %s\n", what, e != 0 ? buf : "connection closed");
    ERR_clear_error();
}
