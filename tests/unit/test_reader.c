/* test_reader.c - readers and the store interface: every read path gives
 * the same bytes and ranges on a store that is not a local file (the
 * in-memory store of memstore.h) as on the local directory; damage is
 * reported, never served; the cleaner, fsck and recovery work through the
 * interface. */
#include "testutil.h"
#include "memstore.h"

static const size_t sizes[] = {0, 1, 4095, 65536, 65537, 200003};

static char *pattern(size_t n, unsigned seed)
{
	char *p = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
	return p;
}

/* Read [off, off+len) through a reader and compare with src. */
static void check_range(tu_core *t, sd_reader *rd, const char *src, size_t size, uint64_t off,
			size_t len)
{
	char *buf = malloc(len + 1);
	ssize_t n = t->api->reader_pread(rd, buf, len, off);
	size_t want = off >= size ? 0 : (size - off < len ? size - off : len);
	ck_assert_msg(n == (ssize_t)want, "range %llu+%zu of %zu: got %zd want %zu",
		      (unsigned long long)off, len, size, n, want);
	if (want)
		ck_assert(memcmp(buf, src + off, want) == 0);
	free(buf);
}

/* Upload every size, then read whole files and ranges through readers. */
static void exercise_reads(tu_core *t, int expect_fd)
{
	sd_session *u = tu_user(t, "reader");
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		char *src = pattern(n, (unsigned)i);
		char path[64];
		snprintf(path, sizeof path, "/f%zu", i);
		tu_put(t, u, path, src, n);
		size_t got;
		char *back = tu_get(t, u, path, &got);
		ck_assert_uint_eq(got, n);
		ck_assert(n == 0 || memcmp(back, src, n) == 0);
		free(back);

		sd_reader *rd;
		sd_stat st;
		ck_assert_int_eq(t->api->open_read(u, path, &rd, &st), 0);
		ck_assert_uint_eq(st.size, n);
		char want_hex[65];
		tu_sha_hex(src, n, want_hex);
		ck_assert_str_eq(st.sha256, want_hex);
		int fd;
		uint64_t base;
		int fr = t->api->reader_fd(rd, &fd, &base);
		if (expect_fd) {
			ck_assert_int_eq(fr, 0);
			/* the descriptor holds the same bytes */
			if (n > 10) {
				char b[10];
				ck_assert_int_eq(pread(fd, b, 10, (off_t)(base + n - 10)), 10);
				ck_assert(memcmp(b, src + n - 10, 10) == 0);
			}
		} else {
			ck_assert_int_eq(fr, -ENOTSUP);
		}
		uint64_t offs[] = {0, 1, n / 2, n > 0 ? n - 1 : 0, n, n + 1, 65535, 65536};
		size_t lens[] = {1, 7, 4096, 65536, 300000};
		for (size_t a = 0; a < sizeof offs / sizeof offs[0]; a++)
			for (size_t b = 0; b < sizeof lens / sizeof lens[0]; b++)
				check_range(t, rd, src, n, offs[a], lens[b]);
		/* the reader keeps reading its version after the file changes */
		tu_put(t, u, path, "replaced", 8);
		check_range(t, rd, src, n, 0, n + 5);
		t->api->reader_close(rd);

		/* a handle reads the same bytes, and a random write on it copies
		 * the base through the reader */
		tu_put(t, u, path, src, n);
		sd_handle h;
		ck_assert_int_eq(t->api->handle_open(u, path, SD_O_READ | SD_O_WRITE, 0, &h, &st), 0);
		if (n > 0) {
			char *buf = malloc(n);
			ck_assert_int_eq(t->api->handle_pread(u, h, buf, n, 0), (ssize_t)n);
			ck_assert(memcmp(buf, src, n) == 0);
			free(buf);
		}
		uint64_t at = n / 3;
		ck_assert_int_eq(t->api->handle_pwrite(u, h, "XY", 2, at), 2);
		ck_assert_int_eq(t->api->handle_close(u, h), 0);
		size_t expect_len = at + 2 > n ? at + 2 : n;
		char *exp = malloc(expect_len);
		memcpy(exp, src, n);
		memcpy(exp + at, "XY", 2);
		back = tu_get(t, u, path, &got);
		ck_assert_uint_eq(got, expect_len);
		ck_assert(memcmp(back, exp, expect_len) == 0);
		free(back);
		free(exp);
		free(src);
	}
}

