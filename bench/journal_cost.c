/*
 * bench/journal_cost.c - what one small upload's commit costs, through the
 * engine API in-process (the calls every front end makes): N streamed
 * uploads of 64 distinct bytes each (so every one is a new blob, a new
 * node, a version and a journal row), one after the other, timed as a
 * whole. Used to measure the journal's hash chain (issue 20): build it
 * against the libsdcore.a of two trees and run them interleaved.
 *
 *   journal_cost DATADIR N full|normal
 *
 * DATADIR must not exist yet (it is created, and left for the caller to
 * remove). Prints one line: "commits=N total_s=S ms_per_commit=M".
 * Exit 1 on any engine error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "log.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[3], "full") != 0 && strcmp(argv[3], "normal") != 0)) {
		fprintf(stderr, "usage: journal_cost DATADIR N full|normal\n");
		return 2;
	}
	long n = atol(argv[2]);
	if (n < 1) {
		fprintf(stderr, "journal_cost: bad N\n");
		return 2;
	}
	sd_log_set_level(SD_LOG_ERROR);
	char err[512];
	sd_conf conf;
	if (sd_conf_defaults(&conf, argv[1], err, sizeof err) != 0) {
		fprintf(stderr, "journal_cost: %s\n", err);
		return 1;
	}
	free(conf.data_dir);
	conf.data_dir = strdup(argv[1]);
	conf.durability_full = strcmp(argv[3], "full") == 0;
	sd_core *core = sd_core_open(&conf, 0, err, sizeof err);
	if (!core) {
		fprintf(stderr, "journal_cost: %s\n", err);
		return 1;
	}
	const sd_core_api *api = sd_core_api_table();
	int rc = api->user_add(core, "bench", NULL, 0, 0, NULL);
	sd_session *s = NULL;
	if (rc == 0)
		rc = sd_core_session(core, "bench", &s);
	if (rc < 0) {
		fprintf(stderr, "journal_cost: user: %s\n", api->strerror(rc));
		return 1;
	}
	char path[64], payload[64];
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof path, "/f%06ld", i);
		memset(payload, 'x', sizeof payload);
		snprintf(payload, sizeof payload, "payload %ld\n", i);
		sd_upload *up = NULL;
		rc = api->upload_begin(s, path, 0, 0, 0644, &up);
		if (rc == 0 && (rc = api->upload_write(up, payload, sizeof payload)) < 0)
			api->upload_abort(up);
		else if (rc == 0)
			rc = api->upload_commit(up, NULL, NULL, NULL);
		if (rc < 0) {
			fprintf(stderr, "journal_cost: %s: %s\n", path, api->strerror(rc));
			return 1;
		}
	}
	double t = now_s() - t0;
	printf("commits=%ld total_s=%.3f ms_per_commit=%.3f\n", n, t, t * 1000.0 / (double)n);
	api->session_close(s);
	sd_core_close(core);
	sd_conf_free(&conf);
	return 0;
}
