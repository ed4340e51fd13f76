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
RETURNING attempts, handler, event_seq, ordering_key, occurred_at, policy, ordering_window;

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
-- :ids NULL means every dead delivery (of :source when given). Unordered ones only:
-- ordered ones (dead_ordered, retry_dead_ordered) may wait behind their group's head.
UPDATE deliveries
SET status = 'pending',
    attempts = 0,
    next_attempt_at = :now,
    updated_at = :now
WHERE status = 'dead' AND policy IS NULL
  AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))
  AND (:source IS NULL OR event_seq IN (SELECT seq FROM events WHERE source = :source));

-- name: dead_ordered
-- The ordered dead deliveries retry_dead would take, oldest event first. INDEXED BY:
-- the dead letters are few; ordering by event_seq would otherwise walk every delivery.
SELECT id
FROM deliveries INDEXED BY deliveries_dead
WHERE status = 'dead' AND policy IS NOT NULL
  AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))
  AND (:source IS NULL OR event_seq IN (SELECT seq FROM events WHERE source = :source))
ORDER BY event_seq, id;

-- name: retry_dead_ordered
-- One ordered dead letter pending again with a fresh attempt budget: due now, or
-- waiting (no due time) while its group has an active member.
UPDATE deliveries
SET status = 'pending',
    attempts = 0,
    next_attempt_at = CASE WHEN EXISTS (
            SELECT 1 FROM deliveries AS o INDEXED BY deliveries_group_active
            WHERE o.handler = deliveries.handler AND o.ordering_key = deliveries.ordering_key
              AND o.ordering_key IS NOT NULL
              AND (o.status IN ('leased', 'retrying') OR (o.status = 'pending' AND o.next_attempt_at IS NOT NULL)))
        THEN NULL ELSE :now END,
    updated_at = :now
WHERE id = :id
RETURNING next_attempt_at;

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
-- A leased delivery is running somewhere; it is left alone. An ordered one waits (no
-- due time) while another member of its group is active.
UPDATE deliveries
SET status = 'pending',
    attempts = 0,
    next_attempt_at = CASE WHEN ordering_key IS NOT NULL AND EXISTS (
            SELECT 1 FROM deliveries AS o INDEXED BY deliveries_group_active
            WHERE o.handler = deliveries.handler AND o.ordering_key = deliveries.ordering_key
              AND o.ordering_key IS NOT NULL
              AND (o.status IN ('leased', 'retrying') OR (o.status = 'pending' AND o.next_attempt_at IS NOT NULL))
              AND o.id <> deliveries.id)
        THEN NULL ELSE :now END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = :now
WHERE event_seq = :event_seq AND handler = :handler AND status <> 'leased'
RETURNING id, next_attempt_at;

-- name: replay_new
INSERT INTO deliveries (
    event_seq, handler, status, attempts, next_attempt_at, fence, created_at, updated_at
)
SELECT :event_seq, :handler, 'pending', 0, :now, 0, :now, :now
WHERE EXISTS (SELECT 1 FROM events WHERE seq = :event_seq)
ON CONFLICT (event_seq, handler) DO NOTHING
RETURNING id, next_attempt_at;

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
        -- By the status a delivery record shows (a waiting one is stored as pending).
        SELECT 1 FROM deliveries AS d
        WHERE d.event_seq = e.seq
          AND CASE WHEN d.status = 'pending' AND d.next_attempt_at IS NULL THEN 'waiting'
                   ELSE d.status END = :status))
ORDER BY e.seq DESC
LIMIT :limit;

