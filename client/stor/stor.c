/*
 * stor.c - the `stor` command-line tools on libstoraged (WSIO's tool set):
 *
 *   stor login [--name NAME] [--token TOKEN | --password-stdin] URL USER
 *   stor ls [-l] [WHERE...]        stor stat WHERE...     stor cat WHERE...
 *   stor get WHERE [LOCAL]         stor put LOCAL [WHERE] stor cp FROM TO
 *   stor mv FROM TO                stor rm [-r] [-f] WHERE...
 *   stor mkdir [-p] WHERE...       stor rmdir WHERE...    stor chmod MODE WHERE...
 *   stor chown OWNER WHERE...      stor servers
 *
 * WHERE is /path on the first configured server or NAME:/path. The
 * configuration is ~/.config/stor/config (or $STOR_CONFIG), INI with one
 * section per server; STOR_URL, STOR_USER, STOR_TOKEN and STOR_PASSWORD
 * override the first server (or define it). Errors are one line on stderr,
 * "stor: CMD: 'ARG': reason"; the exit status is 0, 1 (some operation
 * failed) or 2 (usage). A progress bar goes to stderr, only on a terminal
 * and only for transfers that take more than a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "storaged-client.h"

#define MAXSRV 32

typedef struct srvconf {
	char name[64];
	char *url, *user, *password, *token;
} srvconf;

static srvconf srvs[MAXSRV];
static int nsrv;
static const char *cmd = "stor";
static int quiet;
static uint64_t limit_rate; /* --limit-rate / STOR_LIMIT_RATE, bytes per second */
static sdc_client *C;

/* ------------------------------------------------------------ messages */

static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "stor: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* "stor: CMD: 'ARG': reason (server's words)" */
static void warn_err(const char *arg, int err)
{
	const char *m = sdc_errmsg();
	if (m && *m && strcasecmp(m, sdc_strerror(err)) != 0)
		warnx("'%s': %s (%s)", arg, sdc_strerror(err), m);
	else
		warnx("'%s': %s", arg, sdc_strerror(err));
}

static void usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_err(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "stor: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'stor --help' for more information.\n");
	exit(2);
}

static const char *usage_text =
    "Usage: stor COMMAND [OPTION]... [ARG]...\n"
    "Files on storaged servers. WHERE is /path (first server) or NAME:/path.\n"
    "\n"
    "  login [--name NAME] [--token T | --password-stdin] URL USER\n"
    "                              remember a server (~/.config/stor/config)\n"
    "  servers                     list the configured servers\n"
    "  ls [-l] [WHERE]...          list directories (-l: mode, size, time)\n"
    "  stat WHERE...               kind, size, mode, times, SHA-256, versions\n"
    "  cat WHERE...                write files to standard output\n"
    "  get WHERE [LOCAL]           download (resumes a partial LOCAL.stor-part)\n"
    "  put [-p] LOCAL [WHERE]      upload (instant when the server has the content;\n"
    "                              resumes an interrupted upload; -p: make parents)\n"
    "  cp FROM TO                  copy (instant on one server; between servers too)\n"
    "  mv FROM TO                  rename on one server\n"
    "  rm [-r] [-f] WHERE...       remove files (-r: directories too)\n"
    "  mkdir [-p] WHERE...         make directories\n"
    "  rmdir WHERE...              remove empty directories\n"
    "  chmod MODE WHERE...         set permission bits (octal)\n"
    "  chown OWNER WHERE...        explains storaged's ownership model\n"
    "\n"
    "Options: -q (no progress or notes), --limit-rate=N[k|m] (bytes per second\n"
    "sent), --help, --version.\n"
    "Environment: STOR_CONFIG, STOR_URL, STOR_USER, STOR_PASSWORD, STOR_TOKEN,\n"
    "STOR_TIMEOUT (seconds), STOR_LIMIT_RATE.\n";

/* ------------------------------------------------------------ config */

static char *config_path(void)
{
	static char buf[4096];
	const char *e = getenv("STOR_CONFIG");
	if (e && *e)
		return strcpy(buf, e);
	const char *x = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	if (x && *x)
		snprintf(buf, sizeof buf, "%s/stor/config", x);
	else
		snprintf(buf, sizeof buf, "%s/.config/stor/config", home ? home : ".");
	return buf;
}

