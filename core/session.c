/*
 * session.c - authenticated sessions and their credential re-checks.
 *
 * A session is what a login produced: the principal (user id, name, the
 * read-only flag of a read-only token), how it logged in (password, token
 * id, key id, or the admin tool), the client's address and protocol, and
 * its working directory. Front ends hold it opaquely and pass it to every
 * call; the engine never trusts a user id from a front end.
 *
 * Re-checks ("dynamic validation", also for sessions already open): a
 * session re-reads what its login relied on (auth.c sd__auth_recheck)
 * when this process changed any credential since the last check (cred_gen)
 * or at least SESSION_RECHECK_MS after it (changes made by storagectl in
 * another process). Once a check fails the session is dead for good:
 * every call returns -SD_EAUTH.
 *
 * States:  LIVE --recheck fails--> DEAD --session_close--> (freed)
 *          LIVE --session_close--> (freed; its handles abandoned)
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

#define SESSION_RECHECK_MS 1000

struct sd_session {
	sd_core *c;
	pthread_mutex_t m;
	sd_principal u;
	int method;
	int64_t cred_id;
	unsigned char pwtag[32];
	char addr[64];
	char proto[16];
	char cwd[SD_PATH_MAX + 1];
	int64_t checked; /* monotonic ms of the last check */
	unsigned gen;    /* c->cred_gen at the last check */
	int dead;
	atomic_int handles;
	int64_t burst_start, burst_last; /* deletes (engine ms), see delete_stamp */
	sd_locktoks toks; /* lock tokens submitted (lock.c), under m */
};

void sd__principal_set_user(sd_principal *p, const sd_user *u)
{
	p->id = u->id;
	memcpy(p->name, u->name, sizeof p->name);
	p->flags = u->flags;
	p->quota = u->quota;
	p->used = u->used;
}

void sd__pwtag(const char *pwhash, unsigned char out[32])
{
	crypto_generichash(out, 32, (const unsigned char *)pwhash, strlen(pwhash), NULL, 0);
}

int sd__session_new(sd_core *c, const sd_user *u, int method, int64_t cred_id,
		    const unsigned char *pwtag, const char *addr, const char *proto,
		    sd_session **out)
{
	sd_session *s = sd_xcalloc(1, sizeof *s);
	s->c = c;
	pthread_mutex_init(&s->m, NULL);
	sd__principal_set_user(&s->u, u);
	s->method = method;
	s->cred_id = cred_id;
	if (pwtag)
		memcpy(s->pwtag, pwtag, 32);
	snprintf(s->addr, sizeof s->addr, "%s", addr ? addr : "");
	snprintf(s->proto, sizeof s->proto, "%s", proto ? proto : "");
	snprintf(s->u.addr, sizeof s->u.addr, "%s", s->addr);
	snprintf(s->u.proto, sizeof s->u.proto, "%s", s->proto);
	snprintf(s->cwd, sizeof s->cwd, "/");
	if (method == SD_METHOD_ANONYMOUS)
		s->u.flags |= SD_P_OWN_TREE; /* the account's own files, no shared folder */
	s->checked = sd_mono_ms();
	s->gen = atomic_load(&c->cred_gen);
	*out = s;
	return 0;
}

int sd_core_session(sd_core *c, const char *user, sd_session **out)
{
	sd_user u;
	int r = sd__user_get(c, user, &u);
	if (r < 0)
		return r;
	return sd__session_new(c, &u, SD_METHOD_ADMIN, 0, NULL, "local", "cli", out);
}

void sd__session_cred(sd_session *s, sd_cred *out)
{
	pthread_mutex_lock(&s->m);
	out->uid = s->u.id;
	out->method = s->method;
	out->cred_id = s->cred_id;
	memcpy(out->pwtag, s->pwtag, 32);
	pthread_mutex_unlock(&s->m);
}

int64_t sd__session_uid(sd_session *s)
{
	return s->u.id; /* never changes after login */
}

sd_core *sd__session_core(sd_session *s)
{
	return s->c;
}

