-- The newest hookwise schema for PostgreSQL, as a fresh database gets it.
-- Keep it equal to what the migrations build (tests/integration/test_postgres_store.py checks).
-- Times are UNIX seconds (double precision), passed in by the caller.

CREATE TABLE schema_migrations (
    version text PRIMARY KEY,
    applied_at double precision NOT NULL
);

-- One row per event ever received; seq is the arrival order.
CREATE TABLE events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    dedup_key text NOT NULL,
    type text NOT NULL,
    ordering_key text,
    occurred_at double precision,
    received_at double precision NOT NULL,
    intake text NOT NULL CHECK (intake IN ('push', 'pull', 'replay')),
    headers text NOT NULL DEFAULT '[]',  -- JSON [[name, value], ...]
    body bytea NOT NULL,
    CONSTRAINT events_source_dedup_key UNIQUE (source, dedup_key)
);

-- Retention walks the oldest events first; listings filter on it too.
CREATE INDEX events_received ON events (received_at);

-- One row per (event, handler); handlers succeed and fail independently.
-- The queue table: every delivery is updated a few times (pending -> leased -> done),
-- so it is vacuumed early and leaves room on each page for the new row versions.
CREATE TABLE deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_seq bigint NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    handler text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'leased', 'done', 'retrying', 'dead', 'skipped')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at double precision,
    lease_owner text,
    lease_expires_at double precision,
    fence bigint NOT NULL DEFAULT 0,  -- bumped by every claim; a settle must match it
    last_error text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    -- Ordered deliveries only (NULL otherwise): copies of the event's ordering key and
    -- time, the policy and reorder window (seconds) they were stored with. Waiting
    -- members of a group are 'pending' with next_attempt_at NULL: never due.
    ordering_key text,
    occurred_at double precision,
    policy text CHECK (policy IN ('serial', 'latest', 'coalesce')),
    ordering_window double precision,
    CONSTRAINT deliveries_event_handler UNIQUE (event_seq, handler)
) WITH (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02
);

-- Claims read only these small partial indexes, however long the history grows.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_lease_expiry ON deliveries (lease_expires_at, id)
    WHERE status = 'leased';
CREATE INDEX deliveries_dead ON deliveries (updated_at) WHERE status = 'dead';
-- Skipped deliveries by reason, for metrics (ordering_counts).
CREATE INDEX deliveries_skipped ON deliveries (last_error) WHERE status = 'skipped';
-- Retention asks "has this event anything left to do?"; only unfinished rows are here.
CREATE INDEX deliveries_unfinished ON deliveries (event_seq)
    WHERE status NOT IN ('done', 'skipped');
-- The unfinished members of each ordering group (handler, ordering_key), oldest event
-- first: the next waiting member is the first entries of one group's range.
CREATE INDEX deliveries_group ON deliveries (handler, ordering_key, event_seq)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'leased', 'retrying');
-- The active member of each group (due, leased or retrying; waiting members are
-- 'pending' with no due time). At most one: the database refuses a second, whatever
-- a bug elsewhere would do; and "has this group an active member?" is one probe.
CREATE UNIQUE INDEX deliveries_group_active ON deliveries (handler, ordering_key)
    WHERE ordering_key IS NOT NULL
      AND (status IN ('leased', 'retrying') OR (status = 'pending' AND next_attempt_at IS NOT NULL));
-- Every ordered delivery, whatever its status: retention forgets the ordering state
-- of a group only when nothing of it is left, and that is one probe.
CREATE INDEX deliveries_group_any ON deliveries (handler, ordering_key)
    WHERE ordering_key IS NOT NULL;
-- Waiting members in the order their events happened (a reorder window promotes by
-- time): the next one is the first entry, however long the key's backlog. Only
-- waiting rows are in it: work that never waits costs it nothing.
CREATE INDEX deliveries_waiting_by_time ON deliveries (handler, ordering_key, occurred_at, event_seq)
    WHERE ordering_key IS NOT NULL AND status = 'pending' AND next_attempt_at IS NULL;

-- Per ordering group, the newest event applied (settled done): latest and coalesce
-- skip events older than applied_at.
CREATE TABLE ordering_state (
    handler text NOT NULL,
    ordering_key text NOT NULL,
    applied_at double precision,  -- the newest occurred_at applied; NULL while none had one
    applied_seq bigint,  -- the newest event seq applied
    updated_at double precision NOT NULL,
    PRIMARY KEY (handler, ordering_key)
);

-- History: one row per finished try of a delivery.
CREATE TABLE attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number integer NOT NULL,
    started_at double precision NOT NULL,
    finished_at double precision NOT NULL,
    outcome text NOT NULL,
    error text,
    owner text NOT NULL
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, number);

-- Refused requests (401/403), kept for diagnosis: the newest few per source
-- (REJECTIONS_KEPT), trimmed as new ones arrive; retention deletes old ones too.
CREATE TABLE rejections (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    received_at double precision NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL,
    hints text NOT NULL DEFAULT '[]',  -- JSON array of strings
    status integer NOT NULL,
    method text NOT NULL,
    url text NOT NULL,
    client text,
    headers text NOT NULL DEFAULT '[]',  -- JSON [[name, value], ...], redacted like events'
    body bytea NOT NULL,  -- at most REJECTED_BODY_KEPT bytes of it
    body_size bigint NOT NULL  -- the whole body's size
);

-- Newest per source (listings) and the cut-off id per source (trimming).
CREATE INDEX rejections_source ON rejections (source, id);
-- Retention deletes the oldest first.
CREATE INDEX rejections_received ON rejections (received_at);

-- Events with the summary status of their deliveries: the least settled one,
-- or 'none' without any.
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
    name text PRIMARY KEY,
    etag text,  -- the first page's validators, exactly as the server sent them
    last_modified text,
    cursor text,  -- where the next incremental run starts (a since value, a page cursor)
    next_due_at double precision,
    interval double precision,  -- the current adaptive interval, seconds
    error text,  -- the last run's error; NULL after a success
    error_since double precision,  -- when the current run of failures began
    failures bigint NOT NULL DEFAULT 0 CHECK (failures >= 0),  -- failed runs in a row
    stats jsonb NOT NULL DEFAULT '{}',  -- counters
    updated_at double precision NOT NULL
);

-- Change detection: per poll, every item id seen and its version (an ETag, an
-- updated_at, a hash). The primary key's index is what reads one poll's index.
CREATE TABLE poll_items (
    poll text NOT NULL,
    item_id text NOT NULL,
    version text NOT NULL,
    PRIMARY KEY (poll, item_id)
);
