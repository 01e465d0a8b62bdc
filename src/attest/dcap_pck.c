/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP verification, the PCK certificate (spec/attestation.md §2 steps 2-3, dcap_int.h): the
 * quote's PEM chain verified to a trusted root, the issuing CA's name, the SGX extension of
 * the leaf, and a process-wide cache of verified chains.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "attest/collateral_int.h"
#include "attest/dcap_int.h"
#include "attest/ossl.h"
#include "common/alloc.h"
#include "crypto/hash.h"
#include "crypto/x509.h"

/* ---------------------------------------------------------------------------------------- */
/* PCK certificate SGX extension (OID 1.2.840.113741.1.13.1)                                  */

enum { HAVE_FMSPC = 1, HAVE_PCEID = 2, HAVE_PCESVN = 4, HAVE_COMPS = 8 };

static const uint8_t sgx_ext_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

/* One DER TLV of the PCK extension (crypto/x509.h: mr_der_elem), as attestation errors. */
static MR_RESULT der_tlv(mr_cursor *c, uint8_t *tag, mr_cursor *val)
{
    return mr_der_elem(c, MR_ERR_ATTESTATION, tag, val, NULL);
}

static MR_RESULT der_uint(mr_cursor *v, uint8_t tag, unsigned max, unsigned *out)
{
    unsigned x = 0;
    size_t n = mr_cursor_remaining(v);
    uint8_t b = 0;

    MR_ENSURE(tag == 0x02 || tag == 0x0a, MR_ERR_ATTESTATION, "expected an INTEGER");
    MR_ENSURE(n >= 1 && n <= 3, MR_ERR_ATTESTATION, "INTEGER out of range");
    for (size_t i = 0; i < n; i++) {
        MR_GUARD(mr_cursor_u8(v, &b));
        if (i == 0)
            MR_ENSURE((b & 0x80) == 0, MR_ERR_ATTESTATION, "negative INTEGER");
        x = (x << 8) | b;
    }
    MR_ENSURE(x <= max, MR_ERR_ATTESTATION, "INTEGER out of range");
    *out = x;
    return MR_SUCCESS;
}

static MR_RESULT der_octets(mr_cursor *v, uint8_t tag, uint8_t *out, size_t n)
{
    MR_ENSURE(tag == 0x04 && mr_cursor_remaining(v) == n, MR_ERR_ATTESTATION,
              "expected an OCTET STRING of %zu bytes", n);
    return mr_cursor_read(v, out, n);
}

/* Reads SEQUENCE { OID, value } and returns the OID's last arc below `prefix`. */
static MR_RESULT ext_item(mr_cursor *seq, const uint8_t *prefix, size_t plen, unsigned *arc,
                          uint8_t *vtag, mr_cursor *val)
{
    uint8_t tag = 0;
    mr_cursor item, oid;
    mr_slice o;

    MR_GUARD(der_tlv(seq, &tag, &item));
    MR_ENSURE(tag == 0x30, MR_ERR_ATTESTATION, "expected a SEQUENCE");
    MR_GUARD(der_tlv(&item, &tag, &oid));
    MR_ENSURE(tag == 0x06, MR_ERR_ATTESTATION, "expected an OID");
    MR_GUARD(mr_cursor_view(&oid, mr_cursor_remaining(&oid), &o));
    *arc = 0;
    if (o.len == plen + 1 && memcmp(o.ptr, prefix, plen) == 0 && o.ptr[plen] < 0x80)
        *arc = o.ptr[plen];
    MR_GUARD(der_tlv(&item, vtag, val));
    return MR_SUCCESS;
}

static MR_RESULT parse_tcb_seq(mr_cursor *v, pck_info *p)
{
    uint8_t prefix[sizeof(sgx_ext_oid) + 1];
    unsigned seen = 0;

    memcpy(prefix, sgx_ext_oid, sizeof(sgx_ext_oid));
    prefix[sizeof(sgx_ext_oid)] = 0x02;
    while (mr_cursor_remaining(v) > 0) {
        unsigned arc = 0, x = 0;
        uint8_t tag = 0;
        mr_cursor val;
        MR_GUARD(ext_item(v, prefix, sizeof(prefix), &arc, &tag, &val));
        if (arc >= 1 && arc <= 16) {
            MR_GUARD(der_uint(&val, tag, 255, &x));
            p->comp[arc - 1] = (uint8_t)x;
            seen |= 1u << (arc - 1);
        } else if (arc == 17) {
            MR_GUARD(der_uint(&val, tag, 0xffff, &x));
            p->pcesvn = (uint16_t)x;
            p->have |= HAVE_PCESVN;
        } else if (arc == 18) {
            MR_GUARD(der_octets(&val, tag, p->cpusvn, 16));
        }
    }
    if (seen == 0xffff)
        p->have |= HAVE_COMPS;
    return MR_SUCCESS;
}

