/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by softsgx_pki.c (init) and softsgx.c (load, quote). Not installed. */
#ifndef MR_ATTEST_SOFTSGX_INT_H
#define MR_ATTEST_SOFTSGX_INT_H

#include <stdint.h>

/* File names inside a softsgx directory. */
#define SOFTSGX_ROOT_CA "root-ca.pem"
#define SOFTSGX_PCK_CA "pck-ca.pem"
#define SOFTSGX_PCK "pck.pem"
#define SOFTSGX_TCB_SIGNING "tcb-signing.pem"
#define SOFTSGX_PCK_CHAIN "pck-chain.pem"
#define SOFTSGX_COLLATERAL "collateral.json"
#define SOFTSGX_PRIVATE "private"
#define SOFTSGX_ROOT_CA_KEY "private/root-ca-key.pem"
#define SOFTSGX_PCK_CA_KEY "private/pck-ca-key.pem"
#define SOFTSGX_TCB_SIGNING_KEY "private/tcb-signing-key.pem"
#define SOFTSGX_PCK_KEY "private/pck-key.pem"
#define SOFTSGX_ATTESTATION_KEY "private/attestation-key.pem"
#define SOFTSGX_STATE "private/softsgx.json"

/* Intel's QE vendor ID (quote header offset 12). */
extern const uint8_t mr_softsgx_intel_vendor_id_[16];

/* Platform values the PKI was built with, as stored in private/softsgx.json. */
typedef struct softsgx_platform {
    uint8_t qe_mrenclave[32];
    uint8_t qe_mrsigner[32];
    uint16_t qe_isvprodid;
    uint16_t qe_isvsvn;
    uint8_t qe_id[16];  /* platform QE-ID, quote header user_data[0:16] */
    uint8_t cpusvn[16];
    uint16_t pcesvn;
} softsgx_platform;

#endif
