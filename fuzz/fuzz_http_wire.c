/*
 * fuzz_http_wire.c - libFuzzer harness for the HTTP front end's leaf text
 * parsers (frontends/http/wire.c, ranges.c): Range headers (download and
 * strict handle forms, with their invariants checked), percent decoding,
 * base64 (Basic auth), ETag lists, HTTP and RFC 3339 dates. The first byte
 * picks the parser; the rest is the header value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static void check_ranges(const http_range *rg, int n, uint64_t size, int strict)
{
	uint64_t total = 0;
	for (int i = 0; i < n; i++) {
		if (rg[i].first > rg[i].last || rg[i].last >= size)
			abort(); /* outside [0, size) */
		if (i && rg[i].first <= rg[i - 1].last + 1)
			abort(); /* not sorted, disjoint and apart */
		total += rg[i].last - rg[i].first + 1;
	}
	if (total > size)
		abort(); /* more than the file */
	(void)strict;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t sel = data[0];
	char *s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	uint64_t fsize = (uint64_t)sel * 977 + 1;
	switch (sel % 7) {
	case 0: {
		http_range rg[HTTP_MAX_RANGES];
		int n = sd__http_parse_range(s, fsize, rg);
		if (n > HTTP_MAX_RANGES)
			abort();
		if (n > 0)
			check_ranges(rg, n, fsize, 0);
		break;
	}
	case 1: {
		http_range rg[HTTP_MAX_PARTS];
		int n = 0;
		if (sd__http_ranges_strict(s, fsize, rg, HTTP_MAX_PARTS, &n) == 0) {
			if (n < 1 || n > HTTP_MAX_PARTS)
				abort();
			check_ranges(rg, n, fsize, 1);
		}
		break;
	}
	case 2: {
		sd_buf b = SD_BUF_INIT;
		if (sd__http_pct_decode(s, 4096, &b) == 0 && b.len > 4096)
			abort();
		sd_buf_free(&b);
		(void)sd__http_double_encoded(s);
		break;
	}
	case 3: {
		sd_buf b = SD_BUF_INIT;
		(void)sd__http_b64decode(s, &b);
		sd_buf_free(&b);
		break;
	}
	case 4:
		(void)sd__http_etag_match(s, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
		break;
	case 5:
		(void)sd__http_parse_date(s);
		break;
	default: {
		(void)sd__http_parse_rfc3339(s);
		char bnd[HTTP_MPW_BOUNDARY_MAX + 1];
		(void)sd__http_mp_boundary(s, bnd, sizeof bnd);
		break;
	}
	}
	free(s);
	return 0;
}