static MR_RESULT parse_pck_ext(X509 *leaf, pck_info *p)
{
    ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    int idx = -1;
    const ASN1_OCTET_STRING *data = NULL;
    mr_cursor c, seq;
    uint8_t tag = 0;

    memset(p, 0, sizeof(*p));
    MR_ENSURE(obj != NULL, MR_ERR_INTERNAL, "out of memory");
    idx = X509_get_ext_by_OBJ(leaf, obj, -1);
    ASN1_OBJECT_free(obj);
    MR_ENSURE(idx >= 0, MR_ERR_ATTESTATION, "PCK certificate has no SGX extension");
    data = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
    MR_ENSURE(data != NULL, MR_ERR_ATTESTATION, "empty SGX extension");
    mr_cursor_init(&c, ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data));
    MR_GUARD(der_tlv(&c, &tag, &seq));
    MR_ENSURE(tag == 0x30, MR_ERR_ATTESTATION, "SGX extension is not a SEQUENCE");
    while (mr_cursor_remaining(&seq) > 0) {
        unsigned arc = 0;
        mr_cursor val;
        MR_GUARD(ext_item(&seq, sgx_ext_oid, sizeof(sgx_ext_oid), &arc, &tag, &val));
        switch (arc) {
        case 2:
            MR_ENSURE(tag == 0x30, MR_ERR_ATTESTATION, "SGX extension TCB is not a SEQUENCE");
            MR_GUARD(parse_tcb_seq(&val, p));
            break;
        case 3:
            MR_GUARD(der_octets(&val, tag, p->pceid, 2));
            p->have |= HAVE_PCEID;
            break;
        case 4:
            MR_GUARD(der_octets(&val, tag, p->fmspc, 6));
            p->have |= HAVE_FMSPC;
            break;
        default:
            break;
        }
    }
    MR_ENSURE(p->have == (HAVE_FMSPC | HAVE_PCEID | HAVE_PCESVN | HAVE_COMPS),
              MR_ERR_ATTESTATION, "SGX extension lacks FMSPC, PCE-ID or TCB values");
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* PCK chain cache                                                                            */
/*
 * Parsing and verifying the PEM chain of a quote dominates the cost of a verification
 * (OpenSSL 3 decoders), and every quote of a platform carries the same chain. Chains that
 * verified are remembered with a copy of the certification data and the roots they verified
 * against, and found again by comparing those bytes (cheaper than hashing them: the SHA-256
 * the QE-report memo is keyed by is computed once, when the chain is first verified); the
 * time check is done on every use against the chain's validity window, and revocation is
 * checked on every use against the collateral.
 */

#define PCK_CACHE_SIZE 64

typedef struct pck_entry {
    X509 *leaf, *intermediate;
    uint64_t roots_id;
    time_t not_before, not_after;
    unsigned long stamp;
    pck_info pck;
    uint8_t hash[32];
    uint8_t *bytes; /* the certification data (cache entries only; NULL in copies) */
    size_t nbytes;
    bool used;
    bool processor_ca;
} pck_entry;

static pck_entry pck_cache[PCK_CACHE_SIZE];
static unsigned long pck_clock;
static pthread_mutex_t pck_lock = PTHREAD_MUTEX_INITIALIZER;

static bool same_bytes(const pck_entry *e, mr_slice data)
{
    return e->nbytes == data.len && memcmp(e->bytes, data.ptr, data.len) == 0;
}

static bool pck_cache_get(mr_slice data, uint64_t roots_id, pck_entry *out)
{
    bool hit = false;
    pthread_mutex_lock(&pck_lock);
    for (size_t i = 0; i < PCK_CACHE_SIZE && !hit; i++) {
        pck_entry *e = &pck_cache[i];
        if (!e->used || e->roots_id != roots_id || !same_bytes(e, data))
            continue;
        if (X509_up_ref(e->leaf) != 1)
            break;
        if (X509_up_ref(e->intermediate) != 1) {
            X509_free(e->leaf);
            break;
        }
        e->stamp = ++pck_clock;
        *out = *e;
        out->bytes = NULL;
        out->nbytes = 0;
        hit = true;
    }
    pthread_mutex_unlock(&pck_lock);
    return hit;
}

static void pck_entry_drop(pck_entry *e)
{
    if (e->used) {
        X509_free(e->leaf);
        X509_free(e->intermediate);
        mr_free(e->bytes);
    }
    memset(e, 0, sizeof(*e));
}

