/* SPDX-License-Identifier: Apache-2.0 */
/* Manifest model: freeing, lookups, string helpers, fingerprint. */
#include <string.h>

#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/text.h"
#include "manifest/manifest_int.h"

/* ---- strings ---- */

bool mr_manifest_mstr_eq(const mr_mstr *a, const mr_mstr *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

bool mr_manifest_mstr_eq_c(const mr_mstr *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && (n == 0 || memcmp(a->ptr, s, n) == 0);
}

/* One rune of Go's unicode.ToLower for the runes that matter to us. */
static uint32_t lower_rune(uint32_t r)
{
    if (r >= 'A' && r <= 'Z')
        return r + 32;
    if (r == 0x130)
        return 'i';
    if (r == 0x212A)
        return 'k';
    return r;
}

bool mr_manifest_lower(const char *s, size_t len, char *out, size_t cap)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n;
        uint32_t r = mr_utf8_decode(p + i, len - i, &n);
        uint32_t l = lower_rune(r);
        if (l != r) {
            /* every rune that lowers differently lowers to ASCII */
            if (o + 1 >= cap)
                return false;
            out[o++] = (char)l;
        } else {
            if (o + n >= cap)
                return false;
            memcpy(out + o, p + i, n);
            o += n;
        }
        i += n;
    }
    if (o >= cap)
        return false;
    out[o] = '\0';
    return true;
}

/* Go's unicode.SimpleFold orbit reduced to a canonical member for the runes that fold into
 * ASCII; every other rune folds only within its own case pair, approximated by the ASCII
 * rule (field names and feature gates are ASCII). */
static uint32_t fold_rune(uint32_t r)
{
    if (r >= 'a' && r <= 'z')
        return r - 32;
    if (r == 0x17F) /* LATIN SMALL LETTER LONG S */
        return 'S';
    if (r == 0x212A) /* KELVIN SIGN */
        return 'K';
    return r;
}

bool mr_manifest_equal_fold(const char *a, size_t alen, const char *b, size_t blen)
{
    const uint8_t *pa = (const uint8_t *)a, *pb = (const uint8_t *)b;
    size_t i = 0, j = 0;
    while (i < alen && j < blen) {
        size_t na, nb;
        uint32_t ra = mr_utf8_decode(pa + i, alen - i, &na);
        uint32_t rb = mr_utf8_decode(pb + j, blen - j, &nb);
        if (fold_rune(ra) != fold_rune(rb))
            return false;
        i += na;
        j += nb;
    }
    return i == alen && j == blen;
}

static int name_cmp(const mr_mstr *a, const char *name, size_t len)
{
    size_t n = a->len < len ? a->len : len;
    int c = n ? memcmp(a->ptr, name, n) : 0;
    if (c)
        return c;
    return a->len < len ? -1 : a->len > len ? 1 : 0;
}