-- name: event_deliveries
-- A waiting delivery (ordered, queued behind its group's active member) is stored as
-- 'pending' without a due time and shown as 'waiting'; so in every delivery listing.
SELECT
    d.id, d.event_seq, d.handler,
    CASE WHEN d.status = 'pending' AND d.next_attempt_at IS NULL THEN 'waiting'
         ELSE d.status END AS status,
    d.attempts, d.next_attempt_at, d.lease_owner, d.lease_expires_at, d.fence,
    d.last_error, d.updated_at, d.ordering_key, d.policy,
    e.source, e.type AS event_type, e.dedup_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.event_seq = :event_seq
ORDER BY d.id;

-- name: get_delivery
SELECT
    d.id, d.event_seq, d.handler,
    CASE WHEN d.status = 'pending' AND d.next_attempt_at IS NULL THEN 'waiting'
         ELSE d.status END AS status,
    d.attempts, d.next_attempt_at, d.lease_owner, d.lease_expires_at, d.fence,
    d.last_error, d.updated_at, d.ordering_key, d.policy,
    e.source, e.type AS event_type, e.dedup_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.id = :id;

-- name: delivery_attempts
SELECT * FROM attempts WHERE delivery_id = :delivery_id ORDER BY number, id;

-- name: list_dead
SELECT
    d.id, d.event_seq, d.handler,
    CASE WHEN d.status = 'pending' AND d.next_attempt_at IS NULL THEN 'waiting'
         ELSE d.status END AS status,
    d.attempts, d.next_attempt_at, d.lease_owner, d.lease_expires_at, d.fence,
    d.last_error, d.updated_at, d.ordering_key, d.policy,
    e.source, e.type AS event_type, e.dedup_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.status = 'dead'
  AND (:source IS NULL OR e.source = :source)
  AND (:handler IS NULL OR d.handler = :handler)
ORDER BY d.updated_at DESC, d.id DESC
LIMIT :limit;

-- name: count_waiting
-- Ordered deliveries waiting for their group: pending without a due time, a range of
-- deliveries_due (unordered pending ones always have one).
SELECT count(*) AS n FROM deliveries
WHERE status = 'pending' AND next_attempt_at IS NULL;

-- name: count_skipped
-- Skipped deliveries by reason (stale, superseded): deliveries_skipped, nothing else.
SELECT coalesce(last_error, 'unknown') AS reason, count(*) AS n
FROM deliveries
WHERE status = 'skipped'
GROUP BY 1;

-- name: count_by_status
SELECT
    CASE WHEN status = 'pending' AND next_attempt_at IS NULL THEN 'waiting'
         ELSE status END AS status,
    count(*) AS n
FROM deliveries
GROUP BY 1;

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

-- name: ordering_state_scan_first
-- The first :batch groups with ordering state, in key order, each with whether
-- retention forgets it: applied before :before and no delivery of the group left
-- (one probe of deliveries_group_any).
SELECT s.handler, s.ordering_key,
       s.updated_at < :before AND NOT EXISTS (
           SELECT 1 FROM deliveries AS d INDEXED BY deliveries_group_any
           WHERE d.handler = s.handler AND d.ordering_key = s.ordering_key
             AND d.ordering_key IS NOT NULL) AS forgotten
FROM ordering_state AS s
ORDER BY s.handler, s.ordering_key
LIMIT :batch;

-- name: ordering_state_scan
-- ordering_state_scan_first after the group the previous batch ended at.
SELECT s.handler, s.ordering_key,
       s.updated_at < :before AND NOT EXISTS (
           SELECT 1 FROM deliveries AS d INDEXED BY deliveries_group_any
           WHERE d.handler = s.handler AND d.ordering_key = s.ordering_key
             AND d.ordering_key IS NOT NULL) AS forgotten
FROM ordering_state AS s
WHERE (s.handler, s.ordering_key) > (:after_handler, :after_key)
ORDER BY s.handler, s.ordering_key
LIMIT :batch;

-- name: ordering_state_forget
-- Delete the ordering state of the [handler, ordering_key] pairs of a JSON array.
DELETE FROM ordering_state
WHERE (handler, ordering_key) IN (
    SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:groups));

-- name: group_states
-- For each [handler, ordering_key] pair of a JSON array: what its group has applied
-- and its active member (due, leased or retrying; at most one), or NULLs. One trip
-- for a whole batch of appends; one probe of each index per group.
SELECT
    g.handler,
    g.ordering_key,
    s.applied_at,
    h.id,
    h.status,
    h.attempts,
    h.occurred_at,
    h.next_attempt_at
FROM (
    SELECT json_extract(value, '$[0]') AS handler, json_extract(value, '$[1]') AS ordering_key
    FROM json_each(:groups)
) AS g
LEFT JOIN ordering_state AS s ON s.handler = g.handler AND s.ordering_key = g.ordering_key
LEFT JOIN deliveries AS h INDEXED BY deliveries_group_active
    ON h.handler = g.handler AND h.ordering_key = g.ordering_key
   AND (h.status IN ('leased', 'retrying') OR (h.status = 'pending' AND h.next_attempt_at IS NOT NULL));

-- name: insert_ordered_delivery_rows
-- {rows} becomes one group per delivery of an ordered event, as the append decided:
-- (event_seq, handler, status, due, error, received_at, ordering_key, occurred_at,
-- policy, window); active ones are due, waiting ones have no due time, stale ones
-- are 'skipped' with an error.
INSERT INTO deliveries (
    event_seq, handler, status, attempts, next_attempt_at, fence, last_error, created_at,
    updated_at, ordering_key, occurred_at, policy, ordering_window
)
SELECT column1, column2, column3, 0, column4, 0, column5, column6, column6, column7, column8,
       column9, column10
FROM (VALUES {rows})
WHERE true
ON CONFLICT (event_seq, handler) DO NOTHING;

-- name: hold_deliveries
-- Back to waiting (JSON array of ids): an earlier event took the place of each.
UPDATE deliveries SET next_attempt_at = NULL WHERE id IN (SELECT value FROM json_each(:ids));

-- name: next_waiting
-- The group's waiting member of the oldest event (serial and latest without a window):
-- once the head has settled, the first entry of the group's range.
SELECT id, occurred_at
FROM deliveries INDEXED BY deliveries_group
WHERE handler = :handler AND ordering_key = :ordering_key
  AND status IN ('pending', 'leased', 'retrying')
  AND status = 'pending' AND next_attempt_at IS NULL
ORDER BY event_seq
LIMIT 1;

