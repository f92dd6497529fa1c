/*
 * dav_xml.c - XML for WebDAV: request bodies parsed with libxml2,
 * hardened; answers written as text with one escaper.
 *
 * Hardening (a request body is untrusted):
 *  1. No DTD at all: the SAX hooks for an internal or external subset and
 *     for entity declarations stop the parser, and the body is refused. So
 *     no internal entity (billion laughs), no external entity (file or
 *     network reads), no default attributes from a DTD. WebDAV bodies
 *     never need one.
 *  2. XML_PARSE_NONET, and never XML_PARSE_NOENT, XML_PARSE_DTDLOAD or
 *     XML_PARSE_HUGE: libxml2 keeps its default limits (depth 256, text
 *     node sizes); the body itself is capped by dav_max_xml_body before
 *     parsing (dav.c).
 *  3. libxml2 prints nothing (XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
 *     the reason goes to the client as a 400.
 *
 * Writing: every piece of client or user text that goes into an answer
 * goes through sd__dav_esc; hrefs are percent-encoded (all but RFC 3986
 * unreserved characters and '/'), so they are also plain XML text.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/xmlsave.h>

#include "dav.h"

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static xmlParserInputPtr no_external(const char *url, const char *id, xmlParserCtxtPtr ctxt);

static void xml_init(void)
{
	xmlInitParser();
	/* process-wide: nothing in this process loads external entities */
	xmlSetExternalEntityLoader(no_external);
}

/* Set when a DTD or an entity declaration shows up (ctxt->_private). */
static char refused_mark;

static void refuse(void *ctx)
{
	xmlParserCtxtPtr p = ctx;
	p->_private = &refused_mark;
	xmlStopParser(p);
}

static void refuse_subset(void *ctx, const xmlChar *name, const xmlChar *eid, const xmlChar *sid)
{
	(void)name;
	(void)eid;
	(void)sid;
	refuse(ctx);
}

static void refuse_entity(void *ctx, const xmlChar *name, int type, const xmlChar *pid,
			  const xmlChar *sid, xmlChar *content)
{
	(void)name;
	(void)type;
	(void)pid;
	(void)sid;
	(void)content;
	refuse(ctx);
}

static xmlParserInputPtr no_external(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	(void)url;
	(void)id;
	if (ctxt)
		refuse(ctxt);
	return NULL;
}

xmlDocPtr sd__dav_parse(const char *buf, size_t len, const char **why)
{
	pthread_once(&xml_once, xml_init);
	if (len == 0 || len > INT32_MAX) {
		*why = "empty XML body";
		return NULL;
	}
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		*why = "out of memory";
		return NULL;
	}
	ctxt->sax->internalSubset = refuse_subset;
	ctxt->sax->externalSubset = refuse_subset;
	ctxt->sax->entityDecl = refuse_entity;
	ctxt->_private = NULL;
	int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
	xmlDocPtr doc = xmlCtxtReadMemory(ctxt, buf, (int)len, "request.xml", NULL, opts);
	int refused = ctxt->_private == &refused_mark;
	int wf = ctxt->wellFormed && ctxt->nsWellFormed;
	xmlFreeParserCtxt(ctxt);
	if (refused || (doc && (doc->intSubset || doc->extSubset))) {
		xmlFreeDoc(doc);
		*why = "XML bodies with a DTD or entity declarations are refused";
		return NULL;
	}
	if (!doc || !wf || !xmlDocGetRootElement(doc)) {
		xmlFreeDoc(doc);
		*why = "the body is not well-formed XML";
		return NULL;
	}
	return doc;
}

int sd__dav_is(xmlNodePtr n, const char *ns, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0 &&
	       strcmp(sd__dav_ns(n), ns) == 0;
}

const char *sd__dav_ns(xmlNodePtr n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

xmlNodePtr sd__dav_next(xmlNodePtr n)
{
	for (n = n ? n->next : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			return n;
	return NULL;
}

xmlNodePtr sd__dav_child(xmlNodePtr n)
{
	for (n = n ? n->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			return n;
	return NULL;
}

int sd__dav_elem_xml(xmlNodePtr n, sd_buf *out)
{
	/* a copy as the root of a document of its own: libxml2 declares on
	 * it every namespace the subtree uses from the original's ancestors */
	xmlDocPtr d = xmlNewDoc((const xmlChar *)"1.0");
	if (!d)
		return -ENOMEM;
	xmlNodePtr cp = xmlDocCopyNode(n, d, 1);
	if (!cp) {
		xmlFreeDoc(d);
		return -ENOMEM;
	}
	xmlDocSetRootElement(d, cp);
	xmlReconciliateNs(d, cp);
	xmlBufferPtr b = xmlBufferCreate();
	int r = -ENOMEM;
	if (b && xmlNodeDump(b, d, cp, 0, 0) >= 0) {
		sd_buf_append(out, (const char *)xmlBufferContent(b), (size_t)xmlBufferLength(b));
		r = 0;
	}
	xmlBufferFree(b);
	xmlFreeDoc(d);
	return r;
}

char *sd__dav_text(xmlNodePtr n)
{
	xmlChar *t = xmlNodeGetContent(n);
	char *s = sd_xstrdup(t ? (const char *)t : "");
	xmlFree(t);
	return s;
}

void sd__dav_esc(sd_buf *b, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		const char *rep = NULL;
		switch (s[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default: break;
		}
		if (!rep)
			continue;
		sd_buf_append(b, s + run, i - run);
		sd_buf_puts(b, rep);
		run = i + 1;
	}
	sd_buf_append(b, s + run, n - run);
}

void sd__dav_escs(sd_buf *b, const char *s)
{
	sd__dav_esc(b, s, strlen(s));
}

static int unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

void sd__dav_href(const http_srv *s, sd_buf *b, const char *path, int dir)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *pre = s->conf->dav_prefix;
	size_t pl = strlen(pre);
	sd_buf_append(b, pre, pl - 1); /* without its final '/': path has one */
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (unreserved(*p) || *p == '/') {
			sd_buf_append(b, (const char *)p, 1);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			sd_buf_append(b, e, 3);
		}
	}
	if (dir && (b->len == 0 || b->data[b->len - 1] != '/'))
		sd_buf_puts(b, "/");
}

void sd__dav_empty_elem(sd_buf *b, const char *ns, const char *name)
{
	if (strcmp(ns, DAV_NS) == 0) {
		sd_buf_puts(b, "<D:");
		sd_buf_puts(b, name);
		sd_buf_puts(b, "/>");
		return;
	}
	sd_buf_puts(b, "<");
	if (*ns) {
		sd_buf_puts(b, "X:");
		sd_buf_puts(b, name);
		sd_buf_puts(b, " xmlns:X=\"");
		sd__dav_escs(b, ns);
		sd_buf_puts(b, "\"/>");
	} else {
		sd_buf_puts(b, name);
		sd_buf_puts(b, " xmlns=\"\"/>");
	}
}

void sd__dav_iso_date(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(out, outlen, "1970-01-01T00:00:00Z");
		return;
	}
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
