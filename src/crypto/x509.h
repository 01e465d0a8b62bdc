/* SPDX-License-Identifier: Apache-2.0 */
/*
 * X.509 certificates: issue from a template (Go crypto/x509 shape, spec/coordinator.md §0.3,
 * §3), parse DER/PEM, read the fields the Coordinator needs, verify a chain against an anchor.
 *
 * Ownership
 *  - X509 / STACK_OF(X509) / X509_CRL objects returned through `**out` are new references owned
 *    by the caller (X509_free, sk_X509_pop_free(s, X509_free), X509_CRL_free); *out is only written on
 *    success. Objects passed in are borrowed (never freed or modified, except that OpenSSL may
 *    fill its internal caches).
 *  - mr_slice results (mr_x509_ski, mr_x509_extension, ...) borrow from the certificate and are
 *    valid while it lives.
 *  - mr_x509_name / mr_x509_san_list filled by this module own their strings; release them with
 *    mr_x509_name_clear / mr_x509_san_list_clear (safe on zeroed structs). In templates the same
 *    structs only borrow caller memory and must not be cleared.
 *  - Certificates hold public data only; nothing here is wiped.
 *
 * Errors: MR_ERR_USAGE for malformed input or an invalid template; MR_ERR_AUTH (or the
 * category chosen in mr_x509_verify_opts.fail_cat) for a chain that does not verify, with the
 * OpenSSL reason in the message ("certificate verification failed: certificate has expired");
 * MR_ERR_INTERNAL for OpenSSL and allocation failures.
 */
#ifndef MR_CRYPTO_X509_H
#define MR_CRYPTO_X509_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_X509_DER_MAX (256u << 10) /* larger certificates are rejected unparsed */

/* An IP address in binary form: 4 bytes (IPv4) or 16 bytes (IPv6). */
typedef struct mr_ip {
    uint8_t len;
    uint8_t addr[16];
} mr_ip;

#define MR_IP_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

/* Parses "127.0.0.1" or "::1" (IPv4-mapped IPv6 becomes 4 bytes, as Go's To4). */
MR_RESULT mr_ip_parse(const char *text, mr_ip *out);
/* Writes the text form into out (MR_IP_TEXT_MAX bytes). */
MR_RESULT mr_ip_format(const mr_ip *ip, char *out, size_t out_size);

/* One name attribute: an OpenSSL NID (NID_countryName, NID_commonName, ...) and a UTF-8 value. */
typedef struct mr_x509_attr {
    int nid;
    char *value;
} mr_x509_attr;

/* A distinguished name as a list of attributes. When issuing, attributes are written in Go's
 * order (C, O, OU, L, ST, STREET, POSTALCODE, SERIALNUMBER, CN; then any other NID in the
 * given order); several values of one type form one multi-valued RDN, as Go does. Values are
 * PrintableString when possible, else UTF8String. When parsing, the certificate's order. */
typedef struct mr_x509_name {
    mr_x509_attr *attrs;
    size_t count;
} mr_x509_name;

void mr_x509_name_clear(mr_x509_name *n);

/* Subject alternative names: DNS names and IP addresses (other kinds are ignored). */
typedef struct mr_x509_san_list {
    char **dns;
    size_t n_dns;
    mr_ip *ips;
    size_t n_ips;
} mr_x509_san_list;

void mr_x509_san_list_clear(mr_x509_san_list *s);

/* KeyUsage bits, numbered as Go's x509.KeyUsage. */
enum {
    MR_KU_DIGITAL_SIGNATURE = 1u << 0,
    MR_KU_CONTENT_COMMITMENT = 1u << 1,
    MR_KU_KEY_ENCIPHERMENT = 1u << 2,
    MR_KU_DATA_ENCIPHERMENT = 1u << 3,
    MR_KU_KEY_AGREEMENT = 1u << 4,
    MR_KU_CERT_SIGN = 1u << 5,
    MR_KU_CRL_SIGN = 1u << 6,
    MR_KU_ENCIPHER_ONLY = 1u << 7,
    MR_KU_DECIPHER_ONLY = 1u << 8,
};

