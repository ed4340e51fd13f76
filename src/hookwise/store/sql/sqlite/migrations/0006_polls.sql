-- 0006: what polls remember between runs, so a restart does not refetch everything and
-- change detection survives a crash. New tables only: the release before this one
-- never reads them.

-- One row per poll: the first page's validators, the cursor of the next run, when it
-- is due, and how it has been failing.
CREATE TABLE poll_state (
    name TEXT PRIMARY KEY,
    etag TEXT,  -- the first page's validators, exactly as the server sent them
    last_modified TEXT,
    cursor TEXT,  -- where the next incremental run starts (a since value, a page cursor)
    next_due_at REAL,
    interval REAL,  -- the current adaptive interval, seconds
    error TEXT,  -- the last run's error; NULL after a success
    error_since REAL,  -- when the current run of failures began
    failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),  -- failed runs in a row
    stats TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(stats)),  -- JSON object of counters
    updated_at REAL NOT NULL
);

-- Change detection: per poll, every item id seen and its version (an ETag, an
-- updated_at, a hash). Clustered on (poll, item_id): one poll's index is one range.
CREATE TABLE poll_items (
    poll TEXT NOT NULL,
    item_id TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (poll, item_id)
) WITHOUT ROWID;
