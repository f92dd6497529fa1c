/*
 * history.h - the history API of the HTTP front end (history.c): handlers
 * for the route table, and the ?at= hooks that files.c calls.
 */
#ifndef SD_HTTP_HISTORY_H
#define SD_HTTP_HISTORY_H

#include "http.h"

#pragma GCC visibility push(hidden)

/* Route handlers (routes.c): /api/v1/versions/<path>, /api/v1/trash[/<id>],
 * /api/v1/rollback. */
enum MHD_Result sd__http_versions(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_trash(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_rollback(struct MHD_Connection *c, hreq *r, const char *tail);

/* GET/HEAD of /api/v1/fs/<path> and /api/v1/stat/<path> with ?at=<time>
 * (r->path taken): 0 when the request has no ?at= (the caller answers as
 * usual), 1 when it was answered here (*ret). */
int sd__http_fs_at(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret);
int sd__http_stat_at(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret);

#pragma GCC visibility pop

#endif
