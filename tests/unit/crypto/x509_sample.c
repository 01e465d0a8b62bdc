/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mr-x509-sample: test-only tool for tests/e2e/test_crypto_openssl.py.
 *
 *   mr-x509-sample issue <dir>        writes root.pem, inter.pem, marble_root.pem, leaf.pem,
 *                                     leaf.key (PKCS#8 PEM) and csr.pem (a CSR by the leaf key
 *                                     with subject CN=marble-csr, O=Edgeless and SANs)
 *   mr-x509-sample load-key <file> [pkcs8|sec1|pkcs1]
 *                                     loads a private key (PEM, or DER in the given format),
 *                                     prints its type, and checks sign/verify with it
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/codec.h"
#include "crypto/csr.h"
#include "crypto/key.h"
#include "pki.h"

static mr_result write_file(const char *dir, const char *name, const mr_buf *b)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(path), MR_ERR_USAGE, "path too long");
    FILE *f = fopen(path, "wb");
    MR_ENSURE(f != NULL, MR_ERR_IO, "cannot create %s", path);
    size_t w = fwrite(b->data, 1, b->len, f);
    int closed = fclose(f);
    MR_ENSURE(w == b->len && closed == 0, MR_ERR_IO, "cannot write %s", path);
    return MR_SUCCESS;
}

static mr_result write_cert(const char *dir, const char *name, X509 *x)
{
    mr_buf pem;
    mr_buf_init(&pem, 0, 0);
    mr_result r = mr_x509_to_pem(x, &pem);
    if (mr_ok(r))
        r = write_file(dir, name, &pem);
    mr_buf_free(&pem);
    return r;
}

static mr_result write_csr(const char *dir, EVP_PKEY *key)
{
    mr_x509_attr attrs[] = {{NID_commonName, (char *)"marble-csr"},
                            {NID_organizationName, (char *)"Edgeless"}};
    mr_x509_name subject = {attrs, 2};
    const char *dns[] = {"marble.example"};
    mr_ip ip;
    mr_buf der, pem;
    MR_GUARD(mr_ip_parse("127.0.0.1", &ip));
    mr_buf_init(&der, 0, 0);
    mr_buf_init(&pem, 0, 0);
    mr_result r = mr_csr_create(key, &subject, dns, 1, &ip, 1, &der);
    if (mr_ok(r))
        r = mr_pem_encode_buf("CERTIFICATE REQUEST", der.data, der.len, &pem);
    if (mr_ok(r))
        r = write_file(dir, "csr.pem", &pem);
    mr_buf_free(&der);
    mr_buf_free(&pem);
    return r;
}

static mr_result write_key(const char *dir, EVP_PKEY *key)
{
    mr_buf pem;
    mr_buf_init(&pem, 0, MR_BUF_SECRET);
    mr_result r = mr_key_private_to_pem(key, MR_KEYFMT_PKCS8, &pem);
    if (mr_ok(r))
        r = write_file(dir, "leaf.key", &pem);
    mr_buf_free(&pem);
    return r;
}

static mr_result issue(const char *dir)
{
    pki p;
    mr_result r = pki_build(&p, MR_KEY_EC_P256);
    if (mr_ok(r))
        r = write_cert(dir, "root.pem", p.root);
    if (mr_ok(r))
        r = write_cert(dir, "inter.pem", p.inter);
    if (mr_ok(r))
        r = write_cert(dir, "marble_root.pem", p.marble_root);
    if (mr_ok(r))
        r = write_cert(dir, "leaf.pem", p.leaf);
    if (mr_ok(r))
        r = write_key(dir, p.leaf_key);
    if (mr_ok(r))
        r = write_csr(dir, p.leaf_key);
    pki_free(&p);
    return r;
}

static mr_result read_file(const char *path, mr_buf *out)
{
    uint8_t chunk[4096];
    size_t n;
    FILE *f = fopen(path, "rb");
    MR_ENSURE(f != NULL, MR_ERR_IO, "cannot open %s", path);
    mr_result r = MR_SUCCESS;
    while (mr_ok(r) && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        r = mr_buf_append(out, chunk, n);
    fclose(f);
    return r;
}

static mr_result parse_format(const char *s, mr_key_format *fmt)
{
    static const struct {
        const char *name;
        mr_key_format fmt;
    } names[] = {{"pkcs8", MR_KEYFMT_PKCS8}, {"sec1", MR_KEYFMT_SEC1}, {"pkcs1", MR_KEYFMT_PKCS1}};
    for (size_t i = 0; i < MR_ARRAY_LEN(names); i++)
        if (strcmp(s, names[i].name) == 0) {
            *fmt = names[i].fmt;
            return MR_SUCCESS;
        }
    MR_BAIL(MR_ERR_USAGE, "unknown key format %s", s);
}

static mr_result load_key(const char *path, const char *fmt_name)
{
    mr_buf data, sig;
    EVP_PKEY *key = NULL;
    mr_key_format fmt = MR_KEYFMT_PKCS8;
    mr_buf_init(&data, 0, MR_BUF_SECRET);
    mr_buf_init(&sig, 0, 0);
    mr_result r = read_file(path, &data);
    if (mr_ok(r) && fmt_name != NULL)
        r = parse_format(fmt_name, &fmt);
    if (mr_ok(r))
        r = fmt_name != NULL ? mr_key_private_from_der(mr_buf_slice(&data), fmt, &key)
                             : mr_key_private_from_pem(mr_buf_slice(&data), &key);
    if (mr_ok(r))
        r = mr_key_sign(key, MR_SLICE("probe", 5), &sig);
    if (mr_ok(r))
        r = mr_key_verify(key, MR_SLICE("probe", 5), mr_buf_slice(&sig));
    if (mr_ok(r))
        printf("%s\n", mr_key_type_name(mr_key_type_of(key)));
    EVP_PKEY_free(key);
    mr_buf_free(&data);
    mr_buf_free(&sig);
    return r;
}

int main(int argc, char **argv)
{
    mr_result r;
    if (argc == 3 && strcmp(argv[1], "issue") == 0)
        r = issue(argv[2]);
    else if ((argc == 3 || argc == 4) && strcmp(argv[1], "load-key") == 0)
        r = load_key(argv[2], argc == 4 ? argv[3] : NULL);
    else {
        fprintf(stderr, "usage: %s issue <dir> | load-key <file> [pkcs8|sec1|pkcs1]\n", argv[0]);
        return 2;
    }
    if (!mr_ok(r)) {
        fprintf(stderr, "error: %s\n", mr_error_get()->msg);
        return mr_errcat_exit(mr_error_get()->cat) != 0 ? mr_errcat_exit(mr_error_get()->cat) : 1;
    }
    return 0;
}
