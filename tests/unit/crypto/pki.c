/* SPDX-License-Identifier: Apache-2.0 */
#include "pki.h"

#include <openssl/objects.h>
#include <stdint.h>

#include "crypto/key.h"

static const char *const dns_localhost[] = {"localhost"};
static const int eku_server_client[] = {MR_EKU_SERVER_AUTH, MR_EKU_CLIENT_AUTH};

void pki_ca_template(mr_x509_template *t, const char *cn, time_t now, mr_x509_attr *attr,
                     mr_ip ips[2])
{
    *t = (mr_x509_template){0};
    attr->nid = NID_commonName;
    attr->value = (char *)(uintptr_t)cn;
    t->subject = (mr_x509_name){.attrs = attr, .count = 1};
    MR_IGNORE(mr_ip_parse("127.0.0.1", &ips[0]));
    MR_IGNORE(mr_ip_parse("::1", &ips[1]));
    t->dns_names = dns_localhost;
    t->n_dns_names = 1;
    t->ips = ips;
    t->n_ips = 2;
    t->not_before = now;
    t->not_after = mr_x509_max_not_after(now);
    t->key_usage = MR_KU_DIGITAL_SIGNATURE | MR_KU_CERT_SIGN;
    t->ext_key_usage = eku_server_client;
    t->n_ext_key_usage = 2;
    t->basic_constraints_valid = true;
    t->is_ca = true;
}

static mr_result issue_cas(pki *p, const mr_x509_template *root_t,
                           const mr_x509_template *inter_t)
{
    MR_GUARD(mr_x509_issue(root_t, p->root_key, NULL, p->root_key, &p->root));
    MR_GUARD(mr_x509_issue(inter_t, p->inter_key, p->root, p->root_key, &p->inter));
    return mr_x509_issue(inter_t, p->inter_key, NULL, p->inter_key, &p->marble_root);
}

static mr_result issue_leaf(pki *p)
{
    static const char marble_type[] = "backend";
    mr_x509_attr cn = {NID_commonName, (char *)"8f7a5b6c-1d2e-4f30-9a1b-2c3d4e5f6a7b"};
    mr_x509_ext type_ext = {PKI_MARBLE_TYPE_OID, false,
                            MR_SLICE(marble_type, sizeof(marble_type) - 1)};
    mr_ip ips[2];
    MR_GUARD(mr_ip_parse("127.0.0.1", &ips[0]));
    MR_GUARD(mr_ip_parse("::1", &ips[1]));
    mr_x509_template t = {
        .subject = {.attrs = &cn, .count = 1},
        .dns_names = dns_localhost,
        .n_dns_names = 1,
        .ips = ips,
        .n_ips = 2,
        .not_before = p->now,
        .not_after = mr_x509_max_not_after(p->now),
        .key_usage = MR_KU_DIGITAL_SIGNATURE | MR_KU_KEY_AGREEMENT,
        .ext_key_usage = eku_server_client,
        .n_ext_key_usage = 2,
        .basic_constraints_valid = true,
        .extra = &type_ext,
        .n_extra = 1,
    };
    return mr_x509_issue(&t, p->leaf_key, p->marble_root, p->inter_key, &p->leaf);
}

mr_result pki_build(pki *p, mr_key_type type)
{
    mr_x509_template root_t, inter_t;
    mr_x509_attr root_cn, inter_cn;
    mr_ip root_ips[2], inter_ips[2];
    *p = (pki){.now = time(NULL)};
    MR_GUARD(mr_key_generate(type, 2048, &p->root_key));
    MR_GUARD(mr_key_generate(type, 2048, &p->inter_key));
    MR_GUARD(mr_key_generate(MR_KEY_EC_P256, 0, &p->leaf_key));
    pki_ca_template(&root_t, "MarbleRun Coordinator", p->now, &root_cn, root_ips);
    pki_ca_template(&inter_t, "MarbleRun Coordinator - Intermediate CA", p->now, &inter_cn,
                    inter_ips);
    MR_GUARD(issue_cas(p, &root_t, &inter_t));
    return issue_leaf(p);
}

void pki_free(pki *p)
{
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->inter_key);
    EVP_PKEY_free(p->leaf_key);
    X509_free(p->root);
    X509_free(p->inter);
    X509_free(p->marble_root);
    X509_free(p->leaf);
    *p = (pki){0};
}
