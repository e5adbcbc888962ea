-- Schema 3: the regulators' search index, derived from the projections
-- (written with each projection by `search_index.rs`, never on its own).
--
-- search: one row per merchant with a projection, clustered by cell
--   (region, grade, kind) and by merchant within a cell, so a page of a
--   filtered search in merchant order is a merge of a few ordered ranges.
--   cats: the categories, each followed by U+001F (never in a checked text).
-- search_keys: where a merchant's row is (its cell), its full-text document
--   number, a digest of its other columns (to skip unchanged rows) and the
--   grade printed on its active code (kept by the triggers on codes below).
-- search_fts: per document, `n` the name as overlapping character pairs
--   (and its last character alone), `f` the filter and exact-match tokens;
--   every token is hexadecimal text, so matching is exact (see
--   `search_index.rs`).
-- search_counts: merchants per cell and category ('' counts each merchant
--   once): the totals of filter-only searches and the stats.
CREATE TABLE IF NOT EXISTS search (
    region TEXT NOT NULL,
    grade TEXT NOT NULL,
    kind TEXT NOT NULL,
    merchant TEXT NOT NULL,
    cats TEXT NOT NULL,
    name TEXT NOT NULL,
    uscc TEXT,
    PRIMARY KEY (region, grade, kind, merchant)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS search_keys (
    merchant TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    grade TEXT NOT NULL,
    kind TEXT NOT NULL,
    doc INTEGER NOT NULL,
    digest INTEGER NOT NULL,
    printed TEXT) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS search_keys_by_doc ON search_keys (doc);
CREATE INDEX IF NOT EXISTS search_keys_reprint ON search_keys (region, merchant)
    WHERE printed IS NOT NULL AND printed <> grade;
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
    n, f, content = '', contentless_delete = 1, tokenize = 'ascii', detail = 'full');
CREATE TABLE IF NOT EXISTS search_counts (
    region TEXT NOT NULL,
    grade TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (region, grade, kind, category)) WITHOUT ROWID;
-- The grade on a merchant's active code, whichever order a code's issue
-- and its predecessor's superseding come in.
CREATE TRIGGER IF NOT EXISTS search_code_issued AFTER INSERT ON codes
    WHEN NEW.status = 'active'
BEGIN
    UPDATE search_keys SET printed = json_extract(NEW.json, '$.printed_grade')
        WHERE merchant = NEW.merchant;
END;
CREATE TRIGGER IF NOT EXISTS search_code_ended AFTER UPDATE OF status ON codes
    WHEN OLD.status = 'active' AND NEW.status <> 'active'
BEGIN
    UPDATE search_keys SET printed = (
        SELECT json_extract(json, '$.printed_grade') FROM codes
        WHERE merchant = NEW.merchant AND status = 'active'
        ORDER BY serial DESC LIMIT 1)
        WHERE merchant = NEW.merchant;
END;
