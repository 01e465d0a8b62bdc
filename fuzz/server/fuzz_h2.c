/* SPDX-License-Identifier: Apache-2.0 */
/* Raw bytes into an nghttp2 server session wired to the server's callbacks (no sockets):
 * REST over h2 on the client listener and gRPC on the mesh listener. */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_init();
    fz_feed(fz_mesh, MR_SRV_PROTO_HTTP2, data, size);
    fz_feed(fz_client, MR_SRV_PROTO_HTTP2, data, size);
    return 0;
}
