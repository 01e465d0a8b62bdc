/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The injector's serving certificate for `marblerun install` (spec §5.4 step 6): an RSA-4096
 * key and a CSR (CN system:node:marble-injector.<ns>.svc, O system:nodes, DNS
 * marble-injector.<ns>.svc, critical EKU serverAuth, critical KeyUsage digitalSignature and
 * keyEncipherment, SHA-256), submitted as the CertificateSigningRequest marble-injector.<ns>
 * (signer kubernetes.io/kubelet-serving), self-approved, and waited for (20 x 1 s, a dot per
 * attempt); then Secret marble-injector-webhook-certs {tls.crt, tls.key (PKCS#1 PEM)}.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/install_int.h"
#include "common/codec.h"

#define CSR_ATTEMPTS 20

static MR_RESULT bio_to_buf(BIO *b, mr_buf *out)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    MR_ENSURE(n >= 0, MR_ERR_INTERNAL, "reading PEM failed");
    return mr_buf_set(out, p, (size_t)n);
}

static MR_RESULT add_ext(X509_REQ *req, STACK_OF(X509_EXTENSION) *exts, int nid,
                         const char *value)
{
    (void)req;
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
    MR_ENSURE_OSSL(e != NULL, MR_ERR_INTERNAL, "building the CSR extension");
    if (sk_X509_EXTENSION_push(exts, e) <= 0) {
        X509_EXTENSION_free(e);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    return MR_SUCCESS;
}

static MR_RESULT fill_request(X509_REQ *req, EVP_PKEY *key, const char *ns)
{
    mr_result res = MR_FAILURE;
    char cn[300], san[300];
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    MR_ENSURE_ALLOC_OUT(exts);
    (void)snprintf(cn, sizeof(cn), "system:node:marble-injector.%s.svc", ns);
    (void)snprintf(san, sizeof(san), "DNS:marble-injector.%s.svc", ns);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    MR_GUARD_OSSL_OUT(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                 (const unsigned char *)"system:nodes", -1,
                                                 -1, 0),
                      MR_ERR_INTERNAL, "building the CSR subject");
    MR_GUARD_OSSL_OUT(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                 (const unsigned char *)cn, -1, -1, 0),
                      MR_ERR_INTERNAL, "building the CSR subject");
    MR_GUARD_OUT(add_ext(req, exts, NID_subject_alt_name, san));
    MR_GUARD_OUT(add_ext(req, exts, NID_ext_key_usage, "critical,serverAuth"));
    MR_GUARD_OUT(add_ext(req, exts, NID_key_usage, "critical,digitalSignature,keyEncipherment"));
    MR_GUARD_OSSL_OUT(X509_REQ_add_extensions(req, exts), MR_ERR_INTERNAL,
                      "adding the CSR extensions");
    MR_GUARD_OSSL_OUT(X509_REQ_set_pubkey(req, key), MR_ERR_INTERNAL, "setting the CSR key");
    MR_ENSURE_OSSL_OUT(X509_REQ_sign(req, key, EVP_sha256()) > 0, MR_ERR_INTERNAL,
                       "signing the CSR");
    res = MR_SUCCESS;
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return res;
}

/* key_pem: PKCS#1 "RSA PRIVATE KEY" (MR_BUF_WIPE), csr_pem: "CERTIFICATE REQUEST". */
static MR_RESULT make_csr(const char *ns, mr_buf *key_pem, mr_buf *csr_pem)
{
    mr_result res = MR_FAILURE;
    X509_REQ *req = NULL;
    BIO *kb = NULL, *cb = NULL;
    EVP_PKEY *key = EVP_RSA_gen(4096);
    MR_ENSURE_OSSL_OUT(key != NULL, MR_ERR_INTERNAL, "generating the webhook key");
    req = X509_REQ_new();
    MR_ENSURE_ALLOC_OUT(req);
    MR_GUARD_OUT(fill_request(req, key, ns));
    kb = BIO_new(BIO_s_secmem());
    cb = BIO_new(BIO_s_mem());
    MR_ENSURE_ALLOC_OUT(kb != NULL && cb != NULL ? kb : NULL);
    MR_GUARD_OSSL_OUT(PEM_write_bio_PrivateKey_traditional(kb, key, NULL, NULL, 0, NULL, NULL),
                      MR_ERR_INTERNAL, "encoding the webhook key");
    MR_GUARD_OSSL_OUT(PEM_write_bio_X509_REQ(cb, req), MR_ERR_INTERNAL, "encoding the CSR");
    MR_GUARD_OUT(bio_to_buf(kb, key_pem));
    MR_GUARD_OUT(bio_to_buf(cb, csr_pem));
    res = MR_SUCCESS;
out:
    BIO_free_all(kb);
    BIO_free_all(cb);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return res;
}

static MR_RESULT submit_csr(mr_kube *k, const char *ns, const mr_buf *csr_pem,
                            const char *path)
{
    mr_result res = MR_FAILURE;
    mr_buf b64;
    mr_buf_init(&b64, 0, 0);
    json_t *obj = NULL;
    char name[300];
    (void)snprintf(name, sizeof(name), "marble-injector.%s", ns);
    MR_GUARD_OUT(mr_kube_delete(k, path)); /* a stale request of an earlier install */
    MR_GUARD_OUT(mr_b64_encode_buf(csr_pem->data, csr_pem->len, MR_B64_STD, &b64));
    obj = json_pack("{s:s, s:s, s:{s:s}, s:{s:s%, s:s, s:[s,s,s]}}", "apiVersion",
                    "certificates.k8s.io/v1", "kind", "CertificateSigningRequest", "metadata",
                    "name", name, "spec", "request", (const char *)b64.data, b64.len,
                    "signerName", "kubernetes.io/kubelet-serving", "usages", "key encipherment",
                    "digital signature", "server auth");
    MR_ENSURE_ALLOC_OUT(obj);
    MR_GUARD_OUT(mr_kube_call(k, "POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests",
                              NULL, obj, NULL));
    res = MR_SUCCESS;
out:
    json_decref(obj);
    mr_buf_free(&b64);
    return res;
}

