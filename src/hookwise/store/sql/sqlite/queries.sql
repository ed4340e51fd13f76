-- Named queries of the SQLite store, reached through hookwise.store._sql.sql_for("sqlite").
-- Parameters are always bound (:name); lists travel as JSON arrays read with json_each.

-- name: create_schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    applied_at REAL NOT NULL
);

-- name: has_schema_migrations
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations';

-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version, applied_at) VALUES (:version, :applied_at);

-- name: insert_event
-- Insert-or-skip: returns the new seq, or no row when (source, dedup_key) is taken.
INSERT INTO events (
    source, dedup_key, type, ordering_key, occurred_at, received_at, intake, headers, body
) VALUES (
    :source, :dedup_key, :type, :ordering_key, :occurred_at, :received_at, :intake, :headers, :body
)
ON CONFLICT (source, dedup_key) DO NOTHING
RETURNING seq;

-- name: event_seq_by_key
SELECT seq FROM events WHERE source = :source AND dedup_key = :dedup_key;

-- name: insert_delivery
INSERT INTO deliveries (
    event_seq, handler, status, attempts, next_attempt_at, fence, created_at, updated_at
) VALUES (:event_seq, :handler, 'pending', 0, :due, 0, :due, :due)
ON CONFLICT (event_seq, handler) DO NOTHING
RETURNING id;

-- name: claim_due
-- Lease the oldest due deliveries: pending/retrying ones whose time has come, and
-- leased ones whose lease ran out (their worker died). Each branch walks its own
-- partial index in due order and stops at :limit, so a claim costs the same with
-- a long backlog. INDEXED BY because without statistics the planner would take the
-- status index and sort every due row. RETURNING gives no order; the caller sorts.
UPDATE deliveries
SET status = 'leased',
    lease_owner = :owner,
    lease_expires_at = :until,
    fence = fence + 1,
    attempts = attempts + 1,
    updated_at = :now
WHERE id IN (
    SELECT id FROM (
        SELECT * FROM (
            SELECT id, next_attempt_at FROM deliveries INDEXED BY deliveries_due
            WHERE status IN ('pending', 'retrying') AND next_attempt_at <= :now
              AND (:handlers IS NULL OR handler IN (SELECT value FROM json_each(:handlers)))
            ORDER BY next_attempt_at, id
            LIMIT :limit
        )
        UNION ALL
        SELECT * FROM (
            SELECT id, next_attempt_at FROM deliveries INDEXED BY deliveries_lease_expiry
            WHERE status = 'leased' AND lease_expires_at <= :now
              AND (:handlers IS NULL OR handler IN (SELECT value FROM json_each(:handlers)))
            ORDER BY next_attempt_at, id
            LIMIT :limit
        )
    )
    ORDER BY next_attempt_at, id
    LIMIT :limit
)
RETURNING id, event_seq, handler, fence, attempts, lease_expires_at, next_attempt_at;

-- name: events_by_seqs
SELECT seq, source, dedup_key, type, ordering_key, occurred_at, received_at, intake, headers, body
FROM events
WHERE seq IN (SELECT value FROM json_each(:seqs));

-- name: extend_lease
UPDATE deliveries
SET lease_expires_at = :until
WHERE id = :id AND fence = :fence AND lease_owner = :owner AND status = 'leased'
RETURNING id;

-- name: settle_delivery
-- Applied only while the lease (owner + fence) still holds; returns the attempt number.
UPDATE deliveries
SET status = :status,
    next_attempt_at = :next_attempt_at,
    last_error = :error,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = :finished_at
WHERE id = :id AND fence = :fence AND lease_owner = :owner AND status = 'leased'
RETURNING attempts;

-- name: insert_attempt
INSERT INTO attempts (delivery_id, number, started_at, finished_at, outcome, error, owner)
VALUES (:delivery_id, :number, :started_at, :finished_at, :outcome, :error, :owner);

-- name: release_lease
-- Graceful shutdown: the interrupted attempt does not count.
UPDATE deliveries
SET status = 'pending',
    next_attempt_at = :now,
    attempts = max(attempts - 1, 0),
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = :now
WHERE id = :id AND fence = :fence AND lease_owner = :owner AND status = 'leased';

-- name: retry_dead
-- :ids NULL means every dead delivery (of :source when given).
UPDATE deliveries
SET status = 'pending',
    attempts = 0,
    next_attempt_at = :now,
    updated_at = :now
WHERE status = 'dead'
  AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))
  AND (:source IS NULL OR event_seq IN (SELECT seq FROM events WHERE source = :source));

-- name: discard_dead
-- Give up on dead letters: skipped, so their events may be purged; history stays.
UPDATE deliveries
SET status = 'skipped',
    last_error = :error,
    next_attempt_at = NULL,
    updated_at = :now
WHERE status = 'dead'
  AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))
  AND (:source IS NULL OR event_seq IN (SELECT seq FROM events WHERE source = :source));

-- name: purge_candidates
-- The oldest events received before :before whose deliveries are all done or skipped
-- (or that have none), after the (received_at, seq) position the previous batch of
-- this purge ended at. events_received gives them in that order and the scan stops
-- at :batch, so a batch costs the same however long the history is.
SELECT e.seq, e.received_at
FROM events AS e INDEXED BY events_received
WHERE e.received_at < :before
  AND (e.received_at, e.seq) > (:after_received_at, :after_seq)
  AND NOT EXISTS (
        SELECT 1 FROM deliveries AS d
        WHERE d.event_seq = e.seq AND d.status NOT IN ('done', 'skipped'))
