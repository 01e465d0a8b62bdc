/* SPDX-License-Identifier: Apache-2.0 */
/* The JSend envelopes (spec §0.1, §4.3, §12.4); strings quoted as Go's encoding/json does
 * (common/text.h). */
#include <string.h>

#include "common/text.h"
#include "coordinator/server/internal.h"

static MR_RESULT envelope(mr_buf *out, const char *status, const char *data_json,
                          const char *msg)
{
    MR_GUARD(mr_buf_append_str(out, "{\"status\":\""));
    MR_GUARD(mr_buf_append_str(out, status));
    MR_GUARD(mr_buf_append_str(out, "\",\"data\":"));
    MR_GUARD(mr_buf_append_str(out, data_json != NULL ? data_json : "null"));
    if (msg != NULL && msg[0] != '\0') {
        MR_GUARD(mr_buf_append_str(out, ",\"message\":"));
        MR_GUARD(mr_json_quote(out, msg, strlen(msg)));
    }
    return mr_buf_append_str(out, "}\n");
}

MR_RESULT mr_srv_jsend_success(mr_buf *out, const char *data_json)
{
    return envelope(out, "success", data_json, NULL);
}

MR_RESULT mr_srv_jsend_error(mr_buf *out, const char *msg)
{
    return envelope(out, "error", NULL, msg);
}

MR_RESULT mr_srv_jsend_fail(mr_buf *out, const char *data_json, const char *msg)
{
    return envelope(out, "fail", data_json, msg);
}
