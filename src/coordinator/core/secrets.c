/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secret generation (spec §7.2, §12.11).
 *
 * One deliberate difference from MarbleRun: certificates are always built from the manifest's
 * `Cert` template. MarbleRun rebuilds per-marble and re-issued shared certificates from the
 * *stored* certificate, which re-adds default SANs/EKUs that the manifest had explicitly
 * emptied and drops ExtraExtensions (spec §7.1 "caveat"). Subject, SANs, usages and NotAfter
 * rules are otherwise the same; a re-issued shared certificate keeps its original NotAfter.
 */
#include <openssl/objects.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/secrets.h"
#include "crypto/kdf.h"
#include "crypto/rand.h"
#include "crypto/rsa_pool.h"
#include "crypto/x509.h"

#define DEFAULT_VALID_DAYS 365
#define MAX_ATTRS 64
#define MAX_SANS 256
#define MAX_EXTS 32

static bool is_cert_type(const char *t)
{
    return strcmp(t, "cert-rsa") == 0 || strcmp(t, "cert-ecdsa") == 0 ||
           strcmp(t, "cert-ed25519") == 0;
}

static const char *type_of(const mr_manifest_secret *d) { return d->type.ptr ? d->type.ptr : ""; }
static const char *name_of(const mr_manifest_secret *d) { return d->name.ptr ? d->name.ptr : ""; }

/* ---- symmetric keys ---- */

static MR_RESULT gen_symmetric(const core_gen_ctx *g, const mr_manifest_secret *d, core_secret *out)
{
    MR_ENSURE(d->size > 0 && d->size % 8 == 0, MR_ERR_USAGE, "invalid secret size: %s", name_of(d));
    size_t n = (size_t)(d->size / 8);
    MR_ENSURE(n <= 255 * 32, MR_ERR_USAGE, "invalid secret size: %s", name_of(d));
    if (g->uuid == NULL) {
        MR_GUARD(mr_buf_reserve(&out->priv, n));
        MR_GUARD(mr_crypto_random(out->priv.data, n));
        out->priv.len = n;
    } else {
        /* HKDF-SHA-256(IKM = root secret, salt = UUID || name, info = marble type) */
        char salt[37 + 4096];
        int sl = snprintf(salt, sizeof(salt), "%s%s", g->uuid, name_of(d));
        MR_ENSURE(sl > 0 && (size_t)sl < sizeof(salt), MR_ERR_USAGE, "secret name too long");
        const char *info = g->bind_type != NULL ? g->bind_type : "";
        MR_GUARD(mr_hkdf_sha256(MR_SLICE(g->root_secret, MR_ROOT_SECRET_LEN),
                                MR_SLICE(salt, (size_t)sl), MR_SLICE(info, strlen(info)), n,
                                &out->priv));
    }
    return mr_buf_set(&out->pub, out->priv.data, out->priv.len);
}

/* ---- keys for certificates ---- */

static MR_RESULT cert_key(const mr_manifest_secret *d, EVP_PKEY **key)
{
    const char *t = type_of(d);
    if (strcmp(t, "cert-ed25519") == 0) {
        MR_ENSURE(d->size == 0, MR_ERR_USAGE,
                  "invalid secret size for cert-ed25519 secret %s: none is expected, got: %llu",
                  name_of(d), (unsigned long long)d->size);
        return mr_key_generate(MR_KEY_ED25519, 0, key);
    }
    if (strcmp(t, "cert-ecdsa") == 0) {
        mr_key_type kt = d->size == 224   ? MR_KEY_EC_P224
                         : d->size == 256 ? MR_KEY_EC_P256
                         : d->size == 384 ? MR_KEY_EC_P384
                         : d->size == 521 ? MR_KEY_EC_P521
                                          : MR_KEY_NONE;
        MR_ENSURE(kt != MR_KEY_NONE, MR_ERR_USAGE,
                  "invalid secret size for cert-ecdsa secret %s: unsupported size %llu: does not "
                  "map to a supported curve",
                  name_of(d), (unsigned long long)d->size);
        return mr_key_generate(kt, 0, key);
    }
    MR_ENSURE(d->size >= MR_RSA_MIN_BITS && d->size <= MR_RSA_MAX_BITS, MR_ERR_USAGE,
              "invalid secret size for cert-rsa secret %s: %llu-bit keys are not supported "
              "(need %u to %u)",
              name_of(d), (unsigned long long)d->size, MR_RSA_MIN_BITS, MR_RSA_MAX_BITS);
    /* from the pre-generated pool when the Coordinator runs one (issue 17), else inline */
    return mr_rsa_pool_take(mr_rsa_pool_default(), (unsigned)d->size, key);
}

