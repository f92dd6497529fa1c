/*
 * test_sdjson.c - util/sdjson: the exact JSON of every engine type that
 * storagectl --json and the HTTP admin API print. A failure here means the
 * documented field lists (docs/rest-api.md, docs/storagectl.md) changed.
 */
#include "tests/unit/testutil.h"
#include "util/sdjson.h"

/* Compact text of o (released), as both writers print it save spacing. */
static char *text(json_t *o)
{
	ck_assert_ptr_nonnull(o);
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY | SD_JSON_DUMP_FLAGS);
	json_decref(o);
	ck_assert_ptr_nonnull(s);
	return s;
}

#define ck_json(obj, want)                                                                         \
	do {                                                                                       \
		char *got_ = text(obj);                                                            \
		ck_assert_str_eq(got_, want);                                                      \
		free(got_);                                                                        \
	} while (0)

START_TEST(user_fields)
{
	sd_user u = {.id = 7, .flags = SD_USER_ADMIN, .quota = 1024, .used = 10};
	strcpy(u.name, "alice");
	ck_json(sd_json_user(&u),
		"{\"id\":7,\"name\":\"alice\",\"admin\":true,\"disabled\":false,\"quota\":1024,"
		"\"used\":10}");
}
END_TEST

START_TEST(stats_fields_and_ratio)
{
	sd_stats s = {.users = 1, .files = 2, .dirs = 3, .deleted = 4, .logical_bytes = 14825,
		      .blobs = 5, .stored_bytes = 10000, .unreferenced_blobs = 6, .versions = 7,
		      .journal_rows = 8};
	ck_json(sd_json_stats(&s),
		"{\"users\":1,\"files\":2,\"dirs\":3,\"deleted\":4,\"logical_bytes\":14825,"
		"\"stored_bytes\":10000,\"dedup_ratio\":1.4825,\"blobs\":5,"
		"\"unreferenced_blobs\":6,\"versions\":7,\"journal_rows\":8}");
	s.logical_bytes = 2;
	s.stored_bytes = 3; /* 0.6666.. -> 4 decimals */
	char *t = text(sd_json_stats(&s));
	ck_assert_ptr_nonnull(strstr(t, "\"dedup_ratio\":0.6667,"));
	free(t);
	memset(&s, 0, sizeof s); /* nothing stored: 1.0 */
	ck_assert(sd_json_dedup_ratio(&s) == 1.0);
	t = text(sd_json_stats(&s));
	ck_assert_ptr_nonnull(strstr(t, "\"dedup_ratio\":1.0,"));
	free(t);
}
END_TEST

START_TEST(token_fields_and_state)
{
	sd_token_info t = {.id = 3, .readonly = 1, .created = 1795255200, .expires = 1797847200};
	strcpy(t.user, "alice");
	ck_json(sd_json_token(&t, 1795255300),
		"{\"id\":3,\"user\":\"alice\",\"scope\":\"ro\",\"created\":\"2026-11-21T10:00:00Z\","
		"\"expires\":\"2026-12-21T10:00:00Z\",\"revoked\":false,\"state\":\"active\"}");
	ck_assert_str_eq(sd_json_token_state(&t, 1797847200), "expired");
	t.expires = 0; /* never */
	t.readonly = 0;
	t.revoked = 1;
	ck_json(sd_json_token(&t, 1795255300),
		"{\"id\":3,\"user\":\"alice\",\"scope\":\"rw\",\"created\":\"2026-11-21T10:00:00Z\","
		"\"expires\":null,\"revoked\":true,\"state\":\"revoked\"}");
}
END_TEST

START_TEST(gc_fields)
{
	sd_gc_report r = {.nodes_purged = 1, .blobs_removed = 2, .bytes_freed = 3,
			  .temps_removed = 4, .disk_used_pct = 17, .versions_dropped = 5,
			  .journal_pruned = 6};
	ck_json(sd_json_gc_report(&r),
		"{\"nodes_purged\":1,\"versions_dropped\":5,\"journal_pruned\":6,"
		"\"blobs_removed\":2,\"bytes_freed\":3,\"temps_removed\":4,\"disk_used_pct\":17}");
}
END_TEST

START_TEST(stat_forms)
{
	sd_stat f = {.id = 1, .kind = SD_KIND_FILE, .size = 5, .mode = 0100644, .mtime = 100,
		     .ctime = 50, .versions = 2};
	memset(f.sha256, 'a', 64);
	char want[512];
	snprintf(want, sizeof want,
		 "{\"path\":\"/d/f\",\"kind\":\"file\",\"size\":5,\"mode\":\"0644\",\"mtime\":100,"
		 "\"sha256\":\"%s\",\"versions\":2,\"ctime\":50,\"created_by\":null,"
		 "\"changed_by\":null}",
		 f.sha256);
	ck_json(sd_json_stat("/d/f", NULL, &f), want);
	snprintf(want, sizeof want,
		 "{\"name\":\"f\",\"kind\":\"file\",\"size\":5,\"mode\":\"0644\",\"mtime\":100,"
		 "\"sha256\":\"%s\"}",
		 f.sha256);
	ck_json(sd_json_stat(NULL, "f", &f), want);
	sd_stat d = {.id = 2, .kind = SD_KIND_DIR, .mode = 0755, .mtime = 100, .ctime = 50};
	ck_json(sd_json_stat(NULL, "d", &d),
		"{\"name\":\"d\",\"kind\":\"dir\",\"size\":0,\"mode\":\"0755\",\"mtime\":100}");
	ck_json(sd_json_stat("/d", NULL, &d),
		"{\"path\":\"/d\",\"kind\":\"dir\",\"size\":0,\"mode\":\"0755\",\"mtime\":100,"
		"\"ctime\":50,\"created_by\":null,\"changed_by\":null}");
}
END_TEST

