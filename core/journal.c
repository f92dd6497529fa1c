/*
 * journal.c - the append-only log of every mutation (Cage's journal), made
 * tamper-evident by a hash chain and complete enough to replay.
 *
 * Design notes
 * ------------
 * A journal row is written inside the transaction of the change it
 * records, and its failure fails that transaction (I5): there is no change
 * without its row. Login failures and abandoned handles, which change
 * nothing else, are journalled in a transaction of their own.
 *
 * Each row has:
 *   seq     1, 2, 3 ...: the previous row's seq + 1 (never reused, also
 *           after pruning: the anchor below keeps the count going)
 *   ts      ms since the epoch of the change
 *   user, op, path, detail   as before (detail is text for people)
 *   args    NULL or a JSON object: what a replay needs that user, op and
 *           path do not say (content address and size, modes, mtimes,
 *           rename target ...); the list is in docs/architecture.md
 *   prev    the hash of the row before it (32 bytes)
 *   hash    SHA-256 of the row's canonical byte form (32 bytes)
 *
 * The canonical byte form of a row (version 1), hashed with SHA-256:
 *
 *   "storaged-journal-1\n"          19 bytes, ASCII (the format version)
 *   prev                            32 bytes
 *   seq                             8 bytes, big-endian two's complement
 *   ts                              8 bytes, big-endian two's complement
 *   user, op, path, detail, args    in this order, each either
 *                                     0x00                  (NULL), or
 *                                     0x01, len, bytes      (text: len is
 *                                     4 bytes big-endian, the number of
 *                                     bytes as stored, no terminator)
 *
 * Every field is length-prefixed or fixed-size, so two different rows
 * never have the same byte form.
 *
 * The args text is compact JSON: members in the order written, no
 * whitespace, integers in decimal, strings as raw UTF-8 in which only ",
 * \ and the control characters \b \f \n \r \t are escaped, in those short
 * forms (any other control character, and any byte of invalid UTF-8,
 * becomes '?'). That is what jansson's JSON_COMPACT and python's
 * json.dumps(args, separators=(",", ":"), ensure_ascii=False) print for
 * the parsed object, so a row of `storagectl journal export` can be
 * checked without the database.
 *
 * The anchor (table journal_anchor, one row) is where the chain starts:
 * (0, 32 zero bytes) on a new database; the seq and hash of the last row
 * the cleaner pruned after that (sd__journal_prune, called by gc.c, moves
 * it in the transaction that deletes the rows). Pruning removes only a
 * prefix of the journal (rows in seq order while ts < the cutoff), so what
 * remains always chains from the anchor.
 *
 * Invariants
 *  J1. A row's prev is the hash of the row with seq - 1, or the anchor's
 *      hash when that row was pruned; its seq is that row's seq + 1. Both
 *      are read inside the writer's transaction, so concurrent writers
 *      (the daemon and storagectl) chain one after the other.
 *  J2. hash = SHA-256(canonical form), computed before the INSERT.
 *  J3. The anchor and the deletion of the rows it stands for change in one
 *      transaction.
 *  J4. Rows written before migration 0002 (no prev, no hash) are chained
 *      by the first engine open after it (sd__journal_seal), in one write
 *      transaction, with args derived from their detail where it can be.
 *      Edits made before that are not evident.
 *
 * verify recomputes the chain from the anchor in one read transaction and
 * names the first row where it breaks: a missing seq (a row removed), a
 * prev that is not the previous row's hash, a hash that is not the row's
 * (the row edited). A forger who recomputes every hash after an edit is
 * not detected by verify alone (there is no key): SECURITY.md says what
 * the chain proves and what it does not.
 *
 * Replication (replica.c) applies a source's rows to a copy through the
 * engine's own calls. To make "the copy is at source row N" part of the
 * transaction that applied row N, replica.c arms a mark for its thread
 * (sd__journal_mark); the next journal row written by that thread also
 * writes the mark into the copy's `replica` table, in the same
 * transaction. Only the thread that armed it is affected.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

static const char JDOMAIN[] = "storaged-journal-1\n";

SD_SQL(q_last, "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1");
SD_SQL(q_anchor, "SELECT seq, hash FROM journal_anchor WHERE id = 1");
SD_SQL(q_insert, "INSERT INTO journal(seq, ts, user, op, path, detail, args, prev, hash) "
		 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
SD_SQL(q_journal_list, "SELECT seq, ts, user, op, path, detail FROM journal WHERE ts >= ?1 "
		       "AND (?2 IS NULL OR user = ?2) AND seq > ?3 ORDER BY seq LIMIT 1000");
SD_SQL(q_rows, "SELECT seq, ts, user, op, path, detail, args, prev, hash FROM journal "
	       "WHERE seq > ?1 ORDER BY seq LIMIT ?2");
SD_SQL(q_mark, "INSERT OR REPLACE INTO replica(id, source, seq, hash, updated) "
	       "VALUES (1, ?1, ?2, ?3, ?4)");
SD_SQL(q_meta_get, "SELECT value FROM meta WHERE key = ?1");
SD_SQL(q_meta_set, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)");

/* ------------------------------------------------------------ the hash */

