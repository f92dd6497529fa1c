/* test_http_ranges.c - the HTTP handle API's leaf parsers
 * (frontends/http/ranges.c): strict Range sets (coalescing, 416 and 400
 * cases, numbers at and past 2^63-1), multipart/byteranges boundaries, and
 * the streaming body parser fed in every possible split of its input. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "testutil.h"

static int ranges(const char *h, uint64_t size, http_range *rg, int *n)
{
	return sd__http_ranges_strict(h, size, rg, HTTP_MAX_PARTS, n);
}

START_TEST(test_strict_ranges)
{
	http_range rg[HTTP_MAX_PARTS];
	int n = 0;
	ck_assert_int_eq(ranges("bytes=0-9", 100, rg, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert(rg[0].first == 0 && rg[0].last == 9);
	ck_assert_int_eq(ranges("bytes=90-", 100, rg, &n), 0);
	ck_assert(n == 1 && rg[0].first == 90 && rg[0].last == 99);
	ck_assert_int_eq(ranges("bytes=-10", 100, rg, &n), 0);
	ck_assert(n == 1 && rg[0].first == 90 && rg[0].last == 99);
	ck_assert_int_eq(ranges("bytes=-1000", 100, rg, &n), 0); /* suffix longer than the file */
	ck_assert(n == 1 && rg[0].first == 0 && rg[0].last == 99);
	ck_assert_int_eq(ranges("bytes=50-1000", 100, rg, &n), 0); /* end clamped */
	ck_assert(n == 1 && rg[0].last == 99);
	/* sorted, overlapping and adjacent merged, disjoint kept */
	ck_assert_int_eq(ranges("Bytes = 60-69 , 0-9,5-19,20-24, 80-", 100, rg, &n), -EINVAL);
	ck_assert_int_eq(ranges("bytes= 60-69 , 0-9,5-19,20-24, 80-", 100, rg, &n), 0);
	ck_assert_int_eq(n, 3);
	ck_assert(rg[0].first == 0 && rg[0].last == 24);
	ck_assert(rg[1].first == 60 && rg[1].last == 69);
	ck_assert(rg[2].first == 80 && rg[2].last == 99);
	ck_assert_int_eq(ranges("bytes=10-19,0-9", 100, rg, &n), 0);
	ck_assert(n == 1 && rg[0].first == 0 && rg[0].last == 19);
	/* unsatisfiable */
	ck_assert_int_eq(ranges("bytes=100-", 100, rg, &n), -ERANGE);
	ck_assert_int_eq(ranges("bytes=0-1,100-200", 100, rg, &n), -ERANGE);
	ck_assert_int_eq(ranges("bytes=-0", 100, rg, &n), -ERANGE);
	ck_assert_int_eq(ranges("bytes=0-", 0, rg, &n), -ERANGE);
	ck_assert_int_eq(ranges("bytes=-5", 0, rg, &n), -ERANGE);
	ck_assert_int_eq(ranges("bytes=0-,0-", 100, rg, &n), -ERANGE);        /* 200 > 100 */
	ck_assert_int_eq(ranges("bytes=0-59,50-99", 100, rg, &n), -ERANGE);   /* 110 > 100 */
	ck_assert_int_eq(ranges("bytes=0-49,50-99", 100, rg, &n), 0);         /* exactly 100 */
	ck_assert_int_eq(ranges("bytes=9223372036854775807-", 100, rg, &n), -ERANGE);
	/* malformed */
	const char *bad[] = {"", "bytes", "bytes=", "items=0-1", "bytes=a-1", "bytes=1-a",
			     "bytes=-", "bytes=5-4", "bytes=0-1,", "bytes=,0-1", "bytes=0-1;2-3",
			     "bytes=0--1", "bytes=9223372036854775808-", "bytes=0-9223372036854775808",
			     "bytes=0-99999999999999999999999", NULL};
	for (int i = 0; bad[i]; i++)
		ck_assert_msg(ranges(bad[i], 100, rg, &n) == -EINVAL, "malformed: '%s'", bad[i]);
	/* at most max ranges */
	sd_buf b = SD_BUF_INIT;
	sd_buf_puts(&b, "bytes=0-0");
	for (int i = 1; i < HTTP_MAX_PARTS; i++)
		sd_buf_printf(&b, ",%d-%d", i * 2, i * 2);
	ck_assert_int_eq(ranges(b.data, 1000, rg, &n), 0);
	ck_assert_int_eq(n, HTTP_MAX_PARTS);
	sd_buf_puts(&b, ",999-999");
	ck_assert_int_eq(ranges(b.data, 1000, rg, &n), -EINVAL);
	sd_buf_free(&b);
}
END_TEST

