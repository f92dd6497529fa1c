-- 0004: small contents live inside the database (inline_max): one row per
-- inline blob, beside its blobs row; removed with it.
CREATE TABLE blob_inline (
	blob INTEGER PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
	data BLOB NOT NULL
);
