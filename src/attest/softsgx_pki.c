/* SPDX-License-Identifier: Apache-2.0 */
/*
 * softsgx init: the TCB levels, the signed collateral and the files of a softsgx directory
 * (see softsgx.h); the TEST certificates and CRLs are made by softsgx_x509.c. Everything here
 * is for tests; nothing is Intel's.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "attest/issuer_io.h"
#include "attest/softsgx.h"
#include "attest/softsgx_int.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/codec.h"
#include "crypto/p256.h"

/* FMSPC and PCE-ID of the softsgx platform (the FMSPC is not one of Intel's). */
const uint8_t mr_softsgx_fmspc_[6] = {0x5a, 0xf7, 0x5a, 0xf7, 0x00, 0x00};
const uint8_t mr_softsgx_pce_id_[2] = {0x00, 0x00};
enum { PCESVN = 13, TCB_EVAL_NUMBER = 17, QE_ISVPRODID = 1, DEFAULT_VALID_DAYS = 30 };

/* ---- TCB levels -------------------------------------------------------------------------
 * SGX TCB components 01 and 02 carry the "microcode" SVN, component 07 the "configuration"
 * one. Levels are listed in the order Intel's verifier sorts them (component vectors
 * descending), and the PCK certificate gets exactly the SVNs of the level that must match
 * first. TcbNotSupported gets SVNs below every level. */
typedef struct tcb_level {
    const char *status;
    uint8_t micro;  /* components 01 and 02 */
    uint8_t config; /* component 07 */
    const char *date;
    const char *advisories; /* JSON array text, or NULL */
} tcb_level;

static const tcb_level LEVELS[] = {
    {"UpToDate", 14, 1, "2024-11-13T00:00:00Z", NULL},
    {"ConfigurationNeeded", 14, 0, "2024-11-13T00:00:00Z", "[\"INTEL-SA-00289\"]"},
    {"SWHardeningNeeded", 13, 1, "2024-03-13T00:00:00Z", "[\"INTEL-SA-00615\"]"},
    {"ConfigurationAndSWHardeningNeeded", 13, 0, "2024-03-13T00:00:00Z",
     "[\"INTEL-SA-00289\",\"INTEL-SA-00615\"]"},
    {"OutOfDate", 12, 1, "2023-02-15T00:00:00Z", "[\"INTEL-SA-00828\",\"INTEL-SA-00615\"]"},
    {"OutOfDateConfigurationNeeded", 12, 0, "2023-02-15T00:00:00Z",
     "[\"INTEL-SA-00289\",\"INTEL-SA-00828\",\"INTEL-SA-00615\"]"},
    {"Revoked", 11, 0, "2022-11-09T00:00:00Z",
     "[\"INTEL-SA-00657\",\"INTEL-SA-00828\",\"INTEL-SA-00615\"]"},
};

