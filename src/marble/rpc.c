/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A gRPC unary call with libcurl: HTTP/2 over TLS (ALPN h2, TLS >= 1.2), the client
 * certificate and key from memory, the server not verified (MarbleRun's premain uses
 * InsecureSkipVerify) unless a public-key pin is given. grpc-status and grpc-message arrive
 * in the trailers, which libcurl hands to the header callback like headers.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/text.h"
#include "marble/marble_int.h"

#define GRPC_MSG_MAX 1024

static const char *const code_names[] = {
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
    "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"};

typedef struct call {
    mr_buf body;
    bool too_large;
    long grpc_status; /* -1 = not seen */
    char grpc_message[GRPC_MSG_MAX];
    char content_type[128];
} call;

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_OK;

static void curl_init_once(void) { g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

mr_result mr_marble_curl_init(void)
{
    (void)pthread_once(&g_curl_once, curl_init_once);
    MR_ENSURE(g_curl_init_rc == CURLE_OK, MR_ERR_INTERNAL, "libcurl initialisation failed");
    return MR_SUCCESS;
}

void mr_marble_grpc_percent_decode(const char *in, size_t len, char *out, size_t out_size)
{
    mr_buf b;
    if (out_size == 0)
        return;
    mr_buf_init(&b, 0, 0);
    /* as grpc-go (a '%' without two hex digits stays), but "%00" stays too: out is a C
     * string */
    size_t n = 0;
    if (mr_ok(mr_percent_decode(in, len, MR_PCT_NO_NUL, &b)))
        n = b.len < out_size - 1 ? b.len : out_size - 1;
    else
        mr_error_clear();
    if (n > 0)
        memcpy(out, b.data, n);
    out[n] = '\0';
    mr_buf_free(&b);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    call *c = arg;
    size_t n = size * nmemb;
    if (!mr_ok(mr_buf_append(&c->body, ptr, n))) {
        c->too_large = true;
        return 0; /* aborts the transfer */
    }
    return n;
}

static void header_value(const char *line, size_t len, const char *name, char *out,
                         size_t out_size, bool decode)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (decode) {
        mr_marble_grpc_percent_decode(v, vl, out, out_size);
    } else {
        size_t k = vl < out_size - 1 ? vl : out_size - 1;
        memcpy(out, v, k);
        out[k] = '\0';
    }
}

/* Called for every header and trailer line. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
    call *c = arg;
    size_t n = size * nmemb;
    char status[32] = "";
    header_value(ptr, n, "grpc-status", status, sizeof(status), false);
    if (status[0] != '\0') {
        char *end = NULL;
        long v = strtol(status, &end, 10);
        c->grpc_status = (end != status && *end == '\0' && v >= 0) ? v : 2;
    }
    header_value(ptr, n, "grpc-message", c->grpc_message, sizeof(c->grpc_message), true);
    header_value(ptr, n, "content-type", c->content_type, sizeof(c->content_type), false);
    return n;
}

mr_result mr_marble_grpc_unframe(mr_slice body, mr_slice *msg)
{
    mr_cursor cur;
    uint8_t flag = 0;
    uint32_t len = 0;
    mr_cursor_init(&cur, body.ptr, body.len);
    MR_ENSURE(body.len >= 5, MR_ERR_PROTOCOL, "gRPC response has no message");
    MR_GUARD(mr_cursor_u8(&cur, &flag));
    MR_GUARD(mr_cursor_u32be(&cur, &len));
    MR_ENSURE(flag == 0, MR_ERR_PROTOCOL, "gRPC response is compressed (not supported)");
    MR_ENSURE(len <= MR_MARBLE_RESP_MAX, MR_ERR_PROTOCOL, "gRPC response message too large");
    MR_ENSURE(mr_cursor_remaining(&cur) == len, MR_ERR_PROTOCOL,
              "gRPC response framing: %zu bytes for a %u-byte message",
              mr_cursor_remaining(&cur), len);
    return mr_cursor_view(&cur, len, msg);
}

static mr_result frame_request(mr_slice request, mr_buf *out)
{
    MR_ENSURE(request.len <= UINT32_MAX, MR_ERR_USAGE, "request too large");
    MR_GUARD(mr_buf_append_u8(out, 0));
    uint32_t n = (uint32_t)request.len;
    uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    MR_GUARD(mr_buf_append(out, be, 4));
    return mr_buf_append(out, request.ptr, request.len);
}

static const char *strip_scheme(const char *addr)
{
    static const char *const prefixes[] = {"dns:///", "passthrough:///"};
    for (size_t i = 0; i < MR_ARRAY_LEN(prefixes); i++)
        if (strncmp(addr, prefixes[i], strlen(prefixes[i])) == 0)
            return addr + strlen(prefixes[i]);
    return addr;
}

/* libcurl's blob struct takes a non-const pointer but only reads through it. */
static void *unconst(const void *p)
{
    void *q;
    memcpy(&q, &p, sizeof(q));
    return q;
}