static srvconf *srv_get(const char *name, int create)
{
	for (int i = 0; i < nsrv; i++)
		if (strcmp(srvs[i].name, name) == 0)
			return &srvs[i];
	if (!create || nsrv == MAXSRV)
		return NULL;
	srvconf *s = &srvs[nsrv++];
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	return s;
}

static void setstr(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? strdup(v) : NULL;
}

static int ini_cb(void *arg, const char *section, const char *key, const char *value)
{
	(void)arg;
	srvconf *s = srv_get(section, 1);
	if (!s)
		return 0;
	if (strcmp(key, "url") == 0)
		setstr(&s->url, value);
	else if (strcmp(key, "user") == 0)
		setstr(&s->user, value);
	else if (strcmp(key, "password") == 0)
		setstr(&s->password, value);
	else if (strcmp(key, "token") == 0)
		setstr(&s->token, value);
	else {
		fprintf(stderr, "stor: %s: unknown key '%s' in [%s]\n", config_path(), key, section);
		return 0;
	}
	return 1;
}

static void load_config(void)
{
	const char *p = config_path();
	FILE *f = fopen(p, "r");
	if (f) {
		int line = ini_parse_file(f, ini_cb, NULL);
		fclose(f);
		if (line != 0) {
			fprintf(stderr, "stor: %s:%d: bad line\n", p, line);
			exit(2);
		}
	}
	const char *url = getenv("STOR_URL"), *user = getenv("STOR_USER");
	const char *tok = getenv("STOR_TOKEN"), *pw = getenv("STOR_PASSWORD");
	if ((url && *url) || (user && *user) || (tok && *tok) || (pw && *pw)) {
		srvconf *s = nsrv ? &srvs[0] : srv_get("default", 1);
		if (url && *url)
			setstr(&s->url, url);
		if (user && *user)
			setstr(&s->user, user);
		if (tok && *tok) {
			setstr(&s->token, tok);
			/* a token from the environment wins over a stored password */
			if (!(pw && *pw))
				setstr(&s->password, NULL);
		}
		if (pw && *pw) {
			setstr(&s->password, pw);
			setstr(&s->token, NULL);
		}
	}
}

static int save_config(void)
{
	const char *p = config_path();
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", p);
	char *d = dirname(dir);
	char tmp[4200];
	for (char *q = d + 1; *q; q++)
		if (*q == '/') {
			*q = '\0';
			mkdir(d, 0700);
			*q = '/';
		}
	mkdir(d, 0700);
	snprintf(tmp, sizeof tmp, "%s.tmp", p);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		return -errno;
	fprintf(f, "# stor configuration: one section per server (stor login writes it)\n");
	for (int i = 0; i < nsrv; i++) {
		srvconf *s = &srvs[i];
		fprintf(f, "\n[%s]\nurl = %s\n", s->name, s->url ? s->url : "");
		if (s->user)
			fprintf(f, "user = %s\n", s->user);
		if (s->token)
			fprintf(f, "token = %s\n", s->token);
		else if (s->password)
			fprintf(f, "password = %s\n", s->password);
	}
	if (fclose(f) != 0 || rename(tmp, p) != 0)
		return -errno;
	return 0;
}

static sdc_client *client(void)
{
	if (C)
		return C;
	if (nsrv == 0) {
		fprintf(stderr, "stor: no server configured: run 'stor login URL USER' "
				"or set STOR_URL and STOR_USER\n");
		exit(1);
	}
	sdc_server_opts so[MAXSRV];
	for (int i = 0; i < nsrv; i++) {
		so[i] = (sdc_server_opts){.name = srvs[i].name, .url = srvs[i].url,
					  .user = srvs[i].user, .password = srvs[i].password};
		/* a token with a user goes as Basic (user:token), alone as Bearer */
		if (srvs[i].token) {
			if (srvs[i].user)
				so[i].password = srvs[i].token;
			else
				so[i].token = srvs[i].token;
		}
	}
	sdc_options o = {.servers = so, .nservers = nsrv, .page_size = 1u << 20, .npages = 16};
	const char *t = getenv("STOR_TIMEOUT");
	if (t)
		o.timeout_ms = atoi(t) * 1000;
	o.max_send_rate = limit_rate;
	int err;
	C = sdc_client_new(&o, &err);
	if (!C) {
		fprintf(stderr, "stor: %s: bad configuration (server URL or name): %s\n",
			config_path(), sdc_strerror(err));
		exit(2);
	}
	return C;
}