/* Which (micro, config) the PCK gets for each requested status. */
static const struct {
    const char *name;
    uint8_t micro;
    uint8_t config;
} PLATFORM[MR_SOFTSGX_TCB__COUNT] = {
    [MR_SOFTSGX_TCB_UP_TO_DATE] = {"UpToDate", 14, 1},
    [MR_SOFTSGX_TCB_SW_HARDENING_NEEDED] = {"SWHardeningNeeded", 13, 1},
    [MR_SOFTSGX_TCB_CONFIGURATION_NEEDED] = {"ConfigurationNeeded", 14, 0},
    [MR_SOFTSGX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = {"ConfigurationAndSWHardeningNeeded",
                                                              13, 0},
    [MR_SOFTSGX_TCB_OUT_OF_DATE] = {"OutOfDate", 12, 1},
    [MR_SOFTSGX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = {"OutOfDateConfigurationNeeded", 12, 0},
    [MR_SOFTSGX_TCB_REVOKED] = {"Revoked", 11, 1},
    [MR_SOFTSGX_TCB_NOT_SUPPORTED] = {"TcbNotSupported", 10, 1},
};

/* QE Identity levels and the QE ISVSVN for each QE status. */
static const struct {
    const char *status;
    uint16_t isvsvn;
    const char *date;
    const char *advisories;
} QE_LEVELS[MR_SOFTSGX_QE__COUNT] = {
    [MR_SOFTSGX_QE_UP_TO_DATE] = {"UpToDate", 8, "2024-03-13T00:00:00Z", NULL},
    [MR_SOFTSGX_QE_OUT_OF_DATE] = {"OutOfDate", 6, "2021-11-10T00:00:00Z",
                                   "[\"INTEL-SA-00615\"]"},
    [MR_SOFTSGX_QE_REVOKED] = {"Revoked", 4, "2019-11-13T00:00:00Z",
                               "[\"INTEL-SA-00334\",\"INTEL-SA-00477\",\"INTEL-SA-00615\"]"},
};

const char *mr_softsgx_tcb_name(mr_softsgx_tcb t)
{
    return (unsigned)t < MR_SOFTSGX_TCB__COUNT ? PLATFORM[t].name : "?";
}

MR_RESULT mr_softsgx_tcb_parse(const char *name, mr_softsgx_tcb *out)
{
    for (unsigned i = 0; i < MR_SOFTSGX_TCB__COUNT; i++) {
        if (name != NULL && strcasecmp(name, PLATFORM[i].name) == 0) {
            *out = (mr_softsgx_tcb)i;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_USAGE,
            "unknown TCB status \"%s\" (want UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
            "ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, "
            "Revoked or TcbNotSupported)",
            name != NULL ? name : "");
}

const char *mr_softsgx_qe_tcb_name(mr_softsgx_qe_tcb t)
{
    return (unsigned)t < MR_SOFTSGX_QE__COUNT ? QE_LEVELS[t].status : "?";
}

MR_RESULT mr_softsgx_qe_tcb_parse(const char *name, mr_softsgx_qe_tcb *out)
{
    for (unsigned i = 0; i < MR_SOFTSGX_QE__COUNT; i++) {
        if (name != NULL && strcasecmp(name, QE_LEVELS[i].status) == 0) {
            *out = (mr_softsgx_qe_tcb)i;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_USAGE, "unknown QE TCB status \"%s\" (want UpToDate, OutOfDate or Revoked)",
            name != NULL ? name : "");
}

/* ---- output helpers ---------------------------------------------------------------------- */

static MR_RESULT cert_pem(X509 *c, mr_buf *out)
{
    unsigned char *der = NULL;
    int len = i2d_X509(c, &der);
    MR_ENSURE(len > 0, MR_ERR_INTERNAL, "cannot encode a certificate");
    mr_result r = mr_pem_encode_buf("CERTIFICATE", der, (size_t)len, out);
    OPENSSL_free(der);
    return r;
}

static MR_RESULT write_key(const char *dir, const char *name, EVP_PKEY *key)
{
    mr_result res = MR_FAILURE;
    char path[4096];
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data = NULL;
    MR_ENSURE_ALLOC_OUT(bio);
    MR_GUARD_OSSL_OUT(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL),
                      MR_ERR_INTERNAL, "cannot encode a private key");
    long len = BIO_get_mem_data(bio, &data);
    MR_ENSURE_OUT(len > 0 && data != NULL, MR_ERR_INTERNAL, "cannot encode a private key");
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_GUARD_OUT(mr_issuer_io_write_new(path, data, (size_t)len, 0600));
    res = MR_SUCCESS;
out:
    BIO_free(bio); /* secure-heap memory BIO: cleansed on free */
    return res;
}

static MR_RESULT write_public(const char *dir, const char *name, const mr_buf *content)
{
    char path[4096];
    MR_GUARD(mr_issuer_io_path(path, sizeof(path), dir, name));
    return mr_issuer_io_write_new(path, content->data, content->len, 0644);
}

static MR_RESULT rfc3339(time_t t, char out[32])
{
    struct tm tm;
    MR_ENSURE(gmtime_r(&t, &tm) != NULL, MR_ERR_INTERNAL, "time out of range");
    MR_ENSURE(strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0, MR_ERR_INTERNAL,
              "time out of range");
    return MR_SUCCESS;
}

MR_RESULT mr_softsgx_hex_upper_(const uint8_t *b, size_t n, mr_buf *out)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        char two[2] = {digits[b[i] >> 4], digits[b[i] & 15]};
        MR_GUARD(mr_buf_append(out, two, 2));
    }
    return MR_SUCCESS;
}

/* The exact tcbInfo text that gets signed (compact, field order as Intel's PCS v4). */
static MR_RESULT tcb_info_json(const char *issue, const char *next, mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out, "{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"%s\","
                                "\"nextUpdate\":\"%s\",\"fmspc\":\"",
                           issue, next));
    MR_GUARD(mr_softsgx_hex_upper_(mr_softsgx_fmspc_, sizeof(mr_softsgx_fmspc_), out));
    MR_GUARD(mr_buf_append_str(out, "\",\"pceId\":\""));
    MR_GUARD(mr_softsgx_hex_upper_(mr_softsgx_pce_id_, sizeof(mr_softsgx_pce_id_), out));
    MR_GUARD(mr_buf_printf(out, "\",\"tcbType\":0,\"tcbEvaluationDataNumber\":%d,\"tcbLevels\":[",
                           TCB_EVAL_NUMBER));
    for (size_t i = 0; i < MR_ARRAY_LEN(LEVELS); i++) {
        const tcb_level *l = &LEVELS[i];
        MR_GUARD(mr_buf_append_str(out, i ? ",{\"tcb\":{\"sgxtcbcomponents\":["
                                          : "{\"tcb\":{\"sgxtcbcomponents\":["));
        uint8_t comps[16] = {l->micro, l->micro, 3, 3, 255, 255, l->config};
        for (int c = 0; c < 16; c++)
            MR_GUARD(mr_buf_printf(out, "%s{\"svn\":%u}", c ? "," : "", comps[c]));
        MR_GUARD(mr_buf_printf(out, "],\"pcesvn\":%d},\"tcbDate\":\"%s\",\"tcbStatus\":\"%s\"",
                               PCESVN, l->date, l->status));
        if (l->advisories != NULL)
            MR_GUARD(mr_buf_printf(out, ",\"advisoryIDs\":%s", l->advisories));
        MR_GUARD(mr_buf_append_str(out, "}"));
    }
    return mr_buf_append_str(out, "]}");
}

