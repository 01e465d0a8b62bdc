/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MarbleRun-C's additions to the TLS section (docs/ttls.md), checked after MarbleRun's rules
 * (§6.10 item 3) for each entry:
 *  - AllowedMarbleTypes: each a marble of this manifest; only where the peer is a marble
 *    authenticated by its certificate (not with Cert or DisableClientAuth).
 *  - Outgoing Cert: the secret whose certificate the external server must present (or chain
 *    to) must exist. MarbleRun ignores Cert on Outgoing entries.
 * MarbleRun's Coordinator ignores unknown fields, so a manifest using them stays loadable
 * there (without the restriction).
 */
#include <string.h>

#include "manifest/manifest_int.h"

static const char *S(const mr_mstr *s) { return s->ptr ? s->ptr : ""; }

MR_RESULT mr_manifest_check_tls_ext_(const mr_manifest *m, const char *tag, bool incoming,
                                     const mr_manifest_tls_entry *e)
{
    const char *dir = incoming ? "Incoming" : "Outgoing";
    if (!incoming && e->cert.len != 0)
        MR_ENSURE(mr_manifest_map_find(m->secrets.items, m->secrets.count,
                                       sizeof(mr_manifest_secret), S(&e->cert), e->cert.len) != NULL,
                  MR_ERR_USAGE, "TLS.Outgoing.%s references undefined secret %s", tag, S(&e->cert));
    if (e->allowed_marble_types.count == 0)
        return MR_SUCCESS;
    MR_ENSURE(e->cert.len == 0 && !e->disable_client_auth, MR_ERR_USAGE,
              "TLS.%s.%s restricts AllowedMarbleTypes, but its peer is not authenticated as a "
              "marble (Cert or DisableClientAuth)",
              dir, tag);
    for (size_t i = 0; i < e->allowed_marble_types.count; i++) {
        const mr_mstr *t = &e->allowed_marble_types.items[i];
        MR_ENSURE(t->len != 0 && memchr(S(t), '\0', t->len) == NULL &&
                      mr_manifest_map_find(m->marbles.items, m->marbles.count,
                                           sizeof(mr_manifest_marble), S(t), t->len) != NULL,
                  MR_ERR_USAGE, "TLS.%s.%s allows marble type %s, which the manifest does not define",
                  dir, tag, S(t));
    }
    return MR_SUCCESS;
}