/* ------------------------------------------------------------ progress */

typedef struct prog {
	const char *label;
	double t0, last;
	int shown;
	int tty;
} prog;

static void human(char *out, size_t n, double v)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_cb(void *arg, uint64_t done, uint64_t total)
{
	prog *p = arg;
	if (!p->tty)
		return;
	double t = now();
	if (t - p->t0 < 1.0 || (t - p->last < 0.2 && done != total))
		return;
	p->last = t;
	p->shown = 1;
	double rate = (double)done / (t - p->t0);
	char a[32], r[32], eta[32] = "--:--";
	human(a, sizeof a, (double)done);
	human(r, sizeof r, rate);
	int pct = total ? (int)(done * 100 / total) : 0;
	if (total && rate > 0) {
		long s = (long)((double)(total - done) / rate);
		snprintf(eta, sizeof eta, "%ld:%02ld", s / 60, s % 60);
	}
	char bar[31];
	int fill = total ? (int)(done * 30 / total) : 0;
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
	bar[30] = '\0';
	fprintf(stderr, "\r%-24.24s %3d%% [%s] %10s %10s/s ETA %s ", p->label, pct, bar, a, r, eta);
	fflush(stderr);
}

static void progress_start(prog *p, const char *label)
{
	memset(p, 0, sizeof *p);
	p->label = label;
	p->t0 = now();
	p->tty = !quiet && isatty(2);
}

static void progress_end(prog *p)
{
	if (p->shown)
		fputc('\n', stderr);
}

/* ------------------------------------------------------------ commands */

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s && s[1] ? s + 1 : (s ? "" : p);
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	char *out = malloc(n + strlen(name) + 2);
	sprintf(out, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
	return out;
}

static void fmt_mode(char *out, const sdc_attr *st)
{
	const char *rwx = "rwxrwxrwx";
	out[0] = st->kind == SDC_KIND_DIR ? 'd' : '-';
	for (int i = 0; i < 9; i++)
		out[i + 1] = (st->mode & (1u << (8 - i))) ? rwx[i] : '-';
	out[10] = '\0';
}

static void print_long(const char *name, const sdc_attr *st)
{
	char m[11], t[32];
	fmt_mode(m, st);
	time_t tt = (time_t)st->mtime;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(t, sizeof t, "%Y-%m-%d %H:%M", &tm);
	printf("%s %12llu %s %s%s\n", m, (unsigned long long)st->size, t, name,
	       st->kind == SDC_KIND_DIR ? "/" : "");
}

static int ls_long;
static int ls_cb(void *arg, const sdc_dirent *e)
{
	(void)arg;
	if (ls_long)
		print_long(e->name, &e->st);
	else
		printf("%s%s\n", e->name, e->st.kind == SDC_KIND_DIR ? "/" : "");
	return 0;
}

static int cmd_ls(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "lq")) != -1) {
		if (opt == 'l')
			ls_long = 1;
		else if (opt == 'q')
			quiet = 1;
		else
			usage_err("usage: stor ls [-l] [WHERE]...");
	}
	char *dflt[] = {"/"};
	char **args = optind < argc ? argv + optind : dflt;
	int n = optind < argc ? argc - optind : 1;
	int status = 0;
	for (int i = 0; i < n; i++) {
		sdc_attr st;
		int rc = sdc_stat(client(), args[i], &st);
		if (rc == 0 && st.kind != SDC_KIND_DIR) {
			if (ls_long)
				print_long(args[i], &st);
			else
				printf("%s\n", args[i]);
			continue;
		}
		if (rc == 0) {
			if (n > 1)
				printf("%s%s:\n", i ? "\n" : "", args[i]);
			rc = sdc_readdir(client(), args[i], ls_cb, NULL);
		}
		if (rc < 0) {
			warn_err(args[i], rc);
			status = 1;
		}
	}
	return status;
}

