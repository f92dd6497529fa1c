/*
 * test_timefmt.c - util/timefmt.c: the times clients write (HTTP ?at=,
 * storagectl --at), parsed to the exact millisecond or refused.
 */
#include "testutil.h"
#include "util/timefmt.h"

#define BASE 1763719200000LL /* 2025-11-21T10:00:00Z */

START_TEST(test_accepts)
{
	static const struct {
		const char *text;
		int64_t ms;
	} ok[] = {
	    {"2025-11-21T10:00:00Z", BASE},
	    {"2025-11-21T10:00:00.123Z", BASE + 123},
	    {"2025-11-21T10:00:00.1Z", BASE + 100},
	    {"2025-11-21T10:00:00.123456789Z", BASE + 123},
	    {"2025-11-21T12:00:00+02:00", BASE},
	    {"2025-11-21T04:30:00.5-0530", BASE + 500},
	    {"2025-11-21 10:00:00", BASE},
	    {"2025-11-21t10:00:00z", BASE},
	    {"2025-11-21T10:00", BASE},
	    {"2025-11-21T10-00-00.250Z", BASE + 250}, /* a /.snapshots name */
	    {"2025-11-21", BASE - 10 * 3600000LL},
	    {"1970-01-01T00:00:00Z", 0},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t ms = -1;
		ck_assert_msg(sd_time_parse(ok[i].text, &ms) == 0, "refused %s", ok[i].text);
		ck_assert_msg(ms == ok[i].ms, "%s: %lld", ok[i].text, (long long)ms);
	}
}
END_TEST

START_TEST(test_refuses)
{
	static const char *bad[] = {"", "now", "2025-11-21T", "2025-11-21T10", "2025-13-01",
				    "2025-02-30", "2025-11-21T24:00:00Z", "2025-11-21T10:00:00.Z",
				    "2025-11-21T10:00:00+25:00", "2025-11-21T10:00:00Zjunk",
				    "2025-11-21T10:00-00", "1969-12-31T23:59:59Z", "21/11/2025", NULL};
	for (int i = 0; bad[i]; i++) {
		int64_t ms = 42;
		ck_assert_msg(sd_time_parse(bad[i], &ms) == -EINVAL, "accepted '%s'", bad[i]);
		ck_assert_int_eq(ms, 42);
	}
	ck_assert_int_eq(sd_time_parse(NULL, NULL), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("timefmt");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_accepts);
	tcase_add_test(tc, test_refuses);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
