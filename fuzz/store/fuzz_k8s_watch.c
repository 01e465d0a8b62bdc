/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-k8s_watch: the event stream of a Kubernetes watch of the state Secrets (outside bytes:
 * the API server). The first byte sets the size of the pieces the rest arrives in (1 + its
 * value), as reads of the stream would split it; each complete line is parsed as a watch event
 * and the object of a Secret event as the store parses a watched head or shard. Nothing may
 * crash, leak or read out of bounds; malformed events fail with an error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "coordinator/store/k8s_store_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mr_log_init(MR_LOG_FATAL, MR_LOG_JSON);
    return 0;
}

static void object(const mr_k8s_event *ev)
{
    if (ev->type == MR_K8S_EV_BOOKMARK || ev->type == MR_K8S_EV_ERROR) {
        if (ev->obj.count != 0 || ev->name[0] != '\0')
            abort();
        return;
    }
    if (ev->name[0] == '\0' || !ev->obj.found)
        abort();
    ks_head h;
    if (mr_ok(ks_head_parse(&ev->obj, &h)))
        ks_head_free(&h);
    ks_shard sh;
    if (mr_ok(ks_shard_parse(&ev->obj, &sh)))
        ks_shard_free(&sh);
    mr_error_clear();
}

static void lines(mr_buf *acc, mr_buf *line)
{
    for (;;) {
        bool got = false;
        if (!mr_ok(mr_k8s_take_line(acc, 1u << 16, line, &got))) {
            mr_buf_reset(acc); /* the watch would reconnect */
            return;
        }
        if (!got)
            return;
        mr_k8s_event ev;
        if (mr_ok(mr_k8s_parse_watch_event(MR_K8S_SECRET, mr_buf_slice(line), &ev))) {
            object(&ev);
            mr_k8s_event_free(&ev);
        } else if (ev.obj.items != NULL || ev.obj.count != 0) {
            abort(); /* a failed parse leaves nothing to free */
        }
        mr_error_clear();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    mr_buf acc, line;
    mr_buf_init(&acc, 0, 0);
    mr_buf_init(&line, 0, 0);
    for (size_t off = 1; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (!mr_ok(mr_buf_append(&acc, data + off, n)))
            abort();
        lines(&acc, &line);
    }
    mr_buf_free(&acc);
    mr_buf_free(&line);
    mr_error_clear();
    return 0;
}
