/*
 * path.c - user path normalisation: the confinement boundary.
 *
 * A user path names a node below the user's root and nothing else. There
 * is no ".." resolution at all: a ".." component is refused outright rather
 * than clamped, so "a/../../etc" is an error, not "/etc". The output is
 * "/" or "/c1/c2..." with no empty, "." or ".." components.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

int sd__utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		int len;
		unsigned cp;
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return 0;
		if (i + (size_t)len > n)
			return 0;
		for (int k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += (size_t)len;
	}
	return 1;
}

int sd__path_norm(const char *in, char *out, size_t outlen)
{
	if (!in || outlen < 2)
		return -EINVAL;
	size_t inlen = strnlen(in, SD_PATH_MAX + 1);
	if (inlen > SD_PATH_MAX)
		return -ENAMETOOLONG;
	if (!sd__utf8_valid(in, inlen))
		return -EINVAL;
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *start = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - start);
		if (len == 1 && start[0] == '.')
			continue;
		if (len == 2 && start[0] == '.' && start[1] == '.')
			return -EINVAL;
		if (len > SD_NAME_MAX)
			return -ENAMETOOLONG;
		for (size_t i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)start[i];
			if (ch < 0x20 || ch == 0x7f || ch == '\\')
				return -EINVAL;
		}
		if (o + 1 + len + 1 > outlen)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, start, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

int sd__normalize(const char *path, char *out, size_t outlen)
{
	return sd__path_norm(path, out, outlen);
}