const void *mr_manifest_map_find(const void *items, size_t count, size_t esz, const char *name,
                                 size_t name_len)
{
    size_t lo = 0, hi = count;
    const unsigned char *base = items;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mr_mstr *k = (const mr_mstr *)(const void *)(base + mid * esz);
        int c = name_cmp(k, name, name_len);
        if (c == 0)
            return k;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- free ---- */

void mr_manifest_mstr_free(mr_mstr *s)
{
    mr_free(s->ptr);
    s->ptr = NULL;
    s->len = 0;
}

void mr_manifest_mstr_list_free(mr_mstr_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        mr_free(l->items[i].ptr);
    mr_free(l->items);
    memset(l, 0, sizeof(*l));
}

static void bytes_free(mr_mbytes *b)
{
    mr_free(b->ptr);
    memset(b, 0, sizeof(*b));
}

static void ints_free(mr_mint_list *l)
{
    mr_free(l->items);
    memset(l, 0, sizeof(*l));
}

static void oids_free(mr_moid_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        ints_free(&l->items[i]);
    mr_free(l->items);
    memset(l, 0, sizeof(*l));
}

static void file_map_free(mr_manifest_file_map *fm)
{
    for (size_t i = 0; i < fm->count; i++) {
        mr_free(fm->items[i].name.ptr);
        mr_free(fm->items[i].data.ptr);
        mr_free(fm->items[i].encoding.ptr);
    }
    mr_free(fm->items);
    memset(fm, 0, sizeof(*fm));
}

void mr_manifest_tdx_free_(mr_manifest_tdx *t)
{
    mr_mstr *strs[] = {&t->mrtd,          &t->rtmr[0],       &t->rtmr[1],
                       &t->rtmr[2],       &t->rtmr[3],       &t->mrconfigid,
                       &t->mrowner,       &t->mrownerconfig, &t->td_attributes,
                       &t->td_attributes_mask, &t->xfam,     &t->xfam_mask,
                       &t->min_tee_tcb_svn};
    for (size_t i = 0; i < MR_ARRAY_LEN(strs); i++)
        mr_manifest_mstr_free(strs[i]);
    memset(t, 0, sizeof(*t));
}

void mr_manifest_snp_free_(mr_manifest_snp *s)
{
    mr_mstr *strs[] = {&s->measurement,       &s->host_data, &s->id_key_digest,
                       &s->author_key_digest, &s->family_id, &s->image_id};
    for (size_t i = 0; i < MR_ARRAY_LEN(strs); i++)
        mr_manifest_mstr_free(strs[i]);
    mr_manifest_mstr_list_free(&s->accepted_signing_keys);
    memset(s, 0, sizeof(*s));
}

void mr_manifest_package_free_(mr_manifest_package *p)
{
    mr_manifest_mstr_free(&p->name);
    mr_manifest_mstr_free(&p->unique_id);
    mr_manifest_mstr_free(&p->signer_id);
    mr_manifest_mstr_list_free(&p->accepted_tcb_statuses);
    mr_manifest_mstr_list_free(&p->accepted_advisories);
    mr_manifest_tdx_free_(&p->tdx);
    mr_manifest_snp_free_(&p->snp);
}

void mr_manifest_infra_free_(mr_manifest_infra *i)
{
    mr_manifest_mstr_free(&i->name);
    bytes_free(&i->cpusvn);
    bytes_free(&i->root_ca);
}

void mr_manifest_file_free_(mr_manifest_file *f)
{
    mr_manifest_mstr_free(&f->name);
    mr_manifest_mstr_free(&f->data);
    mr_manifest_mstr_free(&f->encoding);
}

void mr_manifest_marble_free_(mr_manifest_marble *m)
{
    mr_manifest_mstr_free(&m->name);
    mr_manifest_mstr_free(&m->package);
    file_map_free(&m->parameters.files);
    file_map_free(&m->parameters.env);
    mr_manifest_mstr_list_free(&m->parameters.argv);
    mr_manifest_mstr_list_free(&m->tls);
}

void mr_manifest_cert_free_(mr_manifest_cert *c)
{
    bytes_free(&c->raw);
    bytes_free(&c->raw_subject);
    mr_manifest_dn *d = &c->subject;
    mr_manifest_mstr_list_free(&d->country);
    mr_manifest_mstr_list_free(&d->organization);
    mr_manifest_mstr_list_free(&d->organizational_unit);
    mr_manifest_mstr_list_free(&d->locality);
    mr_manifest_mstr_list_free(&d->province);
    mr_manifest_mstr_list_free(&d->street_address);
    mr_manifest_mstr_list_free(&d->postal_code);
    mr_manifest_mstr_free(&d->serial_number);
    mr_manifest_mstr_free(&d->common_name);
    for (size_t i = 0; i < d->extra_names.count; i++) {
        ints_free(&d->extra_names.items[i].type);
        mr_manifest_mstr_free(&d->extra_names.items[i].value);
    }
    mr_free(d->extra_names.items);
    ints_free(&c->ext_key_usage);
    oids_free(&c->unknown_ext_key_usage);
    oids_free(&c->policy_identifiers);
    bytes_free(&c->subject_key_id);
    bytes_free(&c->authority_key_id);
    mr_manifest_mstr_list_free(&c->dns_names);
    mr_manifest_mstr_list_free(&c->email_addresses);
    mr_manifest_mstr_list_free(&c->ocsp_server);
    mr_manifest_mstr_list_free(&c->issuing_certificate_url);
    mr_manifest_mstr_list_free(&c->crl_distribution_points);
    for (size_t i = 0; i < c->ip_addresses.count; i++)
        bytes_free(&c->ip_addresses.items[i]);
    mr_free(c->ip_addresses.items);
    mr_manifest_mstr_list_free(&c->permitted_dns_domains);
    mr_manifest_mstr_list_free(&c->excluded_dns_domains);
    mr_manifest_mstr_list_free(&c->permitted_email_addresses);
    mr_manifest_mstr_list_free(&c->excluded_email_addresses);
    mr_manifest_mstr_list_free(&c->permitted_uri_domains);
    mr_manifest_mstr_list_free(&c->excluded_uri_domains);
    for (size_t i = 0; i < c->extra_extensions.count; i++) {
        ints_free(&c->extra_extensions.items[i].id);
        bytes_free(&c->extra_extensions.items[i].value);
    }
    mr_free(c->extra_extensions.items);
    memset(c, 0, sizeof(*c));
}

void mr_manifest_secret_free_(mr_manifest_secret *s)
{
    mr_manifest_mstr_free(&s->name);
    mr_manifest_mstr_free(&s->type);
    mr_manifest_cert_free_(&s->cert);
    mr_free_wipe(s->private_key.ptr, s->private_key.len);
    s->private_key = (mr_mbytes){0};
    bytes_free(&s->public_key);
}

void mr_manifest_user_free_(mr_manifest_user *u)
{
    mr_manifest_mstr_free(&u->name);
    mr_manifest_mstr_free(&u->certificate);
    mr_manifest_mstr_list_free(&u->roles);
}

void mr_manifest_role_free_(mr_manifest_role *r)
{
    mr_manifest_mstr_free(&r->name);
    mr_manifest_mstr_free(&r->resource_type);
    mr_manifest_mstr_list_free(&r->resource_names);
    mr_manifest_mstr_list_free(&r->actions);
}

void mr_manifest_reckey_free_(mr_manifest_recovery_key *k)
{
    mr_manifest_mstr_free(&k->name);
    mr_manifest_mstr_free(&k->pem);
}

void mr_manifest_tls_list_free_(mr_manifest_tls_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        mr_manifest_mstr_free(&l->items[i].port);
        mr_manifest_mstr_free(&l->items[i].addr);
        mr_manifest_mstr_free(&l->items[i].cert);
        mr_manifest_mstr_list_free(&l->items[i].allowed_marble_types);
    }
    mr_free(l->items);
    memset(l, 0, sizeof(*l));
}

