/*
 * fuzz_conf.c - libFuzzer harness for the config parser (core/conf.c): the
 * input is written to a file and loaded as storaged.conf ([storaged] and
 * front-end sections, every value type), and the value parsers (sizes,
 * durations, listen addresses, max_startups) are run on it directly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "net.h"

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0])
		snprintf(path, sizeof path, "/tmp/sdfuzz-conf.%d", (int)getpid());
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	sd_conf c;
	char err[256];
	memset(&c, 0, sizeof c);
	if (sd_conf_load(path, &c, err, sizeof err) == 0)
		sd_conf_free(&c);
	/* the value parsers on the first line */
	char v[256];
	size_t n = size < sizeof v - 1 ? size : sizeof v - 1;
	memcpy(v, data, n);
	v[n] = '\0';
	char *nl = strchr(v, '\n');
	if (nl)
		*nl = '\0';
	int64_t x;
	int b;
	(void)sd_conf_parse_size(v, &x);
	(void)sd_conf_parse_duration(v, &x);
	(void)sd_conf_parse_int(v, &x);
	(void)sd_conf_parse_bool(v, &b);
	(void)sd_conf_parse_percent(v, &b);
	char *host = NULL;
	int port;
	if (sd_conf_parse_listen(v, &host, &port) == 0)
		free(host);
	sd_startups su;
	if (sd_startups_parse(v, &su) == 0 && (su.start < 1 || su.start > su.full || su.rate > 100))
		abort();
	return 0;
}
