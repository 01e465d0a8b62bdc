/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Coordinator's CA (spec §3): a root, an intermediate signed by the root, and a marble
 * root that is the intermediate's key self-signed (the two are "siblings": same subject and
 * key, so marble certificates chain to either).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "coordinator/core/core_int.h"
#include "crypto/key.h"
#include "crypto/rand.h"
#include "crypto/x509.h"

#define CN_ROOT "MarbleRun Coordinator"
#define CN_INTER "MarbleRun Coordinator - Intermediate CA"

static const int ca_eku[] = {MR_EKU_SERVER_AUTH, MR_EKU_CLIENT_AUTH};

#define CA_CN_MAX 64
_Static_assert(sizeof(CN_ROOT) <= CA_CN_MAX && sizeof(CN_INTER) <= CA_CN_MAX, "CA names fit");

/* SANs of the CA template: DNS = non-IP names; IPs = 127.0.0.1, ::1, then IP names. */
#define CA_DNS_MAX 64
#define CA_IP_MAX 66
typedef struct ca_sans {
    const char *dns[CA_DNS_MAX];
    size_t n_dns;
    mr_ip ips[CA_IP_MAX];
    size_t n_ips;
} ca_sans;

static MR_RESULT add_dns(ca_sans *s, const char *name)
{
    MR_ENSURE(s->n_dns < CA_DNS_MAX, MR_ERR_USAGE,
              "too many DNS names for the Coordinator certificates (limit %d)", CA_DNS_MAX);
    s->dns[s->n_dns++] = name;
    return MR_SUCCESS;
}

static MR_RESULT add_ip(ca_sans *s, const mr_ip *ip)
{
    MR_ENSURE(s->n_ips < CA_IP_MAX, MR_ERR_USAGE,
              "too many IP addresses for the Coordinator certificates (limit %d)", CA_IP_MAX);
    s->ips[s->n_ips++] = *ip;
    return MR_SUCCESS;
}

static MR_RESULT build_sans(char *const *names, size_t n, bool keep_extra_ips, ca_sans *s)
{
    memset(s, 0, sizeof(*s));
    MR_GUARD(mr_ip_parse("127.0.0.1", &s->ips[s->n_ips++]));
    MR_GUARD(mr_ip_parse("::1", &s->ips[s->n_ips++]));
    for (size_t i = 0; i < n; i++) {
        mr_ip ip;
        if (!mr_ok(mr_ip_parse(names[i], &ip))) {
            mr_error_clear(); /* not an IP address: a DNS name */
            MR_GUARD(add_dns(s, names[i]));
        } else if (keep_extra_ips) {
            MR_GUARD(add_ip(s, &ip));
        }
    }
    return MR_SUCCESS;
}

/* cn_buf must outlive the template (the template borrows it). */
static void ca_template(mr_x509_template *t, mr_x509_attr *cn, char *cn_buf, size_t cn_size,
                        const char *name, const ca_sans *s)
{
    memset(t, 0, sizeof(*t));
    (void)snprintf(cn_buf, cn_size, "%s", name); /* fits: CA_CN_MAX */
    cn->nid = NID_commonName;
    cn->value = cn_buf;
    t->subject.attrs = cn;
    t->subject.count = 1;
    t->dns_names = s->dns;
    t->n_dns_names = s->n_dns;
    t->ips = s->ips;
    t->n_ips = s->n_ips;
    t->not_before = time(NULL);
    t->not_after = mr_x509_max_not_after(t->not_before);
    t->key_usage = MR_KU_DIGITAL_SIGNATURE | MR_KU_CERT_SIGN;
    t->ext_key_usage = ca_eku;
    t->n_ext_key_usage = MR_ARRAY_LEN(ca_eku);
    t->basic_constraints_valid = true;
    t->is_ca = true;
}

/* New intermediate key; intermediate signed by root; marble root self-signed. With
 * out_mroot/out_key the new marble root and key are handed to the caller. */
