/* test_instant.c - instant upload with and without a valid proof. */

#include "testutil.h"
#include "core/internal.h"

/* The client side of a challenge: SHA-256(nonce || ranges). */
static void answer(const sd_challenge *ch, const char *data, char out[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, ch->nonce, 64);
	for (int i = 0; i < ch->nranges; i++)
		EVP_DigestUpdate(md, data + ch->off[i], ch->len[i]);
	unsigned char d[32];
	unsigned int n;
	EVP_DigestFinal_ex(md, d, &n);
	EVP_MD_CTX_free(md);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

#define SIZE 500000

static char *data(void)
{
	char *p = malloc(SIZE);
	for (int i = 0; i < SIZE; i++)
		p[i] = (char)(i * 7 + i / 1000);
	return p;
}

START_TEST(test_unknown_sends_data)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	char sha[65];
	tu_sha_hex("nothing", 7, sha);
	sd_challenge ch;
	sd_stat st;
	ck_assert_int_eq(t.api->instant_begin(u, "/a", 0, sha, 7, &ch, &st), -SD_ESENDDATA);
	ck_assert_int_eq(t.api->instant_begin(u, "/a", 0, "xyz", 7, &ch, &st), -EINVAL);
	ck_assert_int_eq(t.api->stat(u, "/a", &st), -ENOENT);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_own_content_no_proof)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	char *d = data(), sha[65];
	tu_sha_hex(d, SIZE, sha);
	tu_put(&t, u, "/orig", d, SIZE);
	sd_challenge ch;
	sd_stat st;
	ck_assert_int_eq(t.api->instant_begin(u, "/copy/of/it", SD_UP_PARENTS, sha, SIZE, &ch, &st), 0);
	ck_assert_str_eq(st.sha256, sha);
	ck_assert_uint_eq(st.size, SIZE);
	/* wrong size for a known hash: send the data */
	ck_assert_int_eq(t.api->instant_begin(u, "/x", 0, sha, SIZE - 1, &ch, &st), -SD_ESENDDATA);
	ck_assert_int_eq(tu_blob_files(&t), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT refs FROM blobs"), 2);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op='instant'"), 1);
	/* uppercase hex is the same address */
	for (int i = 0; sha[i]; i++)
		if (sha[i] >= 'a' && sha[i] <= 'f')
			sha[i] = (char)(sha[i] - 'a' + 'A');
	ck_assert_int_eq(t.api->instant_begin(u, "/upper", 0, sha, SIZE, &ch, &st), 0);
	free(d);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_other_user_needs_proof)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice"), *b = tu_user(&t, "mallory");
	char *d = data(), sha[65];
	tu_sha_hex(d, SIZE, sha);
	tu_put(&t, a, "/secret", d, SIZE);

	/* knowing the hash alone is not enough */
	sd_challenge ch;
	sd_stat st;
	ck_assert_int_eq(t.api->instant_begin(b, "/stolen", 0, sha, SIZE, &ch, &st), -SD_ECHALLENGE);
	ck_assert_int_eq(ch.nranges, (int)t.conf.challenge_ranges);
	for (int i = 0; i < ch.nranges; i++)
		ck_assert(ch.off[i] + ch.len[i] <= SIZE);
	char bad[65];
	memset(bad, '0', 64);
	bad[64] = 0;
	ck_assert_int_eq(t.api->instant_prove(b, "/stolen", 0, sha, SIZE, ch.nonce, bad, &st),
			 -SD_EPROOF);
	ck_assert_int_eq(t.api->stat(b, "/stolen", &st), -ENOENT);
	/* the nonce was used up by the wrong answer: the right one now fails */
	char good[65];
	answer(&ch, d, good);
	ck_assert_int_eq(t.api->instant_prove(b, "/stolen", 0, sha, SIZE, ch.nonce, good, &st),
			 -SD_EPROOF);

	/* a fresh challenge answered right grants it */
	sd_challenge ch2;
	ck_assert_int_eq(t.api->instant_begin(b, "/mine", 0, sha, SIZE, &ch2, &st), -SD_ECHALLENGE);
	ck_assert_str_ne(ch2.nonce, ch.nonce);
	answer(&ch2, d, good);
	/* the answer is bound to the user, hash and size of the challenge */
	ck_assert_int_eq(t.api->instant_prove(a, "/mine", 0, sha, SIZE, ch2.nonce, good, &st),
			 -SD_EPROOF);
	sd_challenge ch3;
	ck_assert_int_eq(t.api->instant_begin(b, "/mine", 0, sha, SIZE, &ch3, &st), -SD_ECHALLENGE);
	answer(&ch3, d, good);
	ck_assert_int_eq(t.api->instant_prove(b, "/mine", 0, sha, SIZE, ch3.nonce, good, &st), 0);
	ck_assert_str_eq(st.sha256, sha);
	size_t len;
	char *back = tu_get(&t, b, "/mine", &len);
	ck_assert(len == SIZE && memcmp(back, d, SIZE) == 0);
	free(back);
	ck_assert_int_eq(tu_blob_files(&t), 1);
	/* from now on mallory references it: no proof needed */
	ck_assert_int_eq(t.api->instant_begin(b, "/again", 0, sha, SIZE, &ch, &st), 0);
	free(d);
	tu_core_close(&t);
}
END_TEST

