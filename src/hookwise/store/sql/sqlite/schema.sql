-- The newest hookwise schema for SQLite, as a fresh database gets it.
-- Keep it equal to what the migrations build (tests/integration/test_sqlite_store.py checks).
-- Times are UNIX seconds (REAL).

CREATE TABLE schema_migrations (
    version TEXT PRIMARY KEY,
    applied_at REAL NOT NULL
);

-- One row per event ever received; seq is the arrival order.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,  -- assigned max+1 under the write lock: arrival order
    source TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    type TEXT NOT NULL,
    ordering_key TEXT,
    occurred_at REAL,
    received_at REAL NOT NULL,
    intake TEXT NOT NULL CHECK (intake IN ('push', 'pull', 'replay')),
    headers TEXT NOT NULL DEFAULT '[]',  -- JSON [[name, value], ...]
    body BLOB NOT NULL,
    UNIQUE (source, dedup_key)
);

-- Retention walks events oldest first (purge).
CREATE INDEX events_received ON events (received_at);


-- One row per (event, handler); handlers succeed and fail independently.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    handler TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'leased', 'done', 'retrying', 'dead', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    lease_owner TEXT,
    lease_expires_at REAL,
    fence INTEGER NOT NULL DEFAULT 0,  -- bumped by every claim; a settle must match it
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    -- Ordered deliveries only (NULL otherwise): copies of the event's ordering key and
    -- time, the policy and reorder window (seconds) they were stored with. Waiting
    -- members of a group are 'pending' with next_attempt_at NULL: never due.
    ordering_key TEXT,
    occurred_at REAL,
    policy TEXT CHECK (policy IN ('serial', 'latest', 'coalesce')),
    ordering_window REAL,
    UNIQUE (event_seq, handler)
);

-- Claims read only these two small partial indexes, however long the history grows.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_lease_expiry ON deliveries (lease_expires_at)
    WHERE status = 'leased';
-- Only dead letters are listed by status often enough to index; a partial index costs
-- nothing on the hot insert path, where every new delivery is 'pending'.
CREATE INDEX deliveries_dead ON deliveries (updated_at) WHERE status = 'dead';
-- Skipped deliveries by reason, for metrics (ordering_counts).
CREATE INDEX deliveries_skipped ON deliveries (last_error) WHERE status = 'skipped';
-- The unfinished members of each ordering group (handler, ordering_key), oldest event
-- first: finding a group's active member, or the next waiting one, reads one short range.
CREATE INDEX deliveries_group ON deliveries (handler, ordering_key, event_seq)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'leased', 'retrying');
-- The active member of each group: due, leased or retrying (waiting members are
-- 'pending' without a due time). UNIQUE: at most one, whatever a bug elsewhere would
-- do; and "has this group an active member?" is one probe.
CREATE UNIQUE INDEX deliveries_group_active ON deliveries (handler, ordering_key)
    WHERE ordering_key IS NOT NULL
      AND (status IN ('leased', 'retrying') OR (status = 'pending' AND next_attempt_at IS NOT NULL));
-- Every ordered delivery, whatever its status: retention forgets the ordering state
-- of a group only when nothing of it is left, and that is one probe.
CREATE INDEX deliveries_group_any ON deliveries (handler, ordering_key)
    WHERE ordering_key IS NOT NULL;

-- Per ordering group, the newest event applied (settled done): latest and coalesce
-- skip events older than applied_at.
CREATE TABLE ordering_state (
    handler TEXT NOT NULL,
    ordering_key TEXT NOT NULL,
    applied_at REAL,  -- the newest occurred_at applied; NULL while none had a time
    applied_seq INTEGER,  -- the newest event seq applied
    updated_at REAL NOT NULL,
    PRIMARY KEY (handler, ordering_key)
) WITHOUT ROWID;

-- History: one row per finished try of a delivery.
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    owner TEXT NOT NULL
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, number);

-- Refused requests (401/403), kept for diagnosis: the newest few per source
-- (REJECTIONS_KEPT), trimmed as new ones arrive; retention deletes old ones too.
CREATE TABLE rejections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: an id once shown names one record
    source TEXT NOT NULL,
    received_at REAL NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    hints TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    status INTEGER NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    client TEXT,
    headers TEXT NOT NULL DEFAULT '[]',  -- JSON [[name, value], ...], redacted like events'
    body BLOB NOT NULL,  -- at most REJECTED_BODY_KEPT bytes of it
    body_size INTEGER NOT NULL  -- the whole body's size
);

-- Newest per source (listings) and the cut-off id per source (trimming).
CREATE INDEX rejections_source ON rejections (source, id);
-- Retention deletes the oldest first.
CREATE INDEX rejections_received ON rejections (received_at);

-- Events with the summary status of their deliveries: the least settled one,
-- or 'none' without any (MIN over no rows is NULL).
CREATE VIEW events_with_status AS
SELECT
    e.*,
    COALESCE(
        (
            SELECT CASE MIN(
                CASE d.status
                    WHEN 'pending' THEN 0
                    WHEN 'leased' THEN 1
                    WHEN 'retrying' THEN 2
                    WHEN 'dead' THEN 3
                    WHEN 'skipped' THEN 4
                    ELSE 5
                END)
                WHEN 0 THEN 'pending'
                WHEN 1 THEN 'leased'
                WHEN 2 THEN 'retrying'
                WHEN 3 THEN 'dead'
                WHEN 4 THEN 'skipped'
                WHEN 5 THEN 'done'
            END
            FROM deliveries AS d
            WHERE d.event_seq = e.seq
        ),
        'none'
    ) AS status
FROM events AS e;

-- What each poll remembers between runs: the first page's validators, the cursor of
-- the next run, when it is due, and how it has been failing.
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
