/* test_path.c - the one resolver (core/path.c), driven by the shared table
 * tests/data/resolver-table.txt (the integration tests drive the same table
 * through FTP, SFTP and HTTP), plus lengths, buffers and the UTF-8 check. */
#include "testutil.h"
#include "core/internal.h"

#define TABLE "tests/data/resolver-table.txt"

/* Decode the table's escapes (\xNN \t \n \\ \0) into out; returns length. */
static size_t unescape(const char *in, char *out)
{
	size_t o = 0;
	for (const char *p = in; *p; p++) {
		if (*p != '\\') {
			out[o++] = *p;
			continue;
		}
		p++;
		switch (*p) {
		case 't':
			out[o++] = '\t';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case '\\':
			out[o++] = '\\';
			break;
		case '0':
			out[o++] = '\0';
			break;
		case 'x': {
			unsigned v;
			ck_assert_msg(sscanf(p + 1, "%2x", &v) == 1, "bad escape in %s", in);
			out[o++] = (char)v;
			p += 2;
			break;
		}
		default:
			ck_abort_msg("bad escape \\%c in %s", *p, in);
		}
	}
	out[o] = '\0';
	return o;
}

START_TEST(test_table)
{
	FILE *f = fopen(TABLE, "r");
	ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", TABLE);
	char line[1024];
	int rows = 0, lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *cwd = strtok(line, "\t"), *arg = strtok(NULL, "\t"), *want = strtok(NULL, "\t");
		ck_assert_msg(cwd && arg && want, "%s:%d: three columns wanted", TABLE, lineno);
		char in[512], exp[512];
		size_t n = strcmp(arg, "(empty)") == 0 ? (in[0] = '\0', 0) : unescape(arg, in);
		unescape(want, exp);
		char out[SD_PATH_MAX + 1];
		int r = sd__resolve(cwd, in, n, out, sizeof out);
		if (exp[0] == '-') {
			int e = strcmp(exp, "-EINVAL") == 0 ? -EINVAL : -ENAMETOOLONG;
			ck_assert_msg(r == e, "%s:%d (%s): got %d (%s) want %s", TABLE, lineno, arg, r,
				      r == 0 ? out : "", exp);
		} else {
			ck_assert_msg(r == 0, "%s:%d (%s): error %d, want %s", TABLE, lineno, arg, r, exp);
			ck_assert_msg(strcmp(out, exp) == 0, "%s:%d (%s): got %s want %s", TABLE, lineno,
				      arg, out, exp);
			/* an output resolves to itself, from any cwd */
			char again[SD_PATH_MAX + 1];
			ck_assert_int_eq(sd__resolve("/x/y", out, strlen(out), again, sizeof again), 0);
			ck_assert_str_eq(again, out);
		}
		rows++;
	}
	fclose(f);
	ck_assert_int_ge(rows, 60);
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
	/* ... also when a later ".." would drop it */
	char dropped[SD_NAME_MAX + 8];
	snprintf(dropped, sizeof dropped, "%s/..", comp);
	ck_assert_int_eq(sd__path_norm(dropped, out, sizeof out), -ENAMETOOLONG);

	/* an argument longer than SD_PATH_MAX */
	char *big = malloc(SD_PATH_MAX + 100);
	for (int i = 0; i < SD_PATH_MAX + 98; i += 2) {
		big[i] = 'a';
		big[i + 1] = '/';
	}
	big[SD_PATH_MAX + 98] = '\0';
	ck_assert_int_eq(sd__path_norm(big, out, sizeof out), -ENAMETOOLONG);

	/* a result exactly SD_PATH_MAX long is fine, one more is not */
	char *exact = malloc(SD_PATH_MAX + 2);
	memset(exact, 'b', SD_PATH_MAX + 1);
	for (int i = 0; i < SD_PATH_MAX; i += 200)
		exact[i] = '/';
	exact[SD_PATH_MAX] = '\0';
	ck_assert_int_eq(sd__path_norm(exact, out, sizeof out), 0);
	ck_assert_uint_eq(strlen(out), SD_PATH_MAX);
	/* a cwd near the limit plus a relative name goes over */
	ck_assert_int_eq(sd__resolve(out, "zz", 2, big, SD_PATH_MAX + 1), -ENAMETOOLONG);
	/* and ".." brings it back */
	ck_assert_int_eq(sd__resolve(out, "../zz", 5, big, SD_PATH_MAX + 1), 0);
	free(exact);
	free(big);

	/* a deep path of ".." never underflows */
	char *deep = malloc(3 * 1000 + 1);
	for (int i = 0; i < 1000; i++)
		memcpy(deep + 3 * i, "../", 3);
	deep[3000] = '\0';
	ck_assert_int_eq(sd__resolve("/a/b/c", deep, 3000, out, sizeof out), 0);
	ck_assert_str_eq(out, "/");
	free(deep);

	/* a small output buffer is refused, never overrun */
	char small[4];
	ck_assert_int_eq(sd__path_norm("/abcdef", small, sizeof small), -ENAMETOOLONG);
	ck_assert_int_eq(sd__path_norm("/ab", small, sizeof small), 0);
	ck_assert_str_eq(small, "/ab");
	ck_assert_int_eq(sd__resolve("/abcdef", "", 0, small, sizeof small), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_utf8)
{
	ck_assert(sd_utf8_valid("", 0));
	ck_assert(sd_utf8_valid("\xf0\x9f\x98\x80", 4)); /* emoji */
	ck_assert(!sd_utf8_valid("\xf0\x9f\x98", 3));
	ck_assert(!sd_utf8_valid("\x80", 1));
	ck_assert(!sd_utf8_valid("\xe0\x80\xaf", 3)); /* overlong */
}
END_TEST

