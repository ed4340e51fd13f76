-- Named queries of the PostgreSQL store, reached through hookwise.store._sql.sql_for("postgresql").
-- Parameters are always bound (%(name)s); lists travel as arrays, so each query has one
-- shape whatever the batch size and stays prepared.

-- name: create_schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at double precision NOT NULL
);

-- name: migration_lock
-- Several processes starting at once migrate one after the other; the key is per schema.
SELECT pg_advisory_xact_lock(hashtext('hookwise.migrate:' || current_schema()));

-- name: has_schema_migrations
SELECT 1 WHERE to_regclass('schema_migrations') IS NOT NULL;

-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version, applied_at) VALUES (%(version)s, %(applied_at)s);

-- name: current_schema
SELECT current_schema() AS name;

-- name: append_batch
-- Group commit: a whole batch of appends in one statement, one round trip, one commit.
-- Events are insert-or-skip on (source, dedup_key); deliveries are created only for the
-- events this statement inserted; one notification wakes the workers when there is new
-- work. The answer has one row per input event: its seq (NULL when another transaction
-- stored the same key after this statement's snapshot: the caller looks it up) and
-- whether it is new.
WITH input AS (
    SELECT *
    FROM unnest(
        %(source)s::text[], %(dedup_key)s::text[], %(type)s::text[], %(ordering_key)s::text[],
        %(occurred_at)s::float8[], %(received_at)s::float8[], %(intake)s::text[],
        %(headers)s::text[], %(body)s::bytea[]
    ) WITH ORDINALITY AS i (
        source, dedup_key, type, ordering_key, occurred_at, received_at, intake, headers, body,
        idx
    )
),
inserted AS (
    INSERT INTO events (
        source, dedup_key, type, ordering_key, occurred_at, received_at, intake, headers, body
    )
    SELECT source, dedup_key, type, ordering_key, occurred_at, received_at, intake, headers, body
    FROM input
    ORDER BY idx
    ON CONFLICT (source, dedup_key) DO NOTHING
    RETURNING seq, source, dedup_key
),
new_deliveries AS (
    INSERT INTO deliveries (
        event_seq, handler, status, attempts, next_attempt_at, fence, created_at, updated_at
    )
    SELECT ins.seq, d.handler, 'pending', 0, d.due, 0, d.due, d.due
    FROM unnest(%(d_idx)s::bigint[], %(d_handler)s::text[], %(d_due)s::float8[])
        AS d (idx, handler, due)
    JOIN input ON input.idx = d.idx
    JOIN inserted AS ins ON ins.source = input.source AND ins.dedup_key = input.dedup_key
    ON CONFLICT (event_seq, handler) DO NOTHING
    RETURNING 1
),
woken AS (
    SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM new_deliveries LIMIT 1) AS any_new
)
SELECT input.idx,
       COALESCE(ins.seq, stored.seq) AS seq,
       ins.seq IS NOT NULL AS new,
       (SELECT count(*) FROM woken) AS woken
FROM input
LEFT JOIN inserted AS ins ON ins.source = input.source AND ins.dedup_key = input.dedup_key
LEFT JOIN events AS stored
    ON ins.seq IS NULL AND stored.source = input.source AND stored.dedup_key = input.dedup_key
ORDER BY input.idx;

-- name: event_seqs_by_keys
-- Stored seqs of (source, dedup_key) pairs, read with a fresh snapshot.
SELECT e.seq, e.source, e.dedup_key
FROM unnest(%(source)s::text[], %(dedup_key)s::text[]) AS k (source, dedup_key)
JOIN events AS e ON e.source = k.source AND e.dedup_key = k.dedup_key;

