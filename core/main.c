/*
 * main.c - the storaged daemon: storaged [-c FILE] [--check-config]
 *          [--doc-config] [--version] [--help]
 * (FILE defaults to $STORAGED_CONF, else /etc/storaged/storaged.conf, like
 * storagectl; --doc-config without -c documents [storaged] alone.)
 *
 * Runs in the foreground (systemd Type=simple, or a terminal).
 *
 * Start-up, in order (any failure: one line on stderr, undo, exit):
 *   1. parse the config                     exit 2 on error
 *   2. block SIGTERM/SIGINT/SIGHUP in this thread before any thread exists,
 *      so every thread inherits the mask and only sigwait() below sees
 *      them; ignore SIGPIPE (a vanished client must not kill the server)
 *   3. open the log                          exit 1 on error
 *   4. load (dlopen + ABI checks) every enabled section's module, before
 *      the data directory is touched        exit 1 on error
 *   5. sd_core_open()                        exit 1 on error
 *      (started as root with `user` set: from here on files are created
 *      as that user, setfsuid/setfsgid, while binding keeps root)
 *   6. init every module (it parses its section and binds its listening
 *      sockets, so a port in use fails here), then drop root for good
 *      (`user`: setgroups/setgid/setuid, every thread), then start them
 *      all (no module serves a byte as root)
 *                                            exit 1 on error, after
 *      stopping/unloading what was started and closing the core
 *   7. log event=listening per module and event=ready (tests wait for it),
 *      tell the human on stdout what listens where (with a module's extra
 *      *_listen addresses, e.g. implicit FTPS) and a first-user command
 *      that runs as pasted (the password piped in, in any shell)
 * Then sigwait(): SIGHUP reopens the log; SIGTERM/SIGINT stop the modules
 * in reverse order, close the core and exit 0.
 *
 * Exit status: 0 clean stop or successful check, 1 start-up failure,
 * 2 bad command line or configuration.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <getopt.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "core.h"
#include "log.h"
#include "module.h"
#include "storaged.h"
#include "util.h"

#ifndef SD_VERSION
#define SD_VERSION "0.0.0"
#endif

#define ERRLEN 1024
#define DEFAULT_CONF "/etc/storaged/storaged.conf"

/* Tell systemd (Type=notify) our state: one datagram to $NOTIFY_SOCKET,
 * the whole sd_notify protocol we need, without linking libsystemd. Does
 * nothing when not started by systemd. */
static void notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		sd_log(SD_LOG_WARN, "core", "event=notify_failed err=\"%s\"", strerror(errno));
	close(fd);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: storaged [-c FILE] [--check-config | --doc-config]\n"
		"       storaged --version | --help\n"
		"\n"
		"Runs the storaged storage server in the foreground with the configuration\n"
		"FILE (INI; see docs/configuration.md).\n"
		"\n"
		"  -c, --config FILE   configuration file (default: $STORAGED_CONF, else\n"
		"                      " DEFAULT_CONF ")\n"
		"  -t, --check-config  parse FILE, load and verify every enabled front-end\n"
		"                      module and its section, print \"config OK\", exit\n"
		"      --doc-config    print the configuration reference (markdown) of\n"
		"                      [storaged] and, with -c, of each enabled module\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n"
		"\n"
		"Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reopens the log file.\n"
		"Exit status: 0 ok, 1 start-up failure, 2 bad usage or configuration.\n");
}

/* "127.0.0.1:21" or "[::1]:21" into buf. */
static const char *fmt_addr(const sd_conf_section *s, char *buf, size_t len)
{
	if (strchr(s->listen_host, ':'))
		snprintf(buf, len, "[%s]:%d", s->listen_host, s->listen_port);
	else
		snprintf(buf, len, "%s:%d", s->listen_host, s->listen_port);
	return buf;
}

static size_t count_enabled(const sd_conf *conf)
{
	size_t n = 0;
	for (size_t i = 0; i < conf->nsections; i++)
		n += conf->sections[i].enabled != 0;
	return n;
}

/* --check-config: every enabled module loads, passes the ABI checks, and
 * its section converts through its table. Nothing is initialised. */
