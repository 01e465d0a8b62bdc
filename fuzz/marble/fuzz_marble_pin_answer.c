/* SPDX-License-Identifier: Apache-2.0 */
/* Target: the checks on a Coordinator's /api/v2/quote answer used for pinning
 * (marble/pin.c mr_marble_pin_check_answer) with a pinned root: JSON envelope, PEM chain,
 * base64 quote, root comparison, chain verification. Properties: no crash or leak; an answer
 * passes only if its intermediate carries the pinned root's own key (the only certificate
 * that verifies against a root whose private key nobody has is the root itself). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "crypto/x509.h"
#include "marble/marble_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A self-signed P-256 certificate whose key was discarded: no input can chain to it. */
static const char pinned[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBlzCCAT2gAwIBAgIUOLBEhNqYPHrQBrIzzwARtnkxx2YwCgYIKoZIzj0EAwIw\n"
    "IDEeMBwGA1UEAwwVTWFyYmxlUnVuIENvb3JkaW5hdG9yMCAXDTI2MTEyODAxNDgz\n"
    "NloYDzIxMjYxMTA0MDE0ODM2WjAgMR4wHAYDVQQDDBVNYXJibGVSdW4gQ29vcmRp\n"
    "bmF0b3IwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARlUpb+9mj6NxbB4c8HUPo2\n"
    "9FViro8nEzJ2rjFDnWM1p4Qeawoemh600Km588pyaGM4oX3KLwIqnGwQvvcELCB1\n"
    "o1MwUTAdBgNVHQ4EFgQUEC4kMl43FON101UUcrP+cpM/P6YwHwYDVR0jBBgwFoAU\n"
    "EC4kMl43FON101UUcrP+cpM/P6YwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD\n"
    "AgNIADBFAiBuA9RVMvhoqanPoJzcixqIJFJ2KaIxqcp7EeNN5ER/SwIhAII81HFD\n"
    "1Yd3Jy5nneqGa9BrLuUJDeaY/fZQHBdF9ZVe\n"
    "-----END CERTIFICATE-----\n";

/* The curl pin string of the pinned root's key. */
static void root_pin(char *out, size_t size)
{
    X509 *c = NULL;
    mr_buf spki, b64;
    uint8_t d[32];
    mr_buf_init(&spki, 0, 0);
    mr_buf_init(&b64, 0, 0);
    if (!mr_ok(mr_x509_from_pem(MR_SLICE(pinned, strlen(pinned)), &c)) ||
        !mr_ok(mr_x509_spki_der(c, &spki)) || !mr_ok(mr_sha256(spki.data, spki.len, d)) ||
        !mr_ok(mr_b64_encode_buf(d, sizeof(d), MR_B64_STD, &b64)))
        abort();
    (void)snprintf(out, size, "sha256//%.*s", (int)b64.len, (const char *)b64.data);
    X509_free(c);
    mr_buf_free(&spki);
    mr_buf_free(&b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char want[128];
    static int quiet;
    if (!quiet) {
        mr_log_init(MR_LOG_FATAL, MR_LOG_JSON);
        root_pin(want, sizeof(want));
        quiet = 1;
    }
    mr_marble_config cfg;
    char pin[128];
    memset(&cfg, 0, sizeof(cfg));
    cfg.pin_root_ca = pinned;
    if (mr_ok(mr_marble_pin_check_answer(&cfg, MR_SLICE(data, size), pin, sizeof(pin))) &&
        strcmp(pin, want) != 0)
        abort();
    /* without a pinned root (policy-only mode is never fuzzed: it needs collateral) */
    cfg.pin_root_ca = NULL;
    MR_IGNORE(mr_marble_pin_check_answer(&cfg, MR_SLICE(data, size), pin, sizeof(pin)));
    mr_error_clear();
    return 0;
}