static int cmd_stat(int argc, char **argv)
{
	if (argc < 2)
		usage_err("missing operand");
	int status = 0;
	for (int i = 1; i < argc; i++) {
		sdc_attr st;
		int rc = sdc_stat(client(), argv[i], &st);
		if (rc < 0) {
			warn_err(argv[i], rc);
			status = 1;
			continue;
		}
		char m[11];
		fmt_mode(m, &st);
		printf("  File: %s\n  Kind: %s\n  Size: %llu\n  Mode: %04o (%s)\n", argv[i],
		       st.kind == SDC_KIND_DIR ? "directory" : "file", (unsigned long long)st.size,
		       st.mode, m);
		char t[64];
		time_t tt = (time_t)st.mtime;
		struct tm tm;
		localtime_r(&tt, &tm);
		strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S %z", &tm);
		printf("Modify: %s\n", t);
		tt = (time_t)st.ctime;
		localtime_r(&tt, &tm);
		strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S %z", &tm);
		printf("Change: %s\n", t);
		if (st.kind == SDC_KIND_FILE)
			printf("SHA256: %s\nVersions: %lld\n", st.sha256, (long long)st.versions);
	}
	return status;
}

static int cat_out(void *arg, const void *p, size_t n)
{
	(void)arg;
	return fwrite(p, 1, n, stdout) == n ? 0 : 1;
}

static int cmd_cat(int argc, char **argv)
{
	if (argc < 2)
		usage_err("missing operand");
	int status = 0;
	for (int i = 1; i < argc; i++) {
		int rc = sdc_cat(client(), argv[i], cat_out, NULL);
		if (rc < 0) {
			if (rc == -EPIPE)
				return 1;
			warn_err(argv[i], rc);
			status = 1;
		}
	}
	if (fflush(stdout) != 0)
		return 1;
	return status;
}

static int cmd_get(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "q")) != -1) {
		if (opt == 'q')
			quiet = 1;
		else
			usage_err("usage: stor get WHERE [LOCAL]");
	}
	if (argc - optind < 1 || argc - optind > 2)
		usage_err("usage: stor get WHERE [LOCAL]");
	const char *where = argv[optind];
	const char *colon = where[0] == '/' ? NULL : strchr(where, ':');
	const char *rpath = colon ? colon + 1 : where;
	char *local = strdup(argc - optind == 2 ? argv[optind + 1] : base_name(rpath));
	struct stat sb;
	if (!*local || (stat(local, &sb) == 0 && S_ISDIR(sb.st_mode))) {
		char *j = join(*local ? local : ".", base_name(rpath));
		free(local);
		local = j;
	}
	prog p;
	progress_start(&p, base_name(rpath));
	int rc = sdc_get_file(client(), where, local, progress_cb, &p);
	progress_end(&p);
	free(local);
	if (rc < 0) {
		warn_err(where, rc);
		return 1;
	}
	return 0;
}

static int cmd_put(int argc, char **argv)
{
	int opt;
	unsigned flags = 0;
	while ((opt = getopt(argc, argv, "pq")) != -1) {
		if (opt == 'p')
			flags |= SDC_PUT_PARENTS;
		else if (opt == 'q')
			quiet = 1;
		else
			usage_err("usage: stor put [-p] LOCAL [WHERE]");
	}
	if (argc - optind < 1 || argc - optind > 2)
		usage_err("usage: stor put [-p] LOCAL [WHERE]");
	const char *local = argv[optind];
	char *where;
	if (argc - optind == 2) {
		const char *w = argv[optind + 1];
		size_t n = strlen(w);
		sdc_attr st;
		if (n && w[n - 1] == ':') {
			where = malloc(n + strlen(base_name(local)) + 3);
			sprintf(where, "%s/%s", w, base_name(local));
		} else if ((n && w[n - 1] == '/') ||
			   (sdc_stat(client(), w, &st) == 0 && st.kind == SDC_KIND_DIR)) {
			where = join(w, base_name(local));
		} else {
			where = strdup(w);
		}
	} else {
		where = join("/", base_name(local));
	}
	prog p;
	progress_start(&p, base_name(local));
	sdc_put_result res;
	int rc = sdc_put_file(client(), local, where, flags, progress_cb, &p, &res);
	progress_end(&p);
	if (rc < 0) {
		warn_err(rc == -ENOENT && access(local, F_OK) != 0 ? local : where, rc);
		free(where);
		return 1;
	}
	if (!quiet) {
		char sz[32];
		human(sz, sizeof sz, (double)res.size);
		if (res.instant)
			printf("%s -> %s: %s, instant (the server had the content; hash %.2f s, "
			       "network %.1f ms)\n", local, where, sz, res.hash_seconds,
			       res.net_seconds * 1000);
		else
			printf("%s -> %s: %s, sent %llu bytes%s\n", local, where, sz,
			       (unsigned long long)res.sent, res.resumed ? " (resumed)" : "");
	}
	free(where);
	return 0;
}