/* Remembers a verified chain (a copy of data); a failed allocation only means no entry. */
static void pck_cache_put(const pck_entry *in, mr_slice data)
{
    pck_entry *victim = &pck_cache[0];
    uint8_t *copy = mr_alloc(data.len > 0 ? data.len : 1);

    if (copy == NULL)
        return;
    memcpy(copy, data.ptr, data.len);
    pthread_mutex_lock(&pck_lock);
    for (size_t i = 0; i < PCK_CACHE_SIZE; i++) {
        pck_entry *e = &pck_cache[i];
        if (e->used && e->roots_id == in->roots_id && same_bytes(e, data)) {
            pthread_mutex_unlock(&pck_lock);
            mr_free(copy);
            return;
        }
        if (!e->used || e->stamp < victim->stamp)
            victim = e;
        if (!e->used)
            break;
    }
    if (X509_up_ref(in->leaf) == 1) {
        if (X509_up_ref(in->intermediate) == 1) {
            pck_entry_drop(victim);
            *victim = *in;
            victim->bytes = copy;
            victim->nbytes = data.len;
            copy = NULL;
            victim->used = true;
            victim->stamp = ++pck_clock;
        } else {
            X509_free(in->leaf);
        }
    }
    pthread_mutex_unlock(&pck_lock);
    mr_free(copy);
}

#define QE_MEMO_SIZE 64

static uint8_t qe_memo[QE_MEMO_SIZE][32];
static size_t qe_memo_n;    /* entries in use */
static size_t qe_memo_next; /* next slot to replace once full */
static unsigned long qe_memo_hits;

bool mr_dcap_qe_memo_has_(const uint8_t key[32])
{
    bool hit = false;
    pthread_mutex_lock(&pck_lock);
    for (size_t i = 0; i < qe_memo_n && !hit; i++)
        hit = memcmp(qe_memo[i], key, 32) == 0; /* a hash of public data */
    if (hit)
        qe_memo_hits++;
    pthread_mutex_unlock(&pck_lock);
    return hit;
}

void mr_dcap_qe_memo_put_(const uint8_t key[32])
{
    pthread_mutex_lock(&pck_lock);
    bool have = false;
    for (size_t i = 0; i < qe_memo_n && !have; i++)
        have = memcmp(qe_memo[i], key, 32) == 0;
    if (!have) {
        size_t slot = qe_memo_n < QE_MEMO_SIZE ? qe_memo_n++ : qe_memo_next++ % QE_MEMO_SIZE;
        memcpy(qe_memo[slot], key, 32);
    }
    pthread_mutex_unlock(&pck_lock);
}

#define AK_CACHE_SIZE 16

static struct {
    uint8_t xy[64];
    EVP_PKEY *key;
} ak_cache[AK_CACHE_SIZE];
static size_t ak_n, ak_next;

MR_RESULT mr_dcap_attest_key_(const uint8_t xy[64], EVP_PKEY **out)
{
    EVP_PKEY *key = NULL;
    pthread_mutex_lock(&pck_lock);
    for (size_t i = 0; i < ak_n && key == NULL; i++)
        if (memcmp(ak_cache[i].xy, xy, 64) == 0 && EVP_PKEY_up_ref(ak_cache[i].key) == 1)
            key = ak_cache[i].key; /* a public key */
    pthread_mutex_unlock(&pck_lock);
    if (key != NULL) {
        *out = key;
        return MR_SUCCESS;
    }
    MR_GUARD(mr_ossl_p256_from_raw(xy, &key));
    pthread_mutex_lock(&pck_lock);
    bool have = false;
    for (size_t i = 0; i < ak_n && !have; i++)
        have = memcmp(ak_cache[i].xy, xy, 64) == 0;
    if (!have && EVP_PKEY_up_ref(key) == 1) {
        size_t slot = ak_n < AK_CACHE_SIZE ? ak_n++ : ak_next++ % AK_CACHE_SIZE;
        EVP_PKEY_free(ak_cache[slot].key); /* NULL while the table fills */
        memcpy(ak_cache[slot].xy, xy, 64);
        ak_cache[slot].key = key;
    }
    pthread_mutex_unlock(&pck_lock);
    *out = key;
    return MR_SUCCESS;
}

unsigned long mr_dcap_qe_memo_hits_(void)
{
    pthread_mutex_lock(&pck_lock);
    unsigned long n = qe_memo_hits;
    pthread_mutex_unlock(&pck_lock);
    return n;
}

void mr_dcap_cache_clear(void)
{
    pthread_mutex_lock(&pck_lock);
    memset(qe_memo, 0, sizeof(qe_memo));
    qe_memo_n = qe_memo_next = 0;
    for (size_t i = 0; i < ak_n; i++)
        EVP_PKEY_free(ak_cache[i].key);
    memset(ak_cache, 0, sizeof(ak_cache));
    ak_n = ak_next = 0;
    for (size_t i = 0; i < PCK_CACHE_SIZE; i++)
        pck_entry_drop(&pck_cache[i]);
    pthread_mutex_unlock(&pck_lock);
}

