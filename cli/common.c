/*
 * common.c - what every storagectl command uses: messages, option
 * parsing over getopt_long, JSON and text output helpers.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/conf.h"
#include "util/sdjson.h"

/* ------------------------------------------------------------ messages */

int cli_fail(const char *what, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "storagectl: %s: %s\n", what, msg);
	return 1;
}

void cli_warn(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "storagectl: warning: %s\n", msg);
}

int cli_usage_err(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "storagectl: %s\n\n", msg);
	cli_print_usage(stderr);
	return 2;
}

const char *cli_errstr(int err)
{
	if (cli_api)
		return cli_api->strerror(err);
	return strerror(err < 0 ? -err : err);
}

/* ------------------------------------------------------------ options */

void cli_args_init(cli_args *a, int argc, char **argv)
{
	memset(a, 0, sizeof *a);
	a->argc = argc;
	a->argv = argv;
}

static int add_pos(cli_args *a, char *s)
{
	if (a->npos >= CLI_MAX_POS)
		return cli_usage_err("too many arguments at '%s'", s);
	a->pos[a->npos++] = s;
	return 0;
}

/* The usage error for what getopt_long refused (c '?' or ':'); `elem` is
 * the argument it was reading. getopt sets optopt to the option's val for
 * a long option with a missing or unexpected value, to 0 for an unknown
 * long option, and to the character for a short one. */
static int opt_error(int c, const char *elem, const struct option *lo)
{
	int is_long = strncmp(elem, "--", 2) == 0;
	const struct option *o = NULL;
	for (int i = 0; is_long && optopt && lo && lo[i].name; i++)
		if (lo[i].val == optopt)
			o = &lo[i];
	if (c == ':')
		return o ? cli_usage_err("option '--%s' needs a value", o->name)
			 : cli_usage_err("option '-%c' needs a value", optopt);
	if (o && o->has_arg == no_argument)
		return cli_usage_err("option '--%s' takes no value", o->name);
	if (is_long)
		return cli_usage_err("unknown option '%s'", elem);
	return cli_usage_err("unknown option '-%c'", optopt);
}

int cli_next_opt(cli_args *a, const char *shortopts, const struct option *longopts)
{
	static const struct option none[] = {{NULL, 0, NULL, 0}};
	/* '-': positionals come back in order as option 1 (no permutation,
	 * whatever POSIXLY_CORRECT says); ':': a missing value is ':' */
	char optstring[64];
	snprintf(optstring, sizeof optstring, "-:%s", shortopts ? shortopts : "");
	if (!a->started) {
		optind = 0; /* glibc: start over, a new argv */
		a->started = 1;
	}
	opterr = 0;
	for (;;) {
		/* the argument this call reads: within a cluster of short
		 * options ("-rR") optind stays on it until its last letter */
		int at = optind ? optind : 1;
		const char *elem = at < a->argc ? a->argv[at] : "";
		int c = getopt_long(a->argc, a->argv, optstring, longopts ? longopts : none, NULL);
		if (c == 1) {
			if (add_pos(a, optarg))
				return CLI_OPT_ERR;
			continue;
		}
		if (c == -1) {
			/* after "--" every argument is positional */
			while (optind < a->argc)
				if (add_pos(a, a->argv[optind++]))
					return CLI_OPT_ERR;
			return -1;
		}
		if (c == '?' || c == ':') {
			opt_error(c, elem, longopts);
			return CLI_OPT_ERR;
		}
		a->val = optarg;
		return c;
	}
}

int cli_parse_size(const char *s, int64_t *out)
{
	if (strcmp(s, "none") == 0 || strcmp(s, "unlimited") == 0) {
		*out = 0;
		return 0;
	}
	if (sd_conf_parse_size(s, out) < 0 || *out < 0)
		return cli_usage_err("bad size '%s' (e.g. 500M, 10G, 0 = unlimited)", s);
	return 0;
}

/* ------------------------------------------------------------ output */

void cli_human_str(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

/* Write o (may be NULL) with jansson; 0 or -1. Releases o. */
static int dump(json_t *o)
{
	int rc = o ? json_dumpf(o, stdout, SD_JSON_DUMP_FLAGS) : -1;
	json_decref(o);
	return rc;
}

int cli_json_print(json_t *o, const char *what)
{
	int rc = dump(o);
	fputc('\n', stdout);
	return rc < 0 ? cli_fail(what, "cannot write the answer as JSON") : 0;
}

void cli_jlist_begin(cli_jlist *l)
{
	l->n = 0;
	l->err = 0;
	fputc('[', stdout);
}

void cli_jlist_add(cli_jlist *l, json_t *o)
{
	fputs(l->n++ ? ",\n  " : "\n  ", stdout);
	if (dump(o) < 0) {
		l->err = 1;
		fputs("null", stdout); /* the list stays valid JSON */
	}
}

int cli_jlist_end(cli_jlist *l, const char *what)
{
	fputs(l->n ? "\n]\n" : "]\n", stdout);
	return l->err ? cli_fail(what, "cannot write an entry as JSON") : 0;
}