static int cmd_cp(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "q")) != -1) {
		if (opt == 'q')
			quiet = 1;
		else
			usage_err("usage: stor cp FROM TO");
	}
	if (argc - optind != 2)
		usage_err("usage: stor cp FROM TO");
	const char *from = argv[optind];
	char *to = strdup(argv[optind + 1]);
	sdc_attr st;
	size_t n = strlen(to);
	if ((n && to[n - 1] == '/') || (sdc_stat(client(), to, &st) == 0 && st.kind == SDC_KIND_DIR)) {
		const char *colon = from[0] == '/' ? NULL : strchr(from, ':');
		char *j = join(to, base_name(colon ? colon + 1 : from));
		free(to);
		to = j;
	}
	prog p;
	progress_start(&p, base_name(from));
	int instant = 0;
	int rc = sdc_copy(client(), from, to, progress_cb, &p, &instant);
	progress_end(&p);
	if (rc < 0) {
		warn_err(rc == -ENOENT ? from : to, rc);
		free(to);
		return 1;
	}
	if (!quiet)
		printf("%s -> %s%s\n", from, to, instant ? " (instant)" : " (copied)");
	free(to);
	return 0;
}

static int cmd_mv(int argc, char **argv)
{
	if (argc != 3)
		usage_err("usage: stor mv FROM TO");
	char *to = strdup(argv[2]);
	sdc_attr st;
	size_t n = strlen(to);
	if ((n && to[n - 1] == '/') || (sdc_stat(client(), to, &st) == 0 && st.kind == SDC_KIND_DIR)) {
		const char *colon = argv[1][0] == '/' ? NULL : strchr(argv[1], ':');
		char *j = join(to, base_name(colon ? colon + 1 : argv[1]));
		free(to);
		to = j;
	}
	int rc = sdc_rename(client(), argv[1], to);
	if (rc == -EXDEV)
		fprintf(stderr, "stor: mv: '%s' and '%s' are on different servers: use "
				"'stor cp' then 'stor rm'\n", argv[1], to);
	else if (rc < 0)
		warn_err(argv[1], rc);
	free(to);
	return rc < 0;
}

static int cmd_rm(int argc, char **argv)
{
	int opt, rec = 0, force = 0;
	while ((opt = getopt(argc, argv, "rRfq")) != -1) {
		if (opt == 'r' || opt == 'R')
			rec = 1;
		else if (opt == 'f')
			force = 1;
		else if (opt == 'q')
			quiet = 1;
		else
			usage_err("usage: stor rm [-r] [-f] WHERE...");
	}
	if (optind >= argc && !force)
		usage_err("missing operand");
	int status = 0;
	for (int i = optind; i < argc; i++) {
		sdc_attr st;
		int rc = sdc_stat(client(), argv[i], &st);
		if (rc == 0 && st.kind == SDC_KIND_DIR && !rec) {
			warnx("cannot remove '%s': Is a directory", argv[i]);
			status = 1;
			continue;
		}
		if (rc == 0)
			rc = sdc_unlink(client(), argv[i], rec);
		if (rc == -ENOENT && force)
			continue;
		if (rc < 0) {
			warn_err(argv[i], rc);
			status = 1;
		}
	}
	return status;
}

static int cmd_mkdir(int argc, char **argv)
{
	int opt, parents = 0;
	while ((opt = getopt(argc, argv, "pq")) != -1) {
		if (opt == 'p')
			parents = 1;
		else if (opt == 'q')
			quiet = 1;
		else
			usage_err("usage: stor mkdir [-p] WHERE...");
	}
	if (optind >= argc)
		usage_err("missing operand");
	int status = 0;
	for (int i = optind; i < argc; i++) {
		int rc = sdc_mkdir(client(), argv[i], 0, parents);
		if (rc < 0) {
			warn_err(argv[i], rc);
			status = 1;
		}
	}
	return status;
}

static int cmd_rmdir(int argc, char **argv)
{
	if (argc < 2)
		usage_err("missing operand");
	int status = 0;
	for (int i = 1; i < argc; i++) {
		int rc = sdc_rmdir(client(), argv[i]);
		if (rc < 0) {
			warn_err(argv[i], rc);
			status = 1;
		}
	}
	return status;
}

