/*
 * test_rupload.c - resumable uploads (core/rupload.c): the offset moves
 * only with durable bytes, a wrong offset is -ERANGE, another user's id is
 * -ENOENT, a checksum keeps or drops a whole open, the upload survives a
 * reopen of the core (hash state lost: the part file is re-read), the
 * commit is one version, and the cleaner removes expired uploads.
 */
#include "testutil.h"

#include <dirent.h>
#include <sys/stat.h>

static int64_t clock_ms;
static int64_t fake_clock(void *arg)
{
	(void)arg;
	return clock_ms;
}

static void sha_hex(const void *p, size_t n, char out[SD_SHA256_HEX])
{
	unsigned char dg[32];
	unsigned int dl = 0;
	EVP_Digest(p, n, dg, &dl, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", dg[i]);
}

static int parts(tu_core *t)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/uploads", t->dir);
	DIR *d = opendir(p);
	ck_assert_ptr_nonnull(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void write_at(tu_core *t, sd_session *u, const char *id, uint64_t off, const char *data,
		     size_t len, int keep, int expect_rc, sd_rupload_info *in)
{
	sd_rupload *h;
	ck_assert_int_eq(t->api->rup_open(u, id, off, NULL, &h), 0);
	for (size_t i = 0; i < len; i += 777) {
		size_t n = len - i < 777 ? len - i : 777;
		ck_assert_int_eq(t->api->rup_write(h, data + i, n), 0);
	}
	ck_assert_int_eq(t->api->rup_close(h, keep, in), expect_rc);
}

START_TEST(test_whole_cycle)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	sd_session *b = tu_user(&t, "bob");
	size_t n = 300000;
	char *data = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 7 + i / 1000);
	sd_rupload_info in;
	ck_assert_int_eq(t.api->rup_create(a, "/d/f.bin", SD_UP_PARENTS, n, 0640, "filename eA==", &in),
			 0);
	ck_assert_int_eq(strlen(in.id), 32);
	ck_assert_int_eq(in.offset, 0);
	ck_assert_str_eq(in.path, "/d/f.bin");
	char id[SD_RUP_ID_MAX];
	strcpy(id, in.id);
	ck_assert_int_eq(parts(&t), 1);

	/* another user: as if it did not exist */
	sd_rupload *h;
	ck_assert_int_eq(t.api->rup_info(b, id, &in), -ENOENT);
	ck_assert_int_eq(t.api->rup_open(b, id, 0, NULL, &h), -ENOENT);
	ck_assert_int_eq(t.api->rup_delete(b, id), -ENOENT);

	write_at(&t, a, id, 0, data, 100000, 1, 0, &in);
	ck_assert_int_eq(in.offset, 100000);
	ck_assert_int_eq(t.api->rup_open(a, id, 5, NULL, &h), -ERANGE);
	/* dropped: the offset stays */
	write_at(&t, a, id, 100000, data + 100000, 5000, 0, 0, &in);
	ck_assert_int_eq(in.offset, 100000);
	/* a checksum that does not match drops the whole open */
	char bad[SD_SHA256_HEX];
	sha_hex("x", 1, bad);
	ck_assert_int_eq(t.api->rup_open(a, id, 100000, bad, &h), 0);
	ck_assert_int_eq(t.api->rup_write(h, data + 100000, 50000), 0);
	ck_assert_int_eq(t.api->rup_close(h, 1, &in), -SD_ECHECKSUM);
	ck_assert_int_eq(in.offset, 100000);
	char good[SD_SHA256_HEX];
	sha_hex(data + 100000, 50000, good);
	ck_assert_int_eq(t.api->rup_open(a, id, 100000, good, &h), 0);
	ck_assert_int_eq(t.api->rup_write(h, data + 100000, 50000), 0);
	ck_assert_int_eq(t.api->rup_close(h, 1, &in), 0);
	ck_assert_int_eq(in.offset, 150000);
	/* nothing visible yet */
	sd_stat st;
	ck_assert_int_eq(t.api->stat(a, "/d/f.bin", &st), -ENOENT);

	/* a reopen of the core: the session lives on disk, the hash state
	 * does not (the part file is re-read at commit) */
	tu_core_shut(&t);
	tu_core_reopen(&t, 0);
	a = tu_session(&t, "alice");
	ck_assert_int_eq(t.api->rup_info(a, id, &in), 0);
	ck_assert_int_eq(in.offset, 150000);
	ck_assert_str_eq(in.meta, "filename eA==");
	/* past the length: -EFBIG, and the open keeps nothing past it */
	ck_assert_int_eq(t.api->rup_open(a, id, 150000, NULL, &h), 0);
	ck_assert_int_eq(t.api->rup_write(h, data, n), -EFBIG);
	ck_assert_int_eq(t.api->rup_close(h, 1, &in), 0);
	ck_assert_int_eq(in.offset, 150000);
	write_at(&t, a, id, 150000, data + 150000, n - 150000, 1, 0, &in);
	ck_assert_int_eq(in.done, 1);
	ck_assert_int_eq(in.offset, n);
	char want[SD_SHA256_HEX];
	sha_hex(data, n, want);
	ck_assert_str_eq(in.st.sha256, want);
	ck_assert_int_eq(t.api->stat(a, "/d/f.bin", &st), 0);
	ck_assert_int_eq(st.size, n);
	ck_assert_int_eq(st.versions, 1);
	ck_assert_int_eq(st.mode, 0640);
	ck_assert_int_eq(parts(&t), 0);
	/* done uploads still answer */
	ck_assert_int_eq(t.api->rup_info(a, id, &in), 0);
	ck_assert_int_eq(in.done, 1);
	free(data);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_limits_and_expiry)
{
	tu_core t;
	tu_core_prepare(&t);
	t.conf.max_uploads_per_user = 2;
	t.conf.upload_expiry = 60000;
	tu_core_reopen(&t, 0);
	clock_ms = 1000000000;
	sd__core_set_clock(t.c, fake_clock, NULL);
	sd_session *a = tu_user(&t, "alice");
	sd_rupload_info in, in2;
	ck_assert_int_eq(t.api->rup_create(a, "/", 0, 10, 0, NULL, &in), -EISDIR);
	ck_assert_int_eq(t.api->rup_create(a, "/no/such/x", 0, 10, 0, NULL, &in), -ENOENT);
	tu_put(&t, a, "/f", "abc", 3);
	ck_assert_int_eq(t.api->rup_create(a, "/f", SD_UP_EXCL, 10, 0, NULL, &in), -EEXIST);
	ck_assert_int_eq(t.api->rup_create(a, "/f/x", 0, 10, 0, NULL, &in), -ENOTDIR);
	ck_assert_int_eq(t.api->rup_create(a, "/one", 0, 1000, 0, NULL, &in), 0);
	ck_assert_int_eq(t.api->rup_create(a, "/two", 0, 1000, 0, NULL, &in2), 0);
	ck_assert_int_eq(t.api->rup_create(a, "/three", 0, 10, 0, NULL, &in2), -EMFILE);
	ck_assert_int_eq(t.api->rup_delete(a, in2.id), 0);
	ck_assert_int_eq(t.api->rup_info(a, in2.id, &in2), -ENOENT);
	/* quota counts the uploads in progress */
	ck_assert_int_eq(t.api->user_set_quota(t.c, "alice", 1500), 0);
	ck_assert_int_eq(t.api->rup_create(a, "/q", 0, 600, 0, NULL, &in2), -EDQUOT);
	ck_assert_int_eq(t.api->rup_create(a, "/q", 0, 400, 0, NULL, &in2), 0);
	ck_assert_int_eq(t.api->rup_delete(a, in2.id), 0);
	/* an empty upload is a file at once */
	ck_assert_int_eq(t.api->rup_create(a, "/empty", 0, 0, 0, NULL, &in2), 0);
	ck_assert_int_eq(in2.done, 1);
	sd_stat st;
	ck_assert_int_eq(t.api->stat(a, "/empty", &st), 0);
	/* expiry: refreshed by writes, then removed by the cleaner */
	write_at(&t, a, in.id, 0, "hello", 5, 1, 0, &in);
	clock_ms += 50000;
	sd_gc_report rep;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.uploads_expired, 0);
	ck_assert_int_eq(t.api->rup_info(a, in.id, &in2), 0);
	clock_ms += 20000;
	ck_assert_int_eq(t.api->rup_info(a, in.id, &in2), -ENOENT);
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.uploads_expired, 2); /* and the done empty one */
	ck_assert_int_eq(parts(&t), 0);
	/* a part file without a row is an orphan */
	char p[4096];
	snprintf(p, sizeof p, "%s/uploads/%s", t.dir, "0123456789abcdef0123456789abcdef");
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(parts(&t), 0);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_one_open_at_a_time)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	sd_rupload_info in;
	ck_assert_int_eq(t.api->rup_create(a, "/x", 0, 100, 0, NULL, &in), 0);
	sd_rupload *h1, *h2;
	ck_assert_int_eq(t.api->rup_open(a, in.id, 0, NULL, &h1), 0);
	ck_assert_int_eq(t.api->rup_write(h1, "0123456789", 10), 0);
	/* a second open asks the first to stop, waits, and gives up */
	ck_assert_int_eq(t.api->rup_open(a, in.id, 0, NULL, &h2), -EBUSY);
	ck_assert_int_eq(t.api->rup_write(h1, "x", 1), -ECANCELED);
	ck_assert_int_eq(t.api->rup_close(h1, 1, &in), 0);
	ck_assert_int_eq(in.offset, 10);
	ck_assert_int_eq(t.api->rup_open(a, in.id, 10, NULL, &h2), 0);
	ck_assert_int_eq(t.api->rup_close(h2, 1, &in), 0);
	tu_core_close(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rupload");
	TCase *tc = tcase_create("rupload");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_whole_cycle);
	tcase_add_test(tc, test_limits_and_expiry);
	tcase_add_test(tc, test_one_open_at_a_time);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