static MR_RESULT qe_identity_json(const char *issue, const char *next, const uint8_t mrsigner[32],
                                  bool td, mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out,
                           "{\"id\":\"%s\",\"version\":2,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
                           "\"tcbEvaluationDataNumber\":%d,\"miscselect\":\"00000000\","
                           "\"miscselectMask\":\"FFFFFFFF\","
                           "\"attributes\":\"11000000000000000000000000000000\","
                           "\"attributesMask\":\"FBFFFFFFFFFFFFFF0000000000000000\",\"mrsigner\":\"",
                           td ? "TD_QE" : "QE", issue, next, TCB_EVAL_NUMBER));
    MR_GUARD(mr_softsgx_hex_upper_(mrsigner, 32, out));
    MR_GUARD(mr_buf_printf(out, "\",\"isvprodid\":%d,\"tcbLevels\":[",
                           td ? MR_SOFTSGX_TD_QE_ISVPRODID : QE_ISVPRODID));
    for (unsigned i = 0; i < MR_SOFTSGX_QE__COUNT; i++) {
        MR_GUARD(mr_buf_printf(out, "%s{\"tcb\":{\"isvsvn\":%u},\"tcbDate\":\"%s\",\"tcbStatus\":\"%s\"",
                               i ? "," : "", QE_LEVELS[i].isvsvn, QE_LEVELS[i].date,
                               QE_LEVELS[i].status));
        if (QE_LEVELS[i].advisories != NULL)
            MR_GUARD(mr_buf_printf(out, ",\"advisoryIDs\":%s", QE_LEVELS[i].advisories));
        MR_GUARD(mr_buf_append_str(out, "}"));
    }
    return mr_buf_append_str(out, "]}");
}

