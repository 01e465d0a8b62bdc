/* SPDX-License-Identifier: Apache-2.0 */
/* IP addresses, distinguished names and SAN lists: conversions between our structs and
 * OpenSSL's. */
#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "crypto/internal.h"

#define MR_NAME_ATTRS_MAX 64
#define MR_SANS_MAX 1024

MR_RESULT mr_ip_parse(const char *text, mr_ip *out)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    mr_ip ip = {0};
    if (inet_pton(AF_INET, text, ip.addr) == 1) {
        ip.len = 4;
    } else {
        MR_ENSURE(inet_pton(AF_INET6, text, ip.addr) == 1, MR_ERR_USAGE,
                  "invalid IP address \"%.64s\"", text);
        ip.len = 16;
        if (memcmp(ip.addr, v4mapped, sizeof(v4mapped)) == 0) { /* check-source: allow memcmp -- public address */
            memmove(ip.addr, ip.addr + 12, 4);
            memset(ip.addr + 4, 0, 12);
            ip.len = 4;
        }
    }
    *out = ip;
    return MR_SUCCESS;
}

MR_RESULT mr_ip_format(const mr_ip *ip, char *out, size_t out_size)
{
    MR_ENSURE(ip->len == 4 || ip->len == 16, MR_ERR_USAGE, "invalid IP address length %u",
              (unsigned)ip->len);
    MR_ENSURE(inet_ntop(ip->len == 4 ? AF_INET : AF_INET6, ip->addr, out,
                        (socklen_t)out_size) != NULL,
              MR_ERR_USAGE, "IP address buffer too small");
    return MR_SUCCESS;
}

/* ---- names ---- */

static const int go_order[] = {
    NID_countryName, NID_organizationName, NID_organizationalUnitName, NID_localityName,
    NID_stateOrProvinceName, NID_streetAddress, NID_postalCode, NID_serialNumber,
    NID_commonName,
};

static size_t go_rank(int nid)
{
    for (size_t i = 0; i < MR_ARRAY_LEN(go_order); i++)
        if (go_order[i] == nid)
            return i;
    return MR_ARRAY_LEN(go_order);
}

/* PrintableString alphabet (X.680), as Go's asn1 package picks the string type. */
static bool printable(const char *s)
{
    for (; *s != '\0'; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr(" '()+,-./:=?", c) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

static MR_RESULT add_attr(X509_NAME *name, const mr_x509_attr *a, bool same_rdn)
{
    size_t len = strlen(a->value);
    int type = printable(a->value) ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING;
    MR_ENSURE(len < 65536, MR_ERR_USAGE, "name attribute too long");
    MR_ENSURE(OBJ_nid2obj(a->nid) != NULL && a->nid != NID_undef, MR_ERR_USAGE,
              "unknown name attribute type %d", a->nid);
    MR_GUARD_OSSL(X509_NAME_add_entry_by_NID(name, a->nid, type, (const unsigned char *)a->value,
                                             (int)len, -1, same_rdn ? -1 : 0),
                  MR_ERR_USAGE, "invalid name attribute");
    return MR_SUCCESS;
}

/* Adds every attribute of rank r (in input order) to name. */
static MR_RESULT add_rank(X509_NAME *name, const mr_x509_name *in, size_t r)
{
    int prev_nid = NID_undef;
    for (size_t i = 0; i < in->count; i++) {
        const mr_x509_attr *a = &in->attrs[i];
        if (go_rank(a->nid) != r)
            continue;
        MR_ENSURE(a->value != NULL, MR_ERR_USAGE, "name attribute without value");
        /* Go groups the values of one known attribute type into one RDN. */
        MR_GUARD(add_attr(name, a, r < MR_ARRAY_LEN(go_order) && prev_nid == a->nid));
        prev_nid = a->nid;
    }
    return MR_SUCCESS;
}

MR_RESULT mr_x509_name_build(const mr_x509_name *in, X509_NAME **out)
{
    mr_result res = MR_FAILURE;
    X509_NAME *name = X509_NAME_new();
    MR_ENSURE_ALLOC(name);
    MR_ENSURE_OUT(in->count <= MR_NAME_ATTRS_MAX, MR_ERR_USAGE, "too many name attributes");
    for (size_t r = 0; r <= MR_ARRAY_LEN(go_order); r++)
        MR_GUARD_OUT(add_rank(name, in, r));
    *out = name;
    name = NULL;
    res = MR_SUCCESS;
out:
    X509_NAME_free(name);
    return res;
}

void mr_x509_name_clear(mr_x509_name *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->count; i++)
        mr_free(n->attrs[i].value);
    mr_free(n->attrs);
    n->attrs = NULL;
    n->count = 0;
}

/* A UTF-8 copy of an ASN1_STRING; embedded NULs are rejected. */
static MR_RESULT string_utf8(const ASN1_STRING *s, char **out)
{
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, s);
    MR_ENSURE(len >= 0 && utf8 != NULL, MR_ERR_USAGE, "invalid string in certificate");
    bool nul = memchr(utf8, 0, (size_t)len) != NULL;
    *out = nul ? NULL : mr_strndup((const char *)utf8, (size_t)len);
    OPENSSL_free(utf8);
    MR_ENSURE(!nul, MR_ERR_USAGE, "invalid string in certificate: embedded NUL");
    MR_ENSURE_ALLOC(*out);
    return MR_SUCCESS;
}