/* ---- certificate template from the manifest's Cert object ---- */

typedef struct tpl_store {
    mr_x509_attr attrs[MAX_ATTRS];
    const char *dns[MAX_SANS];
    mr_ip ips[MAX_SANS];
    int eku[32];
    mr_x509_ext exts[MAX_EXTS];
    char oids[MAX_EXTS][128];
    char cn_default[64];
} tpl_store;

static MR_RESULT add_attr(mr_x509_template *t, tpl_store *s, int nid, const mr_mstr *v)
{
    if (v->ptr == NULL || v->len == 0)
        return MR_SUCCESS;
    MR_ENSURE(t->subject.count < MAX_ATTRS, MR_ERR_USAGE, "too many subject attributes");
    s->attrs[t->subject.count].nid = nid;
    s->attrs[t->subject.count].value = v->ptr;
    t->subject.count++;
    return MR_SUCCESS;
}

static MR_RESULT add_attr_list(mr_x509_template *t, tpl_store *s, int nid, const mr_mstr_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        MR_GUARD(add_attr(t, s, nid, &l->items[i]));
    return MR_SUCCESS;
}

static MR_RESULT oid_text(const mr_mint_list *arcs, char *out, size_t size)
{
    size_t off = 0;
    MR_ENSURE(arcs->count >= 2, MR_ERR_USAGE, "invalid object identifier");
    for (size_t i = 0; i < arcs->count; i++) {
        MR_ENSURE(arcs->items[i] >= 0, MR_ERR_USAGE, "invalid object identifier");
        int n = snprintf(out + off, size - off, "%s%lld", i ? "." : "", (long long)arcs->items[i]);
        MR_ENSURE(n > 0 && (size_t)n < size - off, MR_ERR_USAGE, "object identifier too long");
        off += (size_t)n;
    }
    return MR_SUCCESS;
}

static MR_RESULT build_subject(const mr_manifest_dn *dn, mr_x509_template *t, tpl_store *s)
{
    t->subject.attrs = s->attrs;
    /* Go's pkix.Name order: C, O, OU, L, ST, STREET, POSTALCODE, SERIALNUMBER, CN, extras. */
    MR_GUARD(add_attr_list(t, s, NID_countryName, &dn->country));
    MR_GUARD(add_attr_list(t, s, NID_organizationName, &dn->organization));
    MR_GUARD(add_attr_list(t, s, NID_organizationalUnitName, &dn->organizational_unit));
    MR_GUARD(add_attr_list(t, s, NID_localityName, &dn->locality));
    MR_GUARD(add_attr_list(t, s, NID_stateOrProvinceName, &dn->province));
    MR_GUARD(add_attr_list(t, s, NID_streetAddress, &dn->street_address));
    MR_GUARD(add_attr_list(t, s, NID_postalCode, &dn->postal_code));
    MR_GUARD(add_attr(t, s, NID_serialNumber, &dn->serial_number));
    MR_GUARD(add_attr(t, s, NID_commonName, &dn->common_name));
    for (size_t i = 0; i < dn->extra_names.count; i++) {
        const mr_manifest_attr *a = &dn->extra_names.items[i];
        char oid[128];
        MR_GUARD(oid_text(&a->type, oid, sizeof(oid)));
        int nid = OBJ_txt2nid(oid);
        MR_ENSURE(nid != NID_undef, MR_ERR_USAGE, "unsupported subject attribute %s", oid);
        if (a->value_is_string)
            MR_GUARD(add_attr(t, s, nid, &a->value));
    }
    return MR_SUCCESS;
}

