/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secret.Cert (decode_int.h): x509.Certificate as Go's encoding/json decodes it (the fields
 * MarbleRun uses are kept, the others are decoded for their type errors only), or a base64
 * DER string as MarbleRun's Certificate.UnmarshalJSON takes it.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

#include <openssl/x509.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "manifest/decode_int.h"

static MR_RESULT dec_not_before(dctx *c, mr_mj_node *v, void *obj)
{
    (void)c;
    return mr_mdec_time(v, &((mr_manifest_cert *)obj)->not_before);
}

static MR_RESULT dec_not_after(dctx *c, mr_mj_node *v, void *obj)
{
    (void)c;
    return mr_mdec_time(v, &((mr_manifest_cert *)obj)->not_after);
}

static MR_RESULT dec_ip(dctx *c, mr_mj_node *v, void *e)
{
    mr_mbytes *ip = e;
    if (v->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    if (v->kind != MR_MJ_STRING) {
        mr_mdec_type_error(c, v, "net.IP", false);
        return MR_SUCCESS;
    }
    if (v->len == 0)
        return MR_SUCCESS;
    uint8_t addr[16];
    size_t n = 0;
    if (strlen(v->str) == v->len && inet_pton(AF_INET, v->str, addr) == 1)
        n = 4;
    else if (strlen(v->str) == v->len && inet_pton(AF_INET6, v->str, addr) == 1)
        n = 16;
    MR_ENSURE(n != 0, MR_ERR_USAGE, "invalid IP address: %.200s", v->str);
    ip->ptr = mr_alloc(n);
    MR_ENSURE_ALLOC(ip->ptr);
    memcpy(ip->ptr, addr, n);
    ip->len = n;
    ip->present = true;
    return MR_SUCCESS;
}

static void bytes_elem_free(void *e)
{
    mr_mbytes *b = e;
    mr_free(b->ptr);
    memset(b, 0, sizeof(*b));
}

static MR_RESULT dec_ips(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_cert *ct = obj;
    return mr_mdec_slice(c, v, (gvec *)(void *)&ct->ip_addresses, sizeof(mr_mbytes), dec_ip,
                         bytes_elem_free, "[]net.IP");
}

static MR_RESULT dec_attr_value(dctx *c, mr_mj_node *v, void *obj)
{
    (void)c;
    mr_manifest_attr *a = obj;
    if (v->kind == MR_MJ_STRING) {
        a->value_is_string = true;
        return mr_mdec_mstr_set(&a->value, v->str, v->len);
    }
    a->value_is_string = false; /* other JSON values are not kept */
    mr_manifest_mstr_free(&a->value);
    return MR_SUCCESS;
}

static const field attr_fields[] = {
    {"Type", F_INTLIST, offsetof(mr_manifest_attr, type), 0, "asn1.ObjectIdentifier", NULL},
    CUS("Value", dec_attr_value),
};

static MR_RESULT dec_attr(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "AttributeTypeAndValue", "pkix.AttributeTypeAndValue",
                          attr_fields, MR_ARRAY_LEN(attr_fields));
}

static void attr_free(void *e)
{
    mr_manifest_attr *a = e;
    mr_free(a->type.items);
    mr_manifest_mstr_free(&a->value);
    memset(a, 0, sizeof(*a));
}

static MR_RESULT dec_extra_names(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_dn *d = obj;
    return mr_mdec_slice(c, v, (gvec *)(void *)&d->extra_names, sizeof(mr_manifest_attr), dec_attr,
                         attr_free, "[]pkix.AttributeTypeAndValue");
}

static const field dn_fields[] = {
    FLD(mr_manifest_dn, "Country", F_STRLIST, country, "[]string"),
    FLD(mr_manifest_dn, "Organization", F_STRLIST, organization, "[]string"),
    FLD(mr_manifest_dn, "OrganizationalUnit", F_STRLIST, organizational_unit, "[]string"),
    FLD(mr_manifest_dn, "Locality", F_STRLIST, locality, "[]string"),
    FLD(mr_manifest_dn, "Province", F_STRLIST, province, "[]string"),
    FLD(mr_manifest_dn, "StreetAddress", F_STRLIST, street_address, "[]string"),
    FLD(mr_manifest_dn, "PostalCode", F_STRLIST, postal_code, "[]string"),
    FLD(mr_manifest_dn, "SerialNumber", F_STR, serial_number, "string"),
    FLD(mr_manifest_dn, "CommonName", F_STR, common_name, "string"),
    CUS("ExtraNames", dec_extra_names),
};