-- name: next_waiting_by_time
-- With a reorder window: the waiting member that happened first (no time: last).
SELECT id, occurred_at
FROM deliveries INDEXED BY deliveries_group
WHERE handler = :handler AND ordering_key = :ordering_key
  AND status IN ('pending', 'leased', 'retrying')
  AND status = 'pending' AND next_attempt_at IS NULL
ORDER BY occurred_at IS NULL, occurred_at, event_seq
LIMIT 1;

-- name: newest_waiting
-- coalesce: the waiting member that happened last (no time counts as oldest), ties
-- broken by arrival.
SELECT id, occurred_at
FROM deliveries INDEXED BY deliveries_group
WHERE handler = :handler AND ordering_key = :ordering_key
  AND status IN ('pending', 'leased', 'retrying')
  AND status = 'pending' AND next_attempt_at IS NULL
ORDER BY occurred_at DESC, event_seq DESC
LIMIT 1;

-- name: supersede_waiting
-- coalesce: every waiting member but :keep is skipped unrun.
UPDATE deliveries INDEXED BY deliveries_group
SET status = 'skipped', last_error = :error, updated_at = :now
WHERE handler = :handler AND ordering_key = :ordering_key
  AND status IN ('pending', 'leased', 'retrying')
  AND status = 'pending' AND next_attempt_at IS NULL
  AND id <> :keep;

-- name: activate_delivery
-- A promoted member becomes due: now, or once its reorder window has passed.
UPDATE deliveries
SET next_attempt_at = max(
        :now,
        (SELECT received_at FROM events WHERE seq = deliveries.event_seq)
            + coalesce(ordering_window, 0)),
    updated_at = :now
WHERE id = :id;

-- name: skip_waiting
-- A waiting member settled without running (stale): no attempt is recorded.
UPDATE deliveries
SET status = 'skipped', last_error = :error, next_attempt_at = NULL, updated_at = :now
WHERE id = :id;

-- name: record_applied
-- A member settled done: the group's newest applied time and seq move forward (a NULL
-- on either side keeps the other: max() of a NULL is NULL).
INSERT INTO ordering_state (handler, ordering_key, applied_at, applied_seq, updated_at)
VALUES (:handler, :ordering_key, :occurred_at, :event_seq, :now)
ON CONFLICT (handler, ordering_key) DO UPDATE
SET applied_at = coalesce(max(applied_at, excluded.applied_at), applied_at, excluded.applied_at),
    applied_seq = coalesce(max(applied_seq, excluded.applied_seq), applied_seq, excluded.applied_seq),
    updated_at = excluded.updated_at
RETURNING applied_at;

-- name: applied_at
SELECT applied_at FROM ordering_state WHERE handler = :handler AND ordering_key = :ordering_key;

-- name: get_ordering_state
SELECT handler, ordering_key, applied_at, applied_seq, updated_at
FROM ordering_state
WHERE handler = :handler AND ordering_key = :ordering_key;

-- Polls: what each poll remembers between runs (poll_state) and its change-detection
-- index (poll_items).

-- name: get_poll_state
SELECT name, etag, last_modified, cursor, next_due_at, interval, error, error_since,
       failures, stats, updated_at
FROM poll_state
WHERE name = :name;

-- name: list_poll_states
-- BINARY order is code point order: the same as Python's and PostgreSQL's COLLATE "C".
SELECT name, etag, last_modified, cursor, next_due_at, interval, error, error_since,
       failures, stats, updated_at
FROM poll_state
ORDER BY name;

-- name: save_poll_state
-- Insert or replace every field (stats is a JSON object).
INSERT INTO poll_state (
    name, etag, last_modified, cursor, next_due_at, interval, error, error_since, failures,
    stats, updated_at
) VALUES (
    :name, :etag, :last_modified, :cursor, :next_due_at, :interval, :error, :error_since,
    :failures, :stats, :updated_at
)
ON CONFLICT (name) DO UPDATE
SET etag = excluded.etag,
    last_modified = excluded.last_modified,
    cursor = excluded.cursor,
    next_due_at = excluded.next_due_at,
    interval = excluded.interval,
    error = excluded.error,
    error_since = excluded.error_since,
    failures = excluded.failures,
    stats = excluded.stats,
    updated_at = excluded.updated_at;

-- name: poll_index
SELECT item_id, version FROM poll_items WHERE poll = :poll;

-- name: upsert_poll_items
-- Set the versions of many items of one poll in one statement: :items is a JSON object
-- {item_id: version}. (WHERE true: an upsert reading a SELECT needs it to parse.)
INSERT INTO poll_items (poll, item_id, version)
SELECT :poll, key, value FROM json_each(:items) WHERE true
ON CONFLICT (poll, item_id) DO UPDATE SET version = excluded.version;

-- name: delete_poll_items
-- :ids is a JSON array of item ids; ids not in the index are ignored.
DELETE FROM poll_items
WHERE poll = :poll AND item_id IN (SELECT value FROM json_each(:ids));

-- name: forget_poll_items
DELETE FROM poll_items WHERE poll = :poll;

-- name: forget_poll_state
DELETE FROM poll_state WHERE name = :poll;