void mr_manifest_tls_tag_free_(mr_manifest_tls_tag *t)
{
    mr_manifest_mstr_free(&t->name);
    mr_manifest_tls_list_free_(&t->outgoing);
    mr_manifest_tls_list_free_(&t->incoming);
}

#define FREE_MAP(map, fn)                                                                     \
    do {                                                                                      \
        for (size_t i_ = 0; i_ < (map).count; i_++)                                           \
            fn(&(map).items[i_]);                                                             \
        mr_free((map).items);                                                                 \
        (map).items = NULL;                                                                   \
        (map).count = 0;                                                                      \
    } while (0)

void mr_manifest_free(mr_manifest *m)
{
    if (m == NULL)
        return;
    FREE_MAP(m->packages, mr_manifest_package_free_);
    FREE_MAP(m->infrastructures, mr_manifest_infra_free_);
    FREE_MAP(m->marbles, mr_manifest_marble_free_);
    FREE_MAP(m->users, mr_manifest_user_free_);
    FREE_MAP(m->secrets, mr_manifest_secret_free_);
    FREE_MAP(m->recovery_keys, mr_manifest_reckey_free_);
    FREE_MAP(m->roles, mr_manifest_role_free_);
    FREE_MAP(m->tls, mr_manifest_tls_tag_free_);
    mr_manifest_mstr_free(&m->config.seal_mode);
    mr_manifest_mstr_list_free(&m->config.feature_gates);
    bytes_free(&m->raw);
    mr_free(m);
}

/* ---- lookups ---- */

#define FIND(map, T, name)                                                                    \
    ((m == NULL || (name) == NULL)                                                            \
         ? NULL                                                                               \
         : (const T *)mr_manifest_map_find((map).items, (map).count, sizeof(T), (name),      \
                                           strlen(name)))

const mr_manifest_package *mr_manifest_find_package(const mr_manifest *m, const char *name)
{
    return FIND(m->packages, mr_manifest_package, name);
}

const mr_manifest_marble *mr_manifest_find_marble(const mr_manifest *m, const char *name)
{
    return FIND(m->marbles, mr_manifest_marble, name);
}

const mr_manifest_secret *mr_manifest_find_secret(const mr_manifest *m, const char *name)
{
    return FIND(m->secrets, mr_manifest_secret, name);
}

const mr_manifest_user *mr_manifest_find_user(const mr_manifest *m, const char *name)
{
    return FIND(m->users, mr_manifest_user, name);
}

const mr_manifest_tls_tag *mr_manifest_find_tls_tag(const mr_manifest *m, const char *name)
{
    return FIND(m->tls, mr_manifest_tls_tag, name);
}

const mr_manifest_infra *mr_manifest_find_infra(const mr_manifest *m, const char *name)
{
    return FIND(m->infrastructures, mr_manifest_infra, name);
}

bool mr_manifest_feature_enabled(const mr_manifest *m, const char *gate)
{
    if (m == NULL || gate == NULL)
        return false;
    for (size_t i = 0; i < m->config.feature_gates.count; i++) {
        const mr_mstr *g = &m->config.feature_gates.items[i];
        if (mr_manifest_equal_fold(g->ptr ? g->ptr : "", g->len, gate, strlen(gate)))
            return true;
    }
    return false;
}

/* ---- fingerprint ---- */

MR_RESULT mr_manifest_fingerprint(const uint8_t *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    mr_result res = MR_FAILURE;
    mr_buf hex;
    mr_buf_init(&hex, 0, 0);
    MR_GUARD_OSSL_OUT(EVP_Digest(len ? data : (const uint8_t *)"", len, md, &mdlen, EVP_sha256(),
                                 NULL),
                      MR_ERR_INTERNAL, "hashing manifest");
    MR_GUARD_OUT(mr_hex_encode_buf(md, mdlen, &hex));
    MR_ENSURE_OUT(hex.len == 64, MR_ERR_INTERNAL, "internal error: digest length");
    memcpy(out, hex.data, 64);
    out[64] = '\0';
    res = MR_SUCCESS;
out:
    mr_buf_free(&hex);
    return res;
}