int sd__session_principal(sd_session *s, sd_principal *out)
{
	sd_core *c = s->c;
	pthread_mutex_lock(&s->m);
	unsigned gen = atomic_load(&c->cred_gen);
	int64_t now = sd_mono_ms();
	if (!s->dead && (gen != s->gen || now - s->checked >= SESSION_RECHECK_MS)) {
		sd_user fresh;
		int r = sd__auth_recheck(c, s->u.id, s->method, s->cred_id, s->pwtag, &fresh);
		if (r == 0) {
			fresh.flags |= s->u.flags & (SD_USER_READONLY | SD_P_OWN_TREE);
			sd__principal_set_user(&s->u, &fresh);
			s->checked = now;
			s->gen = gen;
		} else if (r == -SD_EAUTH) {
			s->dead = 1;
			sd_log(SD_LOG_INFO, "auth", "event=session_ended user=%s addr=%s proto=%s "
			       "reason=credentials_changed", s->u.name, s->addr, s->proto);
		}
		/* any other error (database busy): keep the last answer */
	}
	int dead = s->dead;
	if (!dead)
		*out = s->u; /* a copy: another thread's re-check may rewrite s->u */
	pthread_mutex_unlock(&s->m);
	return dead ? -SD_EAUTH : 0;
}

int sd__session_resolve(sd_session *s, const char *arg, size_t len, char *out, size_t outlen)
{
	return sd__resolve(s->cwd, arg, len, out, outlen);
}

int sd__session_set_cwd(sd_session *s, const char *npath)
{
	snprintf(s->cwd, sizeof s->cwd, "%s", npath);
	return 0;
}

void sd__session_info(sd_session *s, sd_session_info *out)
{
	memset(out, 0, sizeof *out);
	out->uid = s->u.id;
	snprintf(out->user, sizeof out->user, "%s", s->u.name);
	out->flags = s->u.flags & (SD_USER_ADMIN | SD_USER_READONLY);
	out->quota = s->u.quota;
	out->used = s->u.used;
	snprintf(out->addr, sizeof out->addr, "%s", s->addr);
	snprintf(out->proto, sizeof out->proto, "%s", s->proto);
	out->handles = atomic_load(&s->handles);
	snprintf(out->cwd, sizeof out->cwd, "%s", s->cwd);
}

int64_t sd__session_delete_stamp(sd_session *s, int64_t now_ms)
{
	pthread_mutex_lock(&s->m);
	if (!s->burst_last || now_ms - s->burst_last > SD_DELETE_BURST_MS || now_ms < s->burst_start)
		s->burst_start = now_ms;
	s->burst_last = now_ms;
	int64_t stamp = s->burst_start;
	pthread_mutex_unlock(&s->m);
	return stamp;
}

void sd__session_handles_add(sd_session *s, int delta)
{
	int now = atomic_fetch_add(&s->handles, delta) + delta;
	SD_ASSERT(now >= 0); /* I7 */
	(void)now;
}

void sd__session_close(sd_session *s)
{
	if (!s)
		return;
	if (atomic_load(&s->handles) > 0)
		sd__handles_drop_session(s->c, s);
	SD_ASSERT(atomic_load(&s->handles) == 0);
	pthread_mutex_destroy(&s->m);
	free(s);
}

void sd__session_set_tokens(sd_session *s, const sd_locktoks *tk)
{
	pthread_mutex_lock(&s->m);
	s->toks.n = tk->n;
	for (int i = 0; i < tk->n; i++)
		memcpy(s->toks.tok[i], tk->tok[i], sizeof s->toks.tok[i]);
	pthread_mutex_unlock(&s->m);
}

void sd__session_tokens(sd_session *s, sd_locktoks *out)
{
	pthread_mutex_lock(&s->m);
	out->n = s->toks.n;
	for (int i = 0; i < s->toks.n; i++)
		memcpy(out->tok[i], s->toks.tok[i], sizeof out->tok[i]);
	pthread_mutex_unlock(&s->m);
}
