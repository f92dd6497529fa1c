/*
 * exec.c - the only commands an SSH client may run here: sha256sum, md5sum
 * and sha1sum, as rclone (and SFTPGo's users) run them over an SSH "exec"
 * channel beside the SFTP one to compare files without downloading them
 * (docs/sftp.md).
 *
 *   sha256sum [FILE...]   from the content address the engine keeps: no
 *                         byte is read
 *   md5sum, sha1sum       computed by reading the content through a reader
 *                         at each request, as md5sum on an OpenSSH server
 *                         does; these hashes are not kept
 * With no FILE the command hashes what the client sends on the channel
 * (rclone's probe: "md5sum" with empty input must answer the hash of
 * nothing). Output is coreutils': "<hex>  <name>" per file, "-" for the
 * input; a name that is not a readable file gets "<cmd>: <name>: <why>" on
 * stderr and exit status 1.
 *
 * The command line is split like a POSIX shell splits words (blanks;
 * '...'; "..." with \" \\ \$ \` escapes; \x outside quotes), and any
 * unquoted shell operator or expansion ($ ` | & ; < > ( ) * ? [ { ~) is
 * refused: nothing here is a shell. Every name goes through the engine's
 * resolver for the session's user, so it cannot leave the user's tree.
 * Anything else (another command, a shell) is refused with a message on
 * stderr and exit status 1, as before.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sftp_int.h"
#include "util.h"

#define EXEC_MAX_ARGS 64
#define EXEC_READ_CHUNK (256 * 1024)

/* Split cmd into argv (malloc'd strings, NULL-terminated). 0; -1 when it
 * holds a shell operator or expansion, an unclosed quote, or too many
 * words. */
static int split_words(const char *cmd, char **argv, int *argc)
{
	sd_buf w = SD_BUF_INIT;
	int n = 0, inword = 0, bad = 0;
	const char *p = cmd;
	for (;;) {
		char ch = *p;
		if (ch == '\0' || ch == ' ' || ch == '\t' || ch == '\n') {
			if (inword) {
				if (n >= EXEC_MAX_ARGS) {
					bad = 1;
					break;
				}
				argv[n++] = sd_buf_steal(&w);
				inword = 0;
			}
			if (ch == '\0')
				break;
			p++;
			continue;
		}
		inword = 1;
		if (ch == '\\') {
			if (!p[1]) {
				bad = 1;
				break;
			}
			sd_buf_append(&w, p + 1, 1);
			p += 2;
		} else if (ch == '\'') {
			const char *e = strchr(p + 1, '\'');
			if (!e) {
				bad = 1;
				break;
			}
			sd_buf_append(&w, p + 1, (size_t)(e - p - 1));
			p = e + 1;
		} else if (ch == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
					p++;
				else if (*p == '$' || *p == '`')
					bad = 1; /* an expansion inside "..." */
				sd_buf_append(&w, p, 1);
				p++;
			}
			if (*p != '"') {
				bad = 1;
				break;
			}
			p++;
		} else if (strchr("$`|&;<>()*?[{~#", ch)) {
			bad = 1;
			break;
		} else {
			sd_buf_append(&w, p, 1);
			p++;
		}
		if (bad)
			break;
		if (!w.data)
			sd_buf_puts(&w, ""); /* '' is an empty word */
	}
	sd_buf_free(&w);
	argv[n] = NULL;
	*argc = n;
	if (bad) {
		for (int i = 0; i < n; i++)
			free(argv[i]);
		*argc = 0;
		argv[0] = NULL;
		return -1;
	}
	return 0;
}

static const EVP_MD *digest_of(const char *name)
{
	if (strcmp(name, "sha256sum") == 0)
		return EVP_sha256();
	if (strcmp(name, "md5sum") == 0)
		return EVP_md5();
	if (strcmp(name, "sha1sum") == 0)
		return EVP_sha1();
	return NULL;
}

static void put(ssh_channel ch, sd_buf *b, int err)
{
	if (!b->len)
		return;
	if (err)
		ssh_channel_write_stderr(ch, b->data, (uint32_t)b->len);
	else
		ssh_channel_write(ch, b->data, (uint32_t)b->len);
	sd_buf_reset(b);
}

static void hexdg(const unsigned char *d, unsigned n, char *out)
{
	sd_hex(d, n, out);
}