/* ExtKeyUsage values, numbered as Go's x509.ExtKeyUsage. */
enum {
    MR_EKU_ANY = 0,
    MR_EKU_SERVER_AUTH = 1,
    MR_EKU_CLIENT_AUTH = 2,
    MR_EKU_CODE_SIGNING = 3,
    MR_EKU_EMAIL_PROTECTION = 4,
    MR_EKU_IPSEC_END_SYSTEM = 5,
    MR_EKU_IPSEC_TUNNEL = 6,
    MR_EKU_IPSEC_USER = 7,
    MR_EKU_TIME_STAMPING = 8,
    MR_EKU_OCSP_SIGNING = 9,
    MR_EKU_MS_SERVER_GATED_CRYPTO = 10,
    MR_EKU_NS_SERVER_GATED_CRYPTO = 11,
    MR_EKU_MS_COMMERCIAL_CODE_SIGNING = 12,
    MR_EKU_MS_KERNEL_CODE_SIGNING = 13,
};

/* An extra extension. `oid` in dotted form ("1.3.9903.2.1"); `value` is the extnValue content
 * (the bytes inside the OCTET STRING, e.g. raw UTF-8 for the Marble type extension). */
typedef struct mr_x509_ext {
    const char *oid;
    bool critical;
    mr_slice value;
} mr_x509_ext;

/* A certificate template. Zero-initialise, then set what is needed; all pointers borrowed. */
typedef struct mr_x509_template {
    mr_x509_name subject;
    const char *const *dns_names;
    size_t n_dns_names;
    const mr_ip *ips;
    size_t n_ips;
    time_t not_before;
    time_t not_after;
    unsigned key_usage;        /* MR_KU_* bits; 0 = no KeyUsage extension */
    const int *ext_key_usage;  /* MR_EKU_* values, encoded in this order */
    size_t n_ext_key_usage;
    bool basic_constraints_valid;
    bool is_ca;
    int max_path_len;          /* > 0: pathLen; 0 with max_path_len_zero: pathLen 0; else none */
    bool max_path_len_zero;
    mr_slice subject_key_id;   /* empty: auto (CA only): first 20 bytes of SHA-256 of the key */
    mr_slice authority_key_id; /* used when the parent does not provide one (Go rule) */
    mr_slice serial;           /* big-endian, <= 20 bytes; empty: random in [0, 2^128) */
    const mr_x509_ext *extra;
    size_t n_extra;
} mr_x509_template;

/* not_before + MaxInt64 nanoseconds in whole seconds (~292 years), as MarbleRun's CA and
 * Marble certificates use. Saturates at the largest time_t. */
time_t mr_x509_max_not_after(time_t not_before);

/* Issues a certificate for subject_key (only its public part is used).
 * parent == NULL: self-signed; issuer = template subject; signer must be subject_key's pair.
 * parent != NULL: issuer = parent's subject; signer must match the parent's public key; the
 * AKI is the parent's SKI when the issuer DN differs from the subject DN.
 * The signature algorithm follows the signer key (see key.h). */
MR_RESULT mr_x509_issue(const mr_x509_template *t, EVP_PKEY *subject_key, X509 *parent,
                        EVP_PKEY *signer, X509 **out);
/* The same certificate, as DER only (appended to der). For EC subject keys this skips
 * OpenSSL 3.0's key encoder, which dominates the cost of issuing a leaf certificate. */
MR_RESULT mr_x509_issue_der(const mr_x509_template *t, EVP_PKEY *subject_key, X509 *parent,
                            EVP_PKEY *signer, mr_buf *der);

/* Parsing. DER: exactly one certificate, no trailing bytes. PEM: the first CERTIFICATE block.
 * Chain: every block of a PEM bundle, which must all be CERTIFICATE blocks (at least one);
 * order kept. */
