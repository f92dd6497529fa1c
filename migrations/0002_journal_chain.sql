-- 0002: a journal you can trust and replay (issue 20). See core/journal.c
-- for the canonical byte form that `hash` is the SHA-256 of.

-- args: a JSON object with what a replay needs (content address, modes,
-- rename targets ...), NULL when the change needs nothing more.
-- prev: the hash of the row before (32 bytes); hash: this row's (32 bytes).
-- Rows written before this migration are chained by the first engine
-- open after it (journal.c sd__journal_seal), not here: SQL has no SHA-256.
ALTER TABLE journal ADD COLUMN args TEXT;
ALTER TABLE journal ADD COLUMN prev BLOB;
ALTER TABLE journal ADD COLUMN hash BLOB;

-- Where the chain starts: the seq and hash of the last row the cleaner
-- pruned (journal_retention), or (0, 32 zero bytes) before any pruning.
-- Rows pruned before this migration are not known: the anchor then sits
-- just before the first row there is. ts: time of the last pruned row.
CREATE TABLE journal_anchor (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	seq    INTEGER NOT NULL,
	hash   BLOB NOT NULL,
	ts     INTEGER NOT NULL DEFAULT 0,
	pruned INTEGER NOT NULL DEFAULT 0      -- when the cleaner last moved it (ms)
);
INSERT INTO journal_anchor(id, seq, hash)
	VALUES (1, coalesce((SELECT min(seq) FROM journal), 1) - 1, zeroblob(32));

-- Facts about this data directory: store_id (random, names it as a
-- replication source), journal_sealed (0 until the rows written before
-- this migration are chained).
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
INSERT INTO meta(key, value) VALUES ('store_id', lower(hex(randomblob(16))));
INSERT INTO meta(key, value) VALUES ('journal_sealed', '0');

-- On a copy made by `storagectl replicate`: the source it follows and the
-- last source row applied here (seq, hash), written in the transaction of
-- the change that applied it.
CREATE TABLE replica (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	source  TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	hash    BLOB NOT NULL,
	updated INTEGER NOT NULL
);
