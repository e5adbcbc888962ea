-- Before record_index: what kept records by merchant, now rebuilt into
-- record_index and dropped.
DROP INDEX IF EXISTS records_by_merchant;
DROP TABLE IF EXISTS record_keys;