static bool has_cn(const mr_x509_template *t)
{
    for (size_t i = 0; i < t->subject.count; i++)
        if (t->subject.attrs[i].nid == NID_commonName)
            return true;
    return false;
}

static MR_RESULT build_sans(const mr_manifest_cert *c, mr_x509_template *t, tpl_store *s)
{
    static const char *const localhost[] = {"localhost"};
    if (!c->dns_names.present) {
        t->dns_names = localhost;
        t->n_dns_names = 1;
    } else {
        MR_ENSURE(c->dns_names.count <= MAX_SANS, MR_ERR_USAGE, "too many DNS names");
        for (size_t i = 0; i < c->dns_names.count; i++)
            s->dns[i] = c->dns_names.items[i].ptr != NULL ? c->dns_names.items[i].ptr : "";
        t->dns_names = s->dns;
        t->n_dns_names = c->dns_names.count;
    }
    if (!c->ip_addresses.present) {
        MR_GUARD(mr_ip_parse("127.0.0.1", &s->ips[0]));
        MR_GUARD(mr_ip_parse("::1", &s->ips[1]));
        t->n_ips = 2;
    } else {
        MR_ENSURE(c->ip_addresses.count <= MAX_SANS, MR_ERR_USAGE, "too many IP addresses");
        for (size_t i = 0; i < c->ip_addresses.count; i++) {
            const mr_mbytes *ip = &c->ip_addresses.items[i];
            MR_ENSURE(ip->len == 4 || ip->len == 16, MR_ERR_USAGE, "invalid IP address");
            s->ips[i].len = (uint8_t)ip->len;
            memcpy(s->ips[i].addr, ip->ptr, ip->len);
        }
        t->n_ips = c->ip_addresses.count;
    }
    t->ips = s->ips;
    return MR_SUCCESS;
}

static MR_RESULT build_usages(const mr_manifest_cert *c, mr_x509_template *t, tpl_store *s)
{
    MR_ENSURE(c->key_usage >= 0 && c->key_usage < (1 << 9), MR_ERR_USAGE, "invalid KeyUsage");
    t->key_usage = c->key_usage == 0 ? (MR_KU_DIGITAL_SIGNATURE | MR_KU_CERT_SIGN)
                                     : (unsigned)c->key_usage;
    if (!c->ext_key_usage.present) {
        s->eku[0] = MR_EKU_SERVER_AUTH;
        s->eku[1] = MR_EKU_CLIENT_AUTH;
        t->n_ext_key_usage = 2;
    } else {
        MR_ENSURE(c->ext_key_usage.count <= MR_ARRAY_LEN(s->eku), MR_ERR_USAGE,
                  "too many ExtKeyUsage values");
        for (size_t i = 0; i < c->ext_key_usage.count; i++) {
            int64_t v = c->ext_key_usage.items[i];
            MR_ENSURE(v >= 0 && v <= MR_EKU_MS_KERNEL_CODE_SIGNING, MR_ERR_USAGE,
                      "unknown extended key usage %lld", (long long)v);
            s->eku[i] = (int)v;
        }
        t->n_ext_key_usage = c->ext_key_usage.count;
    }
    t->ext_key_usage = s->eku;
    t->basic_constraints_valid = true;
    t->is_ca = c->is_ca;
    MR_ENSURE(c->max_path_len >= -1 && c->max_path_len < 1 << 20, MR_ERR_USAGE,
              "invalid MaxPathLen");
    t->max_path_len = (int)c->max_path_len;
    t->max_path_len_zero = c->max_path_len_zero;
    t->subject_key_id = MR_SLICE(c->subject_key_id.ptr, c->subject_key_id.len);
    t->authority_key_id = MR_SLICE(c->authority_key_id.ptr, c->authority_key_id.len);
    MR_ENSURE(c->extra_extensions.count <= MAX_EXTS, MR_ERR_USAGE, "too many extensions");
    for (size_t i = 0; i < c->extra_extensions.count; i++) {
        const mr_manifest_ext *x = &c->extra_extensions.items[i];
        MR_GUARD(oid_text(&x->id, s->oids[i], sizeof(s->oids[i])));
        s->exts[i].oid = s->oids[i];
        s->exts[i].critical = x->critical;
        s->exts[i].value = MR_SLICE(x->value.ptr, x->value.len);
    }
    t->extra = s->exts;
    t->n_extra = c->extra_extensions.count;
    return MR_SUCCESS;
}

