/*
 * timefmt.c - see timefmt.h.
 */
#include "timefmt.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static int num(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int sd_time_parse(const char *s, int64_t *ms)
{
	if (!s)
		return -EINVAL;
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
	if (num(&p, 4, &y) || *p++ != '-' || num(&p, 2, &mo) || *p++ != '-' || num(&p, 2, &d))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (num(&p, 2, &h))
			return -EINVAL;
		char sep = *p;
		if (sep != ':' && sep != '-')
			return -EINVAL;
		p++;
		if (num(&p, 2, &mi))
			return -EINVAL;
		if (*p == sep) {
			p++;
			if (num(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.' || *p == ',') {
				p++;
				int digits = 0, scale = 100;
				while (*p >= '0' && *p <= '9') {
					if (digits < 3)
						frac_ms += (*p - '0') * scale;
					scale /= 10;
					digits++;
					p++;
				}
				if (digits == 0 || digits > 9)
					return -EINVAL;
			}
		}
	} else if (*p) {
		return -EINVAL;
	}
	int off_min = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (num(&p, 2, &oh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (num(&p, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		off_min = sign * (oh * 60 + om);
	}
	if (*p)
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	struct tm tm, back;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec > 59 ? 59 : sec; /* a leap second is its second's end */
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d)
		return -EINVAL; /* 2026-02-30 */
	int64_t v = ((int64_t)t - (int64_t)off_min * 60) * 1000 + frac_ms;
	if (v < 0)
		return -EINVAL;
	*ms = v;
	return 0;
}