static MR_RESULT approve_csr(mr_kube *k, const char *path)
{
    json_t *csr = NULL;
    char apath[600];
    MR_GUARD(mr_kube_call(k, "GET", path, NULL, NULL, &csr));
    json_t *cond = json_pack(
        "[{s:s, s:s, s:s, s:s}]", "type", "Approved", "status", "True", "reason",
        "MarbleRunInstall", "message",
        "This CSR was automatically approved after creation with marblerun install.");
    json_t *st = json_object_get(csr, "status");
    if (cond == NULL || (!json_is_object(st) && json_object_set_new(csr, "status", json_object())) ||
        json_object_set_new(json_object_get(csr, "status"), "conditions", cond) != 0) {
        json_decref(csr);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    (void)snprintf(apath, sizeof(apath), "%s/approval", path);
    mr_result r = mr_kube_call(k, "PUT", apath, NULL, csr, NULL);
    json_decref(csr);
    return r;
}

static MR_RESULT wait_cert(mr_kube *k, const char *path, mr_buf *cert_pem)
{
    for (int i = 0; i < CSR_ATTEMPTS; i++) {
        json_t *csr = NULL;
        MR_GUARD(mr_kube_call(k, "GET", path, NULL, NULL, &csr));
        const char *c = json_string_value(json_object_get(json_object_get(csr, "status"),
                                                          "certificate"));
        if (c != NULL && c[0] != '\0') {
            mr_result r = mr_b64_decode_buf(c, strlen(c), MR_B64_STD, 0, cert_pem);
            json_decref(csr);
            return r;
        }
        json_decref(csr);
        printf(".");
        (void)fflush(stdout);
        (void)sleep(1);
    }
    MR_BAIL(MR_ERR_UNAVAILABLE,
            "certificate signing request was not updated after %d attempts. Giving up",
            CSR_ATTEMPTS);
}

static MR_RESULT store_secret(mr_kube *k, const char *ns, const mr_buf *cert,
                              const mr_buf *key)
{
    mr_result res = MR_FAILURE;
    mr_buf c64, k64;
    mr_buf_init(&c64, 0, 0);
    mr_buf_init(&k64, 0, MR_BUF_WIPE);
    json_t *obj = NULL;
    MR_GUARD_OUT(mr_b64_encode_buf(cert->data, cert->len, MR_B64_STD, &c64));
    MR_GUARD_OUT(mr_b64_encode_buf(key->data, key->len, MR_B64_STD, &k64));
    obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s%, s:s%}}", "apiVersion", "v1", "kind",
                    "Secret", "metadata", "name", MR_WEBHOOK_SECRET, "namespace", ns, "data",
                    "tls.crt", (const char *)c64.data, c64.len, "tls.key",
                    (const char *)k64.data, k64.len);
    MR_ENSURE_ALLOC_OUT(obj);
    MR_GUARD_OUT(mr_kube_apply(k, obj));
    res = MR_SUCCESS;
out:
    mr_cli_json_wipe(obj);
    json_decref(obj);
    mr_buf_free(&c64);
    mr_buf_free(&k64);
    return res;
}

MR_RESULT mr_install_webhook_cert(mr_kube *k, const char *ns, json_t *injector_values)
{
    mr_result res = MR_FAILURE;
    mr_buf key, csr, cert, ca64;
    mr_buf_init(&key, 0, MR_BUF_WIPE);
    mr_buf_init(&csr, 0, 0);
    mr_buf_init(&cert, 0, 0);
    mr_buf_init(&ca64, 0, 0);
    char path[512];
    (void)snprintf(path, sizeof(path),
                   "/apis/certificates.k8s.io/v1/certificatesigningrequests/marble-injector.%s",
                   ns);
    const mr_buf *ca = mr_kube_ca(k);
    MR_ENSURE_OUT(ca->len > 0, MR_ERR_USAGE,
                  "no certificate authority data in the kubeconfig for the webhook CABundle");
    MR_GUARD_OUT(make_csr(ns, &key, &csr));
    MR_GUARD_OUT(submit_csr(k, ns, &csr, path));
    MR_GUARD_OUT(approve_csr(k, path));
    MR_GUARD_OUT(wait_cert(k, path, &cert));
    MR_GUARD_OUT(store_secret(k, ns, &cert, &key));
    MR_GUARD_OUT(mr_b64_encode_buf(ca->data, ca->len, MR_B64_STD, &ca64));
    MR_ENSURE_ALLOC_OUT(json_object_set_new(injector_values, "CABundle",
                                            json_stringn((const char *)ca64.data, ca64.len)) == 0
                            ? injector_values : NULL);
    res = MR_SUCCESS;
out:
    mr_buf_free(&key);
    mr_buf_free(&csr);
    mr_buf_free(&cert);
    mr_buf_free(&ca64);
    return res;
}
