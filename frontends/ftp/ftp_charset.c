/*
 * ftp_charset.c - file names between the client's charset and UTF-8.
 *
 * The engine speaks UTF-8 only. Legacy clients (old Windows tools in a
 * GBK/GB18030 or Shift-JIS locale) send names in their own encoding. With
 * fallback_charset set, each name argument is read by this rule (the same
 * words are in docs/ftp.md, "File names and character sets"):
 *
 *  1. OPTS UTF8 ON pins the session to UTF-8: a name that is not valid
 *     UTF-8 is refused (553). OPTS UTF8 OFF pins it to fallback_charset: a
 *     name that is not valid in it is refused (553). Names go back to the
 *     client in the pinned charset.
 *  2. Otherwise (no OPTS UTF8) the session decides name by name, from the
 *     evidence each one gives:
 *     a. pure ASCII reads the same in both: no evidence;
 *     b. valid in only one of the two encodings: read in that one, and it
 *        becomes the session's reading for ambiguous names;
 *     c. valid in neither: refused (553), never stored under a changed name;
 *     d. valid in both (short GB18030 names can be valid UTF-8: the GB18030
 *        bytes of "gb目录" are the UTF-8 of "gbĿ¼"): the session's reading
 *        from (b) if there is one; else the reading that names an existing
 *        file or directory, when exactly one does; else the reading whose
 *        characters are plausible (letters of one script, ideographs, kana,
 *        hangul, common punctuation) when only one is; else UTF-8.
 *     Names go back in the charset of the last non-ASCII name read.
 *  3. A name read from fallback_charset must convert back to the very same
 *     bytes (round trip): GB18030 has 4-byte forms that decode to the same
 *     character as a 2-byte form, so two different names would otherwise
 *     become one. Such a name is refused (553).
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
#include <stdio.h>
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

/* Convert n bytes of in with cd into a malloc'd NUL-terminated string (its
 * length in *outlen); NULL if the input is not valid in the source
 * charset. n is bounded by max_line, so the output size is server-bounded
 * too. */
static char *convert(iconv_t cd, const char *in, size_t n, size_t *outlen)
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
	if (outlen)
		*outlen = (size_t)(op - out);
	return out;
}

/* arg (n bytes) read in the fallback charset, as malloc'd UTF-8, only if
 * it converts back to the very same bytes (rule 3); NULL otherwise. */
static char *from_legacy(ftp_session *s, const char *arg, size_t n)
{
	size_t ulen, blen;
	char *u = convert(s->cd_in, arg, n, &ulen);
	if (!u)
		return NULL;
	char *back = convert(s->cd_out, u, ulen, &blen);
	int same = back && blen == n && memcmp(back, arg, n) == 0;
	free(back);
	if (!same) {
		free(u);
		return NULL;
	}
	return u;
}

/* The next code point of valid UTF-8 at *p (advanced). */
static unsigned next_cp(const unsigned char **p)
{
	const unsigned char *q = *p;
	unsigned c = q[0];
	if (c < 0x80) {
		*p += 1;
		return c;
	}
	if (c < 0xe0) {
		*p += 2;
		return (c & 0x1f) << 6 | (q[1] & 0x3f);
	}
	if (c < 0xf0) {
		*p += 3;
		return (c & 0x0f) << 12 | (q[1] & 0x3f) << 6 | (q[2] & 0x3f);
	}
	*p += 4;
	return (c & 0x07) << 18 | (q[1] & 0x3f) << 12 | (q[2] & 0x3f) << 6 | (q[3] & 0x3f);
}

/* The script group of a non-ASCII code point for the plausibility test:
 * 0 = implausible in a file name (symbols of Latin-1, IPA, combining
 * marks, private use, anything not listed), 1 = neutral (punctuation,
 * emoji: go with anything), 2 = the CJK group (ideographs, kana, hangul,
 * full-width forms: mixed with any one alphabet in real names), 3.. = one
 * alphabet each. */
static int cp_group(unsigned cp)
{
	if ((cp >= 0xc0 && cp <= 0x24f && cp != 0xd7 && cp != 0xf7) || (cp >= 0x1e00 && cp <= 0x1eff))
		return 3; /* Latin letters */
	if ((cp >= 0x370 && cp <= 0x3ff) || (cp >= 0x1f00 && cp <= 0x1fff))
		return 4; /* Greek */
	if (cp >= 0x400 && cp <= 0x52f)
		return 5; /* Cyrillic */
	if (cp >= 0x590 && cp <= 0x5ff)
		return 6; /* Hebrew */
	if (cp >= 0x600 && cp <= 0x6ff)
		return 7; /* Arabic */
	if (cp >= 0x900 && cp <= 0xe7f)
		return 8 + (int)((cp - 0x900) >> 7); /* Indic scripts, Thai: one per block */
	if ((cp >= 0x3000 && cp <= 0x30ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
	    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7af) ||
	    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xff00 && cp <= 0xffef))
		return 2;
	if ((cp >= 0x2000 && cp <= 0x206f) || (cp >= 0x1f300 && cp <= 0x1faff) || cp == 0xa9 ||
	    cp == 0xae || cp == 0xb7)
		return 1;
	return 0;
}