/* NotAfter rules of §7.2 step 3. keep_not_after != 0: a re-issued shared certificate. */
static time_t not_after(const mr_manifest_secret *d, uint64_t *valid_for, time_t now,
                        time_t keep_not_after)
{
    const mr_manifest_cert *c = &d->cert;
    if (keep_not_after != 0)
        return keep_not_after;
    if (!c->not_after.set) {
        if (*valid_for == 0)
            *valid_for = DEFAULT_VALID_DAYS;
        return now + (time_t)(*valid_for * 86400u);
    }
    if (*valid_for != 0 && !d->shared)
        return now + (time_t)(*valid_for * 86400u);
    return (time_t)c->not_after.unix_sec;
}

static MR_RESULT gen_cert(const core_gen_ctx *g, const mr_manifest_secret *d,
                          time_t keep_not_after, core_secret *out)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY *key = NULL;
    mr_x509_template t;
    tpl_store *s = mr_calloc(1, sizeof(*s));
    memset(&t, 0, sizeof(t));
    MR_ENSURE_ALLOC(s);
    MR_GUARD_OUT(cert_key(d, &key));
    MR_GUARD_OUT(build_subject(&d->cert.subject, &t, s));
    MR_GUARD_OUT(build_sans(&d->cert, &t, s));
    MR_GUARD_OUT(build_usages(&d->cert, &t, s));
    if (!has_cn(&t)) {
        mr_mstr cn = {.ptr = s->cn_default};
        (void)snprintf(s->cn_default, sizeof(s->cn_default), "%s",
                       t.n_dns_names == 1 && strlen(t.dns_names[0]) < sizeof(s->cn_default)
                           ? t.dns_names[0]
                           : "MarbleRun Generated Certificate");
        cn.len = strlen(s->cn_default);
        MR_GUARD_OUT(add_attr(&t, s, NID_commonName, &cn));
    }
    out->valid_for = d->valid_for;
    t.not_before = g->now;
    t.not_after = not_after(d, &out->valid_for, g->now, keep_not_after);
    MR_GUARD_OUT(mr_x509_issue(&t, key, g->marble_root, g->inter_key, &out->cert));
    MR_GUARD_OUT(mr_x509_to_der(out->cert, &out->cert_der));
    MR_GUARD_OUT(mr_key_private_to_der(key, MR_KEYFMT_PKCS8, &out->priv));
    MR_GUARD_OUT(mr_key_public_to_der(key, MR_KEYFMT_PKIX, &out->pub));
    res = MR_SUCCESS;
out:
    EVP_PKEY_free(key);
    mr_free(s);
    return res;
}

MR_RESULT core_secret_generate(const core_gen_ctx *g, const mr_manifest_secret *d,
                               time_t keep_not_after, core_secret *out)
{
    const char *t = type_of(d);
    memset(out, 0, sizeof(*out));
    mr_buf_init(&out->cert_der, 0, 0);
    mr_buf_init(&out->priv, 0, MR_BUF_SECRET);
    mr_buf_init(&out->pub, 0, MR_BUF_SECRET);
    out->def = d;
    out->valid_for = d->valid_for;
    mr_result res = MR_FAILURE;
    out->name = mr_strdup(name_of(d));
    MR_ENSURE_ALLOC_OUT(out->name);
    if (strcmp(t, "symmetric-key") == 0)
        MR_GUARD_OUT(gen_symmetric(g, d, out));
    else if (is_cert_type(t))
        MR_GUARD_OUT(gen_cert(g, d, keep_not_after, out));
    else
        MR_BAIL_OUT(MR_ERR_USAGE, "secret %s is invalid: unsupported secret of type %s",
                    name_of(d), t);
    out->has_value = true;
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        core_secret_clear(out);
    return res;
}

bool core_secret_is_symmetric(const mr_manifest_secret *d)
{
    return strcmp(type_of(d), "symmetric-key") == 0;
}
