/* SPDX-License-Identifier: Apache-2.0 */
/* The marble's ephemeral TLS identity and CSR (spec/marble-cli-k8s.md §1.4 steps 2 and 5,
 * spec/coordinator.md §5.2). */
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "crypto/csr.h"
#include "crypto/x509.h"
#include "marble/marble_int.h"

#define MAX_NAMES 256

typedef struct names {
    char *dns[MAX_NAMES];
    size_t n_dns;
    mr_ip ips[MAX_NAMES + 2];
    size_t n_ips;
} names;

static void names_clear(names *n)
{
    for (size_t i = 0; i < n->n_dns; i++)
        mr_free(n->dns[i]);
    n->n_dns = 0;
}

/* Split on ',' without trimming; entries that parse as IPs become IP SANs (1.4.0+). */
static MR_RESULT split_names(const char *list, names *out)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        MR_ENSURE(out->n_dns + out->n_ips < MAX_NAMES, MR_ERR_USAGE,
                  "EDG_MARBLE_DNS_NAMES: more than %d names", MAX_NAMES);
        char *item = mr_strndup(p, len);
        MR_ENSURE_ALLOC(item);
        mr_ip ip;
        if (len > 0 && mr_ok(mr_ip_parse(item, &ip))) {
            out->ips[out->n_ips++] = ip;
            mr_free(item);
        } else {
            mr_error_clear();
            out->dns[out->n_dns++] = item;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return MR_SUCCESS;
}

void mr_marble_identity_clear(mr_marble_identity *id)
{
    EVP_PKEY_free(id->key);
    id->key = NULL;
    mr_buf_free(&id->cert_der);
    mr_buf_free(&id->cert_pem);
    mr_buf_free(&id->key_pem);
    mr_buf_free(&id->csr_der);
}

MR_RESULT mr_marble_identity_new(const char *dns_names, mr_key_type curve,
                                 mr_marble_identity *out)
{
    mr_result res = MR_FAILURE;
    names n;
    X509 *cert = NULL;
    mr_x509_template t;
    mr_x509_attr cn = {.nid = NID_commonName, .value = "MarbleRun Marble"};
    static const int eku[] = {MR_EKU_SERVER_AUTH, MR_EKU_CLIENT_AUTH};
    mr_ip loop[2];
    mr_ip csr_ips[MAX_NAMES + 2];
    mr_x509_name empty = {0};
    memset(&n, 0, sizeof(n));
    memset(&t, 0, sizeof(t));
    memset(out, 0, sizeof(*out));
    mr_buf_init(&out->cert_der, 0, 0);
    mr_buf_init(&out->cert_pem, 0, 0);
    mr_buf_init(&out->key_pem, 0, MR_BUF_SECRET);
    mr_buf_init(&out->csr_der, 0, 0);

    MR_GUARD_OUT(split_names(dns_names, &n));
    MR_GUARD_OUT(mr_ip_parse("127.0.0.1", &loop[0]));
    MR_GUARD_OUT(mr_ip_parse("::1", &loop[1]));
    /* certificate: extra IPs, then 127.0.0.1 and ::1; CSR: the other way round */
    size_t extra = n.n_ips;
    memcpy(csr_ips, loop, sizeof(loop));
    memcpy(csr_ips + 2, n.ips, extra * sizeof(mr_ip));
    n.ips[extra] = loop[0];
    n.ips[extra + 1] = loop[1];

    MR_GUARD_OUT(mr_key_generate(curve, 0, &out->key));
    t.subject.attrs = &cn;
    t.subject.count = 1;
    t.dns_names = (const char *const *)n.dns;
    t.n_dns_names = n.n_dns;
    t.ips = n.ips;
    t.n_ips = extra + 2;
    t.not_before = time(NULL);
    t.not_after = mr_x509_max_not_after(t.not_before);
    t.key_usage = MR_KU_DIGITAL_SIGNATURE | MR_KU_KEY_AGREEMENT;
    t.ext_key_usage = eku;
    t.n_ext_key_usage = MR_ARRAY_LEN(eku);
    t.basic_constraints_valid = true;
    t.is_ca = false;
    MR_GUARD_OUT(mr_x509_issue(&t, out->key, NULL, out->key, &cert));
    MR_GUARD_OUT(mr_x509_to_der(cert, &out->cert_der));
    MR_GUARD_OUT(mr_x509_to_pem(cert, &out->cert_pem));
    MR_GUARD_OUT(mr_key_private_to_pem(out->key, MR_KEYFMT_PKCS8, &out->key_pem));
    MR_GUARD_OUT(mr_csr_create(out->key, &empty, (const char *const *)n.dns, n.n_dns, csr_ips,
                               extra + 2, &out->csr_der));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        mr_marble_identity_clear(out);
    X509_free(cert);
    names_clear(&n);
    return res;
}