static MR_RESULT sign_hex(EVP_PKEY *key, const mr_buf *msg, char hex[129])
{
    uint8_t sig[64];
    mr_buf h;
    mr_buf_init(&h, 256, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(mr_ecdsa_p256_sign_raw(key, mr_buf_slice(msg), sig));
    MR_GUARD_OUT(mr_hex_encode_buf(sig, sizeof(sig), &h));
    MR_ENSURE_OUT(h.len == 128, MR_ERR_INTERNAL, "bad signature length");
    memcpy(hex, h.data, 128);
    hex[128] = '\0';
    res = MR_SUCCESS;
out:
    mr_buf_free(&h);
    return res;
}

static MR_RESULT set_str(json_t *obj, const char *key, const char *data, size_t len)
{
    json_t *v = json_stringn(data, len);
    MR_ENSURE(v != NULL, MR_ERR_INTERNAL, "cannot build JSON for %s", key);
    MR_ENSURE(json_object_set_new(obj, key, v) == 0, MR_ERR_INTERNAL, "cannot build JSON");
    return MR_SUCCESS;
}

static MR_RESULT set_hex(json_t *obj, const char *key, const uint8_t *b, size_t n)
{
    mr_result res = MR_FAILURE;
    mr_buf h;
    mr_buf_init(&h, 0, 0);
    MR_GUARD_OUT(mr_hex_encode_buf(b, n, &h));
    MR_GUARD_OUT(set_str(obj, key, (const char *)h.data, h.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&h);
    return res;
}

static MR_RESULT write_json(const char *dir, const char *name, json_t *obj, mode_t mode)
{
    mr_result res = MR_FAILURE;
    char path[4096];
    const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
    size_t len = json_dumpb(obj, NULL, 0, flags);
    char *text = len > 0 ? mr_alloc(len) : NULL;
    MR_ENSURE_ALLOC_OUT(text);
    MR_ENSURE_OUT(json_dumpb(obj, text, len, flags) == len, MR_ERR_INTERNAL,
                  "cannot encode JSON");
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_GUARD_OUT(mr_issuer_io_write_new(path, text, len, mode));
    res = MR_SUCCESS;
out:
    mr_free_wipe(text, len);
    return res;
}

/* ---- init ---------------------------------------------------------------------------------- */

static MR_RESULT make_dirs(const char *dir)
{
    char path[4096];
    MR_ENSURE(mkdir(dir, 0700) == 0 || errno == EEXIST, MR_ERR_IO, "cannot create %s: %s", dir,
              strerror(errno));
    MR_GUARD(mr_issuer_io_path(path, sizeof(path), dir, SOFTSGX_PRIVATE));
    MR_ENSURE(mkdir(path, 0700) == 0 || errno == EEXIST, MR_ERR_IO, "cannot create %s: %s",
              path, strerror(errno));
    MR_ENSURE(chmod(path, 0700) == 0, MR_ERR_IO, "cannot chmod %s: %s", path, strerror(errno));
    return MR_SUCCESS;
}

static MR_RESULT write_certs(const char *dir, const softsgx_pki *p)
{
    mr_buf root, ca, tcb, pck, chain;
    mr_buf_init(&root, 0, 0);
    mr_buf_init(&ca, 0, 0);
    mr_buf_init(&tcb, 0, 0);
    mr_buf_init(&pck, 0, 0);
    mr_buf_init(&chain, 0, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(cert_pem(p->root, &root));
    MR_GUARD_OUT(cert_pem(p->ca, &ca));
    MR_GUARD_OUT(cert_pem(p->tcb, &tcb));
    MR_GUARD_OUT(cert_pem(p->pck, &pck));
    MR_GUARD_OUT(mr_buf_append(&chain, pck.data, pck.len));
    MR_GUARD_OUT(mr_buf_append(&chain, ca.data, ca.len));
    MR_GUARD_OUT(mr_buf_append(&chain, root.data, root.len));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_ROOT_CA, &root));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_PCK_CA, &ca));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_TCB_SIGNING, &tcb));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_PCK, &pck));
    MR_GUARD_OUT(write_public(dir, SOFTSGX_PCK_CHAIN, &chain));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_ROOT_CA_KEY, p->root_key));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_PCK_CA_KEY, p->ca_key));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_TCB_SIGNING_KEY, p->tcb_key));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_PCK_KEY, p->pck_key));
    MR_GUARD_OUT(write_key(dir, SOFTSGX_ATTESTATION_KEY, p->att_key));
    res = MR_SUCCESS;
out:
    mr_buf_free(&root);
    mr_buf_free(&ca);
    mr_buf_free(&tcb);
    mr_buf_free(&pck);
    mr_buf_free(&chain);
    return res;
}

/* collateral.json, or with td tdx-collateral.json (TCB Info id TDX, TD_QE identity; the
 * same chains and CRLs) */
