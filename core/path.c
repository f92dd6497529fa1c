/*
 * path.c - the one resolver: the confinement boundary of every protocol.
 *
 * A client's path argument names a node of the session's view and nothing
 * else. It is resolved textually, before any lookup:
 *   - an argument starting with '/' starts at the root, any other at the
 *     working directory (itself already resolved);
 *   - empty components (repeated or trailing slashes) and "." vanish;
 *   - ".." drops the previous component, and at the root stays at the
 *     root, like chroot: "/../../etc" is "/etc" inside the user's tree;
 *   - every component of the argument is checked, also those a later ".."
 *     drops: NUL, invalid UTF-8, ASCII control characters and backslashes
 *     are refused (-EINVAL), a component over SD_NAME_MAX or a result over
 *     SD_PATH_MAX (or the caller's buffer) is -ENAMETOOLONG.
 * The output is "/" or "/c1/c2..." with no empty, "." or ".." component, so
 * resolving an output again gives it back unchanged.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Check one component; 0, -EINVAL or -ENAMETOOLONG. */
static int check_component(const char *p, size_t n)
{
	if (n > SD_NAME_MAX)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			return -EINVAL;
	}
	return 0;
}

int sd__resolve(const char *cwd, const char *arg, size_t len, char *out, size_t outlen)
{
	if (!arg || outlen < 2)
		return -EINVAL;
	if (memchr(arg, '\0', len))
		return -EINVAL;
	if (len > SD_PATH_MAX)
		return -ENAMETOOLONG;
	if (!sd_utf8_valid(arg, len))
		return -EINVAL;
	size_t cap = outlen - 1 < SD_PATH_MAX ? outlen - 1 : SD_PATH_MAX; /* bytes before NUL */
	size_t o = 0;
	if (len == 0 || arg[0] != '/') {
		/* start at the working directory ("/" adds nothing) */
		size_t cl = cwd ? strlen(cwd) : 0;
		if (cl > 1) {
			if (cl > cap)
				return -ENAMETOOLONG;
			memcpy(out, cwd, cl);
			o = cl;
		}
	}
	size_t i = 0;
	while (i < len) {
		while (i < len && arg[i] == '/')
			i++;
		if (i >= len)
			break;
		size_t s = i;
		while (i < len && arg[i] != '/')
			i++;
		size_t n = i - s;
		int r = check_component(arg + s, n);
		if (r < 0)
			return r;
		if (n == 1 && arg[s] == '.')
			continue;
		if (n == 2 && arg[s] == '.' && arg[s + 1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--; /* the '/' before the dropped component */
			continue;
		}
		if (o + 1 + n > cap)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, arg + s, n);
		o += n;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

int sd__path_norm(const char *in, char *out, size_t outlen)
{
	if (!in)
		return -EINVAL;
	size_t n = strnlen(in, SD_PATH_MAX + 1);
	if (n > SD_PATH_MAX)
		return -ENAMETOOLONG;
	return sd__resolve("/", in, n, out, outlen);
}
