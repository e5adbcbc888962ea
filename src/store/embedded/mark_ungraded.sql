-- Schema 2: "never graded" is found from the regrade marks alone, so any
-- merchant an older version left without a projection or a mark is marked.
INSERT OR IGNORE INTO dirty (merchant)
    SELECT id FROM merchants WHERE id NOT IN (SELECT merchant FROM projections);
INSERT INTO meta (key, value) VALUES ('schema', 2)
    ON CONFLICT(key) DO UPDATE SET value = 2;
