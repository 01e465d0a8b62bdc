/* SPDX-License-Identifier: Apache-2.0 */
/*
 * softsnp: real-format AMD SEV-SNP attestation reports without AMD hardware. FOR TESTS ONLY.
 *
 * A softsnp directory holds a self-made imitation of AMD's key hierarchy: a TEST "ARK"
 * (self-signed RSA, RSASSA-PSS SHA-384 salt 48, like AMD's), an "ASK" and an "ASVK" under
 * it, and the P-384 keys of one chip's VCEK and of a VLEK. Reports made from it are byte for
 * byte in the ATTESTATION_REPORT format (spec/attestation.md §5.5), signed with the VCEK or
 * VLEK key; each report comes with a VCEK (or VLEK) certificate issued for its CHIP_ID and
 * REPORTED_TCB with AMD's KDS extensions, so the real verifier (snp.h) checks the chain, the
 * extensions and the signature.
 *
 * A relying party must never trust these reports: the verifier accepts them only when it is
 * explicitly given DIR/ark.pem as its test root (EDG_ATTESTATION_SNP_ROOT).
 *
 * Files written by mr_softsnp_init (DIR is created with mode 0700 when missing):
 *   ark.pem  ask.pem  asvk.pem  cert_chain.pem (ASK then ARK)                       (0644)
 *   private/ark-key.pem  ask-key.pem  asvk-key.pem  vcek-key.pem  vlek-key.pem
 *   private/softsnp.json (CHIP_ID, validity)                                         (0600)
 *
 * Ownership: mr_softsnp_load returns a handle owned by the caller (mr_softsnp_free,
 * NULL-safe); a loaded handle is immutable and may be used by several threads.
 * Errors: MR_ERR_USAGE for bad arguments, MR_ERR_IO for files, MR_ERR_INTERNAL for OpenSSL.
 */
#ifndef MR_ATTEST_SOFTSNP_H
#define MR_ATTEST_SOFTSNP_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "common/result.h"

typedef struct mr_softsnp_init_opts {
    unsigned valid_days; /* 0 = 30 */
    time_t now;          /* 0 = time(NULL); validity starts one hour before */
} mr_softsnp_init_opts;

MR_RESULT mr_softsnp_init(const char *dir, const mr_softsnp_init_opts *opts);

typedef struct mr_softsnp mr_softsnp;

MR_RESULT mr_softsnp_load(const char *dir, mr_softsnp **out);
void mr_softsnp_free(mr_softsnp *s);

/* What a report says about the guest. */
typedef struct mr_softsnp_identity {
    uint32_t version;   /* 2 or 3 */
    uint64_t policy;    /* POLICY word */
    uint32_t guest_svn;
    uint32_t vmpl;
    uint8_t family_id[16], image_id[16];
    uint8_t measurement[48], host_data[32], id_key_digest[48], author_key_digest[48];
    uint8_t tcb_bl, tcb_tee, tcb_snp, tcb_ucode; /* REPORTED_TCB (Milan layout) */
    bool vlek;          /* signed by the VLEK instead of the VCEK */
    bool author_key;    /* AUTHOR_KEY_EN */
} mr_softsnp_identity;

/* Version 3 (CPUID family 0x19 model 0x01: Milan), POLICY 0x30000 (SMT allowed, reserved
 * bit 17, no debug, no migration agent), VMPL 0, TCB bl=3 tee=0 snp=20 ucode=209, VCEK. */
void mr_softsnp_identity_default(mr_softsnp_identity *out);

/* A report for id with REPORT_DATA = report_data (at most 64 bytes, zero-padded), appended to
 * report (1184 bytes). aux (may be NULL) gets the configfs-tsm auxblob: the certificate table
 * with the VCEK (or VLEK), the ASK (or ASVK) and the ARK. vek (may be NULL) gets the DER of
 * the signing certificate alone. */
MR_RESULT mr_softsnp_report(const mr_softsnp *s, const mr_softsnp_identity *id,
                            const uint8_t *report_data, size_t report_data_len, mr_buf *report,
                            mr_buf *aux, mr_buf *vek);

/* The chip's CHIP_ID (for the VCEK file name of a directory source). */
void mr_softsnp_chip_id(const mr_softsnp *s, uint8_t out[64]);

#endif
