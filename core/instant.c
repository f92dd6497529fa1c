/*
 * instant.c - instant upload (DESIGN path 2, FSTS "second transmission").
 *
 * The client states (path, sha256, size) before sending data:
 *   - no blob with that address and size          -> -SD_ESENDDATA
 *   - the user already references the blob (a version of one of their
 *     nodes, live or in history)                  -> link it now, 0
 *   - otherwise                                   -> -SD_ECHALLENGE
 * Knowing a hash must not be enough to obtain someone else's content, so
 * the challenge asks for SHA-256(nonce_hex || bytes of k server-chosen
 * ranges), with a fresh 256-bit nonce each time. A nonce is answered once
 * (right or wrong) and expires after challenge_ttl. Outstanding challenges
 * are capped; the oldest is dropped first.
 *
 * Linking runs sd__tree_put inside a write transaction that re-reads the
 * blob row: if the cleaner removed it meanwhile the answer is
 * -SD_ESENDDATA, never a node pointing at nothing (I3).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"
#include "util.h"

#define MAX_CHALLENGES 4096

struct sd_chal {
	sd_chal *next;
	sd_challenge ch;
	int64_t uid;
	char sha[SD_SHA256_HEX];
	uint64_t size;
	int64_t expires;
};

SD_SQL(q_user_refs_blob, "SELECT 1 FROM versions v JOIN nodes n ON n.id = v.node "
			 "WHERE v.blob = ?1 AND n.owner = ?2 LIMIT 1");

static int lookup(sd_core *c, int64_t uid, const char *sha, uint64_t size, int *owned)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	int64_t bid = 0;
	int r = sd__blob_find(d, sha, size, &bid) == 0 ? 0 : -SD_ESENDDATA;
	*owned = 0;
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_user_refs_blob);
		sqlite3_bind_int64(st, 1, bid);
		sqlite3_bind_int64(st, 2, uid);
		*owned = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_reset(st);
	}
	sd_db_read_end(c->db, d);
	return r;
}

static int link_blob(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		     const char *sha, uint64_t size, sd_stat *st)
{
	sd_put put = {.u = u, .npath = npath, .flags = flags, .size = size, .op = "instant",
		      .st = st};
	int r = sd__commit_stored(c, sha, size, &put);
	if (r == 0) {
		sd__metric_add(c, "storaged_instant_uploads_total", NULL, 1);
		sd__metric_add(c, "storaged_uploads_deduplicated_total", NULL, 1);
		sd__metric_add(c, "storaged_bytes_saved_total", NULL, (int64_t)size);
	}
	return r;
}

static int check_args(sd_core *c, const sd_principal *u, const char *np, unsigned flags,
		      const char *sha)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (!sd_is_sha256_hex(sha))
		return -EINVAL;
	if (strcmp(np, "/") == 0)
		return -EISDIR;
	/* the rights first (team.c T7): a user who may not write there learns
	 * nothing about which contents are stored. Other errors come from the
	 * commit, as before. */
	sd_node n;
	int exists;
	r = sd__tree_put_target(c, u, np, flags, &n, &exists);
	return r == -EACCES ? r : 0;
}

static void lower(const char *in, char out[SD_SHA256_HEX])
{
	for (int i = 0; i < 64; i++)
		out[i] = (char)(in[i] >= 'A' && in[i] <= 'F' ? in[i] - 'A' + 'a' : in[i]);
	out[64] = '\0';
}

int sd__instant_begin(sd_core *c, const sd_principal *u, const char *np, unsigned flags,
		      const char *sha256, uint64_t size, sd_challenge *ch, sd_stat *st)
{
	char sha[SD_SHA256_HEX];
	int r = check_args(c, u, np, flags, sha256);
	if (r < 0)
		return r;
	lower(sha256, sha);
	int owned;
	if ((r = lookup(c, u->id, sha, size, &owned)) < 0)
		return r;
	if (owned)
		return link_blob(c, u, np, flags, sha, size, st);

	/* a fresh challenge */
	sd_chal *k = sd_xcalloc(1, sizeof *k);
	unsigned char nonce[32];
	randombytes_buf(nonce, sizeof nonce);
	sd_hex(nonce, sizeof nonce, k->ch.nonce);
	uint64_t rlen = (uint64_t)c->conf->challenge_range_size;
	if (rlen > size)
		rlen = size;
	int nr = size == 0 ? 0 : (int)c->conf->challenge_ranges;
	if (nr > SD_CHALLENGE_MAX)
		nr = SD_CHALLENGE_MAX;
	k->ch.nranges = nr;
	for (int i = 0; i < nr; i++) {
		uint64_t span = size - rlen + 1, rnd;
		randombytes_buf(&rnd, sizeof rnd);
		k->ch.off[i] = rnd % span;
		k->ch.len[i] = rlen;
	}
	k->uid = u->id;
	memcpy(k->sha, sha, sizeof sha);
	k->size = size;
	k->expires = sd__now_ms(c) + c->conf->challenge_ttl;
	*ch = k->ch;

	pthread_mutex_lock(&c->chal_lock);
	k->next = c->chals;
	c->chals = k;
	c->nchals++;
	if (c->nchals > MAX_CHALLENGES) {
		/* drop the oldest (the list is newest first) */
		sd_chal **pp = &c->chals;
		while ((*pp)->next)
			pp = &(*pp)->next;
		free(*pp);
		*pp = NULL;
		c->nchals--;
	}
	pthread_mutex_unlock(&c->chal_lock);
	return -SD_ECHALLENGE;
}