MR_RESULT mr_x509_name_read(const X509_NAME *in, mr_x509_name *out)
{
    mr_result res = MR_FAILURE;
    mr_x509_name n = {0};
    int count = X509_NAME_entry_count(in);
    MR_ENSURE(count >= 0 && count <= MR_NAME_ATTRS_MAX, MR_ERR_USAGE,
              "too many name attributes");
    n.attrs = mr_calloc((size_t)count + 1, sizeof(*n.attrs));
    MR_ENSURE_ALLOC(n.attrs);
    for (int i = 0; i < count; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(in, i);
        n.attrs[i].nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        MR_GUARD_OUT(string_utf8(X509_NAME_ENTRY_get_data(e), &n.attrs[i].value));
        n.count++;
    }
    *out = n;
    n = (mr_x509_name){0};
    res = MR_SUCCESS;
out:
    mr_x509_name_clear(&n);
    return res;
}

/* ---- subject alternative names ---- */

static MR_RESULT push_gen(GENERAL_NAMES *gens, int type, const void *data, size_t len)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_STRING *s = ASN1_STRING_type_new(type == GEN_DNS ? V_ASN1_IA5STRING : V_ASN1_OCTET_STRING);
    if (gen == NULL || s == NULL || ASN1_STRING_set(s, data, (int)len) != 1) {
        GENERAL_NAME_free(gen);
        ASN1_STRING_free(s);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    GENERAL_NAME_set0_value(gen, type, s);
    if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
        GENERAL_NAME_free(gen);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    return MR_SUCCESS;
}

static MR_RESULT check_dns(const char *d)
{
    size_t len = strlen(d);
    MR_ENSURE(len > 0 && len < 256, MR_ERR_USAGE, "invalid DNS name length");
    for (size_t i = 0; i < len; i++)
        MR_ENSURE((unsigned char)d[i] > 0x20 && (unsigned char)d[i] < 0x7f, MR_ERR_USAGE,
                  "invalid character in DNS name");
    return MR_SUCCESS;
}

