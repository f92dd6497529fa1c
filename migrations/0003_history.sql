-- 0003: history users can reach (issue 20). See core/history.c for the
-- design and its invariants. Times are ms since the epoch.

-- Names at a user's root that the engine's virtual folders take (core/
-- history.c): a live entry so named, made before this migration, is renamed
-- to "<name>.<node id>" so that it stays reachable.
UPDATE nodes SET name = name || '.' || id
 WHERE deleted_at IS NULL AND name IN ('.snapshots', '.trash')
   AND parent IN (SELECT root FROM users WHERE root IS NOT NULL);

-- The tree's past shape: one row per stay of a node at (parent, name),
-- during [t_from, t_to). t_to is NULL exactly while the node is live.
-- Users' roots have no row (they never move and are never deleted).
-- parent has no foreign key: a stay under a folder that the cleaner
-- purged later is history that no view within the horizon reaches, and
-- the cleaner prunes it.
CREATE TABLE placements (
	id     INTEGER PRIMARY KEY,
	node   INTEGER NOT NULL REFERENCES nodes(id),
	owner  INTEGER NOT NULL,
	parent INTEGER NOT NULL,
	name   TEXT NOT NULL,
	t_from INTEGER NOT NULL,
	t_to   INTEGER
);
-- a folder's entries at T, in name order, from the index alone
CREATE INDEX placements_at ON placements(parent, name, t_from, t_to, node);
CREATE INDEX placements_node ON placements(node, t_from);
CREATE UNIQUE INDEX placements_open ON placements(node) WHERE t_to IS NULL;
CREATE INDEX placements_closed ON placements(t_to) WHERE t_to IS NOT NULL;

-- What was deleted below a deleted folder (the trash, and the cleaner's
-- purge), found without scanning every node.
CREATE INDEX nodes_deleted_parent ON nodes(parent) WHERE deleted_at IS NOT NULL;

-- The moments a user's tree changed shape or content (the entries of
-- /.snapshots/): one row per (user, ms) that any change was committed at.
CREATE TABLE tree_changes (
	owner INTEGER NOT NULL,
	ts    INTEGER NOT NULL,
	PRIMARY KEY (owner, ts)
) WITHOUT ROWID;

-- Who made each version, how, and the mtime it gave the file (seconds).
-- op: write, instant, copy, restore, rollback.
ALTER TABLE versions ADD COLUMN mtime INTEGER;
ALTER TABLE versions ADD COLUMN user TEXT;
ALTER TABLE versions ADD COLUMN proto TEXT;
ALTER TABLE versions ADD COLUMN addr TEXT;
ALTER TABLE versions ADD COLUMN op TEXT;

-- The time of a file's current version (its newest): a past view takes a
-- file unchanged since then straight from its node.
ALTER TABLE nodes ADD COLUMN vts INTEGER;

-- Rows made before this migration get the best history there is: every
-- node stays where it is now since it was made (a file: its first
-- version's time; a folder: its ctime, in seconds) until its deletion;
-- renames made before are not known. Versions keep their times; the
-- current one has the file's mtime, older ones their commit time; who
-- made them is not known (NULL).
UPDATE versions SET mtime = ts / 1000;
UPDATE versions SET mtime = (SELECT n.mtime FROM nodes n WHERE n.id = versions.node)
 WHERE id IN (SELECT max(id) FROM versions GROUP BY node);

UPDATE nodes SET vts = (SELECT max(v.ts) FROM versions v WHERE v.node = nodes.id) WHERE kind = 1;

INSERT INTO placements(node, owner, parent, name, t_from, t_to)
SELECT n.id, n.owner, n.parent, n.name,
       CASE WHEN n.kind = 1
            THEN coalesce((SELECT min(v.ts) FROM versions v WHERE v.node = n.id), n.ctime * 1000)
            ELSE n.ctime * 1000 END,
       n.deleted_at
  FROM nodes n WHERE n.parent IS NOT NULL;
UPDATE placements SET t_from = t_to WHERE t_to IS NOT NULL AND t_to < t_from;

INSERT OR IGNORE INTO tree_changes(owner, ts) SELECT owner, t_from FROM placements;
INSERT OR IGNORE INTO tree_changes(owner, ts)
	SELECT owner, t_to FROM placements WHERE t_to IS NOT NULL;
INSERT OR IGNORE INTO tree_changes(owner, ts)
	SELECT n.owner, v.ts FROM versions v JOIN nodes n ON n.id = v.node;
