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
#include "common/grpc.h"
#include "common/text.h"
#include "marble/marble_int.h"

#define GRPC_MSG_MAX 1024

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

MR_RESULT mr_marble_curl_init(void)
{
    (void)pthread_once(&g_curl_once, curl_init_once);
    MR_ENSURE(g_curl_init_rc == CURLE_OK, MR_ERR_INTERNAL, "libcurl initialisation failed");
    return MR_SUCCESS;
}

/* grpc-message into a C string buffer (truncated to out_size), decoded as grpc-go does. */
static void grpc_message(const char *in, size_t len, char *out, size_t out_size)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    size_t n = 0;
    if (mr_ok(mr_grpc_percent_decode(&b, in, len)))
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
        grpc_message(v, vl, out, out_size);
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

MR_RESULT mr_marble_grpc_unframe(mr_slice body, mr_slice *msg)
{
    mr_grpc_code code = MR_GRPC_OK;
    return mr_grpc_frame_parse(body, MR_MARBLE_RESP_MAX, "response", NULL, msg, &code);
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
    MR_ENSURE(curl_easy_setopt((h), (opt), (val)) == CURLE_OK, MR_ERR_INTERNAL,               \
              "libcurl: cannot set " #opt)

/* The transfer: HTTP/2 over TLS with the client certificate from memory, the request body,
 * gRPC's request headers, and our callbacks collecting body and trailers. */
static MR_RESULT configure(CURL *h, const mr_marble_rpc_opts *o, const char *url,
                           const mr_buf *framed, struct curl_slist *hdrs, call *c, char *err)
{
    struct curl_blob cert = {.data = unconst(o->cert_pem.ptr), .len = o->cert_pem.len,
                             .flags = CURL_BLOB_COPY};
    /* the key stays in our wiped buffer */
    struct curl_blob key = {.data = unconst(o->key_pem.ptr), .len = o->key_pem.len,
                            .flags = CURL_BLOB_NOCOPY};
    SETOPT(h, CURLOPT_URL, url);
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
    SETOPT(h, CURLOPT_POSTFIELDS, (const char *)framed->data);
    SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)framed->len);
    SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, c);
    SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(h, CURLOPT_HEADERDATA, c);
    SETOPT(h, CURLOPT_ERRORBUFFER, err);
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT, 30L);
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "https");
    return MR_SUCCESS;
}

static MR_RESULT request_headers(struct curl_slist **hdrs)
{
    static const char *const headers[] = {"content-type: application/grpc", "te: trailers",
                                          "user-agent: marblerun-c-premain",
                                          "grpc-accept-encoding: identity", "Expect:", "Accept:"};
    for (size_t i = 0; i < MR_ARRAY_LEN(headers); i++) {
        struct curl_slist *n = curl_slist_append(*hdrs, headers[i]);
        MR_ENSURE_ALLOC(n);
        *hdrs = n;
    }
    return MR_SUCCESS;
}

/* The outcome of the transfer as grpc-go's client reports it ("rpc error: code = ..."). */
static MR_RESULT outcome(CURL *h, CURLcode rc, const call *c, const char *err)
{
    if (rc != CURLE_OK) {
        MR_ENSURE(!c->too_large, MR_ERR_PROTOCOL, "rpc error: code = ResourceExhausted "
                  "desc = response larger than %zu bytes", MR_MARBLE_RESP_MAX);
        MR_ENSURE(rc != CURLE_SSL_PINNEDPUBKEYNOTMATCH, MR_ERR_AUTH,
                  "rpc error: code = Unavailable desc = the Coordinator's mesh "
                  "certificate does not carry the pinned key");
        MR_BAIL(MR_ERR_IO, "rpc error: code = Unavailable desc = %s",
                err[0] != '\0' ? err : curl_easy_strerror(rc));
    }
    long http_version = 0, http_code = 0;
    (void)curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &http_version);
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http_code);
    MR_ENSURE(http_version == CURL_HTTP_VERSION_2_0, MR_ERR_PROTOCOL,
              "rpc error: code = Unavailable desc = the server did not negotiate HTTP/2");
    MR_ENSURE(http_code == 200, MR_ERR_PROTOCOL,
              "rpc error: code = Unavailable desc = unexpected HTTP status %ld", http_code);
    MR_ENSURE(c->grpc_status >= 0, MR_ERR_PROTOCOL,
              "rpc error: code = Internal desc = server closed the stream without sending "
              "trailers");
    MR_ENSURE(c->grpc_status == 0, MR_ERR_AUTH, "rpc error: code = %s desc = %s",
              mr_grpc_code_name(c->grpc_status > INT32_MAX ? -1 : (int)c->grpc_status),
              c->grpc_message);
    MR_ENSURE(strncasecmp(c->content_type, "application/grpc", 16) == 0, MR_ERR_PROTOCOL,
              "rpc error: code = Internal desc = unexpected content-type \"%s\"",
              c->content_type);
    return MR_SUCCESS;
}

MR_RESULT mr_marble_rpc_unary(const mr_marble_rpc_opts *o, const char *path, mr_slice request,
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
    MR_GUARD_OUT(mr_grpc_frame_encode(&framed, request));
    MR_GUARD_OUT(mr_buf_printf(&url, "https://%s%s", strip_scheme(o->addr), path));
    MR_GUARD_OUT(mr_buf_nul_terminate(&url));
    h = curl_easy_init();
    MR_ENSURE_ALLOC_OUT(h);
    MR_GUARD_OUT(request_headers(&hdrs));
    MR_GUARD_OUT(configure(h, o, (const char *)url.data, &framed, hdrs, &c, curl_err));
    CURLcode rc = curl_easy_perform(h);
    MR_GUARD_OUT(outcome(h, rc, &c, curl_err));
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