/* The resolver through the API: relative paths follow chdir, which only
 * accepts directories, and ".." cannot leave the user's tree. */
START_TEST(test_session_cwd)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	sd_session *b = tu_user(&t, "bob");
	tu_put(&t, a, "/x/y/f.txt", "alice", 5);
	tu_put(&t, b, "/x/y/f.txt", "bob!", 4);
	ck_assert_int_eq(t.api->chdir(a, "x/y"), 0);
	sd_stat st;
	ck_assert_int_eq(t.api->stat(a, "f.txt", &st), 0);
	ck_assert_uint_eq(st.size, 5);
	ck_assert_int_eq(t.api->stat(a, "../y/./f.txt", &st), 0);
	ck_assert_int_eq(t.api->chdir(a, "f.txt"), -ENOTDIR);
	ck_assert_int_eq(t.api->chdir(a, "nope"), -ENOENT);
	sd_session_info si;
	ck_assert_int_eq(t.api->session_info(a, &si), 0);
	ck_assert_str_eq(si.cwd, "/x/y");
	/* past the root is the root: still alice's own tree */
	ck_assert_int_eq(t.api->chdir(a, "../../../../.."), 0);
	ck_assert_int_eq(t.api->session_info(a, &si), 0);
	ck_assert_str_eq(si.cwd, "/");
	size_t len;
	char *got = tu_get(&t, a, "../../x/y/f.txt", &len);
	ck_assert_uint_eq(len, 5);
	ck_assert(memcmp(got, "alice", 5) == 0);
	free(got);
	char out[64];
	ck_assert_int_eq(t.api->resolve(a, "a/bb/../c", 9, out, sizeof out), 0);
	ck_assert_str_eq(out, "/a/c");
	ck_assert_int_eq(t.api->resolve(a, "a\0b", 3, out, sizeof out), -EINVAL);
	/* a remove of a/bb/../c removes /a/c and nothing else */
	tu_put(&t, a, "/a/c", "c", 1);
	tu_put(&t, a, "/a/bb/c", "bbc", 3);
	ck_assert_int_eq(t.api->unlink(a, "a/bb/../c", 0), 0);
	ck_assert_int_eq(t.api->stat(a, "/a/c", &st), -ENOENT);
	ck_assert_int_eq(t.api->stat(a, "/a/bb/c", &st), 0);
	tu_core_close(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("path");
	TCase *tc = tcase_create("resolve");
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_lengths);
	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_session_cwd);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
