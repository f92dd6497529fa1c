/*
 * teams.h - teams and share links in the HTTP front end (issue 15):
 *   links.c   /api/v1/links (a user's own links) and /s/<token> (a link
 *             served to a browser without an account: an HTML listing,
 *             files with Range and ETag, a folder as a streamed zip,
 *             uploads into a file request)
 *   shares.c  /api/v1/admin/groups, /shares, /links (the admin API)
 *   zip.c     a ZIP archive written as a stream (leaf)
 */
#ifndef SD_HTTP_TEAMS_H
#define SD_HTTP_TEAMS_H

#include "http.h"

#pragma GCC visibility push(hidden)

/* Route handlers (routes.c). */
enum MHD_Result sd__http_links(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_link_serve(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_admin_groups(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_admin_shares(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_admin_links(struct MHD_Connection *c, hreq *r, const char *tail);

/* The JSON body of a link to make (POST /api/v1/links and the admin's):
 * {"path", "mode": "read"|"upload", "expires", "password", "max_downloads"}
 * into *o (o->password points into j). 0, or -1 with *why set. */
int sd__http_link_opts(http_srv *s, json_t *j, sd_link_opts *o, const char **why);
/* The answer to a link made: the link's JSON plus "token" and "url". */
json_t *sd__http_link_made(http_srv *s, const sd_link_info *li, const char *token);

/* ------------------------------------------------------------ zip.c */

typedef struct http_zip http_zip;
/* A new archive; force_zip64: ZIP64 records for every entry (tests). */
http_zip *sd__http_zip_new(int force_zip64);
void sd__http_zip_free(http_zip *z);
/* Append to out the local header of the next entry: a file of size bytes
 * (its data follows, then sd__http_zip_data_end) or, dir, a folder (name
 * gets its '/'). mtime in seconds, mode the permission bits. Returns 1
 * when the entry uses ZIP64. */
uint64_t sd__http_zip_entry(http_zip *z, const char *name, int dir, uint64_t size, int64_t mtime,
			    uint32_t mode, sd_buf *out);
/* The file's data (size bytes, CRC-32 crc) has been written: append its
 * data descriptor to out. */
void sd__http_zip_data_end(http_zip *z, uint32_t crc, uint64_t size, sd_buf *out);
/* Append the central directory and the end records to out. */
void sd__http_zip_finish(http_zip *z, sd_buf *out);
/* CRC-32 (zip's) of data, continuing crc (0 to start). */
uint32_t sd__http_zip_crc(uint32_t crc, const void *data, size_t len);

#pragma GCC visibility pop

#endif