static MR_RESULT dec_subject(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_cert *ct = obj;
    return mr_mdec_struct(c, v, &ct->subject, "Name", "pkix.Name", dn_fields,
                          MR_ARRAY_LEN(dn_fields));
}

/* Issuer is always replaced by the Marble root's subject: decoded for type errors only. */
static MR_RESULT dec_issuer(dctx *c, mr_mj_node *v, void *obj)
{
    (void)obj;
    mr_manifest_cert tmp = {0};
    mr_result r = mr_mdec_struct(c, v, &tmp.subject, "Name", "pkix.Name", dn_fields,
                                 MR_ARRAY_LEN(dn_fields));
    mr_manifest_cert_free_(&tmp);
    return r;
}

static const field ext_fields[] = {
    {"Id", F_INTLIST, offsetof(mr_manifest_ext, id), 0, "asn1.ObjectIdentifier", NULL},
    FLD(mr_manifest_ext, "Critical", F_BOOL, critical, "bool"),
    FLD(mr_manifest_ext, "Value", F_BYTES, value, "[]uint8"),
};

static MR_RESULT dec_ext(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "Extension", "pkix.Extension", ext_fields,
                          MR_ARRAY_LEN(ext_fields));
}

static void ext_free(void *e)
{
    mr_manifest_ext *x = e;
    mr_free(x->id.items);
    mr_free(x->value.ptr);
    memset(x, 0, sizeof(*x));
}

static MR_RESULT dec_extra_exts(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_cert *ct = obj;
    return mr_mdec_slice(c, v, (gvec *)(void *)&ct->extra_extensions, sizeof(mr_manifest_ext),
                         dec_ext, ext_free, "[]pkix.Extension");
}

#define CF(jn, k, m, gt) FLD(mr_manifest_cert, jn, k, m, gt)
#define IGN(jn, k, gt) {jn, k, 0, 0, gt, NULL}
static const field cert_fields[] = {
    CF("Raw", F_BYTES, raw, "[]uint8"),
    IGN("RawTBSCertificate", F_IGN_BYTES, "[]uint8"),
    IGN("RawSubjectPublicKeyInfo", F_IGN_BYTES, "[]uint8"),
    IGN("RawIssuer", F_IGN_BYTES, "[]uint8"),
    IGN("Signature", F_IGN_BYTES, "[]uint8"),
    IGN("PublicKeyAlgorithm", F_IGN_INT, "x509.PublicKeyAlgorithm"),
    IGN("Version", F_IGN_INT, "int"),
    CUS("Issuer", dec_issuer),
    IGN("UnhandledCriticalExtensions", F_IGN_OIDS, "[]asn1.ObjectIdentifier"),
    IGN("BasicConstraintsValid", F_IGN_BOOL, "bool"),
    IGN("InhibitAnyPolicy", F_IGN_INT, "int"),
    IGN("InhibitAnyPolicyZero", F_IGN_BOOL, "bool"),
    IGN("InhibitPolicyMapping", F_IGN_INT, "int"),
    IGN("InhibitPolicyMappingZero", F_IGN_BOOL, "bool"),
    IGN("RequireExplicitPolicy", F_IGN_INT, "int"),
    IGN("RequireExplicitPolicyZero", F_IGN_BOOL, "bool"),
    CF("RawSubject", F_BYTES, raw_subject, "[]uint8"),
    CF("SignatureAlgorithm", F_INT, signature_algorithm, "x509.SignatureAlgorithm"),
    CUS("Subject", dec_subject),
    CUS("NotBefore", dec_not_before),
    CUS("NotAfter", dec_not_after),
    CF("KeyUsage", F_INT, key_usage, "x509.KeyUsage"),
    CUS("ExtraExtensions", dec_extra_exts),
    CF("ExtKeyUsage", F_INTLIST, ext_key_usage, "[]x509.ExtKeyUsage"),
    CF("UnknownExtKeyUsage", F_OIDLIST, unknown_ext_key_usage, "[]asn1.ObjectIdentifier"),
    CF("IsCA", F_BOOL, is_ca, "bool"),
    CF("MaxPathLen", F_INT, max_path_len, "int"),
    CF("MaxPathLenZero", F_BOOL, max_path_len_zero, "bool"),
    CF("SubjectKeyId", F_BYTES, subject_key_id, "[]uint8"),
    CF("AuthorityKeyId", F_BYTES, authority_key_id, "[]uint8"),
    CF("OCSPServer", F_STRLIST, ocsp_server, "[]string"),
    CF("IssuingCertificateURL", F_STRLIST, issuing_certificate_url, "[]string"),
    CF("DNSNames", F_STRLIST, dns_names, "[]string"),
    CF("EmailAddresses", F_STRLIST, email_addresses, "[]string"),
    CUS("IPAddresses", dec_ips),
    CF("PermittedDNSDomainsCritical", F_BOOL, permitted_dns_domains_critical, "bool"),
    CF("PermittedDNSDomains", F_STRLIST, permitted_dns_domains, "[]string"),
    CF("ExcludedDNSDomains", F_STRLIST, excluded_dns_domains, "[]string"),
    CF("PermittedEmailAddresses", F_STRLIST, permitted_email_addresses, "[]string"),
    CF("ExcludedEmailAddresses", F_STRLIST, excluded_email_addresses, "[]string"),
    CF("PermittedURIDomains", F_STRLIST, permitted_uri_domains, "[]string"),
    CF("ExcludedURIDomains", F_STRLIST, excluded_uri_domains, "[]string"),
    CF("CRLDistributionPoints", F_STRLIST, crl_distribution_points, "[]string"),
    CF("PolicyIdentifiers", F_OIDLIST, policy_identifiers, "[]asn1.ObjectIdentifier"),
};
#undef CF
#undef IGN

