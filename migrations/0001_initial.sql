-- 0001: the initial schema. See DESIGN.md "Data model".
-- Times are milliseconds since the epoch unless the column says otherwise.

CREATE TABLE users (
	id          INTEGER PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	pwhash      TEXT,                      -- Argon2id string, NULL = no password login
	root        INTEGER,                   -- nodes.id of the user's "/"
	quota_bytes INTEGER NOT NULL DEFAULT 0,-- 0 = unlimited
	used_bytes  INTEGER NOT NULL DEFAULT 0,-- logical bytes in live files
	admin       INTEGER NOT NULL DEFAULT 0,
	disabled    INTEGER NOT NULL DEFAULT 0,
	created     INTEGER NOT NULL
);

CREATE TABLE keys (
	id       INTEGER PRIMARY KEY,
	user     INTEGER NOT NULL REFERENCES users(id),
	type     TEXT NOT NULL,                -- "ssh-ed25519"
	b64      TEXT NOT NULL,                -- base64 public key blob
	comment  TEXT,
	created  INTEGER NOT NULL,
	UNIQUE(user, type, b64)
);

CREATE TABLE tokens (
	id       INTEGER PRIMARY KEY,
	user     INTEGER NOT NULL REFERENCES users(id),
	hash     BLOB NOT NULL UNIQUE,         -- SHA-256 of the secret part
	readonly INTEGER NOT NULL DEFAULT 0,
	created  INTEGER NOT NULL,
	expires  INTEGER NOT NULL DEFAULT 0,   -- 0 = never
	revoked  INTEGER NOT NULL DEFAULT 0
);

-- One row per distinct content. refs = number of versions rows that name it.
CREATE TABLE blobs (
	id          INTEGER PRIMARY KEY,
	sha256      TEXT NOT NULL UNIQUE,      -- 64 lowercase hex digits
	size        INTEGER NOT NULL,
	refs        INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0),
	created     INTEGER NOT NULL,
	last_access INTEGER NOT NULL
);
CREATE INDEX blobs_unreferenced ON blobs(last_access) WHERE refs = 0;

-- The user view (FSTS): delete is logical (deleted_at).
CREATE TABLE nodes (
	id         INTEGER PRIMARY KEY,
	owner      INTEGER NOT NULL REFERENCES users(id),
	parent     INTEGER REFERENCES nodes(id),  -- NULL for a user's root
	name       TEXT NOT NULL,
	kind       INTEGER NOT NULL,              -- 1 file, 2 directory
	blob       INTEGER REFERENCES blobs(id),  -- files: current content
	size       INTEGER NOT NULL DEFAULT 0,
	mode       INTEGER NOT NULL,
	mtime      INTEGER NOT NULL,              -- seconds
	ctime      INTEGER NOT NULL,              -- seconds
	deleted_at INTEGER                        -- ms; NULL = live
);
CREATE UNIQUE INDEX nodes_live_name ON nodes(parent, name) WHERE deleted_at IS NULL;
CREATE INDEX nodes_deleted ON nodes(deleted_at) WHERE deleted_at IS NOT NULL;

-- Content history: every commit of a file adds one row and one reference.
CREATE TABLE versions (
	id    INTEGER PRIMARY KEY,
	node  INTEGER NOT NULL REFERENCES nodes(id),
	blob  INTEGER NOT NULL REFERENCES blobs(id),
	size  INTEGER NOT NULL,
	ts    INTEGER NOT NULL
);
CREATE INDEX versions_node ON versions(node, ts);
CREATE INDEX versions_blob ON versions(blob);

-- Append-only log of every mutation.
CREATE TABLE journal (
	seq    INTEGER PRIMARY KEY,
	ts     INTEGER NOT NULL,
	user   TEXT,
	op     TEXT NOT NULL,
	path   TEXT,
	detail TEXT
);
CREATE INDEX journal_ts ON journal(ts);