/* Remove and return the challenge with this nonce (NULL if none). */
static sd_chal *take(sd_core *c, const char *nonce)
{
	int64_t now = sd__now_ms(c);
	sd_chal *found = NULL;
	pthread_mutex_lock(&c->chal_lock);
	for (sd_chal **pp = &c->chals; *pp;) {
		sd_chal *k = *pp;
		if (!found && strcmp(k->ch.nonce, nonce) == 0) {
			*pp = k->next;
			c->nchals--;
			found = k;
			continue;
		}
		if (k->expires <= now) { /* prune expired ones on the way */
			*pp = k->next;
			c->nchals--;
			free(k);
			continue;
		}
		pp = &k->next;
	}
	pthread_mutex_unlock(&c->chal_lock);
	if (found && found->expires <= now) {
		free(found);
		found = NULL;
	}
	return found;
}

/* The expected answer: SHA-256(nonce_hex || ranges...) over the blob. */
static int expected_proof(sd_core *c, const sd_chal *k, char hex[SD_SHA256_HEX])
{
	sd_reader *rd;
	int rr = sd__reader_open_hex(c, k->sha, k->size, &rd);
	if (rr < 0)
		return rr == -SD_ECORRUPT ? -SD_ESENDDATA : rr;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
	if (r == 0)
		EVP_DigestUpdate(md, k->ch.nonce, 64);
	char *buf = sd_xmalloc(1 << 16);
	for (int i = 0; r == 0 && i < k->ch.nranges; i++) {
		uint64_t off = k->ch.off[i], left = k->ch.len[i];
		while (left > 0) {
			size_t want = left < (1 << 16) ? (size_t)left : (1 << 16);
			ssize_t n = sd__reader_pread(rd, buf, want, off);
			if (n <= 0) {
				r = n < 0 ? (int)n : -SD_ECORRUPT;
				break;
			}
			EVP_DigestUpdate(md, buf, (size_t)n);
			off += (uint64_t)n;
			left -= (uint64_t)n;
		}
	}
	if (r == 0) {
		unsigned char dg[32];
		unsigned int dl;
		EVP_DigestFinal_ex(md, dg, &dl);
		sd_hex(dg, 32, hex);
	}
	free(buf);
	EVP_MD_CTX_free(md);
	sd__reader_close(rd);
	return r;
}

int sd__instant_prove(sd_core *c, const sd_principal *u, const char *np, unsigned flags,
		      const char *sha256, uint64_t size, const char *nonce, const char *proof,
		      sd_stat *st)
{
	char sha[SD_SHA256_HEX];
	int r = check_args(c, u, np, flags, sha256);
	if (r < 0)
		return r;
	if (!nonce || !proof || !sd_is_sha256_hex(proof) || strlen(nonce) != 64)
		return -SD_EPROOF;
	lower(sha256, sha);
	sd_chal *k = take(c, nonce);
	if (!k)
		return -SD_EPROOF;
	r = 0;
	if (k->uid != u->id || strcmp(k->sha, sha) != 0 || k->size != size)
		r = -SD_EPROOF;
	char want[SD_SHA256_HEX], got[SD_SHA256_HEX];
	if (r == 0)
		r = expected_proof(c, k, want);
	if (r == 0) {
		lower(proof, got);
		if (sodium_memcmp(want, got, 64) != 0)
			r = -SD_EPROOF;
	}
	free(k);
	if (r == -SD_EPROOF) {
		sd_log(SD_LOG_WARN, "instant", "event=proof_refused user=%s sha256=%s", u->name, sha);
		return r;
	}
	if (r < 0)
		return r;
	return link_blob(c, u, np, flags, sha, size, st);
}

void sd__chal_free_all(sd_core *c)
{
	sd_chal *k = c->chals;
	while (k) {
		sd_chal *n = k->next;
		free(k);
		k = n;
	}
	c->chals = NULL;
	c->nchals = 0;
}
