/*
 * test_props.c - core/props.c (dead properties) through the function
 * table: set, replace, remove, list in (ns, name) order; a patch is all or
 * nothing; the limits (name, value, count, UTF-8); properties follow the
 * node through a rename, to the trash and back, are not copied by copy,
 * and go with the purge; journal rows; virtual folders and read-only
 * logins.
 */
#include "testutil.h"

static tu_core T;
static sd_session *U;

static void setup(void)
{
	tu_core_open(&T, 0);
	U = tu_user(&T, "alice");
}

static void teardown(void)
{
	tu_core_close(&T);
}

/* The properties of path as "{ns}name=value;" text. */
typedef struct pl {
	char text[4096];
} pl;

static int collect(void *arg, const sd_prop *p)
{
	pl *l = arg;
	size_t n = strlen(l->text);
	snprintf(l->text + n, sizeof l->text - n, "{%s}%s=%.*s;", p->ns, p->name, (int)p->len,
		 p->value);
	ck_assert_uint_eq(strlen(p->value), p->len);
	return 0;
}

static const char *props(sd_session *s, const char *path)
{
	static pl l;
	l.text[0] = '\0';
	int r = T.api->props_get(s, path, collect, &l);
	ck_assert_msg(r >= 0, "props_get %s: %s", path, T.api->strerror(r));
	return l.text;
}

static sd_prop P(const char *ns, const char *name, const char *value)
{
	sd_prop p = {ns, name, value, value ? strlen(value) : 0};
	return p;
}

START_TEST(test_set_get_remove)
{
	tu_put(&T, U, "/f", "x", 1);
	ck_assert_str_eq(props(U, "/f"), "");
	sd_prop ops[] = {P("urn:b", "two", "<b:two xmlns:b=\"urn:b\">2</b:two>"), P("urn:a", "one", "1"),
			 P("", "plain", "é€𐍈")};
	ck_assert_int_eq(T.api->props_patch(U, "/f", ops, 3), 0);
	ck_assert_str_eq(props(U, "/f"),
			 "{}plain=é€𐍈;{urn:a}one=1;{urn:b}two=<b:two xmlns:b=\"urn:b\">2</b:two>;");
	/* replace and remove in one patch, in order: set then remove = gone */
	sd_prop ops2[] = {P("urn:a", "one", "uno"), P("", "plain", NULL), P("urn:c", "x", "1"),
			  P("urn:c", "x", NULL), P("urn:none", "absent", NULL)};
	ck_assert_int_eq(T.api->props_patch(U, "/f", ops2, 5), 0);
	ck_assert_str_eq(props(U, "/f"), "{urn:a}one=uno;{urn:b}two=<b:two xmlns:b=\"urn:b\">2</b:two>;");
	/* folders have them too, "/" included */
	ck_assert_int_eq(T.api->mkdir(U, "/d", 0755, 0), 0);
	sd_prop one = P("urn:a", "dir", "yes");
	ck_assert_int_eq(T.api->props_patch(U, "/d", &one, 1), 0);
	ck_assert_int_eq(T.api->props_patch(U, "/", &one, 1), 0);
	ck_assert_str_eq(props(U, "/d"), "{urn:a}dir=yes;");
	ck_assert_str_eq(props(U, "/"), "{urn:a}dir=yes;");
	/* journal rows, one per operation */
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='prop_set'"), 7);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='prop_del'"), 3);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='prop_set' AND "
					"detail='{urn:a}one' AND json_extract(args,'$.value')='uno'"),
			 1);
	/* missing paths */
	ck_assert_int_eq(T.api->props_patch(U, "/nope", &one, 1), -ENOENT);
	pl l;
	ck_assert_int_eq(T.api->props_get(U, "/nope", collect, &l), -ENOENT);
}
END_TEST

START_TEST(test_all_or_nothing)
{
	tu_put(&T, U, "/f", "x", 1);
	sd_prop a = P("urn:a", "a", "1");
	ck_assert_int_eq(T.api->props_patch(U, "/f", &a, 1), 0);
	/* one bad operation: nothing applies */
	char *big = malloc(SD_PROP_VALUE_MAX + 2);
	memset(big, 'v', SD_PROP_VALUE_MAX + 1);
	big[SD_PROP_VALUE_MAX + 1] = '\0';
	sd_prop bad1[] = {P("urn:a", "a", NULL), P("urn:a", "b", big)};
	ck_assert_int_eq(T.api->props_patch(U, "/f", bad1, 2), -EFBIG);
	big[SD_PROP_VALUE_MAX] = '\0'; /* exactly the limit is fine */
	sd_prop ok = P("urn:a", "big", big);
	ck_assert_int_eq(T.api->props_patch(U, "/f", &ok, 1), 0);
	sd_prop rm = P("urn:a", "big", NULL);
	ck_assert_int_eq(T.api->props_patch(U, "/f", &rm, 1), 0);
	free(big);
	sd_prop bad2[] = {P("urn:a", "a", NULL), P("urn:a", "", "1")};
	ck_assert_int_eq(T.api->props_patch(U, "/f", bad2, 2), -EINVAL);
	sd_prop bad3[] = {P("urn:a", "a", NULL), P("urn:a", "n", "\xff\xfe")};
	ck_assert_int_eq(T.api->props_patch(U, "/f", bad3, 2), -EINVAL);
	char longname[SD_PROP_NAME_MAX + 2];
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	sd_prop bad4[] = {P("urn:a", "a", NULL), P("", longname, "1")};
	ck_assert_int_eq(T.api->props_patch(U, "/f", bad4, 2), -EFBIG);
	sd_prop nul = {"urn:a", "nul", "a\0b", 3};
	ck_assert_int_eq(T.api->props_patch(U, "/f", &nul, 1), -EINVAL);
	ck_assert_str_eq(props(U, "/f"), "{urn:a}a=1;");
	/* the count limit is checked after the whole patch */
	sd_prop *many = calloc(SD_PROPS_MAX, sizeof *many);
	char (*names)[16] = calloc(SD_PROPS_MAX, 16);
	for (int i = 0; i < SD_PROPS_MAX; i++) {
		snprintf(names[i], 16, "p%d", i);
		many[i] = P("urn:m", names[i], "v");
	}
	ck_assert_int_eq(T.api->props_patch(U, "/f", many, SD_PROPS_MAX), -ENOSPC);
	ck_assert_str_eq(props(U, "/f"), "{urn:a}a=1;");
	ck_assert_int_eq(T.api->props_patch(U, "/f", many, SD_PROPS_MAX - 1), 0);
	sd_prop swap[] = {P("urn:a", "a", NULL), P("urn:a", "c", "1")};
	ck_assert_int_eq(T.api->props_patch(U, "/f", swap, 2), 0); /* still 256 after */
	free(many);
	free(names);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM node_props"), SD_PROPS_MAX);
}
END_TEST