static int check_config(const sd_conf *conf)
{
	char err[ERRLEN];
	for (size_t i = 0; i < conf->nsections; i++) {
		const sd_conf_section *s = &conf->sections[i];
		if (!s->enabled)
			continue;
		sd_loaded_module m;
		if (sd_module_load(conf->module_dir, s->module, &m, err, sizeof err) < 0) {
			fprintf(stderr, "storaged: %s:%d: [%s] %s\n", conf->config_path, s->line,
				s->name, err);
			return 2;
		}
		int rc = 0;
		if (m.mod->conf_table) {
			void *tmp = sd_xcalloc(1, m.mod->conf_size ? m.mod->conf_size : 1);
			rc = sd_conf_apply(m.mod->conf_table, tmp, s, conf->config_path,
					   conf->config_dir, err, sizeof err);
			sd_conf_release(m.mod->conf_table, tmp);
			free(tmp);
		}
		sd_module_unload(&m);
		if (rc < 0) {
			fprintf(stderr, "storaged: %s\n", err);
			return 2;
		}
	}
	/* the store modules' keys (blob_store = s3 | rados), without connecting */
	if (sd_core_store_check(conf, err, sizeof err) < 0) {
		fprintf(stderr, "storaged: %s\n", err);
		return 2;
	}
	printf("config OK: %s (%zu front end%s enabled)\n", conf->config_path, count_enabled(conf),
	       count_enabled(conf) == 1 ? "" : "s");
	return 0;
}

/* --doc-config: markdown reference on stdout. */
static int doc_config(const sd_conf *conf)
{
	fputs("# storaged configuration reference\n\n"
	      "Generated by `storaged --doc-config`; see docs/configuration.md for the file format.\n\n",
	      stdout);
	char *doc = sd_conf_doc("storaged", sd_conf_table);
	fputs(doc, stdout);
	free(doc);
	/* the keys of every blob store module (store_*.so) in module_dir */
	doc = sd_core_store_doc(conf ? conf->module_dir : SD_MODULE_DIR);
	fputs(doc, stdout);
	free(doc);
	if (!conf)
		return 0;
	char err[ERRLEN];
	for (size_t i = 0; i < conf->nsections; i++) {
		const sd_conf_section *s = &conf->sections[i];
		if (!s->enabled)
			continue;
		sd_loaded_module m;
		if (sd_module_load(conf->module_dir, s->module, &m, err, sizeof err) < 0) {
			fprintf(stderr, "storaged: [%s] %s\n", s->name, err);
			return 1;
		}
		printf("## [%s] (module %s)\n\n", s->name, m.mod->name);
		if (m.mod->description)
			printf("%s\n\n", m.mod->description);
		printf("Keys every front-end section has: `enabled` (boolean, default `no`), "
		       "`module` (default: the section name), `listen` (ADDR:PORT, required when "
		       "enabled).\n\n");
		if (m.mod->conf_table) {
			doc = sd_conf_doc(NULL, m.mod->conf_table);
			fputs(doc, stdout);
			free(doc);
		}
		sd_module_unload(&m);
	}
	return 0;
}

/* Path of storagectl to suggest: next to this binary when run from a
 * checkout ("./storaged"), else whatever is in PATH. malloc'd. */
static char *storagectl_path(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');
	if (slash) {
		char *p = sd_xasprintf("%.*sstoragectl", (int)(slash - argv0 + 1), argv0);
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return sd_xstrdup("storagectl");
}

static void stop_all(sd_loaded_module *mods, size_t n)
{
	for (size_t i = n; i-- > 0;)
		sd_module_stop(&mods[i]);
	for (size_t i = n; i-- > 0;)
		sd_module_unload(&mods[i]);
}

/* Started as root with `user` set: find the user (into *pw), make sure the
 * data directory is theirs (created for them if missing; one owned by
 * anybody else refuses to start), hand them the log file (SIGHUP reopens
 * it after the drop), and from now on create files as them (fs ids; this
 * thread and every thread it starts). 0 or -1 (said on stderr and in the
 * log). */
static int prepare_user(const sd_conf *conf, struct passwd *pw)
{
	const char *why = NULL;
	struct passwd *p = getpwnam(conf->user);
	struct stat st;
	if (!p) {
		why = "no such user";
	} else if (p->pw_uid == 0) {
		why = "the user is root";
	} else {
		*pw = *p; /* the numbers are what is used afterwards */
		pw->pw_name = conf->user; /* not getpwnam's buffer, which later calls reuse */
		if (stat(conf->data_dir, &st) != 0 && errno == ENOENT &&
		    (mkdir(conf->data_dir, 0750) != 0 || chown(conf->data_dir, pw->pw_uid, pw->pw_gid) != 0))
			why = "cannot create the data directory for the user";
		else if (stat(conf->data_dir, &st) != 0)
			why = "cannot stat the data directory";
		else if (st.st_uid != pw->pw_uid)
			why = "the data directory belongs to another user (chown -R it to the user)";
	}
	if (why) {
		fprintf(stderr, "storaged: user = %s: %s\n", conf->user, why);
		sd_log(SD_LOG_ERROR, "core", "event=failed reason=\"user = %s: %s\"", conf->user, why);
		return -1;
	}
	if (conf->log_file && conf->log_file[0] && chown(conf->log_file, pw->pw_uid, pw->pw_gid) != 0)
		sd_log(SD_LOG_WARN, "core", "event=log_chown_failed file=\"%s\" err=\"%s\"", conf->log_file,
		       strerror(errno));
	setfsgid(pw->pw_gid);
	setfsuid(pw->pw_uid);
	return 0;
}

/* Drop root for good, in every thread (glibc applies set*id to all):
 * supplementary groups, group, user. Checked: root cannot come back. */
static int drop_root(const struct passwd *pw, char *err, size_t errlen)
{
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "cannot become user %s: %s", pw->pw_name, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		snprintf(err, errlen, "root could be regained after becoming %s", pw->pw_name);
		return -1;
	}
	sd_log(SD_LOG_INFO, "core", "event=privileges_dropped user=%s uid=%ld gid=%ld", pw->pw_name,
	       (long)pw->pw_uid, (long)pw->pw_gid);
	return 0;
}

