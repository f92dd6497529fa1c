-- 0007: resumable uploads (tus, core/rupload.c). One row per upload
-- session: whose it is, where its file goes, how long it will be, how much
-- of it is durable in <data_dir>/uploads/<id>, and when it expires. The
-- row exists before its part file, and goes before it (rupload.c R2).
CREATE TABLE upload_sessions (
	id TEXT PRIMARY KEY,             -- 32 hex digits: 128 random bits
	owner INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	path TEXT NOT NULL,              -- the target, as the engine resolved it
	flags INTEGER NOT NULL DEFAULT 0,-- SD_UP_PARENTS, SD_UP_EXCL
	mode INTEGER NOT NULL DEFAULT 420,
	length INTEGER NOT NULL,         -- bytes the whole upload will have
	offset INTEGER NOT NULL DEFAULT 0, -- bytes received and made durable
	meta TEXT NOT NULL DEFAULT '',   -- Upload-Metadata as the client sent it
	created INTEGER NOT NULL,        -- ms
	updated INTEGER NOT NULL,        -- ms of the last write
	expires INTEGER NOT NULL,        -- ms
	done INTEGER NOT NULL DEFAULT 0  -- 1: committed as a version of path
) WITHOUT ROWID;
CREATE INDEX upload_sessions_owner ON upload_sessions(owner);
CREATE INDEX upload_sessions_expires ON upload_sessions(expires);
