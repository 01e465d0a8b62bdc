/* SPDX-License-Identifier: Apache-2.0 */
/* The transaction sets, prefix sets and commit-latency histogram shared by the etcd and
 * Kubernetes backends (src/coordinator/store/txn_sets.c). */
#include "mr_test.h"

#include "coordinator/store/store.h"
#include "coordinator/store/txn_sets.h"

static void test_first_read_counts(void **state)
{
    (void)state;
    mr_txn_sets t = {0};
    MR_ASSERT_OK(mr_txn_note_read(&t, "a", 3));
    MR_ASSERT_OK(mr_txn_note_read(&t, "b", 0));
    MR_ASSERT_OK(mr_txn_note_read(&t, "a", 9)); /* a later read of a does not replace it */
    assert_int_equal(t.n_reads, 2);
    assert_string_equal(t.reads[0].key, "a");
    assert_int_equal(t.reads[0].ver, 3);
    assert_int_equal(t.reads[1].ver, 0);
    for (int i = 0; i < 40; i++) { /* past the first growth */
        char k[16];
        (void)snprintf(k, sizeof(k), "k%d", i);
        MR_ASSERT_OK(mr_txn_note_scan(&t, k));
    }
    assert_int_equal(t.n_scans, 40);
    assert_string_equal(t.scans[39], "k39");
    mr_txn_sets_free(&t);
    assert_int_equal(t.n_reads, 0);
    assert_null(t.reads);
}

static void test_last_write_wins_per_namespace(void **state)
{
    (void)state;
    mr_txn_sets t = {0};
    MR_ASSERT_OK(mr_txn_note_write(&t, "k", (const uint8_t *)"one", 3, false, false));
    MR_ASSERT_OK(mr_txn_note_write(&t, "k", (const uint8_t *)"plain", 5, false, true));
    MR_ASSERT_OK(mr_txn_note_write(&t, "k", (const uint8_t *)"two", 3, false, false));
    assert_int_equal(t.n_writes, 2); /* sealed k and plain k are different entries */
    assert_int_equal(t.writes[0].val.len, 3);
    assert_memory_equal(t.writes[0].val.data, "two", 3);
    assert_memory_equal(t.writes[1].val.data, "plain", 5);
    MR_ASSERT_OK(mr_txn_note_write(&t, "k", NULL, 0, true, false));
    assert_true(t.writes[0].del);
    assert_int_equal(t.writes[0].val.len, 0);
    /* a value over the limit is refused and leaves the sets as they were */
    uint8_t *big = mr_calloc(1, (size_t)MR_STORE_VALUE_MAX + 1);
    assert_non_null(big);
    MR_ASSERT_FAIL(mr_txn_note_write(&t, "k", big, (size_t)MR_STORE_VALUE_MAX + 1, false,
                                     false),
                   MR_ERR_TOO_LARGE, "too large");
    mr_free(big);
    assert_int_equal(t.n_writes, 2);
    assert_true(t.writes[0].del);
    mr_txn_sets_free(&t);
}

static void test_prefix_set(void **state)
{
    (void)state;
    const char *const pre[] = {"meta/", "volatile/x"};
    mr_prefix_set p = {0};
    assert_false(mr_prefix_set_match(&p, "meta/a")); /* empty set matches nothing */
    MR_ASSERT_OK(mr_prefix_set_copy(&p, pre, 2));
    assert_int_equal(p.n, 2);
    assert_ptr_not_equal(p.v[0], pre[0]); /* copied */
    assert_true(mr_prefix_set_match(&p, "meta/a"));
    assert_true(mr_prefix_set_match(&p, "meta/"));
    assert_true(mr_prefix_set_match(&p, "volatile/xy"));
    assert_false(mr_prefix_set_match(&p, "meta"));
    assert_false(mr_prefix_set_match(&p, "volatile/"));
    mr_prefix_set_free(&p);
    assert_int_equal(p.n, 0);
    assert_false(mr_prefix_set_match(&p, "meta/a"));
}

static void test_latency_buckets(void **state)
{
    (void)state;
    uint64_t lat[MR_STORE_LAT_BUCKETS] = {0};
    uint64_t sum = 0;
    /* bucket k holds (BASE * 2^((k-1)/2), BASE * 2^(k/2)] µs; bucket 0 everything <= BASE */
    mr_store_lat_note(lat, &sum, 0);
    mr_store_lat_note(lat, &sum, 100);
    mr_store_lat_note(lat, &sum, 101);
    mr_store_lat_note(lat, &sum, 141);
    mr_store_lat_note(lat, &sum, 142);
    mr_store_lat_note(lat, &sum, 200);
    mr_store_lat_note(lat, &sum, UINT32_MAX); /* the last bucket is unbounded */
    assert_int_equal(lat[0], 2);
    assert_int_equal(lat[1], 2);
    assert_int_equal(lat[2], 2);
    assert_int_equal(lat[MR_STORE_LAT_BUCKETS - 1], 1);
    assert_int_equal(sum, 0 + 100 + 101 + 141 + 142 + 200 + (uint64_t)UINT32_MAX);
    uint64_t t0 = mr_store_mono_us();
    assert_true(mr_store_mono_us() >= t0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_read_counts),
        cmocka_unit_test(test_last_write_wins_per_namespace),
        cmocka_unit_test(test_prefix_set),
        cmocka_unit_test(test_latency_buckets),
    };
    return cmocka_run_group_tests_name("txn_sets", tests, NULL, NULL);
}