-- name: claim_due
-- Lease the oldest due deliveries: pending/retrying ones whose time has come, and
-- leased ones whose lease ran out (their worker died). Each branch walks its own
-- partial index in due order, stops at :limit and skips rows another worker is
-- claiming right now, so workers never wait on each other and a claim costs the same
-- however long the history is. The claimed deliveries come back with their events.
WITH due AS (
    SELECT id, next_attempt_at FROM deliveries
    WHERE status IN ('pending', 'retrying') AND next_attempt_at <= %(now)s
      AND (%(handlers)s::text[] IS NULL OR handler = ANY (%(handlers)s::text[]))
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
expired AS (
    SELECT id, next_attempt_at FROM deliveries
    WHERE status = 'leased' AND lease_expires_at <= %(now)s
      AND (%(handlers)s::text[] IS NULL OR handler = ANY (%(handlers)s::text[]))
    ORDER BY lease_expires_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
chosen AS (
    SELECT id FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) AS candidates
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
),
claimed AS (
    UPDATE deliveries AS d
    SET status = 'leased',
        lease_owner = %(owner)s,
        lease_expires_at = %(until)s,
        fence = d.fence + 1,
        attempts = d.attempts + 1,
        updated_at = %(now)s
    FROM chosen
    WHERE d.id = chosen.id
    RETURNING d.id, d.event_seq, d.handler, d.fence, d.attempts, d.lease_expires_at,
              d.next_attempt_at
)
SELECT c.id, c.handler, c.fence, c.attempts, c.lease_expires_at, c.next_attempt_at,
       e.seq, e.source, e.dedup_key, e.type, e.ordering_key, e.occurred_at, e.received_at,
       e.intake, e.headers, e.body
FROM claimed AS c
JOIN events AS e ON e.seq = c.event_seq
ORDER BY c.next_attempt_at, c.id;

-- name: extend_leases
UPDATE deliveries AS d
SET lease_expires_at = %(until)s
FROM unnest(%(id)s::bigint[], %(fence)s::bigint[]) AS l (id, fence)
WHERE d.id = l.id AND d.fence = l.fence AND d.lease_owner = %(owner)s AND d.status = 'leased'
RETURNING d.id;

-- name: settle_deliveries
-- Each outcome applies only while its lease (owner + fence) still holds; every applied
-- one is recorded in the history with the attempt number it was.
WITH s AS (
    SELECT *
    FROM unnest(
        %(id)s::bigint[], %(fence)s::bigint[], %(owner)s::text[], %(status)s::text[],
        %(next_attempt_at)s::float8[], %(error)s::text[], %(started_at)s::float8[],
        %(finished_at)s::float8[], %(outcome)s::text[]
    ) WITH ORDINALITY AS s (
        id, fence, owner, status, next_attempt_at, error, started_at, finished_at, outcome, idx
    )
),
settled AS (
    UPDATE deliveries AS d
    SET status = s.status,
        next_attempt_at = s.next_attempt_at,
        last_error = s.error,
        lease_owner = NULL,
        lease_expires_at = NULL,
        updated_at = s.finished_at
    FROM s
    WHERE d.id = s.id AND d.fence = s.fence AND d.lease_owner = s.owner AND d.status = 'leased'
    RETURNING s.idx, d.id, d.attempts, s.started_at, s.finished_at, s.outcome, s.error, s.owner
),
recorded AS (
    INSERT INTO attempts (delivery_id, number, started_at, finished_at, outcome, error, owner)
    SELECT id, attempts, started_at, finished_at, outcome, error, owner FROM settled
)
SELECT idx FROM settled;

-- name: release_leases
-- Graceful shutdown: the interrupted attempt does not count, and the work is due now.
WITH released AS (
    UPDATE deliveries AS d
    SET status = 'pending',
        next_attempt_at = %(now)s,
        attempts = greatest(d.attempts - 1, 0),
        lease_owner = NULL,
        lease_expires_at = NULL,
        updated_at = %(now)s
    FROM unnest(%(id)s::bigint[], %(fence)s::bigint[]) AS l (id, fence)
    WHERE d.id = l.id AND d.fence = l.fence AND d.lease_owner = %(owner)s
      AND d.status = 'leased'
    RETURNING d.id
),
woken AS (
    SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM released LIMIT 1) AS any_released
)
SELECT (SELECT count(*) FROM released) AS released, (SELECT count(*) FROM woken) AS woken;

-- name: retry_dead
-- %(ids)s NULL means every dead delivery (of %(source)s when given).
WITH retried AS (
    UPDATE deliveries
    SET status = 'pending',
        attempts = 0,
        next_attempt_at = %(now)s,
        updated_at = %(now)s
    WHERE status = 'dead'
      AND (%(ids)s::bigint[] IS NULL OR id = ANY (%(ids)s::bigint[]))
      AND (%(source)s::text IS NULL
           OR event_seq IN (SELECT seq FROM events WHERE source = %(source)s::text))
    RETURNING id
),
woken AS (
    SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM retried LIMIT 1) AS any_retried
)
SELECT (SELECT count(*) FROM retried) AS retried, (SELECT count(*) FROM woken) AS woken;

-- name: discard_dead
UPDATE deliveries
SET status = 'skipped',
    last_error = 'discarded',
    updated_at = %(now)s
WHERE status = 'dead'
  AND (%(ids)s::bigint[] IS NULL OR id = ANY (%(ids)s::bigint[]))
  AND (%(source)s::text IS NULL
       OR event_seq IN (SELECT seq FROM events WHERE source = %(source)s::text));

-- name: replay_existing
-- A leased delivery is running somewhere; it is left alone.
UPDATE deliveries
SET status = 'pending',
    attempts = 0,
    next_attempt_at = %(now)s,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = %(now)s
WHERE event_seq = %(event_seq)s AND handler = %(handler)s AND status <> 'leased'
RETURNING id;

-- name: replay_new
INSERT INTO deliveries (
    event_seq, handler, status, attempts, next_attempt_at, fence, created_at, updated_at
)
SELECT %(event_seq)s, %(handler)s, 'pending', 0, %(now)s, 0, %(now)s, %(now)s
WHERE EXISTS (SELECT 1 FROM events WHERE seq = %(event_seq)s)
ON CONFLICT (event_seq, handler) DO NOTHING
RETURNING id;