static int cmd_chmod(int argc, char **argv)
{
	if (argc < 3)
		usage_err("usage: stor chmod MODE WHERE...");
	char *end;
	unsigned long mode = strtoul(argv[1], &end, 8);
	if (*end || !*argv[1] || mode > 07777)
		usage_err("invalid mode: '%s' (octal, e.g. 0644)", argv[1]);
	int status = 0;
	for (int i = 2; i < argc; i++) {
		int rc = sdc_chmod(client(), argv[i], (uint32_t)mode);
		if (rc < 0) {
			warn_err(argv[i], rc);
			status = 1;
		}
	}
	return status;
}

static int cmd_chown(int argc, char **argv)
{
	if (argc < 3)
		usage_err("usage: stor chown OWNER WHERE...");
	/* storaged's model: every file belongs to the user whose tree holds it;
	 * there is no per-file owner to change. Succeed only when nothing would
	 * change: OWNER is the user these credentials log in as. */
	char owner[256];
	snprintf(owner, sizeof owner, "%s", argv[1]);
	char *colon = strchr(owner, ':');
	if (colon)
		*colon = '\0';
	int status = 0;
	for (int i = 2; i < argc; i++) {
		const char *w = argv[i];
		const char *c2 = w[0] == '/' ? NULL : strchr(w, ':');
		srvconf *s = &srvs[0];
		if (c2) {
			char nm[64];
			snprintf(nm, sizeof nm, "%.*s", (int)(c2 - w), w);
			s = srv_get(nm, 0);
		}
		sdc_attr st;
		int rc = sdc_stat(client(), w, &st);
		if (rc < 0) {
			warn_err(w, rc);
			status = 1;
			continue;
		}
		if (s && s->user && strcmp(s->user, owner) == 0 && !(colon && colon[1])) {
			continue; /* already owned by OWNER: nothing to change */
		}
		warnx("changing ownership of '%s': Operation not permitted (storaged files belong to "
		      "the user whose tree holds them; share with a group folder instead)", w);
		status = 1;
	}
	return status;
}

static int cmd_servers(void)
{
	for (int i = 0; i < nsrv; i++)
		printf("%s%s\t%s\t%s\n", srvs[i].name, i == 0 ? " (default)" : "",
		       srvs[i].url ? srvs[i].url : "", srvs[i].user ? srvs[i].user : "(token)");
	return 0;
}