static void put_be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

void sd__journal_hash(const unsigned char prev[32], int64_t seq, int64_t ts,
		      const char *const fields[SD_JFIELDS], unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		abort(); /* out of memory: as sd_xmalloc */
	unsigned char num[16];
	put_be(num, (uint64_t)seq, 8);
	put_be(num + 8, (uint64_t)ts, 8);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, JDOMAIN, sizeof JDOMAIN - 1);
	EVP_DigestUpdate(ctx, prev, 32);
	EVP_DigestUpdate(ctx, num, 16);
	for (int i = 0; i < SD_JFIELDS; i++) {
		unsigned char tag[5] = {0};
		if (!fields[i]) {
			EVP_DigestUpdate(ctx, tag, 1);
			continue;
		}
		size_t len = strlen(fields[i]);
		tag[0] = 1;
		put_be(tag + 1, (uint64_t)len, 4);
		EVP_DigestUpdate(ctx, tag, 5);
		EVP_DigestUpdate(ctx, fields[i], len);
	}
	unsigned int n = 32;
	EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
}

/* A 32-byte hash column into out (zeros when NULL or the wrong size);
 * returns 1 when the column held a hash. */
static int col_hash(sqlite3_stmt *st, int col, unsigned char out[32])
{
	const void *b = sqlite3_column_blob(st, col);
	if (b && sqlite3_column_bytes(st, col) == 32) {
		memcpy(out, b, 32);
		return 1;
	}
	memset(out, 0, 32);
	return 0;
}

static char *col_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? sd_xstrdup((const char *)t) : NULL;
}

/* ------------------------------------------------------------ args */

/* A JSON string in the one form args use (the args text, design notes).
 * Paths never hold what becomes '?' (the resolver refuses control
 * characters and invalid UTF-8); only a key's comment could. */
static void jstr(sd_buf *b, const char *s)
{
	static const char shorts[] = "\bb\ff\nn\rr\tt\"\"\\\\";
	int valid = sd_utf8_valid(s, strlen(s));
	sd_buf_puts(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		const char *e = *p < 0x20 || *p == '"' || *p == '\\' ? strchr(shorts, *p) : NULL;
		if (e && (e - shorts) % 2 == 0)
			sd_buf_printf(b, "\\%c", e[1]);
		else if (*p < 0x20 || (*p >= 0x80 && !valid))
			sd_buf_puts(b, "?");
		else
			sd_buf_append(b, p, 1);
	}
	sd_buf_puts(b, "\"");
}

static void jkey(sd_buf *b, const char *key)
{
	sd_buf_puts(b, b->len ? "," : "{");
	jstr(b, key);
	sd_buf_puts(b, ":");
}

void sd__jargs_str(sd_buf *b, const char *key, const char *val)
{
	jkey(b, key);
	jstr(b, val);
}

void sd__jargs_int(sd_buf *b, const char *key, int64_t v)
{
	jkey(b, key);
	sd_buf_printf(b, "%lld", (long long)v);
}

void sd__jargs_mode(sd_buf *b, const char *key, uint32_t mode)
{
	char m[16];
	snprintf(m, sizeof m, "%04o", (unsigned)(mode & 07777));
	sd__jargs_str(b, key, m);
}

/* ------------------------------------------------------------ appending */

/* The thread's replication mark (replica.c), or NULL. */
static _Thread_local sd_jmark *tl_mark;

void sd__journal_mark(sd_jmark *m)
{
	if (m)
		m->fired = 0;
	tl_mark = m;
}

int sd__journal_mark_store(sd_dbc *d, const sd_jmark *m, int64_t now)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_mark);
	sqlite3_bind_text(st, 1, m->source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, m->seq);
	sqlite3_bind_blob(st, 3, m->hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	return sd_db_exec_stmt(st);
}