START_TEST(test_follow_the_node)
{
	tu_put(&T, U, "/d/f", "x", 1);
	sd_prop a = P("urn:a", "a", "1");
	ck_assert_int_eq(T.api->props_patch(U, "/d/f", &a, 1), 0);
	ck_assert_int_eq(T.api->props_patch(U, "/d", &a, 1), 0);
	/* rename keeps them (a folder's members too) */
	ck_assert_int_eq(T.api->rename(U, "/d", "/e", 0), 0);
	ck_assert_str_eq(props(U, "/e/f"), "{urn:a}a=1;");
	ck_assert_str_eq(props(U, "/e"), "{urn:a}a=1;");
	/* a copy has none; a new content keeps them */
	ck_assert_int_eq(T.api->copy(U, "/e/f", "/e/g"), 0);
	ck_assert_str_eq(props(U, "/e/g"), "");
	tu_put(&T, U, "/e/f", "new", 3);
	ck_assert_str_eq(props(U, "/e/f"), "{urn:a}a=1;");
	/* deleted: to the trash with the node, back with it */
	ck_assert_int_eq(T.api->unlink(U, "/e/f", 0), 0);
	pl l;
	ck_assert_int_eq(T.api->props_get(U, "/e/f", collect, &l), -ENOENT);
	tu_put(&T, U, "/e/f", "another", 7); /* a new node at the path: no props */
	ck_assert_str_eq(props(U, "/e/f"), "");
	ck_assert_int_eq(T.api->unlink(U, "/e/f", 0), 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM node_props"), 2);
	/* purged: gone with the node */
	sd_gc_report rep;
	ck_assert_int_eq(T.api->unlink(U, "/e", 1), 0);
	ck_assert_int_eq(T.api->trash_empty(U, 0), 2);
	ck_assert_int_eq(T.api->gc_run(T.c, 1, &rep), 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM node_props"), 0);
}
END_TEST

static int first_item(void *arg, const sd_trash_item *t)
{
	*(int64_t *)arg = t->id;
	return 1;
}

START_TEST(test_trash_restore)
{
	tu_put(&T, U, "/f", "x", 1);
	sd_prop a = P("urn:a", "a", "kept");
	ck_assert_int_eq(T.api->props_patch(U, "/f", &a, 1), 0);
	ck_assert_int_eq(T.api->unlink(U, "/f", 0), 0);
	/* a view shows none, and cannot be patched */
	ck_assert_str_eq(props(U, "/.trash"), "");
	ck_assert_int_eq(T.api->props_patch(U, "/.trash/x", &a, 1), -EACCES);
	ck_assert_int_eq(T.api->props_patch(U, "/.snapshots/x", &a, 1), -EROFS);
	int64_t item = 0;
	ck_assert_int_eq(T.api->trash_list(U, first_item, &item), 1);
	ck_assert_int_eq(T.api->trash_restore(U, item, NULL, NULL), 0);
	ck_assert_str_eq(props(U, "/f"), "{urn:a}a=kept;");
	/* read-only logins read them and change nothing */
	char tok[SD_TOKEN_MAX];
	ck_assert_int_eq(T.api->token_create(T.c, "alice", SD_SCOPE_RO, 0, tok, NULL), 0);
	sd_session *ro = NULL;
	ck_assert_int_eq(T.api->auth_token(T.c, tok, "127.0.0.1", "test", &ro), 0);
	tu_keep(&T, ro);
	ck_assert_str_eq(props(ro, "/f"), "{urn:a}a=kept;");
	ck_assert_int_eq(T.api->props_patch(ro, "/f", &a, 1), -EROFS);
	/* another user's tree is another tree */
	sd_session *b = tu_user(&T, "bob");
	tu_put(&T, b, "/f", "b", 1);
	ck_assert_str_eq(props(b, "/f"), "");
}
END_TEST

static Suite *props_suite(void)
{
	Suite *s = suite_create("props");
	TCase *tc = tcase_create("props");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_set_get_remove);
	tcase_add_test(tc, test_all_or_nothing);
	tcase_add_test(tc, test_follow_the_node);
	tcase_add_test(tc, test_trash_restore);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(props_suite());
}