static MR_RESULT write_collateral(const char *dir, const softsgx_pki *p,
                                  const softsgx_platform *plat, const mr_softsgx_init_opts *o,
                                  time_t nb, time_t na, bool td)
{
    mr_result res = MR_FAILURE;
    char issue[32], next[32], tcb_sig[129], qe_sig[129];
    mr_buf ca_chain, tcb_chain, root_crl, pck_crl, tcb_info, qe_id;
    mr_buf_init(&ca_chain, 0, 0);
    mr_buf_init(&tcb_chain, 0, 0);
    mr_buf_init(&root_crl, 0, 0);
    mr_buf_init(&pck_crl, 0, 0);
    mr_buf_init(&tcb_info, 0, 0);
    mr_buf_init(&qe_id, 0, 0);
    json_t *obj = json_object();
    MR_ENSURE_ALLOC_OUT(obj);
    MR_GUARD_OUT(rfc3339(nb, issue));
    MR_GUARD_OUT(rfc3339(na, next));
    MR_GUARD_OUT(cert_pem(p->ca, &ca_chain));
    MR_GUARD_OUT(cert_pem(p->root, &ca_chain));
    MR_GUARD_OUT(cert_pem(p->tcb, &tcb_chain));
    MR_GUARD_OUT(cert_pem(p->root, &tcb_chain));
    MR_GUARD_OUT(mr_softsgx_crl_der_(p->root, p->root_key, NULL, nb, na, &root_crl));
    MR_GUARD_OUT(mr_softsgx_crl_der_(p->ca, p->ca_key,
                                     o->revoke_pck ? X509_get0_serialNumber(p->pck) : NULL, nb,
                                     na, &pck_crl));
    MR_GUARD_OUT(td ? mr_softsgx_tdx_tcb_info_json_(issue, next, &tcb_info)
                    : tcb_info_json(issue, next, &tcb_info));
    MR_GUARD_OUT(qe_identity_json(issue, next, plat->qe_mrsigner, td, &qe_id));
    MR_GUARD_OUT(sign_hex(p->tcb_key, &tcb_info, tcb_sig));
    MR_GUARD_OUT(sign_hex(p->tcb_key, &qe_id, qe_sig));
    MR_GUARD_OUT(set_str(obj, "pck_crl_issuer_chain", (const char *)ca_chain.data, ca_chain.len));
    MR_GUARD_OUT(set_hex(obj, "root_ca_crl", root_crl.data, root_crl.len));
    MR_GUARD_OUT(set_hex(obj, "pck_crl", pck_crl.data, pck_crl.len));
    MR_GUARD_OUT(set_str(obj, "tcb_info_issuer_chain", (const char *)tcb_chain.data, tcb_chain.len));
    MR_GUARD_OUT(set_str(obj, "tcb_info", (const char *)tcb_info.data, tcb_info.len));
    MR_GUARD_OUT(set_str(obj, "tcb_info_signature", tcb_sig, 128));
    MR_GUARD_OUT(set_str(obj, "qe_identity_issuer_chain", (const char *)tcb_chain.data,
                         tcb_chain.len));
    MR_GUARD_OUT(set_str(obj, "qe_identity", (const char *)qe_id.data, qe_id.len));
    MR_GUARD_OUT(set_str(obj, "qe_identity_signature", qe_sig, 128));
    MR_GUARD_OUT(write_json(dir, td ? SOFTSGX_TDX_COLLATERAL : SOFTSGX_COLLATERAL, obj, 0644));
    res = MR_SUCCESS;
out:
    json_decref(obj);
    mr_buf_free(&ca_chain);
    mr_buf_free(&tcb_chain);
    mr_buf_free(&root_crl);
    mr_buf_free(&pck_crl);
    mr_buf_free(&tcb_info);
    mr_buf_free(&qe_id);
    return res;
}