static MR_RESULT make_intermediates(const mr_core *c, X509 *root, EVP_PKEY *root_key,
                                    const ca_sans *s, mr_store_txn *t, X509 **out_mroot,
                                    EVP_PKEY **out_key)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY *key = NULL;
    X509 *inter = NULL, *mroot = NULL;
    mr_x509_template tpl;
    mr_x509_attr cn;
    char cn_buf[CA_CN_MAX];
    MR_GUARD_OUT(mr_key_generate(c->cfg.curve, 0, &key));
    ca_template(&tpl, &cn, cn_buf, sizeof(cn_buf), CN_INTER, s);
    MR_GUARD_OUT(mr_x509_issue(&tpl, key, root, root_key, &inter));
    MR_GUARD_OUT(mr_x509_issue(&tpl, key, NULL, key, &mroot));
    MR_GUARD_OUT(core_put_cert(t, K_INTER_CERT, inter));
    MR_GUARD_OUT(core_put_cert(t, K_MARBLE_ROOT_CERT, mroot));
    MR_GUARD_OUT(core_put_key(t, K_INTER_KEY, key));
    if (out_mroot != NULL) {
        *out_mroot = mroot;
        *out_key = key;
        mroot = NULL;
        key = NULL;
    }
    res = MR_SUCCESS;
out:
    X509_free(inter);
    X509_free(mroot);
    EVP_PKEY_free(key);
    return res;
}

MR_RESULT core_pki_create(mr_core *c, mr_store_txn *t)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY *root_key = NULL;
    X509 *root = NULL;
    uint8_t root_secret[MR_ROOT_SECRET_LEN];
    mr_x509_template tpl;
    mr_x509_attr cn;
    char cn_buf[CA_CN_MAX];
    ca_sans sans;
    MR_GUARD_OUT(build_sans(c->dns, c->n_dns, true, &sans));
    MR_GUARD_OUT(mr_key_generate(c->cfg.curve, 0, &root_key));
    ca_template(&tpl, &cn, cn_buf, sizeof(cn_buf), CN_ROOT, &sans);
    MR_GUARD_OUT(mr_x509_issue(&tpl, root_key, NULL, root_key, &root));
    MR_GUARD_OUT(core_put_cert(t, K_ROOT_CERT, root));
    MR_GUARD_OUT(core_put_key(t, K_ROOT_KEY, root_key));
    MR_GUARD_OUT(make_intermediates(c, root, root_key, &sans, t, NULL, NULL));
    /* The root secret (1.9): the IKM of per-marble secret derivation. */
    MR_GUARD_OUT(mr_crypto_random(root_secret, sizeof(root_secret)));
    MR_GUARD_OUT(mr_store_put(t, K_ROOT_SECRET, root_secret, sizeof(root_secret)));
    res = MR_SUCCESS;
out:
    OPENSSL_cleanse(root_secret, sizeof(root_secret));
    X509_free(root);
    EVP_PKEY_free(root_key);
    return res;
}

MR_RESULT core_pki_rotate_intermediate(mr_core *c, const core_epoch *e, mr_store_txn *t,
                                       X509 **mroot, EVP_PKEY **key)
{
    /* The new pair gets the root's DNS names and only the default IPs (spec §3.3, §13 #13). */
    mr_result res = MR_FAILURE;
    mr_x509_san_list root_sans = {0};
    ca_sans sans;
    MR_GUARD(mr_x509_sans(e->root_cert, &root_sans));
    MR_GUARD_OUT(build_sans(root_sans.dns, root_sans.n_dns, false, &sans));
    MR_GUARD_OUT(make_intermediates(c, e->root_cert, e->root_key, &sans, t, mroot, key));
    res = MR_SUCCESS;
out:
    mr_x509_san_list_clear(&root_sans);
    return res;
}

MR_RESULT core_pki_rotate_intermediate_full(mr_core *c, const core_epoch *e, mr_store_txn *t,
                                            X509 **mroot, EVP_PKEY **key)
{
    mr_result res = MR_FAILURE;
    mr_x509_san_list root_sans = {0};
    ca_sans sans;
    MR_GUARD(mr_x509_sans(e->root_cert, &root_sans));
    memset(&sans, 0, sizeof(sans));
    for (size_t i = 0; i < root_sans.n_dns; i++)
        MR_GUARD_OUT(add_dns(&sans, root_sans.dns[i]));
    for (size_t i = 0; i < root_sans.n_ips; i++)
        MR_GUARD_OUT(add_ip(&sans, &root_sans.ips[i]));
    MR_GUARD_OUT(make_intermediates(c, e->root_cert, e->root_key, &sans, t, mroot, key));
    res = MR_SUCCESS;
out:
    mr_x509_san_list_clear(&root_sans);
    return res;
}