ORDER BY e.received_at, e.seq
LIMIT :batch;

-- name: purge_attempts
DELETE FROM attempts
WHERE delivery_id IN (
    SELECT id FROM deliveries WHERE event_seq IN (SELECT value FROM json_each(:seqs)));

-- name: purge_deliveries
DELETE FROM deliveries WHERE event_seq IN (SELECT value FROM json_each(:seqs));

-- name: purge_events
DELETE FROM events WHERE seq IN (SELECT value FROM json_each(:seqs));

-- name: replay_existing
-- A leased delivery is running somewhere; it is left alone.
UPDATE deliveries
SET status = 'pending',
    attempts = 0,
    next_attempt_at = :now,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = :now
WHERE event_seq = :event_seq AND handler = :handler AND status <> 'leased'
RETURNING id;

-- name: replay_new
INSERT INTO deliveries (
    event_seq, handler, status, attempts, next_attempt_at, fence, created_at, updated_at
)
SELECT :event_seq, :handler, 'pending', 0, :now, 0, :now, :now
WHERE EXISTS (SELECT 1 FROM events WHERE seq = :event_seq)
ON CONFLICT (event_seq, handler) DO NOTHING
RETURNING id;

-- name: ping
SELECT 1;

-- name: get_event
SELECT * FROM events_with_status WHERE seq = :seq;

-- name: find_event
SELECT * FROM events_with_status WHERE source = :source AND dedup_key = :dedup_key;

-- name: list_events
-- Newest first; :type is a glob (SQLite GLOB: *, ?, [...]).
SELECT * FROM events_with_status AS e
WHERE (:source IS NULL OR e.source = :source)
  AND (:type IS NULL OR e.type GLOB :type)
  AND (:since IS NULL OR e.received_at >= :since)
  AND (:before_seq IS NULL OR e.seq < :before_seq)
  AND (:status IS NULL OR EXISTS (
        -- "+" keeps the planner on the (event_seq, handler) index, not the status one.
        SELECT 1 FROM deliveries AS d WHERE d.event_seq = e.seq AND +d.status = :status))
ORDER BY e.seq DESC
LIMIT :limit;

-- name: event_deliveries
SELECT d.*, e.source, e.type AS event_type, e.dedup_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.event_seq = :event_seq
ORDER BY d.id;

-- name: get_delivery
SELECT d.*, e.source, e.type AS event_type, e.dedup_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.id = :id;

-- name: delivery_attempts
SELECT * FROM attempts WHERE delivery_id = :delivery_id ORDER BY number, id;

-- name: list_dead
SELECT d.*, e.source, e.type AS event_type, e.dedup_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.status = 'dead'
  AND (:source IS NULL OR e.source = :source)
  AND (:handler IS NULL OR d.handler = :handler)
ORDER BY d.updated_at DESC, d.id DESC
LIMIT :limit;

-- name: count_by_status
SELECT status, count(*) AS n FROM deliveries GROUP BY status;

-- name: insert_event_rows
-- Batched insert-or-skip: {rows} becomes one "(?, ...)" group per event, so a batch
-- is one trip into SQLite. seq is left to SQLite: an INTEGER PRIMARY KEY takes the
-- largest seq + 1 row by row (the write lock is held), so the rows one statement
-- inserts are numbered consecutively in VALUES order and the last one is lastrowid.
INSERT INTO events (
    source, dedup_key, type, ordering_key, occurred_at, received_at, intake, headers, body
) VALUES {rows}
ON CONFLICT (source, dedup_key) DO NOTHING;

-- name: event_seqs_by_keys
-- The stored seq of each [source, dedup_key] pair of a JSON array (when a batch held
-- duplicates of stored events).
SELECT e.seq, e.source, e.dedup_key
FROM json_each(:keys) AS k
JOIN events AS e
  ON e.source = json_extract(k.value, '$[0]') AND e.dedup_key = json_extract(k.value, '$[1]');

-- name: insert_pending_delivery_rows
-- {rows} becomes one "(?, ?, ?)" group per (event_seq, handler, due) delivery.
INSERT INTO deliveries (
    event_seq, handler, status, attempts, next_attempt_at, fence, created_at, updated_at
)
SELECT column1, column2, 'pending', 0, column3, 0, column3, column3 FROM (VALUES {rows})
WHERE true
ON CONFLICT (event_seq, handler) DO NOTHING;

-- name: insert_rejection
INSERT INTO rejections (
    source, received_at, reason, detail, hints, status, method, url, client, headers, body,
    body_size
) VALUES (
    :source, :received_at, :reason, :detail, :hints, :status, :method, :url, :client, :headers,
    :body, :body_size
);

-- name: trim_rejections
-- Keep the newest :kept records of :source: everything at or below the id of the
-- (:kept + 1)th newest goes (no row there, nothing goes). Both walk rejections_source.
DELETE FROM rejections
WHERE source = :source
  AND id <= (SELECT id FROM rejections WHERE source = :source ORDER BY id DESC LIMIT 1 OFFSET :kept);

-- name: list_rejections
SELECT * FROM rejections ORDER BY id DESC LIMIT :limit;

-- name: list_rejections_of_source
-- Apart from list_rejections so each is one plain index walk, newest first.
SELECT * FROM rejections WHERE source = :source ORDER BY id DESC LIMIT :limit;

-- name: get_rejection
SELECT * FROM rejections WHERE id = :id;

-- name: purge_rejections
-- One batch of rejection records received before :before, oldest first.
DELETE FROM rejections
WHERE id IN (
    SELECT id FROM rejections WHERE received_at < :before ORDER BY received_at LIMIT :batch);
