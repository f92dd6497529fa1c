/*
 * ftp_charset.c - file names between the client's charset and UTF-8.
 *
 * The engine speaks UTF-8 only. Legacy clients (old Windows tools in a
 * GBK/GB18030 or Shift-JIS locale) send names in their own encoding. With
 * fallback_charset set, a session that sends a name that is not valid
 * UTF-8 becomes a legacy session: from then on its names are read in
 * fallback_charset first (short GB18030 names can happen to be valid
 * UTF-8), and names go back to it in that charset. OPTS UTF8 OFF/ON
 * switches explicitly.
 *
 * This file changes only the encoding of an argument, never its meaning:
 * the converted argument goes to the engine as is, and the engine's
 * resolver refuses what it must (NUL, control characters, backslashes).
 * Where a reply must show a path, ftp_name_resolve asks the engine for
 * its canonical form (api->resolve); nothing here joins or folds paths.
 *
 * The iconv descriptors are per session (iconv_t keeps shift state and is
 * not thread-safe) and opened on first use.
 */
#include "ftp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Open both directions if a fallback charset is configured. 0 or -1. */
static int open_charsets(ftp_session *s)
{
	const char *cs = s->srv->conf->fallback_charset;
	if (!cs || !*cs)
		return -1;
	if (s->cd_in == (iconv_t)-1)
		s->cd_in = iconv_open("UTF-8", cs);
	if (s->cd_out == (iconv_t)-1)
		s->cd_out = iconv_open(cs, "UTF-8");
	return s->cd_in != (iconv_t)-1 && s->cd_out != (iconv_t)-1 ? 0 : -1;
}

/* Convert n bytes of in with cd into a malloc'd NUL-terminated string;
 * NULL if the input is not valid in the source charset. n is bounded by
 * max_line, so the output size is server-bounded too. */
static char *convert(iconv_t cd, const char *in, size_t n)
{
	size_t cap = n * 4 + 16;
	char *out = sd_xmalloc(cap);
	(void)iconv(cd, NULL, NULL, NULL, NULL);
	char *ip = (char *)in, *op = out;
	size_t il = n, ol = cap - 1;
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 ||
	    iconv(cd, NULL, NULL, &op, &ol) == (size_t)-1) {
		free(out);
		return NULL;
	}
	*op = '\0';
	return out;
}

int ftp_name_in(ftp_session *s, const char *arg, char **out)
{
	size_t alen = strlen(arg);
	int valid = sd_utf8_valid(arg, alen);
	if (!valid || s->legacy) {
		char *conv = NULL;
		if (open_charsets(s) == 0)
			conv = convert(s->cd_in, arg, alen);
		if (conv) {
			s->legacy = 1;
			*out = conv;
			return 0;
		}
		if (!valid)
			return -EILSEQ;
	}
	*out = sd_xstrdup(arg);
	return 0;
}

int ftp_name_resolve(ftp_session *s, const char *arg, char *out, size_t outlen)
{
	char *u;
	int r = ftp_name_in(s, arg, &u);
	if (r < 0)
		return r;
	r = s->api->resolve(s->sess, u, strlen(u), out, outlen);
	free(u);
	return r;
}

const char *ftp_name_out(ftp_session *s, const char *name, char **tofree)
{
	*tofree = NULL;
	if (!s->legacy || s->cd_out == (iconv_t)-1)
		return name;
	char *conv = convert(s->cd_out, name, strlen(name));
	if (!conv)
		return name; /* not representable: send UTF-8 as it is */
	*tofree = conv;
	return conv;
}

int ftp_charset_set_legacy(ftp_session *s, int legacy)
{
	if (legacy && open_charsets(s) < 0)
		return -1;
	s->legacy = legacy;
	return 0;
}

void ftp_charset_close(ftp_session *s)
{
	if (s->cd_in != (iconv_t)-1)
		iconv_close(s->cd_in);
	if (s->cd_out != (iconv_t)-1)
		iconv_close(s->cd_out);
	s->cd_in = s->cd_out = (iconv_t)-1;
}
