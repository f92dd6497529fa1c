-- 0005 (the brief reserved 0006: renumber at merge as needed): dead
-- properties of nodes (WebDAV PROPPATCH; core/props.c): any
-- (namespace, name) -> text the client chose, kept with the node (so a
-- rename keeps them, a delete takes them to the trash and back) and purged
-- with it.
CREATE TABLE node_props (
	node  INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
	ns    TEXT NOT NULL,          -- namespace, '' for none
	name  TEXT NOT NULL,          -- local name
	value TEXT NOT NULL,          -- opaque UTF-8 (WebDAV: the property's XML)
	PRIMARY KEY (node, ns, name)
) WITHOUT ROWID;