/* Does this UTF-8 text look like a real name? Every non-ASCII character
 * in a group, and at most one alphabet besides the CJK group. */
static int plausible(const char *utf8)
{
	const unsigned char *p = (const unsigned char *)utf8;
	int alphabet = 0;
	while (*p) {
		unsigned cp = next_cp(&p);
		if (cp < 0x80)
			continue;
		int g = cp_group(cp);
		if (g == 0)
			return 0;
		if (g >= 3) {
			if (alphabet && alphabet != g)
				return 0;
			alphabet = g;
		}
	}
	return 1;
}

static int all_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* Does the path name something in the session's view? */
static int exists(ftp_session *s, const char *utf8)
{
	sd_stat st;
	return s->api->stat(s->sess, utf8, &st) == 0;
}

/* The reading of a name valid in both encodings (rule 2d). Takes both
 * strings; returns the one chosen, frees the other. */
static char *choose(ftp_session *s, char *as_utf8, char *as_legacy)
{
	int legacy;
	if (s->cs == FTP_CS_UTF8 || s->cs == FTP_CS_LEGACY) {
		legacy = s->cs == FTP_CS_LEGACY;
	} else {
		int eu = exists(s, as_utf8), el = exists(s, as_legacy);
		if (eu != el)
			legacy = el;
		else
			legacy = plausible(as_legacy) && !plausible(as_utf8);
		s->legacy = legacy; /* replies follow the last reading (rule 2) */
	}
	if (legacy) {
		free(as_utf8);
		return as_legacy;
	}
	free(as_legacy);
	return as_utf8;
}

int ftp_name_in(ftp_session *s, const char *arg, char **out)
{
	size_t alen = strlen(arg);
	int valid = sd_utf8_valid(arg, alen);
	s->cs_refused = FTP_CS_AUTO;
	if (s->cs_pinned == FTP_CS_UTF8 || open_charsets(s) < 0 || all_ascii(arg)) {
		/* UTF-8 only: pinned, or no fallback charset, or nothing to tell */
		if (!valid) {
			s->cs_refused = s->cs_pinned == FTP_CS_UTF8 ? FTP_CS_UTF8 : FTP_CS_NONE;
			return -EILSEQ;
		}
		*out = sd_xstrdup(arg);
		return 0;
	}
	char *legacy = from_legacy(s, arg, alen);
	if (s->cs_pinned == FTP_CS_LEGACY) {
		if (!legacy) {
			s->cs_refused = FTP_CS_LEGACY;
			return -EILSEQ;
		}
		*out = legacy;
		return 0;
	}
	if (!valid && !legacy) { /* 2c */
		s->cs_refused = FTP_CS_AUTO;
		return -EILSEQ;
	}
	if (!valid || !legacy) { /* 2b: this name decides */
		s->cs = legacy ? FTP_CS_LEGACY : FTP_CS_UTF8;
		s->legacy = legacy != NULL;
		*out = legacy ? legacy : sd_xstrdup(arg);
		return 0;
	}
	*out = choose(s, sd_xstrdup(arg), legacy); /* 2d */
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
	char *conv = convert(s->cd_out, name, strlen(name), NULL);
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
	s->cs = s->cs_pinned = legacy ? FTP_CS_LEGACY : FTP_CS_UTF8;
	return 0;
}

const char *ftp_charset_refusal(ftp_session *s)
{
	const char *cs = s->srv->conf->fallback_charset;
	switch (s->cs_refused) {
	case FTP_CS_UTF8:
		return "file name is not valid UTF-8 (this session said OPTS UTF8 ON)";
	case FTP_CS_LEGACY:
		snprintf(s->cs_words, sizeof s->cs_words,
			 "file name is not valid %s (this session said OPTS UTF8 OFF)", cs);
		return s->cs_words;
	case FTP_CS_AUTO:
		snprintf(s->cs_words, sizeof s->cs_words,
			 "file name is valid neither as UTF-8 nor as %s; nothing was stored", cs);
		return s->cs_words;
	default:
		return "file name is not valid UTF-8 (and no fallback charset is configured)";
	}
}

void ftp_charset_close(ftp_session *s)
{
	if (s->cd_in != (iconv_t)-1)
		iconv_close(s->cd_in);
	if (s->cd_out != (iconv_t)-1)
		iconv_close(s->cd_out);
	s->cd_in = s->cd_out = (iconv_t)-1;
}