static char *read_secret(const char *prompt, int from_stdin)
{
	char buf[1024];
	FILE *in = stdin;
	struct termios old, t;
	int tty = 0;
	if (!from_stdin) {
		FILE *f = fopen("/dev/tty", "r+");
		if (f) {
			in = f;
			fprintf(f, "%s", prompt);
			fflush(f);
			if (tcgetattr(fileno(f), &old) == 0) {
				t = old;
				t.c_lflag &= ~(tcflag_t)ECHO;
				tcsetattr(fileno(f), TCSANOW, &t);
				tty = 1;
			}
		}
	}
	char *r = fgets(buf, sizeof buf, in);
	if (tty) {
		tcsetattr(fileno(in), TCSANOW, &old);
		fprintf(in, "\n");
	}
	if (in != stdin)
		fclose(in);
	if (!r)
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

static int cmd_login(int argc, char **argv)
{
	static struct option lo[] = {{"name", required_argument, 0, 'n'},
				     {"token", required_argument, 0, 't'},
				     {"password-stdin", no_argument, 0, 's'},
				     {0, 0, 0, 0}};
	const char *name = NULL, *token = NULL;
	int from_stdin = 0, opt;
	while ((opt = getopt_long(argc, argv, "n:t:s", lo, NULL)) != -1) {
		if (opt == 'n')
			name = optarg;
		else if (opt == 't')
			token = optarg;
		else if (opt == 's')
			from_stdin = 1;
		else
			usage_err("usage: stor login [--name NAME] [--token T | --password-stdin] URL USER");
	}
	if (argc - optind != 2)
		usage_err("usage: stor login [--name NAME] [--token T | --password-stdin] URL USER");
	const char *url = argv[optind], *user = argv[optind + 1];
	if (!name)
		name = nsrv ? NULL : "default";
	if (!name) {
		for (int i = 0; i < nsrv; i++)
			if (srvs[i].url && strcmp(srvs[i].url, url) == 0)
				name = srvs[i].name;
		if (!name)
			usage_err("a server is configured already: name this one with --name NAME");
	}
	char *secret = token ? strdup(token) : read_secret("Password: ", from_stdin);
	if (!secret)
		usage_err("no password given");
	/* check the credentials before saving them */
	sdc_server_opts so = {.name = name, .url = url, .user = user, .password = secret};
	sdc_options o = {.servers = &so, .nservers = 1};
	int err;
	sdc_client *c = sdc_client_new(&o, &err);
	if (!c) {
		warnx("'%s': not a server URL (http://HOST:PORT or https://...)", url);
		return 2;
	}
	sdc_attr st;
	int rc = sdc_stat(c, "/", &st);
	sdc_client_free(c);
	if (rc < 0) {
		warn_err(url, rc);
		free(secret);
		return 1;
	}
	/* the env overrides are not saved: reload the file alone */
	for (int i = 0; i < nsrv; i++) {
		free(srvs[i].url);
		free(srvs[i].user);
		free(srvs[i].password);
		free(srvs[i].token);
	}
	nsrv = 0;
	const char *p = config_path();
	FILE *f = fopen(p, "r");
	if (f) {
		ini_parse_file(f, ini_cb, NULL);
		fclose(f);
	}
	srvconf *s = srv_get(name, 1);
	setstr(&s->url, url);
	setstr(&s->user, user);
	setstr(&s->password, token ? NULL : secret);
	setstr(&s->token, token ? secret : NULL);
	free(secret);
	rc = save_config();
	if (rc < 0) {
		warn_err(p, rc);
		return 1;
	}
	if (!quiet)
		printf("logged in to %s as %s; saved as server '%s' in %s\n", url, user, name, p);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("stor (libstoraged) %s\n", SDC_VERSION);
		return 0;
	}
	/* -q anywhere before the command's own options */
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--") == 0)
			break;
		else if (strcmp(argv[i], "--quiet") == 0)
			argv[i] = "-q";
	load_config();
	const char *lr = getenv("STOR_LIMIT_RATE");
	for (int i = 2; i < argc; i++)
		if (strncmp(argv[i], "--limit-rate=", 13) == 0) {
			lr = argv[i] + 13;
			for (int k = i; k < argc; k++)
				argv[k] = argv[k + 1];
			argc--;
			break;
		}
	if (lr && *lr) {
		char *end;
		double v = strtod(lr, &end);
		if (*end == 'k' || *end == 'K')
			v *= 1024;
		else if (*end == 'm' || *end == 'M')
			v *= 1024 * 1024;
		limit_rate = v > 0 ? (uint64_t)v : 0;
	}
	argc--;
	argv++;
	optind = 1;
	int rc;
	if (strcmp(cmd, "ls") == 0)
		rc = cmd_ls(argc, argv);
	else if (strcmp(cmd, "stat") == 0)
		rc = cmd_stat(argc, argv);
	else if (strcmp(cmd, "cat") == 0)
		rc = cmd_cat(argc, argv);
	else if (strcmp(cmd, "get") == 0)
		rc = cmd_get(argc, argv);
	else if (strcmp(cmd, "put") == 0)
		rc = cmd_put(argc, argv);
	else if (strcmp(cmd, "cp") == 0)
		rc = cmd_cp(argc, argv);
	else if (strcmp(cmd, "mv") == 0)
		rc = cmd_mv(argc, argv);
	else if (strcmp(cmd, "rm") == 0)
		rc = cmd_rm(argc, argv);
	else if (strcmp(cmd, "mkdir") == 0)
		rc = cmd_mkdir(argc, argv);
	else if (strcmp(cmd, "rmdir") == 0)
		rc = cmd_rmdir(argc, argv);
	else if (strcmp(cmd, "chmod") == 0)
		rc = cmd_chmod(argc, argv);
	else if (strcmp(cmd, "chown") == 0)
		rc = cmd_chown(argc, argv);
	else if (strcmp(cmd, "login") == 0)
		rc = cmd_login(argc, argv);
	else if (strcmp(cmd, "servers") == 0)
		rc = cmd_servers();
	else {
		fprintf(stderr, "stor: '%s' is not a stor command\nTry 'stor --help' for more "
				"information.\n", cmd);
		return 2;
	}
	if (C) {
		int e = sdc_client_free(C);
		if (e < 0 && rc == 0)
			rc = 1;
	}
	return rc;
}