/* The newest row's (seq, hash), else the anchor's, inside a transaction. */
static int chain_head(sd_dbc *d, int64_t *seq, unsigned char hash[32])
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_last);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		col_hash(st, 1, hash); /* a row without one chains on zeros; verify names it */
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sd_db_errno(rc);
	st = sd_db_stmt(d, &q_anchor);
	*seq = 0;
	memset(hash, 0, 32);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		col_hash(st, 1, hash);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sd_db_errno(rc);
}

int sd__journal_row(sd_dbc *d, int64_t ts, const char *user, const char *op, const char *path,
		    const char *detail, const char *args)
{
	int64_t seq;
	unsigned char prev[32], hash[32];
	int r = chain_head(d, &seq, prev);
	if (r < 0)
		return r;
	seq++;
	const char *f[SD_JFIELDS] = {user, op, path, detail, args};
	sd__journal_hash(prev, seq, ts, f, hash);
	sqlite3_stmt *st = sd_db_stmt(d, &q_insert);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_text(st, 3, user, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, op, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, detail, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 7, args, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 8, prev, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 9, hash, 32, SQLITE_TRANSIENT);
	if ((r = sd_db_exec_stmt(st)) < 0)
		return r;
	if (tl_mark && !tl_mark->fired) {
		if ((r = sd__journal_mark_store(d, tl_mark, ts)) < 0)
			return r;
		tl_mark->fired = 1;
	}
	return 0;
}

int sd__journal_args(sd_dbc *d, int64_t ts, const char *user, const char *op, const char *path,
		     const char *detail, sd_buf *args)
{
	if (args && args->len)
		sd_buf_puts(args, "}");
	int r = sd__journal_row(d, ts, user, op, path, detail, args && args->len ? args->data : NULL);
	if (args)
		sd_buf_free(args);
	return r;
}

int sd__journal(sd_dbc *d, int64_t ts, const char *user, const char *op, const char *path,
		const char *detail)
{
	return sd__journal_row(d, ts, user, op, path, detail, NULL);
}

int sd__journal_alone(sd_core *c, const char *user, const char *op, const char *detail)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int r = sd__journal(d, sd__now_ms(c), user, op, NULL, detail);
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

/* ------------------------------------------------------------ meta */

int sd__meta_get(sd_dbc *d, const char *key, char *out, size_t outlen)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_meta_get);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), r = -ENOENT;
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(out, outlen, "%s", t ? (const char *)t : "");
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = sd_db_errno(rc);
	}
	sqlite3_reset(st);
	return r;
}

int sd__meta_set(sd_dbc *d, const char *key, const char *value)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_meta_set);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	return sd_db_exec_stmt(st);
}

int sd_core_store_id(sd_core *c, char out[SD_STORE_ID_MAX])
{
	sd_dbc *d = sd_db_read_begin(c->db);
	int r = sd__meta_get(d, "store_id", out, SD_STORE_ID_MAX);
	sd_db_read_end(c->db, d);
	return r;
}

/* ------------------------------------------------------------ sealing */

SD_SQL(q_unsealed, "SELECT seq, ts, user, op, path, detail, args, hash FROM journal "
		   "WHERE seq > ?1 ORDER BY seq LIMIT 1000");
SD_SQL(q_seal, "UPDATE journal SET args = ?2, prev = ?3, hash = ?4 WHERE seq = ?1");
SD_SQL(q_blob_sha, "SELECT sha256 FROM blobs WHERE id = ?1");

/* The args a row written before migration 0002 would have had, as far as
 * its detail tells (NULL when it tells nothing). */
