/* SPDX-License-Identifier: Apache-2.0 */
/* MR_BUF_WIPE and the release hook: wiping buffers leave nothing of their bytes behind, when
 * they grow (move) or are freed; ordinary ones are seen by the hook as they are. */
#include "mr_test.h"

#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

static int g_seen;

static void scan(const void *p, size_t n)
{
    const char *needle = "wipe-me-please";
    size_t k = strlen(needle);
    const unsigned char *b = p;
    for (size_t i = 0; n >= k && i <= n - k; i++)
        if (memcmp(b + i, needle, k) == 0) {
            g_seen++;
            return;
        }
}

static void fill_and_free(unsigned flags)
{
    mr_buf b;
    mr_buf_init(&b, 0, flags);
    MR_ASSERT_OK(mr_buf_append_str(&b, "wipe-me-please"));
    /* grow well past the first block: the old one is released (moved) */
    for (int i = 0; i < 64; i++)
        MR_ASSERT_OK(mr_buf_append_str(&b, "................................"));
    if (flags != 0)
        assert_null(mr_buf_steal(&b, NULL)); /* wiped storage is never handed out raw */
    mr_buf_free(&b);
}

static void test_wipe_buffers(void **state)
{
    (void)state;
    mr_alloc_set_release_hook(scan);
    g_seen = 0;
    fill_and_free(0);
    assert_true(g_seen >= 1); /* ordinary storage: the bytes stay (the hook works) */
    g_seen = 0;
    fill_and_free(MR_BUF_WIPE);
    assert_int_equal(g_seen, 0);
    g_seen = 0;
    fill_and_free(MR_BUF_SECRET);
    assert_int_equal(g_seen, 0);
    /* reset wipes the bytes in place */
    mr_buf b;
    mr_buf_init(&b, 0, MR_BUF_WIPE);
    MR_ASSERT_OK(mr_buf_append_str(&b, "wipe-me-please"));
    mr_buf_reset(&b);
    g_seen = 0;
    scan(b.data, b.cap);
    assert_int_equal(g_seen, 0);
    mr_buf_free(&b);
    /* the library allocator wipes too */
    char *p = mr_wipe_malloc(64);
    assert_non_null(p);
    memcpy(p, "wipe-me-please", 15);
    p = mr_wipe_realloc(p, 4096);
    assert_non_null(p);
    mr_wipe_free(p);
    assert_int_equal(g_seen, 0);
    mr_alloc_set_release_hook(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_wipe_buffers)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
