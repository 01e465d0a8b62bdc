/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One value sealed on its own, as the shared store backends keep them:
 * nonce(12) || AES-256-GCM(state key, value, AAD = tag NUL name) || tag(16). The name in the
 * AAD binds a value to its key, so a value copied to another key does not open there.
 */
#ifndef MR_COORDINATOR_STORE_SEALED_VALUE_H
#define MR_COORDINATOR_STORE_SEALED_VALUE_H

#include "common/buf.h"
#include "common/result.h"

#define MR_SV_OVERHEAD 28u

/* Appends the sealed form of plain to out. key: MR_STORE_DEK_LEN bytes. */
MR_RESULT mr_sv_seal(mr_slice key, const char *tag, mr_slice name, mr_slice plain, mr_buf *out);
/* Appends the plaintext to out (an MR_BUF_SECRET buffer). A value that does not open (wrong
 * key, tampering, another key's value) fails with MR_ERR_CORRUPT "sealed state is corrupted:
 * value of <name> does not open". */
MR_RESULT mr_sv_open(mr_slice key, const char *tag, mr_slice name, mr_slice sealed, mr_buf *out);

#endif