static int64_t fake_now;
static int64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

START_TEST(test_challenge_expires)
{
	tu_core t;
	tu_core_open(&t, 0);
	fake_now = 1700000000000;
	sd__core_set_clock(t.c, fake_clock, NULL);
	sd_session *a = tu_user(&t, "alice"), *b = tu_user(&t, "bob");
	char *d = data(), sha[65], good[65];
	tu_sha_hex(d, SIZE, sha);
	tu_put(&t, a, "/f", d, SIZE);
	sd_challenge ch;
	sd_stat st;
	ck_assert_int_eq(t.api->instant_begin(b, "/g", 0, sha, SIZE, &ch, &st), -SD_ECHALLENGE);
	answer(&ch, d, good);
	fake_now += t.conf.challenge_ttl + 1;
	ck_assert_int_eq(t.api->instant_prove(b, "/g", 0, sha, SIZE, ch.nonce, good, &st), -SD_EPROOF);
	free(d);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_readonly_and_quota)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	char *d = data(), sha[65];
	tu_sha_hex(d, SIZE, sha);
	tu_put(&t, a, "/f", d, SIZE);
	/* a read-only login: a session made from a read-only token */
	char tok[SD_TOKEN_MAX];
	ck_assert_int_eq(t.api->token_create(t.c, "alice", SD_SCOPE_RO, 0, tok, NULL), 0);
	sd_session *ro = NULL;
	ck_assert_int_eq(t.api->auth_token(t.c, tok, "127.0.0.1", "test", &ro), 0);
	tu_keep(&t, ro);
	sd_challenge ch;
	sd_stat st;
	ck_assert_int_eq(t.api->instant_begin(ro, "/g", 0, sha, SIZE, &ch, &st), -EROFS);
	ck_assert_int_eq(t.api->user_set_quota(t.c, "alice", SIZE + 10), 0);
	ck_assert_int_eq(t.api->instant_begin(a, "/g", 0, sha, SIZE, &ch, &st), -EDQUOT);
	ck_assert_int_eq(t.api->stat(a, "/g", &st), -ENOENT);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT used_bytes FROM users"), SIZE);
	free(d);
	tu_core_close(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("instant");
	TCase *tc = tcase_create("instant");
	tcase_add_test(tc, test_unknown_sends_data);
	tcase_add_test(tc, test_own_content_no_proof);
	tcase_add_test(tc, test_other_user_needs_proof);
	tcase_add_test(tc, test_challenge_expires);
	tcase_add_test(tc, test_readonly_and_quota);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