MR_RESULT mr_x509_gens_build(const char *const *dns, size_t n_dns, const mr_ip *ips,
                             size_t n_ips, GENERAL_NAMES **out)
{
    mr_result res = MR_FAILURE;
    GENERAL_NAMES *gens = NULL;
    *out = NULL;
    MR_ENSURE(n_dns <= MR_SANS_MAX && n_ips <= MR_SANS_MAX, MR_ERR_USAGE, "too many SANs");
    if (n_dns == 0 && n_ips == 0)
        return MR_SUCCESS;
    gens = sk_GENERAL_NAME_new_null();
    MR_ENSURE_ALLOC(gens);
    for (size_t i = 0; i < n_dns; i++) {
        MR_GUARD_OUT(check_dns(dns[i]));
        MR_GUARD_OUT(push_gen(gens, GEN_DNS, dns[i], strlen(dns[i])));
    }
    for (size_t i = 0; i < n_ips; i++) {
        MR_ENSURE_OUT(ips[i].len == 4 || ips[i].len == 16, MR_ERR_USAGE,
                      "invalid IP address length %u", (unsigned)ips[i].len);
        MR_GUARD_OUT(push_gen(gens, GEN_IPADD, ips[i].addr, ips[i].len));
    }
    *out = gens;
    gens = NULL;
    res = MR_SUCCESS;
out:
    GENERAL_NAMES_free(gens);
    return res;
}

void mr_x509_san_list_clear(mr_x509_san_list *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_dns; i++)
        mr_free(s->dns[i]);
    mr_free(s->dns);
    mr_free(s->ips);
    *s = (mr_x509_san_list){0};
}

static MR_RESULT read_gen(const GENERAL_NAME *g, mr_x509_san_list *s)
{
    int type = 0;
    const ASN1_STRING *v = GENERAL_NAME_get0_value(g, &type);
    if (type == GEN_DNS) {
        MR_GUARD(string_utf8(v, &s->dns[s->n_dns]));
        s->n_dns++;
    } else if (type == GEN_IPADD) {
        int len = ASN1_STRING_length(v);
        MR_ENSURE(len == 4 || len == 16, MR_ERR_USAGE, "invalid IP address SAN");
        s->ips[s->n_ips].len = (uint8_t)len;
        memcpy(s->ips[s->n_ips].addr, ASN1_STRING_get0_data(v), (size_t)len);
        s->n_ips++;
    }
    return MR_SUCCESS;
}

MR_RESULT mr_x509_gens_read(const GENERAL_NAMES *in, mr_x509_san_list *out)
{
    mr_result res = MR_FAILURE;
    mr_x509_san_list s = {0};
    int n = in == NULL ? 0 : sk_GENERAL_NAME_num(in);
    MR_ENSURE(n <= (int)MR_SANS_MAX, MR_ERR_USAGE, "too many SANs");
    s.dns = mr_calloc((size_t)n + 1, sizeof(*s.dns));
    s.ips = mr_calloc((size_t)n + 1, sizeof(*s.ips));
    MR_ENSURE_ALLOC_OUT(s.dns != NULL && s.ips != NULL ? s.dns : NULL);
    for (int i = 0; i < n; i++)
        MR_GUARD_OUT(read_gen(sk_GENERAL_NAME_value(in, i), &s));
    *out = s;
    s = (mr_x509_san_list){0};
    res = MR_SUCCESS;
out:
    mr_x509_san_list_clear(&s);
    return res;
}

/* ---- PEM ---- */

MR_RESULT mr_pem_first(mr_slice pem, const char *label, size_t max, mr_buf *der)
{
    mr_cursor c;
    mr_pem_block blk;
    bool found = false;
    mr_cursor_init(&c, pem.ptr, pem.len);
    mr_buf_init(&blk.der, max, 0);
    if (!mr_ok(mr_pem_next(&c, &blk, &found))) {
        mr_buf_free(&blk.der);
        return MR_FAILURE;
    }
    bool match = found && strcmp(blk.label, label) == 0;
    if (match)
        *der = blk.der;
    else
        mr_buf_free(&blk.der);
    MR_ENSURE(found, MR_ERR_USAGE, "no PEM block found");
    MR_ENSURE(match, MR_ERR_USAGE, "unexpected PEM block type \"%s\", want \"%s\"", blk.label,
              label);
    return MR_SUCCESS;
}