static char *legacy_args(sd_dbc *d, const char *op, const char *detail)
{
	if (!op || !detail)
		return NULL;
	sd_buf a = SD_BUF_INIT;
	unsigned long long size, mode;
	long long id, v;
	if ((!strcmp(op, "write") || !strcmp(op, "instant") || !strcmp(op, "copy")) &&
	    sscanf(detail, "size=%llu blob=%lld", &size, &id) == 2) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_blob_sha);
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			sd__jargs_str(&a, "sha256", (const char *)sqlite3_column_text(st, 0));
			sd__jargs_int(&a, "size", (int64_t)size);
		}
		sqlite3_reset(st);
	} else if ((!strcmp(op, "rmdir") || !strcmp(op, "delete")) && !strcmp(detail, "recursive")) {
		sd__jargs_int(&a, "recursive", 1);
	} else if (!strcmp(op, "rename") && !strncmp(detail, "to=", 3)) {
		sd__jargs_str(&a, "to", detail + 3);
	} else if (!strcmp(op, "chmod") && sscanf(detail, "mode=%llo", &mode) == 1) {
		sd__jargs_mode(&a, "mode", (uint32_t)mode);
	} else if (!strcmp(op, "mtime") && sscanf(detail, "mtime=%lld", &v) == 1) {
		sd__jargs_int(&a, "mtime", v);
	} else if (!strcmp(op, "user_quota") && sscanf(detail, "quota=%lld", &v) == 1) {
		sd__jargs_int(&a, "quota", v);
	} else if ((!strcmp(op, "user_admin") || !strcmp(op, "user_add")) &&
		   sscanf(detail, "admin=%lld", &v) == 1) {
		sd__jargs_int(&a, "admin", v);
	} else if (!strcmp(op, "token_revoke") && sscanf(detail, "id=%lld", &v) == 1) {
		sd__jargs_int(&a, "id", v);
	}
	if (!a.len)
		return NULL;
	sd_buf_puts(&a, "}");
	return sd_buf_steal(&a);
}

typedef struct srow {
	int64_t seq, ts;
	char *f[SD_JFIELDS];
	int sealed;
	unsigned char hash[32];
} srow;

int sd__journal_seal(sd_core *c)
{
	char v[16] = "";
	sd_dbc *d = sd_db_read_begin(c->db);
	int r = sd__meta_get(d, "journal_sealed", v, sizeof v);
	sd_db_read_end(c->db, d);
	if (r < 0 || strcmp(v, "0") != 0)
		return r == -ENOENT ? 0 : r;

	/* one transaction: a row appended meanwhile by another process must
	 * chain on the sealed rows, not on unsealed ones (J1, J4) */
	if (!(d = sd_db_write_begin(c->db)))
		return -EIO;
	if ((r = sd__meta_get(d, "journal_sealed", v, sizeof v)) < 0 || strcmp(v, "0") != 0) {
		sd_db_write_end(c->db, d, 0);
		return r == -ENOENT ? 0 : r;
	}
	int64_t after = 0, nsealed = 0;
	unsigned char prev[32];
	memset(prev, 0, 32);
	sqlite3_stmt *st = sd_db_stmt(d, &q_anchor);
	if (sqlite3_step(st) == SQLITE_ROW) {
		after = sqlite3_column_int64(st, 0);
		col_hash(st, 1, prev);
	}
	sqlite3_reset(st);
	srow *rows = sd_xcalloc(1000, sizeof *rows);
	for (int n = 1000; r == 0 && n == 1000;) {
		n = 0;
		st = sd_db_stmt(d, &q_unsealed);
		sqlite3_bind_int64(st, 1, after);
		while (sqlite3_step(st) == SQLITE_ROW) {
			srow *w = &rows[n++];
			w->seq = sqlite3_column_int64(st, 0);
			w->ts = sqlite3_column_int64(st, 1);
			for (int k = 0; k < SD_JFIELDS; k++)
				w->f[k] = col_dup(st, 2 + k);
			w->sealed = col_hash(st, 7, w->hash);
		}
		sqlite3_reset(st);
		for (int i = 0; i < n; i++) {
			srow *w = &rows[i];
			if (!w->sealed) {
				if (!w->f[4])
					w->f[4] = legacy_args(d, w->f[1], w->f[3]);
				sd__journal_hash(prev, w->seq, w->ts, (const char *const *)w->f, w->hash);
				st = sd_db_stmt(d, &q_seal);
				sqlite3_bind_int64(st, 1, w->seq);
				sqlite3_bind_text(st, 2, w->f[4], -1, SQLITE_STATIC);
				sqlite3_bind_blob(st, 3, prev, 32, SQLITE_STATIC);
				sqlite3_bind_blob(st, 4, w->hash, 32, SQLITE_STATIC);
				if (r == 0)
					r = sd_db_exec_stmt(st);
				nsealed++;
			}
			memcpy(prev, w->hash, 32);
			after = w->seq;
			for (int k = 0; k < SD_JFIELDS; k++)
				free(w->f[k]);
		}
	}
	free(rows);
	if (r == 0)
		r = sd__meta_set(d, "journal_sealed", "1");
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r || cr)
		return r ? r : cr;
	sd_log(SD_LOG_INFO, "journal", "event=journal_sealed rows=%lld", (long long)nsealed);
	return 0;
}

/* ------------------------------------------------------------ reading */