START_TEST(team_objects)
{
	const char *mem[] = {"alice", "bob"};
	sd_group g = {.id = 1, .name = "eng", .created = 1795255200, .nmembers = 2, .members = mem};
	ck_json(sd_json_group(&g), "{\"name\":\"eng\",\"members\":[\"alice\",\"bob\"],"
				   "\"created\":\"2026-11-21T10:00:00Z\"}");
	sd_share sh = {.id = 1, .name = "team", .quota = 100, .used = 5, .created = 1795255200,
		       .rules = 2};
	ck_json(sd_json_share(&sh), "{\"name\":\"team\",\"mount\":\"/team\",\"quota\":100,"
				    "\"used\":5,\"rules\":2,\"created\":\"2026-11-21T10:00:00Z\"}");
	sd_share_rule r = {"team", "/docs", "", "eng", SD_RIGHT_LIST | SD_RIGHT_READ, 0};
	ck_json(sd_json_share_rule(&r), "{\"share\":\"team\",\"path\":\"/docs\",\"user\":null,"
					"\"group\":\"eng\",\"rights\":\"list,read\",\"deleted\":false}");
	char rt[64];
	sd_json_rights_text(0, rt, sizeof rt);
	ck_assert_str_eq(rt, "none");
	int ok;
	ck_assert_uint_eq(sd_json_rights_parse("ro,write", &ok), 7u);
	ck_assert_int_eq(ok, 1);
	ck_assert_uint_eq(sd_json_rights_parse("full", &ok), SD_RIGHTS_ALL);
	ck_assert_uint_eq(sd_json_rights_parse("none", &ok), 0u);
	ck_assert_int_eq(ok, 1);
	sd_json_rights_parse("read,fly", &ok);
	ck_assert_int_eq(ok, 0);
	sd_json_rights_parse("", &ok);
	ck_assert_int_eq(ok, 0);
	sd_json_rights_text(sd_json_rights_parse("rw", &ok), rt, sizeof rt);
	ck_assert_str_eq(rt, "list,read,write,delete,rename");
	sd_link_info l = {.id = 7, .user = "alice", .path = "/team/docs", .kind = SD_KIND_DIR,
			  .mode = SD_LINK_READ, .password = 1, .created = 1795255200,
			  .expires = 1795255300, .max_downloads = 3, .downloads = 3};
	ck_json(sd_json_link(&l, 1795255250),
		"{\"id\":7,\"user\":\"alice\",\"path\":\"/team/docs\",\"kind\":\"dir\","
		"\"mode\":\"read\",\"password\":true,\"created\":\"2026-11-21T10:00:00Z\","
		"\"expires\":\"2026-11-21T10:01:40Z\",\"max_downloads\":3,\"downloads\":3,"
		"\"revoked\":false,\"state\":\"used_up\"}");
	l.downloads = 1;
	ck_assert_str_eq(sd_json_link_state(&l, 1795255250), "active");
	ck_assert_str_eq(sd_json_link_state(&l, 1795255300), "expired");
	l.revoked = 1;
	ck_assert_str_eq(sd_json_link_state(&l, 1795255250), "revoked");
}
END_TEST

START_TEST(strings)
{
	ck_json(sd_json_string(NULL), "null");
	ck_json(sd_json_string("a\"b\\c\n\x01 \xe2\x98\x83"), "\"a\\\"b\\\\c\\n\\u0001 \xe2\x98\x83\"");
	/* bad bytes, overlong NUL, a surrogate, a truncated sequence at the end */
	ck_json(sd_json_string("x\xff" "y\xc0\x80" "z\xed\xa0\x80" "w\xe2\x98"),
		"\"x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdw"
		"\xef\xbf\xbd\xef\xbf\xbd\"");
	sd_user u = {.id = 1};
	strcpy(u.name, "bad\xfe");
	ck_json(sd_json_user(&u), "{\"id\":1,\"name\":\"bad\xef\xbf\xbd\",\"admin\":false,"
				  "\"disabled\":false,\"quota\":0,\"used\":0}");
}
END_TEST

START_TEST(time_text)
{
	char buf[40];
	sd_json_time_text(1795255200123LL, 1, buf, sizeof buf);
	ck_assert_str_eq(buf, "2026-11-21T10:00:00.123Z");
	sd_json_time_text(1795255200123LL, 0, buf, sizeof buf);
	ck_assert_str_eq(buf, "2026-11-21T10:00:00Z");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sdjson");
	TCase *tc = tcase_create("objects");
	tcase_add_test(tc, user_fields);
	tcase_add_test(tc, stats_fields_and_ratio);
	tcase_add_test(tc, token_fields_and_state);
	tcase_add_test(tc, gc_fields);
	tcase_add_test(tc, stat_forms);
	tcase_add_test(tc, team_objects);
	tcase_add_test(tc, strings);
	tcase_add_test(tc, time_text);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