#define SETOPT(h, opt, val)                                                                   \
    MR_ENSURE_OUT(curl_easy_setopt((h), (opt), (val)) == CURLE_OK, MR_ERR_INTERNAL,           \
                  "libcurl: cannot set " #opt)

mr_result mr_marble_rpc_unary(const mr_marble_rpc_opts *o, const char *path, mr_slice request,
                              mr_buf *response)
{
    mr_result res = MR_FAILURE;
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    mr_buf framed, url;
    call c;
    char curl_err[CURL_ERROR_SIZE] = "";
    memset(&c, 0, sizeof(c));
    c.grpc_status = -1;
    mr_buf_init(&c.body, MR_MARBLE_RESP_MAX + 5, MR_BUF_SECRET);
    mr_buf_init(&framed, 0, 0);
    mr_buf_init(&url, 4096, 0);

    MR_GUARD_OUT(mr_marble_curl_init());
    MR_GUARD_OUT(frame_request(request, &framed));
    MR_GUARD_OUT(mr_buf_printf(&url, "https://%s%s", strip_scheme(o->addr), path));
    MR_GUARD_OUT(mr_buf_nul_terminate(&url));
    h = curl_easy_init();
    MR_ENSURE_ALLOC_OUT(h);
    const char *const headers[] = {"content-type: application/grpc", "te: trailers",
                                   "user-agent: marblerun-c-premain", "grpc-accept-encoding: identity",
                                   "Expect:", "Accept:"};
    for (size_t i = 0; i < MR_ARRAY_LEN(headers); i++) {
        struct curl_slist *n = curl_slist_append(hdrs, headers[i]);
        MR_ENSURE_ALLOC_OUT(n);
        hdrs = n;
    }
    struct curl_blob cert = {.data = unconst(o->cert_pem.ptr), .len = o->cert_pem.len,
                             .flags = CURL_BLOB_COPY};
    /* the key stays in our wiped buffer */
    struct curl_blob key = {.data = unconst(o->key_pem.ptr), .len = o->key_pem.len,
                            .flags = CURL_BLOB_NOCOPY};
    SETOPT(h, CURLOPT_URL, (const char *)url.data);
    SETOPT(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SETOPT(h, CURLOPT_SSL_VERIFYPEER, 0L);
    SETOPT(h, CURLOPT_SSL_VERIFYHOST, 0L);
    SETOPT(h, CURLOPT_SSLCERT_BLOB, &cert);
    SETOPT(h, CURLOPT_SSLCERTTYPE, "PEM");
    SETOPT(h, CURLOPT_SSLKEY_BLOB, &key);
    SETOPT(h, CURLOPT_SSLKEYTYPE, "PEM");
    if (o->pinned_pubkey != NULL)
        SETOPT(h, CURLOPT_PINNEDPUBLICKEY, o->pinned_pubkey);
    SETOPT(h, CURLOPT_POST, 1L);
    SETOPT(h, CURLOPT_POSTFIELDS, (const char *)framed.data);
    SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)framed.len);
    SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, &c);
    SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(h, CURLOPT_HEADERDATA, &c);
    SETOPT(h, CURLOPT_ERRORBUFFER, curl_err);
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT, 30L);
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "https");

    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        MR_ENSURE_OUT(!c.too_large, MR_ERR_PROTOCOL, "rpc error: code = ResourceExhausted "
                      "desc = response larger than %zu bytes", MR_MARBLE_RESP_MAX);
        MR_ENSURE_OUT(rc != CURLE_SSL_PINNEDPUBKEYNOTMATCH, MR_ERR_AUTH,
                      "rpc error: code = Unavailable desc = the Coordinator's mesh "
                      "certificate does not carry the pinned key");
        MR_BAIL_OUT(MR_ERR_IO, "rpc error: code = Unavailable desc = %s",
                    curl_err[0] != '\0' ? curl_err : curl_easy_strerror(rc));
    }
    long http_version = 0, http_code = 0;
    (void)curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &http_version);
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http_code);
    MR_ENSURE_OUT(http_version == CURL_HTTP_VERSION_2_0, MR_ERR_PROTOCOL,
                  "rpc error: code = Unavailable desc = the server did not negotiate HTTP/2");
    MR_ENSURE_OUT(http_code == 200, MR_ERR_PROTOCOL,
                  "rpc error: code = Unavailable desc = unexpected HTTP status %ld", http_code);
    MR_ENSURE_OUT(c.grpc_status >= 0, MR_ERR_PROTOCOL,
                  "rpc error: code = Internal desc = server closed the stream without sending "
                  "trailers");
    if (c.grpc_status != 0) {
        const char *name = (size_t)c.grpc_status < MR_ARRAY_LEN(code_names)
                               ? code_names[c.grpc_status] : "Unknown";
        MR_BAIL_OUT(MR_ERR_AUTH, "rpc error: code = %s desc = %s", name, c.grpc_message);
    }
    MR_ENSURE_OUT(strncasecmp(c.content_type, "application/grpc", 16) == 0, MR_ERR_PROTOCOL,
                  "rpc error: code = Internal desc = unexpected content-type \"%s\"",
                  c.content_type);
    mr_slice msg;
    MR_GUARD_OUT(mr_marble_grpc_unframe(mr_buf_slice(&c.body), &msg));
    MR_GUARD_OUT(mr_buf_set(response, msg.ptr, msg.len));
    res = MR_SUCCESS;
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    mr_buf_free(&c.body);
    mr_buf_free(&framed);
    mr_buf_free(&url);
    return res;
}