START_TEST(test_local_store_reads)
{
	tu_core t;
	tu_core_open(&t, 0);
	exercise_reads(&t, 1);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_memory_store_reads)
{
	tu_core t;
	tu_core_prepare(&t);
	memstore *ms = memstore_new();
	tu_core_open_store(&t, 0, &ms->base);
	exercise_reads(&t, 0);
	ck_assert_int_gt(ms->opens, 0);
	/* nothing went to the local blob directory */
	ck_assert_int_eq(tu_blob_files(&t), 0);
	tu_core_close(&t);
}
END_TEST

/* Resume (upload at an offset) and instant upload read the store through
 * readers too. */
START_TEST(test_memory_store_resume_and_instant)
{
	tu_core t;
	tu_core_prepare(&t);
	memstore *ms = memstore_new();
	tu_core_open_store(&t, 0, &ms->base);
	sd_session *a = tu_user(&t, "alice"), *b = tu_user(&t, "bob");
	size_t n = 150000;
	char *src = pattern(n, 3);
	tu_put(&t, a, "/big", src, 100000);
	sd_upload *up;
	ck_assert_int_eq(t.api->upload_begin(a, "/big", 0, 100000, 0644, &up), 0);
	ck_assert_int_eq(t.api->upload_write(up, src + 100000, n - 100000), 0);
	sd_stat st;
	ck_assert_int_eq(t.api->upload_commit(up, NULL, &st, NULL), 0);
	size_t got;
	char *back = tu_get(&t, a, "/big", &got);
	ck_assert_uint_eq(got, n);
	ck_assert(memcmp(back, src, n) == 0);
	free(back);

	/* bob proves possession of alice's content, through a reader */
	char hex[65];
	tu_sha_hex(src, n, hex);
	sd_challenge ch;
	int r = t.api->instant_begin(b, "/copy", 0, hex, n, &ch, &st);
	ck_assert_int_eq(r, -SD_ECHALLENGE);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, ch.nonce, 64);
	for (int i = 0; i < ch.nranges; i++)
		EVP_DigestUpdate(md, src + ch.off[i], ch.len[i]);
	unsigned char dg[32];
	unsigned int dl;
	EVP_DigestFinal_ex(md, dg, &dl);
	EVP_MD_CTX_free(md);
	char proof[65];
	for (int i = 0; i < 32; i++)
		snprintf(proof + 2 * i, 3, "%02x", dg[i]);
	ck_assert_int_eq(t.api->instant_prove(b, "/copy", 0, hex, n, ch.nonce, proof, &st), 0);
	back = tu_get(&t, b, "/copy", &got);
	ck_assert_uint_eq(got, n);
	ck_assert(memcmp(back, src, n) == 0);
	free(back);
	free(src);
	tu_core_close(&t);
}
END_TEST

/* Damaged or lost content is an error, never wrong or short bytes. */
START_TEST(test_memory_store_damage)
{
	tu_core t;
	tu_core_prepare(&t);
	memstore *ms = memstore_new();
	tu_core_open_store(&t, 0, &ms->base);
	sd_session *u = tu_user(&t, "alice");
	char *src = pattern(5000, 9);
	sd_stat st;
	ck_assert_int_eq(tu_put_r(&t, u, "/f", src, 5000, &st, NULL), 0);
	ck_assert_int_eq(ms_truncate(ms, st.sha256, 1000), 0);
	sd_reader *rd;
	ck_assert_int_eq(t.api->open_read(u, "/f", &rd, &st), 0);
	char buf[64];
	ck_assert_int_eq(t.api->reader_pread(rd, buf, 64, 100), 64); /* before the damage */
	ck_assert_int_eq(t.api->reader_pread(rd, buf, 64, 990), -SD_ECORRUPT);
	ck_assert_int_eq(t.api->reader_pread(rd, buf, 64, 3000), -SD_ECORRUPT);
	t.api->reader_close(rd);

	/* fsck finds the damaged object (hash) and a lost one (missing) */
	sd_stat st2;
	ck_assert_int_eq(tu_put_r(&t, u, "/g", "lost soon", 9, &st2, NULL), 0);
	ck_assert_int_eq(ms_remove(&ms->base, st2.sha256), 0);
	ck_assert_int_eq(t.api->open_read(u, "/g", &rd, &st), -SD_ECORRUPT);
	sd_fsck_report rep;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &rep, NULL, NULL), 0);
	ck_assert_int_eq(rep.missing, 1);
	ck_assert_int_eq(rep.bad_hash, 1);
	ck_assert_int_eq(rep.blobs_checked, 1);
	free(src);
	tu_core_close(&t);
}
END_TEST