/* A base64 DER string: kept when it is one whole certificate; MarbleRun ignores a string that
 * is not base64. */
static MR_RESULT cert_from_base64(mr_mj_node *v, mr_manifest_cert *cert)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    const unsigned char *p = NULL;
    X509 *x = NULL;
    bool whole = false;

    mr_buf_init(&der, 0, 0);
    if (!mr_ok(mr_b64_decode_buf(v->str, v->len, MR_B64_STD, MR_B64_IGNORE_NEWLINES, &der))) {
        if (mr_error_get()->cat != MR_ERR_INTERNAL) {
            mr_error_clear();
            res = MR_SUCCESS;
        }
        goto out;
    }
    p = der.data;
    x = der.len ? d2i_X509(NULL, &p, (long)der.len) : NULL;
    whole = x != NULL && p == der.data + der.len;
    X509_free(x);
    MR_ENSURE_OUT(whole, MR_ERR_USAGE, "x509: malformed certificate");
    mr_manifest_cert_free_(cert);
    cert->raw.len = 0;
    cert->raw.ptr = mr_buf_steal(&der, &cert->raw.len);
    cert->raw.present = true;
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    return res;
}

MR_RESULT mr_mdec_cert(dctx *c, mr_mj_node *v, void *obj)
{
    (void)c;
    mr_manifest_secret *s = obj;
    dctx inner = {0};

    if (v->kind == MR_MJ_STRING)
        return cert_from_base64(v, &s->cert);
    if (v->kind == MR_MJ_NULL)
        return MR_SUCCESS;
    MR_ENSURE(v->kind == MR_MJ_OBJECT, MR_ERR_USAGE,
              "json: cannot unmarshal %s into Go value of type x509.Certificate",
              mr_mdec_kind_word(v));
    MR_GUARD(mr_mdec_struct(&inner, v, &s->cert, "Certificate", "x509.Certificate", cert_fields,
                            MR_ARRAY_LEN(cert_fields)));
    MR_ENSURE(!inner.has_saved, MR_ERR_USAGE, "%s", inner.saved);
    return MR_SUCCESS;
}
