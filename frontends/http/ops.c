/*
 * ops.c - endpoints for operators:
 *   GET /healthz   {"status":"ok"}, without authentication
 *   GET /metrics   the engine's registry in Prometheus text format; who may
 *                  is the `metrics` key's (checked by routes.c)
 */
#include <string.h>

#include "http.h"

enum MHD_Result sd__http_healthz(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)tail;
	return sd__http_reply_json(c, r, 200, json_pack("{s:s}", "status", "ok"));
}

enum MHD_Result sd__http_metrics(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)tail;
	http_srv *s = r->srv;
	char *m = s->api->metrics_render(s->core);
	if (!m)
		return sd__http_reply_error(c, r, 500, "internal", "metrics unavailable");
	size_t n = strlen(m);
	/* the text is the engine's, released with the engine's free */
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(n, m,
										      s->api->free);
	if (!resp) {
		s->api->free(m);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	return sd__http_queue(c, r, 200, resp, n);
}
