/* test_path.c - the path-normalisation table, traversal attempts included. */
#include "testutil.h"
#include "core/internal.h"

typedef struct row {
	const char *in;
	int err;          /* expected result: 0 or -errno */
	const char *out;  /* expected output when err == 0 */
} row;

static const row table[] = {
	{"/", 0, "/"},
	{"", 0, "/"},
	{".", 0, "/"},
	{"a", 0, "/a"},
	{"/a/b", 0, "/a/b"},
	{"a/b/", 0, "/a/b"},
	{"//a///b//", 0, "/a/b"},
	{"/a/./b/.", 0, "/a/b"},
	{"./a", 0, "/a"},
	{"..", -EINVAL, NULL},
	{"/..", -EINVAL, NULL},
	{"../etc/passwd", -EINVAL, NULL},
	{"/a/../../etc", -EINVAL, NULL},
	{"a/..", -EINVAL, NULL},
	{"/a/b/../c", -EINVAL, NULL},
	{"...", 0, "/..."},
	{"..a", 0, "/..a"},
	{"a..", 0, "/a.."},
	{"a\\..\\b", -EINVAL, NULL},
	{"..\\..\\windows", -EINVAL, NULL},
	{"a\tb", -EINVAL, NULL},
	{"a\nb", -EINVAL, NULL},
	{"a\x7f", -EINVAL, NULL},
	{"\xff", -EINVAL, NULL},
	{"a\xc0\xaf", -EINVAL, NULL},              /* overlong '/' */
	{"\xc0\xae\xc0\xae/x", -EINVAL, NULL},     /* overlong ".." */
	{"\xed\xa0\x80", -EINVAL, NULL},           /* surrogate */
	{"\xf4\x90\x80\x80", -EINVAL, NULL},       /* beyond U+10FFFF */
	{"\xe2\x82", -EINVAL, NULL},               /* truncated */
	{"caf\xc3\xa9/\xe4\xb8\xad\xe6\x96\x87", 0, "/caf\xc3\xa9/\xe4\xb8\xad\xe6\x96\x87"},
	{"%2e%2e", 0, "/%2e%2e"}, /* decoding is the front end's job, once */
	{"name with spaces", 0, "/name with spaces"},
};

START_TEST(test_table)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		char out[SD_PATH_MAX + 1];
		int r = sd__path_norm(table[i].in, out, sizeof out);
		ck_assert_msg(r == table[i].err, "row %zu (%s): got %d want %d", i, table[i].in, r,
			      table[i].err);
		if (r == 0)
			ck_assert_str_eq(out, table[i].out);
	}
}
END_TEST

START_TEST(test_lengths)
{
	char out[SD_PATH_MAX + 1];
	char comp[SD_NAME_MAX + 2];
	memset(comp, 'x', SD_NAME_MAX);
	comp[SD_NAME_MAX] = '\0';
	ck_assert_int_eq(sd__path_norm(comp, out, sizeof out), 0); /* 255 bytes ok */
	comp[SD_NAME_MAX] = 'x';
	comp[SD_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(sd__path_norm(comp, out, sizeof out), -ENAMETOOLONG);

	char *big = malloc(SD_PATH_MAX + 100);
	for (int i = 0; i < SD_PATH_MAX + 98; i += 2) {
		big[i] = 'a';
		big[i + 1] = '/';
	}
	big[SD_PATH_MAX + 98] = '\0';
	ck_assert_int_eq(sd__path_norm(big, out, sizeof out), -ENAMETOOLONG);
	free(big);

	/* a small output buffer is refused, never overrun */
	char small[4];
	ck_assert_int_eq(sd__path_norm("/abcdef", small, sizeof small), -ENAMETOOLONG);
	ck_assert_int_eq(sd__path_norm("/ab", small, sizeof small), 0);
	ck_assert_str_eq(small, "/ab");
}
END_TEST

START_TEST(test_utf8)
{
	ck_assert(sd__utf8_valid("", 0));
	ck_assert(sd__utf8_valid("\xf0\x9f\x98\x80", 4)); /* emoji */
	ck_assert(!sd__utf8_valid("\xf0\x9f\x98", 3));
	ck_assert(!sd__utf8_valid("\x80", 1));
	ck_assert(!sd__utf8_valid("\xe0\x80\xaf", 3)); /* overlong */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("path");
	TCase *tc = tcase_create("normalise");
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_lengths);
	tcase_add_test(tc, test_utf8);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