START_TEST(test_boundary)
{
	char b[HTTP_MPW_BOUNDARY_MAX + 1];
	ck_assert_int_eq(sd__http_mp_boundary("multipart/byteranges; boundary=abc", b, sizeof b), 1);
	ck_assert_str_eq(b, "abc");
	ck_assert_int_eq(sd__http_mp_boundary("Multipart/ByteRanges;charset=x;BOUNDARY=\"a b;c\"", b,
					      sizeof b), 1);
	ck_assert_str_eq(b, "a b;c");
	ck_assert_int_eq(sd__http_mp_boundary("application/octet-stream", b, sizeof b), 0);
	ck_assert_int_eq(sd__http_mp_boundary("multipart/byterangesx; boundary=a", b, sizeof b), 0);
	ck_assert_int_eq(sd__http_mp_boundary("multipart/byteranges", b, sizeof b), -EINVAL);
	ck_assert_int_eq(sd__http_mp_boundary("multipart/byteranges; boundary=", b, sizeof b), -EINVAL);
	ck_assert_int_eq(sd__http_mp_boundary("multipart/byteranges; boundary=\"abc", b, sizeof b),
			 -EINVAL);
	char longer[200];
	snprintf(longer, sizeof longer, "multipart/byteranges; boundary=%071d", 0);
	ck_assert_int_eq(sd__http_mp_boundary(longer, b, sizeof b), -EINVAL);
}
END_TEST

/* Pieces land in a 256-byte image. */
typedef struct image {
	char bytes[256];
	size_t written;
	int fail_at; /* piece calls before one fails (-ENOSPC); -1 never */
} image;

static int into_image(void *arg, const char *data, size_t len, uint64_t off)
{
	image *im = arg;
	if (im->fail_at == 0)
		return -ENOSPC;
	if (im->fail_at > 0)
		im->fail_at--;
	ck_assert_uint_le(off + len, sizeof im->bytes);
	memcpy(im->bytes + off, data, len);
	im->written += len;
	return 0;
}

/* Feed body in chunks of sizes cycling through `step`; returns the first
 * error, or sd__http_mpw_end's. */
static int feed_all(const char *body, size_t len, size_t step, image *im, const char **why)
{
	http_mpw *p = sd__http_mpw_new("B0undary");
	ck_assert_ptr_nonnull(p);
	memset(im->bytes, '.', sizeof im->bytes);
	im->written = 0;
	int r = 0;
	for (size_t at = 0; at < len && r == 0; at += step) {
		size_t k = len - at < step ? len - at : step;
		r = sd__http_mpw_feed(p, body + at, k, into_image, im);
	}
	*why = NULL;
	if (r == -EINVAL)
		*why = sd__http_mpw_error(p);
	if (r == 0)
		r = sd__http_mpw_end(p, why);
	sd__http_mpw_free(p);
	return r;
}

static const char good[] =
    "preamble text\r\n"
    "--B0undary\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 10-14/*\r\n\r\n"
    "hello\r\n"
    "--B0undary  \r\ncontent-range:bytes 0-3/256\r\n\r\n"
    "\r\n--"
    "\r\n--B0undary\r\nContent-Range: bytes 200-200/*\r\n\r\n"
    "!\r\n"
    "--B0undary--\r\nepilogue --B0undary junk";

