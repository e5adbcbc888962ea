-- The embedded store's tables, created if missing at every open.
--
-- records.seq is a plain rowid alias, not AUTOINCREMENT: records are never
-- deleted, so a new record always gets a larger seq than every committed one
-- (what the bulk_since row in meta relies on) without an update of
-- sqlite_sequence per insert. Stores made with AUTOINCREMENT keep it.
CREATE TABLE IF NOT EXISTS merchants (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    merchant TEXT NOT NULL,
    json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS record_index (merchant TEXT PRIMARY KEY, seqs BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dirty (merchant TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS projections (
    merchant TEXT PRIMARY KEY,
    grade TEXT NOT NULL,
    next_change_at TEXT,
    json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS projections_due ON projections (next_change_at);
CREATE TABLE IF NOT EXISTS overrides (merchant TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
    serial INTEGER PRIMARY KEY,
    merchant TEXT NOT NULL,
    status TEXT NOT NULL,
    json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS codes_by_merchant ON codes (merchant, serial);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
    actor TEXT NOT NULL, target TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_target ON audit (target, seq);
CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, merchant TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (collection TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (collection, key)) WITHOUT ROWID;
