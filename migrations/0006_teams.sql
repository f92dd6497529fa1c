-- 0006: teams (issue 15): groups, shared folders mounted into members'
-- views, per-folder rights for users and groups, who made and changed each
-- node, and share links. See core/team.c and core/link.c for the design and
-- its invariants (T1-T8, L1-L6). Times are ms since the epoch.

CREATE TABLE groups (
	id      INTEGER PRIMARY KEY,
	name    TEXT NOT NULL UNIQUE,
	created INTEGER NOT NULL
);

CREATE TABLE members (
	grp  INTEGER NOT NULL REFERENCES groups(id),
	user INTEGER NOT NULL REFERENCES users(id),
	PRIMARY KEY (grp, user)
) WITHOUT ROWID;
CREATE INDEX members_user ON members(user, grp);

-- A shared folder: a tree of its own, owned by an account row of its own
-- (users.name "~share:<name>": no credentials, never listed, never a login;
-- its quota_bytes and used_bytes are the folder's quota and usage, I4).
-- It appears at "/<name>" in the view of every user a rule names.
CREATE TABLE shares (
	id      INTEGER PRIMARY KEY,
	name    TEXT NOT NULL UNIQUE,
	account INTEGER NOT NULL UNIQUE REFERENCES users(id),
	created INTEGER NOT NULL
);

-- Rights on a folder (or file) of a shared folder and below, for one user
-- or one group: a mask of list 1, read 2, write 4, delete 8, rename 16,
-- share 32. The rule of the deepest node on a path that has a rule for the
-- user wins; at one node a user's own rule wins over its groups' rules,
-- which add up. Rules name nodes, so they follow renames.
CREATE TABLE share_rules (
	id     INTEGER PRIMARY KEY,
	share  INTEGER NOT NULL REFERENCES shares(id),
	node   INTEGER NOT NULL REFERENCES nodes(id),
	grp    INTEGER REFERENCES groups(id),
	user   INTEGER REFERENCES users(id),
	rights INTEGER NOT NULL,
	CHECK ((grp IS NULL) != (user IS NULL))
);
CREATE UNIQUE INDEX share_rules_group ON share_rules(node, grp) WHERE grp IS NOT NULL;
CREATE UNIQUE INDEX share_rules_user ON share_rules(node, user) WHERE user IS NOT NULL;
CREATE INDEX share_rules_share ON share_rules(share);
CREATE INDEX share_rules_grp ON share_rules(grp) WHERE grp IS NOT NULL;
CREATE INDEX share_rules_uid ON share_rules(user) WHERE user IS NOT NULL;

-- Bumped in the transaction of every change to groups, members, shares and
-- rules (also by user_delete), so a view knows its cached rights are
-- current by reading one row (team.c T3).
CREATE TABLE team_gen (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	gen INTEGER NOT NULL
);
INSERT INTO team_gen(id, gen) VALUES (1, 1);

-- Who made each node and who changed it last (user names, as versions
-- record them; NULL: the admin tool, or not known).
ALTER TABLE nodes ADD COLUMN created_by TEXT;
ALTER TABLE nodes ADD COLUMN changed_by TEXT;
UPDATE nodes SET created_by = (SELECT u.name FROM users u WHERE u.id = nodes.owner)
 WHERE parent IS NOT NULL;
UPDATE nodes SET changed_by = coalesce((SELECT v.user FROM versions v WHERE v.node = nodes.id
					 ORDER BY v.id DESC LIMIT 1), created_by)
 WHERE parent IS NOT NULL;

-- Share links (core/link.c): a random token (only its SHA-256 is kept) to
-- a node, served without an account. mode: 1 read (download, list), 2
-- upload (a file request: new files only, no listing).
CREATE TABLE links (
	id            INTEGER PRIMARY KEY,
	hash          BLOB NOT NULL UNIQUE,   -- SHA-256 of the token
	user          INTEGER NOT NULL REFERENCES users(id), -- who made it; it acts with their rights
	node          INTEGER NOT NULL REFERENCES nodes(id),
	path          TEXT NOT NULL,          -- the node's path in the maker's view when made
	mode          INTEGER NOT NULL,
	pwhash        TEXT,                   -- Argon2id string, NULL = no password
	expires       INTEGER NOT NULL DEFAULT 0, -- 0 = never
	max_downloads INTEGER NOT NULL DEFAULT 0, -- 0 = no limit
	downloads     INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL,
	revoked       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX links_user ON links(user);
CREATE INDEX links_node ON links(node);