/* The hash of one file of the session's tree into hex: 0, or -errno. */
static int hash_file(struct conn *c, const EVP_MD *md, int sha256, const char *name,
		     char hex[EVP_MAX_MD_SIZE * 2 + 1])
{
	const sd_core_api *api = c->srv->api;
	sd_stat st;
	int rc = api->stat(c->sess, name, &st);
	if (rc < 0)
		return rc;
	if (st.kind == SD_KIND_DIR)
		return -EISDIR;
	/* opened even for sha256sum: whoever may not read the file (the
	 * engine's rules for open_read) gets no hash of it either */
	sd_reader *rd;
	if ((rc = api->open_read(c->sess, name, &rd, &st)) < 0)
		return rc;
	if (sha256 && st.sha256[0]) {
		snprintf(hex, 65, "%s", st.sha256); /* the content address: nothing to read */
		api->reader_close(rd);
		return 0;
	}
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	char *buf = malloc(EXEC_READ_CHUNK);
	if (!x || !buf || EVP_DigestInit_ex(x, md, NULL) != 1)
		rc = -ENOMEM;
	uint64_t off = 0;
	while (rc == 0 && off < st.size) {
		ssize_t n = api->reader_pread(rd, buf, EXEC_READ_CHUNK, off);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -SD_ECORRUPT;
			break;
		}
		EVP_DigestUpdate(x, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (rc == 0) {
		unsigned char dg[EVP_MAX_MD_SIZE];
		unsigned int dl = 0;
		EVP_DigestFinal_ex(x, dg, &dl);
		hexdg(dg, dl, hex);
	}
	EVP_MD_CTX_free(x);
	free(buf);
	api->reader_close(rd);
	return rc;
}

/* The hash of what the client sends until EOF (bounded by the idle
 * timeout). 0 or -errno. */
static int hash_input(struct conn *c, ssh_channel ch, const EVP_MD *md,
		      char hex[EVP_MAX_MD_SIZE * 2 + 1])
{
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	char *buf = malloc(65536);
	int rc = (!x || !buf || EVP_DigestInit_ex(x, md, NULL) != 1) ? -ENOMEM : 0;
	int64_t last = sd_mono_ms();
	while (rc == 0) {
		int n = ssh_channel_read_timeout(ch, buf, 65536, 0, 1000);
		if (n > 0) {
			EVP_DigestUpdate(x, buf, (size_t)n);
			last = sd_mono_ms();
		} else if (n == SSH_ERROR) {
			rc = -EIO;
		} else if (ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch)) {
			break;
		} else if (sd_mono_ms() - last > c->srv->conf->idle_timeout || c->srv->stopping) {
			rc = -ETIMEDOUT;
		}
	}
	if (rc == 0) {
		unsigned char dg[EVP_MAX_MD_SIZE];
		unsigned int dl = 0;
		EVP_DigestFinal_ex(x, dg, &dl);
		hexdg(dg, dl, hex);
	}
	EVP_MD_CTX_free(x);
	free(buf);
	return rc;
}

static const char *why(int rc)
{
	switch (-rc) {
	case ENOENT: return "No such file or directory";
	case EISDIR: return "Is a directory";
	case ENOTDIR: return "Not a directory";
	case EACCES: return "Permission denied";
	case EINVAL: case ENAMETOOLONG: return "Invalid file name";
	default: return "Input/output error";
	}
}

int sd__sftp_exec(struct conn *c, ssh_channel ch, const char *cmd)
{
	struct srv *s = c->srv;
	char *argv[EXEC_MAX_ARGS + 1];
	int argc = 0, status = 0;
	sd_buf out = SD_BUF_INIT, err = SD_BUF_INIT;
	const EVP_MD *md = NULL;
	char lp[256];
	if (split_words(cmd, argv, &argc) < 0 || argc == 0 || !(md = digest_of(argv[0]))) {
		sd_buf_puts(&err, SFTP_REFUSE_MSG);
		put(ch, &err, 1);
		SLOG(s, SD_LOG_INFO, "event=refused user=%s addr=%s what=exec cmd=\"%s\"", c->user,
		     c->addr, sd__sftp_lp(lp, sizeof lp, cmd));
		for (int i = 0; i < argc; i++)
			free(argv[i]);
		return 1;
	}
	int sha256 = strcmp(argv[0], "sha256sum") == 0;
	int files = 0, opts_done = 0;
	char hex[EVP_MAX_MD_SIZE * 2 + 1];
	for (int i = 1; i < argc; i++) {
		if (!opts_done && strcmp(argv[i], "--") == 0) {
			opts_done = 1;
			continue;
		}
		if (!opts_done && argv[i][0] == '-' && argv[i][1]) {
			sd_buf_printf(&err, "%s: option %s is not supported here\n", argv[0],
				      sd__sftp_lp(lp, sizeof lp, argv[i]));
			status = 1;
			continue;
		}
		files++;
		int rc = strcmp(argv[i], "-") == 0 ? hash_input(c, ch, md, hex)
						   : hash_file(c, md, sha256, argv[i], hex);
		if (rc == -SD_EAUTH) {
			sd_buf_printf(&err, "%s: authentication no longer valid\n", argv[0]);
			status = 1;
			break;
		}
		if (rc < 0) {
			sd_buf_printf(&err, "%s: %s: %s\n", argv[0], argv[i], why(rc));
			status = 1;
		} else {
			sd_buf_printf(&out, "%s  %s\n", hex, argv[i]);
		}
		if (out.len > 32768)
			put(ch, &out, 0);
	}
	if (!files && status == 0) {
		int rc = hash_input(c, ch, md, hex);
		if (rc < 0) {
			sd_buf_printf(&err, "%s: -: %s\n", argv[0], why(rc));
			status = 1;
		} else {
			sd_buf_printf(&out, "%s  -\n", hex);
		}
	}
	put(ch, &out, 0);
	put(ch, &err, 1);
	SLOG(s, SD_LOG_INFO, "event=exec user=%s addr=%s cmd=%s files=%d status=%d", c->user, c->addr,
	     argv[0], files, status);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	sd_buf_free(&out);
	sd_buf_free(&err);
	return status;
}