void sd__jrows_free(sd_jrow *rows, int n)
{
	for (int i = 0; i < n; i++)
		for (int k = 0; k < SD_JFIELDS; k++)
			free(rows[i].f[k]);
}

int sd__journal_page(sd_core *c, int64_t after, int limit, sd_jrow *rows)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_rows);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, limit);
	int n = 0, rc;
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		sd_jrow *w = &rows[n++];
		w->seq = sqlite3_column_int64(st, 0);
		w->ts = sqlite3_column_int64(st, 1);
		for (int k = 0; k < SD_JFIELDS; k++)
			w->f[k] = col_dup(st, 2 + k);
		w->has_prev = col_hash(st, 7, w->prev);
		w->has_hash = col_hash(st, 8, w->hash);
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	return n;
}

int sd__journal_anchor(sd_core *c, int64_t *seq, unsigned char hash[32], int64_t *head)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_anchor);
	*seq = 0;
	memset(hash, 0, 32);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		col_hash(st, 1, hash);
	}
	sqlite3_reset(st);
	if (head) {
		unsigned char h[32];
		*head = 0;
		chain_head(d, head, h);
	}
	sd_db_read_end(c->db, d);
	return 0;
}

int sd_core_journal_export(sd_core *c, int64_t after, sd_journal_rec_cb cb, void *arg)
{
	int count = 0, stop = 0;
	sd_jrow *rows = sd_xcalloc(500, sizeof *rows);
	while (!stop) {
		int n = sd__journal_page(c, after, 500, rows);
		for (int i = 0; i < n; i++) {
			sd_jrow *w = &rows[i];
			sd_journal_rec e = {w->seq, w->ts, w->f[0], w->f[1], w->f[2], w->f[3], w->f[4],
					    "", ""};
			if (w->has_prev)
				sd_hex(w->prev, 32, e.prev);
			if (w->has_hash)
				sd_hex(w->hash, 32, e.hash);
			if (!stop) {
				count++;
				if (cb && cb(arg, &e))
					stop = 1;
			}
			after = w->seq;
		}
		sd__jrows_free(rows, n);
		if (n < 500)
			break;
	}
	free(rows);
	return count;
}

/* ------------------------------------------------------------ verify */

int sd_core_journal_verify(sd_core *c, sd_journal_verify *out)
{
	memset(out, 0, sizeof *out);
	unsigned char prev[32], h[32];
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_anchor);
	int anchored = 0;
	memset(prev, 0, 32);
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->anchor_seq = sqlite3_column_int64(st, 0);
		anchored = col_hash(st, 1, prev);
	}
	sqlite3_reset(st);
	sd_hex(prev, 32, out->anchor_hash);
	int64_t expect = out->anchor_seq + 1;
	if (!anchored) {
		out->bad_seq = expect;
		snprintf(out->reason, sizeof out->reason,
			 "the chain's anchor (journal_anchor) is missing or damaged");
	}
	/* one read transaction: a consistent snapshot, also against a
	 * cleaner pruning meanwhile */
	sqlite3 *db = sd_db_handle(d);
	int rc = sqlite3_prepare_v2(db, "SELECT seq, ts, user, op, path, detail, args, prev, hash "
				    "FROM journal ORDER BY seq", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		sd_db_read_end(c->db, d);
		return sd_db_errno(rc);
	}
	while (!out->bad_seq && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0), ts = sqlite3_column_int64(st, 1);
		const char *f[SD_JFIELDS];
		for (int k = 0; k < SD_JFIELDS; k++)
			f[k] = (const char *)sqlite3_column_text(st, 2 + k);
		unsigned char rprev[32], rhash[32];
		int has_prev = col_hash(st, 7, rprev), has_hash = col_hash(st, 8, rhash);
		if (!out->first)
			out->first = seq;
		if (seq != expect) {
			out->bad_seq = seq;
			if (seq > expect)
				snprintf(out->reason, sizeof out->reason,
					 "rows %lld..%lld are missing (removed)", (long long)expect,
					 (long long)seq - 1);
			else
				snprintf(out->reason, sizeof out->reason,
					 "seq %lld is not after the chain's start %lld", (long long)seq,
					 (long long)expect - 1);
			break;
		}
		if (!has_prev || !has_hash) {
			out->bad_seq = seq;
			snprintf(out->reason, sizeof out->reason,
				 "row has no hash (written outside the engine)");
			break;
		}
		if (memcmp(rprev, prev, 32) != 0) {
			out->bad_seq = seq;
			snprintf(out->reason, sizeof out->reason,
				 "prev is not the hash of row %lld (that row was rewritten with a new "
				 "hash, or this one edited)",
				 (long long)seq - 1);
			break;
		}
		sd__journal_hash(prev, seq, ts, f, h);
		if (memcmp(h, rhash, 32) != 0) {
			out->bad_seq = seq;
			snprintf(out->reason, sizeof out->reason,
				 "the row does not match its hash (edited)");
			break;
		}
		memcpy(prev, rhash, 32);
		out->rows++;
		out->last = seq;
		expect = seq + 1;
	}
	sqlite3_finalize(st);
	sd_db_read_end(c->db, d);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sd_db_errno(rc);
	sd_hex(prev, 32, out->head_hash);
	return 0;
}