/* The cleaner removes unreferenced content through the interface; fsck
 * and recovery walk it. */
START_TEST(test_memory_store_gc_fsck_recover)
{
	tu_core t;
	tu_core_prepare(&t);
	memstore *ms = memstore_new();
	tu_core_open_store(&t, 0, &ms->base);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/keep", "keep me", 7);
	tu_put(&t, u, "/drop", "drop me", 7);
	ck_assert_int_eq(ms_count(ms), 2);
	ck_assert_int_eq(t.api->unlink(u, "/drop", 0), 0);
	sd_gc_report g;
	ck_assert_int_eq(t.api->gc_run(t.c, 1, &g), 0);
	ck_assert_int_eq(g.blobs_removed, 1);
	ck_assert_int_eq(ms_count(ms), 1);
	size_t len;
	char *back = tu_get(&t, u, "/keep", &len);
	ck_assert(len == 7 && memcmp(back, "keep me", 7) == 0);
	free(back);

	/* an object without a row (a crash between place and commit) is
	 * adopted by recovery when its content matches its address, and
	 * removed when it does not */
	char good[65], bad[65];
	tu_sha_hex("orphan", 6, good);
	ck_assert_int_eq(ms_add(ms, good, "orphan", 6), 0);
	tu_sha_hex("something else", 14, bad);
	ck_assert_int_eq(ms_add(ms, bad, "not what the name says", 22), 0);
	sd_fsck_report rep;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &rep, NULL, NULL), 0);
	ck_assert_int_eq(rep.adoptable, 1);
	ck_assert_int_eq(rep.bad_hash, 1);
	ck_assert_int_eq(sd_core_fsck(t.c, 1, &rep, NULL, NULL), 0);
	ck_assert_int_eq(ms_count(ms), 2); /* keep + adopted orphan */
	ck_assert_int_eq(ms_stat(&ms->base, bad, NULL), -ENOENT);
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &rep, NULL, NULL), 0);
	ck_assert_int_eq(rep.adoptable + rep.bad_hash + rep.missing + rep.orphans + rep.bad_refs, 0);
	/* the adopted content is instantly uploadable again by its owner? no:
	 * nobody references it, so it needs a proof; but it exists */
	sd_stats sst;
	ck_assert_int_eq(t.api->stats(t.c, &sst), 0);
	ck_assert_int_eq(sst.unreferenced_blobs, 1);
	tu_core_close(&t);
}
END_TEST

/* The allocator fault seam: an upload whose buffer cannot grow fails with
 * -ENOMEM, the server goes on, and nothing of it is visible or left. */
START_TEST(test_upload_enomem)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/f", "old content", 11);
	sd_upload *up;
	ck_assert_int_eq(t.api->upload_begin(u, "/f", 0, 0, 0644, &up), 0);
	char *big = pattern(300000, 1);
	sd__alloc_fail_after(1);
	int r = t.api->upload_write(up, big, 300000);
	sd__alloc_fail_after(0);
	ck_assert_int_eq(r, -ENOMEM);
	ck_assert_int_eq(t.api->upload_write(up, "x", 1), -ENOMEM); /* sticky */
	ck_assert_int_eq(t.api->upload_commit(up, NULL, NULL, NULL), -ENOMEM);
	size_t len;
	char *back = tu_get(&t, u, "/f", &len);
	ck_assert(len == 11 && memcmp(back, "old content", 11) == 0);
	free(back);
	ck_assert_int_eq(tu_temp_files(&t), 0);
	/* and the next upload works */
	tu_put(&t, u, "/f", big, 300000);
	back = tu_get(&t, u, "/f", &len);
	ck_assert(len == 300000 && memcmp(back, big, len) == 0);
	free(back);
	free(big);
	tu_core_close(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reader");
	TCase *tc = tcase_create("reader");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_local_store_reads);
	tcase_add_test(tc, test_memory_store_reads);
	tcase_add_test(tc, test_memory_store_resume_and_instant);
	tcase_add_test(tc, test_memory_store_damage);
	tcase_add_test(tc, test_memory_store_gc_fsck_recover);
	tcase_add_test(tc, test_upload_enomem);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
