/*
 * keys.c - the SSH host keys of the sftp front end.
 *
 * Where: host_key_dir when configured (created 0700 if missing), else the
 * engine's state directory "ssh" (<data_dir>/ssh, created 0700 by the
 * engine): the same place as before the engine kept the data directory to
 * itself, so existing installations keep their keys.
 *
 * What: ssh_host_ed25519_key, and ssh_host_rsa_key (3072 bits) with
 * rsa_host_key. A missing key is generated: the file is created empty with
 * mode 0600 first (libssh's export keeps the mode of an existing file),
 * then written, and a "type base64 comment" .pub is put next to it for
 * operators. Every key is loaded once here, its fingerprint logged, and its
 * path given to the ssh_bind, which imports it on the first accepted
 * connection; a key that cannot be loaded fails start-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sftp_int.h"
#include "sys.h"
#include "util.h"

/* host_key_dir (created 0700 when missing), or the engine's "ssh" state
 * directory, into s->keydir. 0 or -errno. */
static int key_dir(struct srv *s)
{
	const char *dir = s->conf->host_key_dir;
	struct stat sb;
	int rc;
	if (dir == NULL || dir[0] == '\0')
		return s->api->state_dir(s->core, "ssh", s->keydir, sizeof(s->keydir));
	if (snprintf(s->keydir, sizeof(s->keydir), "%s", dir) >= (int)sizeof(s->keydir))
		return -ENAMETOOLONG;
	if (stat(s->keydir, &sb) == 0)
		return S_ISDIR(sb.st_mode) ? 0 : -ENOTDIR;
	if (errno != ENOENT)
		return -errno;
	if ((rc = sd_sys_mkdirs(s->keydir)) < 0)
		return rc;
	return chmod(s->keydir, 0700) < 0 ? -errno : 0; /* keys: the owner only */
}

/* Write "type base64 comment" to path.pub, for operators (best effort). */
static void write_pub(struct srv *s, ssh_key key, const char *path)
{
	sd_buf line = SD_BUF_INIT;
	char *pub = sd_xasprintf("%s.pub", path);
	char *b64 = NULL;
	int fd, rc = -EINVAL;
	if (ssh_pki_export_pubkey_base64(key, &b64) == SSH_OK) {
		sd_buf_printf(&line, "%s %s storaged-host-key\n",
			      ssh_key_type_to_char(ssh_key_type(key)), b64);
		fd = sd_sys_open(pub, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		rc = fd;
		if (fd >= 0) {
			rc = sd_sys_write(fd, line.data, line.len);
			if (sd_sys_close(fd) < 0 && rc == 0)
				rc = -EIO;
		}
	}
	if (rc < 0)
		SLOG(s, SD_LOG_WARN, "event=host_key_pub_failed path=\"%s\" err=\"%s\"", pub,
		     strerror(-rc));
	ssh_string_free_char(b64);
	sd_buf_free(&line);
	free(pub);
}

/* Generate a key of type at path, mode 0600. 0 or -SD_ECONFIG (logged). */
static int generate(struct srv *s, enum ssh_keytypes_e type, int bits, const char *path)
{
	ssh_key key = NULL;
	int fd;
	if (ssh_pki_generate(type, bits, &key) != SSH_OK) {
		SLOG(s, SD_LOG_ERROR, "event=host_key_failed path=\"%s\" reason=\"generate\"", path);
		return -SD_ECONFIG;
	}
	fd = sd_sys_open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || sd_sys_close(fd) < 0 ||
	    ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path) != SSH_OK ||
	    chmod(path, 0600) < 0) {
		SLOG(s, SD_LOG_ERROR, "event=host_key_failed path=\"%s\" reason=\"cannot write: %s\"",
		     path, fd < 0 ? strerror(-fd) : strerror(errno));
		if (fd >= 0)
			sd_sys_unlink(path);
		ssh_key_free(key);
		return -SD_ECONFIG;
	}
	write_pub(s, key, path);
	ssh_key_free(key);
	return 0;
}

/* Load the key file in keydir (generating it first if missing), log its
 * fingerprint and give it to the bind. 0 or -SD_ECONFIG (logged). */
static int host_key(struct srv *s, enum ssh_keytypes_e type, int bits, const char *file)
{
	char path[4200];
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp;
	int generated = 0, rc;

	if (snprintf(path, sizeof(path), "%s/%s", s->keydir, file) >= (int)sizeof(path)) {
		SLOG(s, SD_LOG_ERROR, "event=host_key_failed reason=\"path too long\"");
		return -SD_ECONFIG;
	}
	if (access(path, F_OK) != 0) {
		if ((rc = generate(s, type, bits, path)) < 0)
			return rc;
		generated = 1;
	}
	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
		SLOG(s, SD_LOG_ERROR, "event=host_key_failed path=\"%s\" reason=\"cannot load key\"", path);
		return -SD_ECONFIG;
	}
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0) {
		fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
		SLOG(s, SD_LOG_INFO, "event=host_key type=%s path=\"%s\" fingerprint=%s generated=%d",
		     ssh_key_type_to_char(ssh_key_type(key)), path, fp ? fp : "?", generated);
		ssh_string_free_char(fp);
		ssh_clean_pubkey_hash(&hash);
	}
	ssh_key_free(key);
	if (ssh_bind_options_set(s->bind, SSH_BIND_OPTIONS_HOSTKEY, path) != SSH_OK) {
		SLOG(s, SD_LOG_ERROR, "event=host_key_failed path=\"%s\" reason=\"%s\"", path,
		     ssh_get_error(s->bind));
		return -SD_ECONFIG;
	}
	return 0;
}

int sd__sftp_host_keys(struct srv *s)
{
	int rc = key_dir(s);
	if (rc < 0) {
		SLOG(s, SD_LOG_ERROR, "event=init_failed reason=\"cannot create host_key_dir %s: %s\"",
		     s->keydir[0] ? s->keydir : "<data_dir>/ssh", s->api->strerror(rc));
		return -SD_ECONFIG;
	}
	if ((rc = host_key(s, SSH_KEYTYPE_ED25519, 0, "ssh_host_ed25519_key")) < 0)
		return rc;
	if (s->conf->rsa_host_key && (rc = host_key(s, SSH_KEYTYPE_RSA, 3072, "ssh_host_rsa_key")) < 0)
		return rc;
	return 0;
}
