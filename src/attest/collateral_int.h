/* SPDX-License-Identifier: Apache-2.0 */
/* Internal structure of parsed DCAP collateral and trust roots (attest module only). */
#ifndef MR_ATTEST_COLLATERAL_INT_H
#define MR_ATTEST_COLLATERAL_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <openssl/x509.h>

#include "attest/attest.h"
#include "attest/collateral.h"
#include "common/buf.h"

struct mr_attest_roots {
    STACK_OF(X509) *certs; /* trusted roots */
    uint64_t id;           /* unique per set, keys the collateral verification cache */
    bool intel;            /* contains the Intel SGX Root CA key */
};

/* One TCB level of TCB Info, QE Identity or a TDX module identity. */
typedef struct mr_dcap_level {
    uint8_t sgx[16];       /* TCB Info: SGX component SVNs */
    uint8_t tdx[16];       /* TCB Info (TDX): TDX component SVNs */
    bool has_tdx;
    uint16_t pcesvn;       /* TCB Info */
    uint16_t isvsvn;       /* identities */
    mr_tcb_status status;
    time_t date;
    size_t adv_count;
    char (*adv)[MR_ATTEST_ADVISORY_MAX];
} mr_dcap_level;

typedef struct mr_dcap_module_id {
    char id[16];           /* "TDX_01", ... */
    uint8_t mrsigner[48];
    uint8_t attributes[8];
    uint8_t attributes_mask[8];
    mr_dcap_level *levels;
    size_t level_count;
} mr_dcap_module_id;

typedef struct mr_dcap_tcb_info {
    int version;           /* 2 or 3 */
    bool tdx;              /* id == "TDX" */
    time_t issue_date, next_update;
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint32_t eval_num;
    mr_dcap_level *levels;
    size_t level_count;
    bool has_module;
    mr_dcap_module_id module;        /* tdxModule (no levels) */
    mr_dcap_module_id *module_ids;   /* tdxModuleIdentities */
    size_t module_id_count;
} mr_dcap_tcb_info;

typedef struct mr_dcap_qe_identity {
    char id[8];            /* "QE", "TD_QE", "QVE" */
    time_t issue_date, next_update;
    uint32_t eval_num;
    uint8_t miscselect[4], miscselect_mask[4];
    uint8_t attributes[16], attributes_mask[16];
    uint8_t mrsigner[32];
    uint16_t isvprodid;
    mr_dcap_level *levels;
    size_t level_count;
} mr_dcap_qe_identity;

struct mr_dcap_collateral {
    atomic_long refs;
    mr_buf tcb_info_text;      /* exact signed bytes */
    mr_buf qe_identity_text;   /* exact signed bytes */
    uint8_t tcb_info_sig[64];
    uint8_t qe_identity_sig[64];
    STACK_OF(X509) *tcb_chain;
    STACK_OF(X509) *qe_chain;
    STACK_OF(X509) *pck_crl_chain; /* may be empty */
    X509_CRL *root_crl;        /* NULL when absent */
    X509_CRL *pck_crl;         /* NULL when absent */
    time_t root_crl_this, root_crl_next, pck_crl_this, pck_crl_next;
    mr_dcap_tcb_info tcb;
    mr_dcap_qe_identity qe;

    /* Verification cache: results that do not depend on the quote or the time. */
    pthread_mutex_t lock;
    uint64_t sig_ok_roots;     /* roots id for which chains and signatures verified (0 none) */
    time_t tcb_chain_nb, tcb_chain_na, qe_chain_nb, qe_chain_na;
    X509 *pck_crl_ok_issuer;   /* intermediate whose key verified pck_crl */
    uint64_t root_crl_ok_roots; /* roots id whose key verified root_crl (0 none) */
};

/* §2 step 5: chains and signatures of TCB Info and QE Identity (cached per roots) and their
 * validity at `when`. */
MR_RESULT mr_dcap_collateral_check(mr_dcap_collateral *c, const mr_attest_roots *roots,
                                   time_t when, unsigned flags);
/* §2 step 4: the Root CA CRL, signed by a trusted root and current at `when`, must not list
 * the intermediate; the PCK CRL, issued and signed by the intermediate and current at
 * `when`, must not list the leaf. Signature results are cached. */
MR_RESULT mr_dcap_collateral_check_pck(mr_dcap_collateral *c, const mr_attest_roots *roots,
                                       X509 *leaf, X509 *intermediate, time_t when,
                                       unsigned flags);

/* Finds the raw text of the value of top-level member `key` in a JSON object text
 * (strings and escapes respected). Used for PCS responses ({"tcbInfo":{...},...}). */
MR_RESULT mr_json_raw_member(const char *json, size_t len, const char *key, mr_slice *out);

#endif
