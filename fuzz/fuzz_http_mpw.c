/*
 * fuzz_http_mpw.c - libFuzzer harness for the streaming multipart/byteranges
 * request-body parser of HTTP handle writes (frontends/http/ranges.c): the
 * body is fed in pieces whose sizes come from the input, and every piece the
 * parser hands over must lie inside the part its Content-Range named.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static int piece(void *arg, const char *data, size_t len, uint64_t off)
{
	(void)data;
	uint64_t *total = arg;
	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		abort(); /* invariant 3: never past 2^63-1 */
	*total += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	/* first byte: piece size seed; the boundary is fixed so that the
	 * fuzzer reaches the body states quickly (seeds use it) */
	size_t step = (size_t)data[0] % 64 + 1;
	http_mpw *p = sd__http_mpw_new("sdfuzz");
	if (!p)
		abort();
	uint64_t total = 0;
	size_t off = 1;
	int rc = 0;
	while (off < size && rc == 0) {
		size_t n = size - off < step ? size - off : step;
		rc = sd__http_mpw_feed(p, (const char *)data + off, n, piece, &total);
		off += n;
		step = step * 7 % 61 + 1;
	}
	const char *why = NULL;
	if (rc == 0)
		(void)sd__http_mpw_end(p, &why);
	if (total > size)
		abort(); /* pieces are never buffered or duplicated */
	(void)sd__http_mpw_parts(p);
	(void)sd__http_mpw_error(p);
	sd__http_mpw_free(p);
	return 0;
}