START_TEST(test_body_every_split)
{
	for (size_t step = 1; step <= sizeof good; step++) {
		image im = {.fail_at = -1};
		const char *why;
		int r = feed_all(good, sizeof good - 1, step, &im, &why);
		ck_assert_msg(r == 0, "step %zu: %s", step, why ? why : "?");
		ck_assert_uint_eq(im.written, 10);
		ck_assert(memcmp(im.bytes + 10, "hello", 5) == 0);
		ck_assert(memcmp(im.bytes, "\r\n--", 4) == 0); /* part bytes that look like a delimiter */
		ck_assert_int_eq(im.bytes[200], '!');
		ck_assert_int_eq(im.bytes[4], '.');
	}
}
END_TEST

START_TEST(test_body_errors)
{
	struct {
		const char *body;
		size_t written;
	} bad[] = {
	    {"--B0undary\r\n\r\nabc\r\n--B0undary--\r\n", 0},                   /* no Content-Range */
	    {"--B0undary\r\nContent-Range: bytes 3-1/*\r\n\r\n", 0},            /* b < a */
	    {"--B0undary\r\nContent-Range: bytes 0-1\r\n\r\nab\r\n--B0undary--", 0},  /* no total */
	    {"--B0undary\r\nContent-Range: items 0-1/*\r\n\r\nab\r\n--B0undary--", 0},
	    {"--B0undary\r\nContent-Range: bytes 0-2/*\r\n\r\nabcdef\r\n--B0undary--", 3}, /* longer */
	    {"--B0undary\r\nContent-Range: bytes 0-2/*\r\n\r\nab\r\n--B0undary--", 3},   /* shorter */
	    {"--B0undary\r\nContent-Range: bytes 0-2/*\r\n\r\nabc", 3},                 /* unclosed */
	    {"--B0undary\r\nContent-Range: bytes 0-2/*\r\n\r\nab", 2},                  /* cut in a part */
	    {"--B0undary\r\nContent-Range: bytes 0-2/*\r\n\r\nabc\r\n--B0undary", 3},   /* no -- */
	    {"--B0undaryX\r\nContent-Range: bytes 0-2/*\r\n\r\nabc\r\n--B0undary--", 0},
	    {"--B0undary\r\nContent-Range: bytes 9223372036854775806-9223372036854775807/*\r\n\r\n", 0},
	    {"", 0},
	    {"no boundary at all", 0},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		for (size_t step = 1; step <= strlen(bad[i].body) + 1; step++) {
			image im = {.fail_at = -1};
			const char *why;
			int r = feed_all(bad[i].body, strlen(bad[i].body), step, &im, &why);
			ck_assert_msg(r == -EINVAL, "case %zu step %zu: accepted", i, step);
			ck_assert_ptr_nonnull(why);
			ck_assert_msg(im.written == bad[i].written, "case %zu step %zu: wrote %zu", i,
				      step, im.written);
		}
	/* a head longer than the limit */
	sd_buf b = SD_BUF_INIT;
	sd_buf_puts(&b, "--B0undary\r\n");
	for (int i = 0; i < 1000; i++)
		sd_buf_puts(&b, "X-Pad: 0123456789\r\n");
	image im = {.fail_at = -1};
	const char *why;
	ck_assert_int_eq(feed_all(b.data, b.len, 4096, &im, &why), -EINVAL);
	sd_buf_free(&b);
	/* the callback's error stops the parser and comes back as it is */
	im.fail_at = 1;
	ck_assert_int_eq(feed_all(good, sizeof good - 1, sizeof good, &im, &why), -ENOSPC);
	ck_assert_uint_eq(im.written, 5);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http_ranges");
	TCase *tc = tcase_create("http_ranges");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_strict_ranges);
	tcase_add_test(tc, test_boundary);
	tcase_add_test(tc, test_body_every_split);
	tcase_add_test(tc, test_body_errors);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