/* ------------------------------------------------------------ pruning */

SD_SQL(q_prefix, "SELECT seq, ts, hash FROM journal ORDER BY seq LIMIT 5000");
SD_SQL(q_anchor_set, "INSERT OR REPLACE INTO journal_anchor(id, seq, hash, ts, pruned) "
		     "VALUES (1, ?1, ?2, ?3, ?4)");
SD_SQL(q_prune, "DELETE FROM journal WHERE seq <= ?1");

int sd__journal_prune(sd_core *c, int64_t cutoff, int64_t *pruned)
{
	for (;;) {
		sd_dbc *d = sd_db_write_begin(c->db);
		if (!d)
			return -EIO;
		sqlite3_stmt *st = sd_db_stmt(d, &q_prefix);
		int64_t last = 0, last_ts = 0, n = 0;
		int stopped = 0;
		unsigned char h[32];
		memset(h, 0, 32);
		/* the prefix of rows (seq order) older than cutoff (J3) */
		while (sqlite3_step(st) == SQLITE_ROW) {
			int64_t ts = sqlite3_column_int64(st, 1);
			if (ts >= cutoff) {
				stopped = 1;
				break;
			}
			last = sqlite3_column_int64(st, 0);
			last_ts = ts;
			col_hash(st, 2, h);
			n++;
		}
		sqlite3_reset(st);
		int r = 0;
		if (n > 0) {
			st = sd_db_stmt(d, &q_anchor_set);
			sqlite3_bind_int64(st, 1, last);
			sqlite3_bind_blob(st, 2, h, 32, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, last_ts);
			sqlite3_bind_int64(st, 4, sd__now_ms(c));
			r = sd_db_exec_stmt(st);
			if (r == 0) {
				st = sd_db_stmt(d, &q_prune);
				sqlite3_bind_int64(st, 1, last);
				r = sd_db_exec_stmt(st);
			}
		}
		int cr = sd_db_write_end(c->db, d, r == 0 && n > 0);
		if (r || cr)
			return r ? r : cr;
		*pruned += n;
		if (stopped || n < 5000)
			return 0;
	}
}

/* ------------------------------------------------------------ listing */

typedef struct row {
	int64_t seq, ts;
	char *f[4]; /* user, op, path, detail */
} row;

int sd__journal_list(sd_core *c, int64_t since_ms, const char *user, int64_t after,
		     sd_journal_cb cb, void *arg)
{
	int count = 0, stop = 0;
	row *rows = sd_xcalloc(1000, sizeof *rows);
	while (!stop) {
		/* copy a page out, then call back with no transaction open */
		int n = 0;
		sd_dbc *d = sd_db_read_begin(c->db);
		sqlite3_stmt *st = sd_db_stmt(d, &q_journal_list);
		sqlite3_bind_int64(st, 1, since_ms);
		if (user)
			sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, after);
		while (sqlite3_step(st) == SQLITE_ROW) {
			row *r = &rows[n++];
			r->seq = sqlite3_column_int64(st, 0);
			r->ts = sqlite3_column_int64(st, 1);
			for (int k = 0; k < 4; k++)
				r->f[k] = col_dup(st, 2 + k);
		}
		sqlite3_reset(st);
		sd_db_read_end(c->db, d);
		for (int i = 0; i < n; i++) {
			sd_journal_entry e = {rows[i].seq, rows[i].ts, rows[i].f[0], rows[i].f[1],
					      rows[i].f[2], rows[i].f[3]};
			if (!stop) {
				count++;
				if (cb && cb(arg, &e))
					stop = 1;
			}
			after = rows[i].seq;
			for (int k = 0; k < 4; k++)
				free(rows[i].f[k]);
		}
		if (n < 1000)
			break;
	}
	free(rows);
	return count;
}