-- name: notify
SELECT pg_notify(%(channel)s, '');

-- name: purge_batch
-- One small batch of finished events older than the horizon, oldest first, with their
-- deliveries and attempts (ON DELETE CASCADE). SKIP LOCKED: purges running in several
-- workers take different events instead of queueing behind each other.
WITH victims AS (
    SELECT e.seq FROM events AS e
    WHERE e.received_at < %(before)s
      AND NOT EXISTS (
          SELECT 1 FROM deliveries AS d
          WHERE d.event_seq = e.seq AND d.status NOT IN ('done', 'skipped'))
    ORDER BY e.received_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM events WHERE seq IN (SELECT seq FROM victims);

-- name: ping
SELECT 1;

-- name: get_event
SELECT * FROM events_with_status WHERE seq = %(seq)s;

-- name: find_event
SELECT * FROM events_with_status WHERE source = %(source)s AND dedup_key = %(dedup_key)s;

-- name: list_events
-- Newest first; %(type)s is an anchored POSIX regular expression made from the glob.
SELECT * FROM events_with_status AS e
WHERE (%(source)s::text IS NULL OR e.source = %(source)s::text)
  AND (%(type)s::text IS NULL OR e.type ~ %(type)s::text)
  AND (%(since)s::float8 IS NULL OR e.received_at >= %(since)s::float8)
  AND (%(before_seq)s::bigint IS NULL OR e.seq < %(before_seq)s::bigint)
  AND (%(status)s::text IS NULL OR EXISTS (
        SELECT 1 FROM deliveries AS d WHERE d.event_seq = e.seq AND d.status = %(status)s::text))
ORDER BY e.seq DESC
LIMIT %(limit)s;

-- name: event_deliveries
SELECT d.*, e.source, e.type AS event_type, e.dedup_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.event_seq = %(event_seq)s
ORDER BY d.id;

-- name: get_delivery
SELECT d.*, e.source, e.type AS event_type, e.dedup_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.id = %(id)s;

-- name: delivery_attempts
SELECT id, delivery_id, number, started_at, finished_at, outcome, error, owner
FROM attempts WHERE delivery_id = %(delivery_id)s ORDER BY number, id;

-- name: list_dead
SELECT d.*, e.source, e.type AS event_type, e.dedup_key
FROM deliveries AS d JOIN events AS e ON e.seq = d.event_seq
WHERE d.status = 'dead'
  AND (%(source)s::text IS NULL OR e.source = %(source)s::text)
  AND (%(handler)s::text IS NULL OR d.handler = %(handler)s::text)
ORDER BY d.updated_at DESC, d.id DESC
LIMIT %(limit)s;

-- name: count_by_status
SELECT status, count(*) AS n FROM deliveries GROUP BY status;

-- name: insert_rejections
-- A batch of rejection records in one statement; ids follow the order given.
INSERT INTO rejections (
    source, received_at, reason, detail, hints, status, method, url, client, headers, body,
    body_size
)
SELECT source, received_at, reason, detail, hints, status, method, url, client, headers, body,
       body_size
FROM unnest(
    %(source)s::text[], %(received_at)s::float8[], %(reason)s::text[], %(detail)s::text[],
    %(hints)s::text[], %(status)s::integer[], %(method)s::text[], %(url)s::text[],
    %(client)s::text[], %(headers)s::text[], %(body)s::bytea[], %(body_size)s::bigint[]
) WITH ORDINALITY AS r (
    source, received_at, reason, detail, hints, status, method, url, client, headers, body,
    body_size, idx
)
ORDER BY idx;

-- name: trim_rejections
-- Keep the newest %(kept)s records of each source in %(sources)s: everything at or below
-- the id of the (kept + 1)th newest goes. SKIP LOCKED: receivers trimming the same
-- source at once split the work instead of waiting on (or deadlocking with) each other.
DELETE FROM rejections
WHERE id IN (
    SELECT r.id
    FROM unnest(%(sources)s::text[]) AS s (source)
    JOIN rejections AS r ON r.source = s.source
    WHERE r.id <= (
        SELECT k.id FROM rejections AS k
        WHERE k.source = s.source
        ORDER BY k.id DESC
        LIMIT 1 OFFSET %(kept)s)
    FOR UPDATE OF r SKIP LOCKED
);

-- name: list_rejections
SELECT * FROM rejections ORDER BY id DESC LIMIT %(limit)s;

-- name: list_rejections_of_source
-- Apart from list_rejections so each is one plain index walk, newest first.
SELECT * FROM rejections WHERE source = %(source)s ORDER BY id DESC LIMIT %(limit)s;

-- name: get_rejection
SELECT * FROM rejections WHERE id = %(id)s;

-- name: purge_rejections
-- One batch of rejection records received before the horizon, oldest first; SKIP
-- LOCKED as in purge_batch.
WITH victims AS (
    SELECT id FROM rejections
    WHERE received_at < %(before)s
    ORDER BY received_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM rejections WHERE id IN (SELECT id FROM victims);
