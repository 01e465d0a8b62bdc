/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the kubernetes watch's event stream: lines split across reads, each event
 * type, malformed events, and the 410 that sends the watch back to the current objects. */
#include "mr_test.h"

#include "common/log.h"
#include "coordinator/store/k8s_client.h"

#define SECRET_EV(type, name, rv, data)                                                      \
    "{\"type\":\"" type "\",\"object\":{\"kind\":\"Secret\",\"apiVersion\":\"v1\","         \
    "\"metadata\":{\"name\":\"" name "\",\"namespace\":\"mr\",\"resourceVersion\":\"" rv "\"," \
    "\"labels\":{\"marblerun.edgeless.systems/state\":\"marblerun-state\"}},"                \
    "\"data\":{" data "},\"type\":\"Opaque\"}}"

static void parse_ok(const char *line, mr_k8s_event *ev)
{
    mr_error_clear();
    MR_ASSERT_OK(mr_k8s_parse_watch_event(MR_K8S_SECRET, MR_SLICE_STR(line), ev));
}

static void test_event_types(void **state)
{
    (void)state;
    mr_k8s_event ev;
    parse_ok(SECRET_EV("ADDED", "marblerun-state", "101", "\"format\":\"aGk=\""), &ev);
    assert_int_equal(ev.type, MR_K8S_EV_ADDED);
    assert_string_equal(ev.name, "marblerun-state");
    assert_true(ev.obj.found);
    assert_string_equal(ev.obj.rv, "101");
    const mr_k8s_entry *e = mr_k8s_obj_entry(&ev.obj, "format");
    assert_non_null(e);
    assert_int_equal(e->value.len, 2);
    assert_memory_equal(e->value.data, "hi", 2);
    mr_k8s_event_free(&ev);

    parse_ok(SECRET_EV("MODIFIED", "marblerun-state-7", "102", "\"shard\":\"AAEC\""), &ev);
    assert_int_equal(ev.type, MR_K8S_EV_MODIFIED);
    assert_string_equal(ev.name, "marblerun-state-7");
    assert_int_equal(ev.obj.count, 1);
    mr_k8s_event_free(&ev);

    parse_ok(SECRET_EV("DELETED", "marblerun-state-7", "103", ""), &ev);
    assert_int_equal(ev.type, MR_K8S_EV_DELETED);
    assert_int_equal(ev.obj.count, 0);
    mr_k8s_event_free(&ev);

    parse_ok("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Secret\",\"apiVersion\":\"v1\","
             "\"metadata\":{\"resourceVersion\":\"150\"}}}", &ev);
    assert_int_equal(ev.type, MR_K8S_EV_BOOKMARK);
    assert_string_equal(ev.obj.rv, "150");
    assert_string_equal(ev.name, "");
    mr_k8s_event_free(&ev);

    parse_ok("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
             "\"status\":\"Failure\",\"message\":\"too old resource version: 5 (90)\","
             "\"reason\":\"Expired\",\"code\":410}}", &ev);
    assert_int_equal(ev.type, MR_K8S_EV_ERROR);
    assert_int_equal(ev.code, 410);
    assert_string_equal(ev.message, "too old resource version: 5 (90)");
    mr_k8s_event_free(&ev);
}

static void test_malformed_events(void **state)
{
    (void)state;
    mr_k8s_event ev;
    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"", "malformed watch event"},
        {"not json", "malformed watch event"},
        {"{\"type\":\"RENAMED\",\"object\":{}}", "unknown type RENAMED"},
        {"{\"object\":{}}", "unknown type (none)"},
        {"{\"type\":\"ADDED\",\"object\":[]}", "without object"},
        {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
         "without object name"},
        {"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}",
         "without resourceVersion"},
        {SECRET_EV("ADDED", "x", "1", "\"a\":7"), "malformed object data"},
        {SECRET_EV("ADDED", "x", "1", "\"a\":\"!!!\""), "base64"},
        {"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}", "bookmark without"},
        {"{\"type\":\"ERROR\",\"object\":{\"message\":\"m\"}}", "error without code"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mr_error_clear();
        assert_false(mr_ok(mr_k8s_parse_watch_event(MR_K8S_SECRET, MR_SLICE_STR(bad[i].line), &ev)));
        if (strstr(mr_error_get()->msg, bad[i].msg) == NULL)
            fail_msg("%s: %s", bad[i].line, mr_error_get()->msg);
        assert_int_equal(ev.obj.count, 0);
        assert_null(ev.obj.items);
    }
    mr_error_clear();
}

static void test_lines_split_across_reads(void **state)
{
    (void)state;
    const char *stream = SECRET_EV("ADDED", "marblerun-state", "7", "") "\n"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"8\"}}}\n"
        "\n" SECRET_EV("MODIFIED", "marblerun-state", "9", "") "\n";
    mr_buf acc, line;
    mr_buf_init(&acc, 0, 0);
    mr_buf_init(&line, 0, 0);
    const char *want[] = {"7", "8", "", "9"};
    size_t got_n = 0;
    /* fed in pieces of 1, 2, 3, ... bytes: each line comes out whole, once */
    for (size_t off = 0, step = 1; off < strlen(stream); off += step, step++) {
        size_t n = strlen(stream) - off < step ? strlen(stream) - off : step;
        MR_ASSERT_OK(mr_buf_append(&acc, stream + off, n));
        for (;;) {
            bool got = false;
            MR_ASSERT_OK(mr_k8s_take_line(&acc, 1 << 20, &line, &got));
            if (!got)
                break;
            assert_true(got_n < 4);
            if (want[got_n][0] == '\0') {
                assert_int_equal(line.len, 0);
            } else {
                mr_k8s_event ev;
                MR_ASSERT_OK(mr_k8s_parse_watch_event(MR_K8S_SECRET, mr_buf_slice(&line), &ev));
                assert_string_equal(ev.obj.rv, want[got_n]);
                mr_k8s_event_free(&ev);
            }
            got_n++;
        }
    }
    assert_int_equal(got_n, 4);
    assert_int_equal(acc.len, 0);

    /* a line that never ends is refused once it passes the limit */
    mr_buf_reset(&acc);
    MR_ASSERT_OK(mr_buf_append_str(&acc, "{\"type\":\"ADDED\""));
    bool got = true;
    MR_ASSERT_OK(mr_k8s_take_line(&acc, 64, &line, &got));
    assert_false(got);
    for (int i = 0; i < 8; i++)
        MR_ASSERT_OK(mr_buf_append_str(&acc, "xxxxxxxxxx"));
    MR_ASSERT_FAIL(mr_k8s_take_line(&acc, 64, &line, &got), MR_ERR_TOO_LARGE,
                   "watch event longer than 64 bytes");
    mr_buf_free(&acc);
    mr_buf_free(&line);
}

static void test_label_values(void **state)
{
    (void)state;
    assert_true(mr_k8s_label_ok("marblerun-state"));
    assert_true(mr_k8s_label_ok("a.b_c-1"));
    assert_false(mr_k8s_label_ok(""));
    assert_false(mr_k8s_label_ok("-x"));
    assert_false(mr_k8s_label_ok("x-"));
    assert_false(mr_k8s_label_ok("a/b"));
    char long_name[80];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_false(mr_k8s_label_ok(long_name));
    long_name[63] = '\0';
    assert_true(mr_k8s_label_ok(long_name));
}

int main(void)
{
    mr_log_init(MR_LOG_ERROR, MR_LOG_CONSOLE);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_types),
        cmocka_unit_test(test_malformed_events),
        cmocka_unit_test(test_lines_split_across_reads),
        cmocka_unit_test(test_label_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