static MR_RESULT write_state(const char *dir, const softsgx_platform *plat,
                             const mr_softsgx_init_opts *o)
{
    mr_result res = MR_FAILURE;
    json_t *obj = json_object();
    MR_ENSURE_ALLOC_OUT(obj);
    MR_ENSURE_OUT(json_object_set_new(obj, "warning",
                                      json_string("softsgx TEST material: quotes made from this "
                                                  "directory prove nothing")) == 0 &&
                      json_object_set_new(obj, "version", json_integer(1)) == 0 &&
                      json_object_set_new(obj, "tcb_status",
                                          json_string(mr_softsgx_tcb_name(o->tcb_status))) == 0 &&
                      json_object_set_new(obj, "qe_tcb_status",
                                          json_string(mr_softsgx_qe_tcb_name(o->qe_status))) == 0 &&
                      json_object_set_new(obj, "qe_isvprodid", json_integer(plat->qe_isvprodid)) ==
                          0 &&
                      json_object_set_new(obj, "qe_isvsvn", json_integer(plat->qe_isvsvn)) == 0 &&
                      json_object_set_new(obj, "pcesvn", json_integer(plat->pcesvn)) == 0,
                  MR_ERR_INTERNAL, "cannot build JSON");
    MR_GUARD_OUT(set_hex(obj, "qe_mrenclave", plat->qe_mrenclave, 32));
    MR_GUARD_OUT(set_hex(obj, "qe_mrsigner", plat->qe_mrsigner, 32));
    MR_GUARD_OUT(set_hex(obj, "qe_id", plat->qe_id, 16));
    MR_GUARD_OUT(set_hex(obj, "cpusvn", plat->cpusvn, 16));
    MR_GUARD_OUT(set_hex(obj, "fmspc", mr_softsgx_fmspc_, sizeof(mr_softsgx_fmspc_)));
    MR_GUARD_OUT(write_json(dir, SOFTSGX_STATE, obj, 0600));
    res = MR_SUCCESS;
out:
    json_decref(obj);
    return res;
}

MR_RESULT mr_softsgx_init(const char *dir, const mr_softsgx_init_opts *opts)
{
    mr_softsgx_init_opts o = {0};
    softsgx_platform plat = {0};
    softsgx_pki p = {0};
    mr_result res = MR_FAILURE;
    if (opts != NULL)
        o = *opts;
    MR_ENSURE_OUT(dir != NULL && dir[0] != '\0', MR_ERR_USAGE, "softsgx: no directory given");
    MR_ENSURE_OUT((unsigned)o.tcb_status < MR_SOFTSGX_TCB__COUNT &&
                      (unsigned)o.qe_status < MR_SOFTSGX_QE__COUNT,
                  MR_ERR_USAGE, "softsgx: bad TCB status");
    if (o.valid_days == 0)
        o.valid_days = DEFAULT_VALID_DAYS;
    MR_ENSURE_OUT(o.valid_days <= 36500, MR_ERR_USAGE, "softsgx: --valid-days must be <= 36500");
    time_t now = o.now != 0 ? o.now : time(NULL);
    time_t nb = now - 3600;
    time_t na = now + (time_t)o.valid_days * 86400;

    uint8_t comps[16] = {PLATFORM[o.tcb_status].micro, PLATFORM[o.tcb_status].micro, 3, 3, 255,
                         255, PLATFORM[o.tcb_status].config};
    memcpy(plat.cpusvn, comps, 16);
    plat.pcesvn = PCESVN;
    plat.qe_isvprodid = QE_ISVPRODID;
    plat.qe_isvsvn = QE_LEVELS[o.qe_status].isvsvn;
    MR_GUARD_OSSL_OUT(RAND_bytes(plat.qe_mrenclave, 32), MR_ERR_INTERNAL, "RAND_bytes failed");
    MR_GUARD_OSSL_OUT(RAND_bytes(plat.qe_mrsigner, 32), MR_ERR_INTERNAL, "RAND_bytes failed");
    MR_GUARD_OSSL_OUT(RAND_bytes(plat.qe_id, 16), MR_ERR_INTERNAL, "RAND_bytes failed");

    MR_GUARD_OUT(make_dirs(dir));
    MR_GUARD_OUT(mr_softsgx_pki_make_(&p, &plat, comps, o.platform_ca, nb, na));
    MR_GUARD_OUT(write_certs(dir, &p));
    MR_GUARD_OUT(write_collateral(dir, &p, &plat, &o, nb, na, false));
    MR_GUARD_OUT(write_collateral(dir, &p, &plat, &o, nb, na, true));
    MR_GUARD_OUT(write_state(dir, &plat, &o));
    res = MR_SUCCESS;
out:
    mr_softsgx_pki_free_(&p);
    return res;
}