/* A chain that is not in the cache: the PEM certificates of the certification data, the
 * leaf's name, the chain verified to a trusted root (the time is checked on every use), the
 * issuer's name and the SGX extension. On success e holds new references to the leaf and its
 * issuer; on failure the caller frees what e holds. */
static MR_RESULT pck_verify(const mr_dcap_quote *q, const mr_attest_roots *roots, pck_entry *e)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *certs = NULL, *untrusted = NULL;
    X509 *leaf = NULL;
    char cn[128];

    MR_GUARD_OUT(
        in_step("PCK chain", mr_ossl_pem_certs(q->cert_data.ptr, q->cert_data.len, &certs)));
    leaf = sk_X509_value(certs, 0);
    MR_ENSURE_OUT(X509_up_ref(leaf) == 1, MR_ERR_INTERNAL, "certificate reference");
    e->leaf = leaf;
    mr_ossl_subject_cn(e->leaf, cn, sizeof(cn));
    MR_ENSURE_OUT(strstr(cn, "Intel SGX PCK Certificate") != NULL, MR_ERR_ATTESTATION,
                  "PCK chain: leaf CN \"%s\" is not an Intel SGX PCK Certificate", cn);
    untrusted = sk_X509_new_null();
    MR_ENSURE_ALLOC_OUT(untrusted);
    for (int i = 1; i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (!mr_ossl_self_issued(c)) /* the root copy in the quote is never trusted */
            MR_ENSURE_OUT(sk_X509_push(untrusted, c) > 0, MR_ERR_INTERNAL, "out of memory");
    }
    MR_GUARD_OUT(in_step("PCK chain",
                         mr_ossl_verify_chain(e->leaf, untrusted, roots->certs, &e->intermediate,
                                              &e->not_before, &e->not_after)));
    mr_ossl_subject_cn(e->intermediate, cn, sizeof(cn));
    if (strcmp(cn, "Intel SGX PCK Processor CA") == 0)
        e->processor_ca = true;
    else
        MR_ENSURE_OUT(strcmp(cn, "Intel SGX PCK Platform CA") == 0, MR_ERR_ATTESTATION,
                      "PCK chain: issuer CN \"%s\" is not an Intel SGX PCK Platform or "
                      "Processor CA",
                      cn);
    MR_GUARD_OUT(in_step("PCK certificate", parse_pck_ext(e->leaf, &e->pck)));
    res = MR_SUCCESS;
out:
    sk_X509_free(untrusted);
    sk_X509_pop_free(certs, X509_free);
    return res;
}

/* The chain's validity window contains the verification time. */
static MR_RESULT pck_valid_at(const pck_entry *e, time_t when)
{
    char a[32], b[32], t[32];

    if (when >= e->not_before && when <= e->not_after)
        return MR_SUCCESS;
    mr_ossl_fmt_time(e->not_before, a, sizeof(a));
    mr_ossl_fmt_time(e->not_after, b, sizeof(b));
    mr_ossl_fmt_time(when, t, sizeof(t));
    MR_BAIL(MR_ERR_ATTESTATION, "PCK chain: certificate is not valid at %s (chain valid %s to %s)",
            t, a, b);
}

MR_RESULT mr_dcap_pck_chain_(const mr_dcap_quote *q, const mr_attest_roots *roots, time_t when,
                             dcap_pck *out)
{
    mr_result res = MR_FAILURE;
    pck_entry e;

    memset(&e, 0, sizeof(e));
    e.roots_id = roots->id;
    if (!pck_cache_get(q->cert_data, roots->id, &e)) {
        MR_GUARD(mr_sha256(q->cert_data.ptr, q->cert_data.len, e.hash));
        MR_GUARD_OUT(pck_verify(q, roots, &e));
        pck_cache_put(&e, q->cert_data);
    }
    MR_GUARD_OUT(pck_valid_at(&e, when));
    out->leaf = e.leaf;
    out->intermediate = e.intermediate;
    out->pck = e.pck;
    out->processor_ca = e.processor_ca;
    memcpy(out->chain_hash, e.hash, sizeof(out->chain_hash));
    e.leaf = e.intermediate = NULL;
    res = MR_SUCCESS;
out:
    X509_free(e.leaf);
    X509_free(e.intermediate);
    return res;
}

void mr_dcap_pck_clear_(dcap_pck *p)
{
    X509_free(p->leaf);
    X509_free(p->intermediate);
    memset(p, 0, sizeof(*p));
}