static int run(sd_conf *conf, const char *argv0)
{
	char err[ERRLEN];

	/* 2. signals, before any thread exists */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);

	/* 3. log */
	int rc = sd_log_open(conf->log_file, conf->log_level);
	if (rc < 0) {
		fprintf(stderr, "storaged: cannot open log file %s: %s\n", conf->log_file,
			strerror(-rc));
		return 1;
	}
	sd_log_set_format(conf->log_format);
	const char *files[SD_LOGF_N] = {conf->access_log, conf->xferlog};
	for (int i = 0; i < SD_LOGF_N; i++) {
		if (files[i] && *files[i] && (rc = sd_log_file_open(i, files[i])) < 0) {
			fprintf(stderr, "storaged: cannot open %s: %s\n", files[i], strerror(-rc));
			return 1;
		}
	}
	sd_log(SD_LOG_INFO, "core", "event=starting version=%s pid=%ld config=%s", SD_VERSION,
	       (long)getpid(), conf->config_path);

	/* 4. modules: load and verify them all first, so that a missing or
	 * stale module fails before the data directory is touched */
	size_t nmods = 0;
	sd_loaded_module *mods = conf->nsections ? sd_xcalloc(conf->nsections, sizeof *mods) : NULL;
	for (size_t i = 0; i < conf->nsections; i++) {
		const sd_conf_section *s = &conf->sections[i];
		if (!s->enabled)
			continue;
		if (sd_module_load(conf->module_dir, s->module, &mods[nmods], err, sizeof err) < 0) {
			/* load messages do not know the section: prefix it */
			fprintf(stderr, "storaged: [%s] %s\n", s->name, err);
			sd_log(SD_LOG_ERROR, "core", "event=failed section=%s reason=\"%s\"", s->name, err);
			stop_all(mods, nmods);
			free(mods);
			sd_log_close();
			return 1;
		}
		nmods++;
	}

	/* started as root with `user`: files are made as the user from now on
	 * (fs ids, inherited by the threads the engine starts); root stays for
	 * binding until the modules are initialised */
	struct passwd pw_copy = {0};
	int drop = 0;
	if (conf->user && conf->user[0] && geteuid() == 0) {
		if (prepare_user(conf, &pw_copy) < 0) {
			stop_all(mods, nmods);
			free(mods);
			sd_log_close();
			return 1;
		}
		drop = 1;
	}

	/* 5. the engine */
	err[0] = '\0';
	sd_core *core = sd_core_open(conf, SD_CORE_RECOVER | SD_CORE_THREADS, err, sizeof err);
	if (!core) {
		if (!err[0])
			snprintf(err, sizeof err, "cannot open the engine on %s", conf->data_dir);
		fprintf(stderr, "storaged: %s\n", err);
		sd_log(SD_LOG_ERROR, "core", "event=failed reason=\"%s\"", err);
		stop_all(mods, nmods);
		free(mods);
		sd_log_close();
		return 1;
	}
	const sd_core_api *api = sd_core_api_table();

	/* 6. init all (binds the sockets), then start all */
	int failed = 0;
	size_t next = 0;
	for (size_t i = 0; i < conf->nsections && !failed; i++) {
		const sd_conf_section *s = &conf->sections[i];
		if (!s->enabled)
			continue;
		if (sd_module_init(&mods[next++], api, core, conf, s, err, sizeof err) < 0)
			failed = 1;
	}
	if (!failed && drop && drop_root(&pw_copy, err, sizeof err) < 0)
		failed = 1;
	for (size_t i = 0; i < nmods && !failed; i++)
		if (sd_module_start(&mods[i], err, sizeof err) < 0)
			failed = 1;
	if (failed) {
		fprintf(stderr, "storaged: %s\n", err);
		sd_log(SD_LOG_ERROR, "core", "event=failed reason=\"%s\"", err);
		stop_all(mods, nmods);
		free(mods);
		sd_core_close(core);
		sd_log_close();
		return 1;
	}

	/* 7. ready */
	char addr[128];
	for (size_t i = 0; i < nmods; i++) {
		const sd_conf_section *s = mods[i].section;
		sd_log(SD_LOG_INFO, "core", "event=listening section=%s module=%s addr=%s", s->name,
		       mods[i].mod->name, fmt_addr(s, addr, sizeof addr));
	}
	sd_log(SD_LOG_INFO, "core", "event=ready modules=%zu", nmods);
	notify("READY=1");

	char *ctl = storagectl_path(argv0);
	char *abs_conf = NULL;
	const char *base = strrchr(conf->config_path, '/');
	base = base ? base + 1 : conf->config_path;
	if (strcmp(conf->config_dir, "/") == 0)
		abs_conf = sd_xasprintf("/%s", base);
	else
		abs_conf = sd_xasprintf("%s/%s", conf->config_dir, base);
	printf("storaged %s running (pid %ld), data in %s\n", SD_VERSION, (long)getpid(),
	       conf->data_dir);
	if (nmods == 0)
		printf("  no front end is enabled: set 'enabled = yes' in a section of %s\n", abs_conf);
	for (size_t i = 0; i < nmods; i++) {
		const sd_conf_section *s = mods[i].section;
		printf("  %-6s listening on %s\n", s->name, fmt_addr(s, addr, sizeof addr));
		/* a module's further listeners are keys named *_listen (FTP's
		 * implicit_tls_listen: implicit FTPS) */
		for (size_t k = 0; k < s->nentries; k++) {
			const sd_conf_entry *e = &s->entries[k];
			size_t kl = strlen(e->key);
			if (kl > 7 && strcmp(e->key + kl - 7, "_listen") == 0 && e->value[0])
				printf("  %-6s listening on %s (%s%s)\n", s->name, e->value, e->key,
				       strcmp(e->key, "implicit_tls_listen") == 0 ? ": implicit FTPS" : "");
		}
	}
	printf("Create the first user (the password is one line on stdin):\n"
	       "  printf '%%s\\n' 'a long password' | %s -c %s user add alice --password-stdin\n"
	       "or leave out --password-stdin to type it twice at a prompt.\n"
	       "Log: %s. Stop with Ctrl-C or SIGTERM; SIGHUP reopens the log.\n",
	       ctl, abs_conf, conf->log_file[0] ? conf->log_file : "standard error");
	fflush(stdout);
	free(ctl);
	free(abs_conf);

	/* the signal loop */
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			sd_log_reopen();
			sd_log(SD_LOG_INFO, "core", "event=reopen");
			continue;
		}
		sd_log(SD_LOG_INFO, "core", "event=stopping signal=%s", sig == SIGINT ? "INT" : "TERM");
		notify("STOPPING=1");
		break;
	}
	stop_all(mods, nmods);
	free(mods);
	sd_core_close(core);
	sd_log(SD_LOG_INFO, "core", "event=stopped");
	sd_log_close();
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 't'},
		{"doc-config", no_argument, NULL, 'D'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	int check = 0, doc = 0, c;
	while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 't': check = 1; break;
		case 'D': doc = 1; break;
		case 'V': printf("storaged %s\n", SD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "storaged: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (check && doc) {
		fprintf(stderr, "storaged: --check-config and --doc-config exclude each other\n");
		return 2;
	}
	if (!path && !doc) {
		/* the same default as storagectl */
		const char *env = getenv("STORAGED_CONF");
		path = env && *env ? env : DEFAULT_CONF;
	}

	char err[ERRLEN];
	sd_conf conf;
	if (path) {
		if (sd_conf_load(path, &conf, err, sizeof err) < 0) {
			fprintf(stderr, "storaged: %s\n", err);
			return 2;
		}
	}
	int rc;
	if (doc)
		rc = doc_config(path ? &conf : NULL);
	else if (check)
		rc = check_config(&conf);
	else
		rc = run(&conf, argv[0]);
	if (path)
		sd_conf_free(&conf);
	return rc;
}
