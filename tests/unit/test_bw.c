/*
 * test_bw.c - util/bw.c, the per-user bandwidth limiter of every front end
 * (bandwidth_limit of [ftp], [sftp] and [http]): off means no slot and no
 * wait; one user's slots share a budget; another user's budget is its own;
 * a freed slot is reused; a full table means unlimited, never a crash.
 */
#include "testutil.h"
#include "util/bw.h"

START_TEST(test_off)
{
	sd_bw *bw = sd_bw_new(0, 4);
	ck_assert(!sd_bw_on(bw));
	ck_assert_ptr_null(sd_bw_acquire(bw, 1));
	ck_assert_int_eq(sd_bw_charge(bw, NULL, 1 << 30), 0);
	ck_assert_uint_eq(sd_bw_chunk(bw, NULL, 65536), 65536);
	sd_bw_take(bw, NULL, 1 << 30); /* returns at once */
	sd_bw_release(bw, NULL);
	sd_bw_free(bw);
	ck_assert(!sd_bw_on(NULL));
}
END_TEST

START_TEST(test_budget_per_user)
{
	sd_bw *bw = sd_bw_new(1000000, 4); /* 1 MB/s */
	ck_assert(sd_bw_on(bw));
	sd_bw_slot *a1 = sd_bw_acquire(bw, 7), *a2 = sd_bw_acquire(bw, 7);
	sd_bw_slot *b = sd_bw_acquire(bw, 8);
	ck_assert_ptr_nonnull(a1);
	ck_assert_ptr_eq(a1, a2); /* one budget for all of a user's sessions */
	ck_assert_ptr_ne(a1, b);
	/* 500 KB: half a second of budget, less the burst credit at most */
	int64_t w = sd_bw_charge(bw, a1, 500000);
	ck_assert_msg(w >= 500 - SD_BW_BURST_MS - 5 && w <= 505, "wait %lld", (long long)w);
	/* the same user's other session queues behind it */
	int64_t w2 = sd_bw_charge(bw, a2, 500000);
	ck_assert_msg(w2 >= w + 490, "second wait %lld after %lld", (long long)w2, (long long)w);
	/* another user is not held up by alice's spending */
	int64_t wb = sd_bw_charge(bw, b, 100000);
	ck_assert_msg(wb <= 100, "bob waits %lld", (long long)wb);
	/* chunks stay about 1/10 s of the rate */
	size_t ch = sd_bw_chunk(bw, a1, 1 << 20);
	ck_assert_msg(ch >= 4096 && ch <= 200000, "chunk %zu", ch);
	sd_bw_release(bw, a1);
	sd_bw_release(bw, a2);
	sd_bw_release(bw, b);
	sd_bw_free(bw);
}
END_TEST

START_TEST(test_slots_reused_and_full)
{
	sd_bw *bw = sd_bw_new(1000, 2);
	sd_bw_slot *s1 = sd_bw_acquire(bw, 1), *s2 = sd_bw_acquire(bw, 2);
	ck_assert_ptr_nonnull(s1);
	ck_assert_ptr_nonnull(s2);
	ck_assert_ptr_null(sd_bw_acquire(bw, 3)); /* full: unlimited, not a crash */
	sd_bw_release(bw, s1);
	sd_bw_slot *s3 = sd_bw_acquire(bw, 3);
	ck_assert_ptr_eq(s3, s1); /* the freed slot */
	/* a reused slot starts with a fresh budget, not user 1's debt */
	ck_assert_int_le(sd_bw_charge(bw, s3, 100), 100);
	sd_bw_release(bw, s2);
	sd_bw_release(bw, s3);
	sd_bw_free(bw);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bw");
	TCase *tc = tcase_create("limiter");
	tcase_add_test(tc, test_off);
	tcase_add_test(tc, test_budget_per_user);
	tcase_add_test(tc, test_slots_reused_and_full);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
