/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Quote issuers: where this process gets its own attestation evidence from.
 *
 *   gramine     Gramine's /dev/attestation: write 64 bytes to user_report_data, read quote
 *               (spec/attestation.md §5.1). SGX DCAP v3 quote.
 *   occlum      Occlum's /dev/sgx ioctls SGXIOC_GET_DCAP_QUOTE_SIZE / SGXIOC_GEN_DCAP_QUOTE
 *               (§5.2). SGX DCAP quote.
 *   tsm         Linux configfs-tsm (/sys/kernel/config/tsm/report, §5.3; EDG_ATTESTATION_TSM_DIR
 *               overrides the directory) in a TDX or SEV-SNP guest: a TDX DCAP quote (provider
 *               tdx_guest) or an SNP report (sev_guest) and its auxblob. The attribute files of
 *               a new report entry may appear shortly after its mkdir (configfs emulations,
 *               tests): the issuer waits up to 2 s for them.
 *   simulation  no evidence at all (an empty quote), as MarbleRun with OE_SIMULATION=1.
 *   softsgx     a TEST quote from a softsgx directory (softsgx.h; EDG_SOFTSGX_*).
 *   auto        simulation when OE_SIMULATION=1 (as MarbleRun, where that variable puts the
 *               runtime into simulation mode); otherwise the first device that exists:
 *               /dev/attestation/quote (gramine), a /dev/sgx that is not a directory
 *               (occlum), /sys/kernel/config/tsm/report (tsm). When none exists, auto FAILS:
 *               a missing device must never silently turn into "no attestation". auto never
 *               picks softsgx.
 *
 * The mode comes from EDG_ATTESTATION (default auto) unless mr_issuer_opts.mode is set.
 *
 * Evidence formats: SGX quotes are returned in the Open Enclave remote-report form
 * (16-byte header + quote) that MarbleRun sends on the wire (spec/coordinator.md §3.4, §5.3);
 * TDX quotes and SNP reports are returned raw. Simulation returns an empty buffer with
 * tee = MR_TEE_NONE.
 *
 * Device paths are relative to mr_issuer_opts.root (default "", i.e. the real file system),
 * so tests can point an issuer at a directory of fake device files.
 *
 * Ownership: mr_issuer_open returns a handle owned by the caller (mr_issuer_free, NULL-safe).
 * A handle may be used by one thread at a time (configfs-tsm entries are per requester).
 * Errors: MR_ERR_USAGE for a bad mode or configuration, MR_ERR_IO for device failures (the
 * message names the device), MR_ERR_ATTESTATION when a device returns malformed evidence or
 * configfs-tsm reports a concurrent writer, and when the evidence a device returns does not
 * carry the requested report data (a stale or foreign quote).
 */
#ifndef MR_ATTEST_ISSUER_H
#define MR_ATTEST_ISSUER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "common/buf.h"
#include "common/result.h"

typedef enum mr_issuer_kind {
    MR_ISSUER_SIMULATION = 0,
    MR_ISSUER_GRAMINE,
    MR_ISSUER_OCCLUM,
    MR_ISSUER_TSM,
    MR_ISSUER_SOFTSGX,
} mr_issuer_kind;

/* Test hook for the configfs-tsm issuer, called with the report entry directory after it was
 * created (stage 0) and after inblob was written (stage 1). Real kernels fill the entry
 * themselves; tests use the hook to play the kernel's part with canned files. */
typedef void (*mr_issuer_tsm_hook)(const char *entry_dir, int stage, void *arg);

typedef struct mr_issuer_opts {
    const char *mode;  /* NULL = EDG_ATTESTATION */
    const char *mode_var; /* the variable mode came from, for messages; NULL = EDG_ATTESTATION */
    const char *root;  /* prefix of every device path; NULL or "" = real paths */
    mr_issuer_tsm_hook tsm_hook; /* tests only */
    void *tsm_hook_arg;
} mr_issuer_opts;

typedef struct mr_issuer mr_issuer;

/* Selects and prepares an issuer (softsgx loads its directory here). opts may be NULL. */
MR_RESULT mr_issuer_open(const mr_issuer_opts *opts, mr_issuer **out);
void mr_issuer_free(mr_issuer *is);

mr_issuer_kind mr_issuer_get_kind(const mr_issuer *is);
/* "gramine", "occlum", "tsm", "simulation", "softsgx". */
const char *mr_issuer_kind_name(mr_issuer_kind k);

/* Produces evidence binding `report_data` (at most 64 bytes, zero-padded to 64) and appends
 * it to out. *tee says what it is (MR_TEE_SGX: OE-wrapped quote; MR_TEE_TDX: raw quote;
 * MR_TEE_SNP: raw report; MR_TEE_NONE: simulation, nothing appended). */
MR_RESULT mr_issuer_issue(mr_issuer *is, const uint8_t *report_data, size_t report_data_len,
                          mr_buf *out, mr_tee_type *tee);
/* The same; for a configfs-tsm sev_guest report it also appends the `auxblob` (the GHCB
 * certificate table with VCEK/VLEK, ASK, ARK; spec §5.3) to aux when the kernel provides one.
 * aux may be NULL; it stays empty for every other source. */
MR_RESULT mr_issuer_issue_ex(mr_issuer *is, const uint8_t *report_data, size_t report_data_len,
                             mr_buf *out, mr_buf *aux, mr_tee_type *tee);
/* The evidence in the form an Activate request's Quote field carries it (attest/evidence.h):
 * what mr_issuer_issue appends, and for an SNP report its auxblob directly after it. */
MR_RESULT mr_issuer_evidence(mr_issuer *is, const uint8_t *report_data, size_t report_data_len,
                             mr_buf *out, mr_tee_type *tee);

#endif