MR_RESULT mr_x509_from_der(mr_slice der, X509 **out);
MR_RESULT mr_x509_from_pem(mr_slice pem, X509 **out);
MR_RESULT mr_x509_chain_from_pem(mr_slice pem, STACK_OF(X509) **out);
MR_RESULT mr_x509_to_der(X509 *cert, mr_buf *out);
MR_RESULT mr_x509_to_pem(X509 *cert, mr_buf *out);
/* SHA-256 of the DER encoding. */
MR_RESULT mr_x509_sha256(X509 *cert, uint8_t out[32]);
/* The certificate's SubjectPublicKeyInfo DER, copied from the parsed structure (no key
 * re-encoding; cheaper than encoding the EVP_PKEY), e.g. for pinning a root by key. */
MR_RESULT mr_x509_spki_der(X509 *cert, mr_buf *out);
/* The SubjectPublicKeyInfo element inside a certificate's DER, borrowed from der: found by
 * stepping over the TBSCertificate fields before it, without decoding the certificate or its
 * key. For comparing keys byte for byte; it says nothing about the certificate's validity.
 * MR_ERR_USAGE if der is not laid out as a certificate up to that field. */
MR_RESULT mr_x509_der_spki(mr_slice der, mr_slice *spki);
/* One DER element at c: tag numbers below 31 and definite lengths of up to four bytes (others
 * fail with category cat, "unsupported DER tag/length"); its tag, its contents as a cursor, and
 * with whole != NULL the whole element (header and contents). c moves past the element. */
MR_RESULT mr_der_elem(mr_cursor *c, mr_errcat cat, uint8_t *tag, mr_cursor *contents,
                      mr_slice *whole);

/* Accessors. */
/* The subject public key, borrowed from the certificate (decoded once, then cached by
 * OpenSSL). Fails (MR_ERR_USAGE) if the key is missing or violates the key policy. */
MR_RESULT mr_x509_pubkey(X509 *cert, EVP_PKEY **borrowed);
/* The first CN of the subject as UTF-8, NUL-terminated in out (out->len excludes the NUL);
 * an empty string when there is no CN. */
MR_RESULT mr_x509_subject_cn(const X509 *cert, mr_buf *out);
MR_RESULT mr_x509_subject(const X509 *cert, mr_x509_name *out);
MR_RESULT mr_x509_sans(const X509 *cert, mr_x509_san_list *out);
MR_RESULT mr_x509_validity(const X509 *cert, time_t *not_before, time_t *not_after);
/* Subject/authority key identifiers; an empty slice when absent. */
mr_slice mr_x509_ski(X509 *cert);
mr_slice mr_x509_aki(X509 *cert);
/* The extension with this OID: *found says whether it exists; value = extnValue contents. */
MR_RESULT mr_x509_extension(const X509 *cert, const char *oid, mr_slice *value, bool *critical,
                            bool *found);
/* true if the certificate is a CA (BasicConstraints cA = TRUE). */
bool mr_x509_is_ca(X509 *cert);

/* Chain verification. */
typedef enum mr_x509_purpose {
    MR_X509_PURPOSE_SERVER = 0, /* leaf must allow TLS server use (Go's default) */
    MR_X509_PURPOSE_CLIENT,     /* leaf must allow TLS client use */
    MR_X509_PURPOSE_ANY,        /* the leaf's purpose (KU/EKU) is not checked */
} mr_x509_purpose;

typedef struct mr_x509_verify_opts {
    time_t at;                      /* verification time; 0 = now */
    STACK_OF(X509) *intermediates;  /* untrusted intermediates (borrowed), may be NULL */
    STACK_OF(X509_CRL) *crls;       /* borrowed; non-NULL enables CRL checks of the leaf */
    bool crl_check_all;             /* with crls: check every certificate of the chain */
    mr_x509_purpose purpose;
    mr_errcat fail_cat;             /* category of a verification failure; 0 = MR_ERR_AUTH */
    bool strict;                    /* OpenSSL's RFC 5280 strict checks (Go is not strict) */
} mr_x509_verify_opts;

/* Verifies leaf up to `anchor`, which is trusted as given (self-signed or not, as Go treats
 * roots). opts may be NULL (now, no intermediates, no CRLs, server purpose). */
MR_RESULT mr_x509_verify(X509 *leaf, X509 *anchor, const mr_x509_verify_opts *opts);

/* CRLs (DER). */
MR_RESULT mr_x509_crl_from_der(mr_slice der, X509_CRL **out);

#endif
