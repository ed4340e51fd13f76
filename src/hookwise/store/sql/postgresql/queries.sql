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
              d.next_attempt_at, d.ordering_key IS NOT NULL AS ordered
)
SELECT c.id, c.handler, c.fence, c.attempts, c.lease_expires_at, c.next_attempt_at, c.ordered,
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
-- one is recorded in the history with the attempt number it was. %(ordered)s picks
-- the unordered deliveries (one statement, no lock) or the ordered ones (inside a
-- transaction that holds their groups' locks: see postgres.py). An ordered one settled
-- done moves its group's newest applied time and seq forward (greatest() and max()
-- ignore NULLs, so a time only ever replaces a missing one or an older one).
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
      AND (d.ordering_key IS NOT NULL) = %(ordered)s
    RETURNING s.idx, d.id, d.attempts, s.started_at, s.finished_at, s.outcome, s.error, s.owner,
              d.status, d.handler, d.ordering_key, d.policy, d.ordering_window, d.occurred_at,
              d.event_seq
),
recorded AS (
    INSERT INTO attempts (delivery_id, number, started_at, finished_at, outcome, error, owner)
    SELECT id, attempts, started_at, finished_at, outcome, error, owner FROM settled
),
applied AS (
    INSERT INTO ordering_state AS o (handler, ordering_key, applied_at, applied_seq, updated_at)
    SELECT handler, ordering_key, max(occurred_at), max(event_seq), max(finished_at)
    FROM settled
    WHERE status = 'done' AND ordering_key IS NOT NULL
    GROUP BY handler, ordering_key
    ON CONFLICT (handler, ordering_key) DO UPDATE
    SET applied_at = greatest(o.applied_at, excluded.applied_at),
        applied_seq = greatest(o.applied_seq, excluded.applied_seq),
        updated_at = excluded.updated_at
)
SELECT idx, status, handler, ordering_key, policy, ordering_window, finished_at FROM settled;

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
-- %(ids)s NULL means every dead delivery (of %(source)s when given). Unordered ones
-- only: ordered ones (dead_ordered, retry_ordered) may have to wait in their group.
WITH retried AS (
    UPDATE deliveries
    SET status = 'pending',
        attempts = 0,
        next_attempt_at = %(now)s,
        updated_at = %(now)s
    WHERE status = 'dead' AND ordering_key IS NULL
      AND (%(ids)s::bigint[] IS NULL OR id = ANY (%(ids)s::bigint[]))
      AND (%(source)s::text IS NULL
           OR event_seq IN (SELECT seq FROM events WHERE source = %(source)s::text))
    RETURNING id
),
woken AS (
    SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM retried LIMIT 1) AS any_retried
)
SELECT (SELECT count(*) FROM retried) AS retried, (SELECT count(*) FROM woken) AS woken;

-- name: dead_ordered
-- The ordered dead deliveries retry_dead takes, so their groups can be locked first.
SELECT id
FROM deliveries
WHERE status = 'dead' AND ordering_key IS NOT NULL
  AND (%(ids)s::bigint[] IS NULL OR id = ANY (%(ids)s::bigint[]))
  AND (%(source)s::text IS NULL
       OR event_seq IN (SELECT seq FROM events WHERE source = %(source)s::text));

-- name: retry_ordered
-- Ordered dead deliveries (their groups locked) pending again with a fresh budget: in
-- each group, the oldest event is due now unless the group has an active member; the
-- others wait behind it.
WITH candidates AS (
    SELECT d.id, d.handler, d.ordering_key,
           row_number() OVER (
               PARTITION BY d.handler, d.ordering_key ORDER BY d.event_seq, d.id) AS place
    FROM deliveries AS d
    WHERE d.id = ANY (%(ids)s::bigint[]) AND d.status = 'dead'
),
retried AS (
    UPDATE deliveries AS d
    SET status = 'pending',
        attempts = 0,
        next_attempt_at = CASE
            WHEN c.place = 1 AND NOT EXISTS (
                SELECT 1 FROM deliveries AS a
                WHERE a.handler = c.handler AND a.ordering_key = c.ordering_key
                  AND a.ordering_key IS NOT NULL
                  AND (a.status IN ('leased', 'retrying')
                       OR (a.status = 'pending' AND a.next_attempt_at IS NOT NULL)))
            THEN %(now)s::float8
        END,
        updated_at = %(now)s
    FROM candidates AS c
    WHERE d.id = c.id
    RETURNING d.next_attempt_at
),
woken AS (
    SELECT pg_notify(%(channel)s, '')
    FROM (SELECT 1 FROM retried WHERE next_attempt_at IS NOT NULL LIMIT 1) AS any_due
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

-- name: replay_ordered_events
-- The events among %(event_seq)s whose deliveries are ordered, with their ordering key:
-- a replay locks the groups their handlers' deliveries belong to (or will join) first.
SELECT e.seq, e.ordering_key
FROM events AS e
WHERE e.seq = ANY (%(event_seq)s::bigint[]) AND e.ordering_key IS NOT NULL
  AND EXISTS (SELECT 1 FROM deliveries AS d WHERE d.event_seq = e.seq AND d.policy IS NOT NULL);

-- name: replay_existing
-- A leased delivery is running somewhere; it is left alone. An ordered one whose group
-- has another active member waits behind it (its group is locked by the caller).
UPDATE deliveries AS d
SET status = 'pending',
    attempts = 0,
    next_attempt_at = CASE
        WHEN d.ordering_key IS NOT NULL AND EXISTS (
            SELECT 1 FROM deliveries AS a
            WHERE a.handler = d.handler AND a.ordering_key = d.ordering_key AND a.id <> d.id
              AND a.ordering_key IS NOT NULL
              AND (a.status IN ('leased', 'retrying')
                   OR (a.status = 'pending' AND a.next_attempt_at IS NOT NULL)))
        THEN NULL
        ELSE %(now)s::float8
    END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    updated_at = %(now)s
WHERE d.event_seq = %(event_seq)s AND d.handler = %(handler)s AND d.status <> 'leased'
RETURNING d.id, d.next_attempt_at;

-- name: replay_new
-- A handler new to the event joins the ordering group its siblings were stored in
-- (their policy and window): due now unless that group has an active member.
INSERT INTO deliveries (
    event_seq, handler, status, attempts, next_attempt_at, fence, created_at, updated_at,
    ordering_key, occurred_at, policy, ordering_window
)
SELECT e.seq, %(handler)s, 'pending', 0,
       CASE
           WHEN sibling.policy IS NOT NULL AND EXISTS (
               SELECT 1 FROM deliveries AS a
               WHERE a.handler = %(handler)s AND a.ordering_key = e.ordering_key
                 AND a.ordering_key IS NOT NULL
                 AND (a.status IN ('leased', 'retrying')
                      OR (a.status = 'pending' AND a.next_attempt_at IS NOT NULL)))
           THEN NULL
           ELSE %(now)s::float8
       END,
       0, %(now)s, %(now)s,
       CASE WHEN sibling.policy IS NOT NULL THEN e.ordering_key END,
       CASE WHEN sibling.policy IS NOT NULL THEN e.occurred_at END,
       sibling.policy, sibling.ordering_window
FROM events AS e
LEFT JOIN LATERAL (
    SELECT d.policy, d.ordering_window FROM deliveries AS d
    WHERE d.event_seq = e.seq AND d.policy IS NOT NULL
    LIMIT 1
) AS sibling ON true
WHERE e.seq = %(event_seq)s
ON CONFLICT (event_seq, handler) DO NOTHING
RETURNING id, next_attempt_at;

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
        -- By the status a delivery record shows (a waiting one is stored as pending).
        SELECT 1 FROM deliveries AS d
        WHERE d.event_seq = e.seq
          AND CASE WHEN d.status = 'pending' AND d.next_attempt_at IS NULL THEN 'waiting'
                   ELSE d.status END = %(status)s::text))
ORDER BY e.seq DESC
LIMIT %(limit)s;

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
WHERE d.event_seq = %(event_seq)s
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
WHERE d.id = %(id)s;

-- name: delivery_attempts
SELECT id, delivery_id, number, started_at, finished_at, outcome, error, owner
FROM attempts WHERE delivery_id = %(delivery_id)s ORDER BY number, id;

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
  AND (%(source)s::text IS NULL OR e.source = %(source)s::text)
  AND (%(handler)s::text IS NULL OR d.handler = %(handler)s::text)
ORDER BY d.updated_at DESC, d.id DESC
LIMIT %(limit)s;

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
SELECT CASE WHEN status = 'pending' AND next_attempt_at IS NULL THEN 'waiting'
            ELSE status END AS status,
       count(*) AS n
FROM deliveries
GROUP BY 1;

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

-- name: purge_ordering_state_first
-- Retention of ordering state: the first %(batch)s groups with state, in key order;
-- the state of those not updated since the horizon and with no delivery left (one
-- probe of deliveries_group_any) is deleted. Returns the last group read and how many
-- were read (no row: none), where the next batch (purge_ordering_state) starts.
WITH scanned AS (
    SELECT handler, ordering_key FROM ordering_state
    ORDER BY handler, ordering_key
    LIMIT %(batch)s
), forgotten AS (
    DELETE FROM ordering_state AS s
    USING scanned AS c
    WHERE s.handler = c.handler AND s.ordering_key = c.ordering_key
      AND s.updated_at < %(before)s
      AND NOT EXISTS (
          SELECT 1 FROM deliveries AS d
          WHERE d.handler = s.handler AND d.ordering_key = s.ordering_key
            AND d.ordering_key IS NOT NULL)
)
SELECT handler, ordering_key, count(*) OVER () AS scanned
FROM scanned
ORDER BY handler DESC, ordering_key DESC
LIMIT 1;

-- name: purge_ordering_state
-- purge_ordering_state_first after the group the previous batch ended at.
WITH scanned AS (
    SELECT handler, ordering_key FROM ordering_state
    WHERE (handler, ordering_key) > (%(after_handler)s, %(after_key)s)
    ORDER BY handler, ordering_key
    LIMIT %(batch)s
), forgotten AS (
    DELETE FROM ordering_state AS s
    USING scanned AS c
    WHERE s.handler = c.handler AND s.ordering_key = c.ordering_key
      AND s.updated_at < %(before)s
      AND NOT EXISTS (
          SELECT 1 FROM deliveries AS d
          WHERE d.handler = s.handler AND d.ordering_key = s.ordering_key
            AND d.ordering_key IS NOT NULL)
)
SELECT handler, ordering_key, count(*) OVER () AS scanned
FROM scanned
ORDER BY handler DESC, ordering_key DESC
LIMIT 1;

-- name: lock_groups
-- Ordering groups. A group is (handler, ordering_key); its active member is pending with
-- a due time, leased or retrying (deliveries_group_active: at most one), the others wait
-- (pending without one). Every query that reads or changes a group in order to place,
-- promote or reschedule a member runs in a transaction holding the group's lock, taken
-- before anything else.
--
-- Transaction-scoped advisory locks on the groups (handler, ordering_key) given, one
-- 64-bit key each (the schema is part of it: deployments in other schemas of the same
-- database don't contend), taken in key order so two transactions locking overlapping
-- groups can't deadlock. A key shared by two groups (a hash collision) only makes them
-- wait for each other.
SELECT pg_advisory_xact_lock(sorted.lock_key)
FROM (
    SELECT DISTINCT hashtextextended(
        current_schema() || chr(31) || g.handler || chr(31) || g.ordering_key, 0) AS lock_key
    FROM unnest(%(handler)s::text[], %(ordering_key)s::text[]) AS g (handler, ordering_key)
    ORDER BY lock_key
) AS sorted;

-- name: lock_groups_of
-- lock_groups for the groups of the ordered deliveries among %(id)s; one row per lock
-- (none: no delivery among them is ordered).
SELECT pg_advisory_xact_lock(sorted.lock_key)
FROM (
    SELECT DISTINCT hashtextextended(
        current_schema() || chr(31) || handler || chr(31) || ordering_key, 0) AS lock_key
    FROM deliveries
    WHERE id = ANY (%(id)s::bigint[]) AND ordering_key IS NOT NULL
    ORDER BY lock_key
) AS sorted;

-- name: group_heads
-- Each group's active member (one probe of deliveries_group_active) and newest applied
-- time, for the ordered deliveries an append is about to place.
SELECT g.handler, g.ordering_key, a.id, a.status, a.attempts, a.occurred_at,
       a.next_attempt_at, s.applied_at
FROM unnest(%(handler)s::text[], %(ordering_key)s::text[]) AS g (handler, ordering_key)
LEFT JOIN deliveries AS a
    ON a.handler = g.handler AND a.ordering_key = g.ordering_key
   AND a.ordering_key IS NOT NULL
   AND (a.status IN ('leased', 'retrying') OR (a.status = 'pending' AND a.next_attempt_at IS NOT NULL))
LEFT JOIN ordering_state AS s ON s.handler = g.handler AND s.ordering_key = g.ordering_key;

-- name: hold_unstarted_heads
-- Of the active members an earlier event may displace (reorder window), the ones still
-- unstarted, locked until commit: a claim (SKIP LOCKED) passes them by meanwhile.
SELECT id
FROM deliveries
WHERE id = ANY (%(id)s::bigint[]) AND status = 'pending' AND attempts = 0
  AND next_attempt_at IS NOT NULL
FOR UPDATE;

-- name: demote_heads
-- Displaced active members wait again (before the event that displaced them is inserted:
-- deliveries_group_active admits one active member per group at any moment).
UPDATE deliveries
SET next_attempt_at = NULL, updated_at = %(now)s
WHERE id = ANY (%(id)s::bigint[]);

-- name: insert_ordered_deliveries
-- The ordered deliveries of a batch as the append placed them: active (due), waiting
-- (pending, no due time) or skipped as stale. Only due ones wake the workers.
WITH new_deliveries AS (
    INSERT INTO deliveries (
        event_seq, handler, status, attempts, next_attempt_at, fence, last_error,
        created_at, updated_at, ordering_key, occurred_at, policy, ordering_window
    )
    SELECT d.event_seq, d.handler, d.status, 0, d.due, 0, d.error, d.received_at,
           d.received_at, d.ordering_key, d.occurred_at, d.policy, d.ordering_window
    FROM unnest(
        %(event_seq)s::bigint[], %(handler)s::text[], %(status)s::text[], %(due)s::float8[],
        %(error)s::text[], %(received_at)s::float8[], %(ordering_key)s::text[],
        %(occurred_at)s::float8[], %(policy)s::text[], %(ordering_window)s::float8[]
    ) WITH ORDINALITY AS d (
        event_seq, handler, status, due, error, received_at, ordering_key, occurred_at, policy,
        ordering_window, idx
    )
    ORDER BY d.idx
    RETURNING next_attempt_at
),
woken AS (
    SELECT pg_notify(%(channel)s, '')
    FROM (SELECT 1 FROM new_deliveries WHERE next_attempt_at IS NOT NULL LIMIT 1) AS any_due
)
SELECT (SELECT count(*) FROM new_deliveries) AS inserted, (SELECT count(*) FROM woken) AS woken;

-- name: waiting_by_arrival
-- serial and latest without a reorder window: each group's waiting members, oldest
-- event first, at most %(limit)s: the first entries of the group's deliveries_group
-- range (past its active member, if that comes first), however long its backlog.
-- A group that still has an active member gives none.
SELECT g.handler, g.ordering_key, w.id, w.occurred_at, s.applied_at
FROM unnest(%(handler)s::text[], %(ordering_key)s::text[]) AS g (handler, ordering_key)
LEFT JOIN ordering_state AS s ON s.handler = g.handler AND s.ordering_key = g.ordering_key
CROSS JOIN LATERAL (
    SELECT d.id, d.occurred_at, d.event_seq
    FROM deliveries AS d
    WHERE d.handler = g.handler AND d.ordering_key = g.ordering_key
      AND d.ordering_key IS NOT NULL
      -- Waiting, said so that only deliveries_group fits (leased and retrying members
      -- always have a due time): deliveries_waiting_by_time would fit "status =
      -- 'pending'" exactly, and the planner, expecting a short backlog, would sort it.
      AND d.status IN ('pending', 'leased', 'retrying') AND d.next_attempt_at IS NULL
    -- The whole index key: the group's columns equal the outer row's, which alone
    -- does not tell the planner that the index walks event_seq in order.
    ORDER BY d.handler, d.ordering_key, d.event_seq
    LIMIT %(limit)s
) AS w
WHERE NOT EXISTS (
    SELECT 1 FROM deliveries AS a
    WHERE a.handler = g.handler AND a.ordering_key = g.ordering_key
      AND a.ordering_key IS NOT NULL
      AND (a.status IN ('leased', 'retrying')
           OR (a.status = 'pending' AND a.next_attempt_at IS NOT NULL)))
ORDER BY g.handler, g.ordering_key, w.event_seq;

-- name: waiting_by_time
-- serial and latest with a reorder window: waiting members in the order their events
-- happened (no time: last), then of arrival: deliveries_waiting_by_time, in order.
SELECT g.handler, g.ordering_key, w.id, w.occurred_at, s.applied_at
FROM unnest(%(handler)s::text[], %(ordering_key)s::text[]) AS g (handler, ordering_key)
LEFT JOIN ordering_state AS s ON s.handler = g.handler AND s.ordering_key = g.ordering_key
CROSS JOIN LATERAL (
    SELECT d.id, d.occurred_at, d.event_seq
    FROM deliveries AS d
    WHERE d.handler = g.handler AND d.ordering_key = g.ordering_key
      AND d.ordering_key IS NOT NULL AND d.status = 'pending' AND d.next_attempt_at IS NULL
    ORDER BY d.handler, d.ordering_key, d.occurred_at NULLS LAST, d.event_seq
    LIMIT %(limit)s
) AS w
WHERE NOT EXISTS (
    SELECT 1 FROM deliveries AS a
    WHERE a.handler = g.handler AND a.ordering_key = g.ordering_key
      AND a.ordering_key IS NOT NULL
      AND (a.status IN ('leased', 'retrying')
           OR (a.status = 'pending' AND a.next_attempt_at IS NOT NULL)))
ORDER BY g.handler, g.ordering_key, w.occurred_at NULLS LAST, w.event_seq;

-- name: newest_waiting
-- coalesce: each group's waiting member whose event happened last (no time counts as
-- oldest), ties broken by arrival.
SELECT g.handler, g.ordering_key, w.id, w.occurred_at, s.applied_at
FROM unnest(%(handler)s::text[], %(ordering_key)s::text[]) AS g (handler, ordering_key)
LEFT JOIN ordering_state AS s ON s.handler = g.handler AND s.ordering_key = g.ordering_key
CROSS JOIN LATERAL (
    SELECT d.id, d.occurred_at
    FROM deliveries AS d
    WHERE d.handler = g.handler AND d.ordering_key = g.ordering_key
      AND d.ordering_key IS NOT NULL AND d.status = 'pending' AND d.next_attempt_at IS NULL
    ORDER BY d.occurred_at DESC NULLS LAST, d.event_seq DESC
    LIMIT 1
) AS w
WHERE NOT EXISTS (
    SELECT 1 FROM deliveries AS a
    WHERE a.handler = g.handler AND a.ordering_key = g.ordering_key
      AND a.ordering_key IS NOT NULL
      AND (a.status IN ('leased', 'retrying')
           OR (a.status = 'pending' AND a.next_attempt_at IS NOT NULL)));

-- name: promote
-- What a settle's promotion decided, in one statement (the three sets are disjoint):
-- members made active (due now, or once their reorder window has passed), members
-- skipped unrun with a reason (stale), and every other waiting member of the
-- coalesce groups given (superseded by the one kept). Due work wakes the workers.
WITH activated AS (
    UPDATE deliveries AS d
    SET next_attempt_at = greatest(a.now, e.received_at + coalesce(d.ordering_window, 0)),
        updated_at = a.now
    FROM unnest(%(activate)s::bigint[], %(activate_now)s::float8[]) AS a (id, now), events AS e
    WHERE d.id = a.id AND e.seq = d.event_seq
      AND d.status = 'pending' AND d.next_attempt_at IS NULL
    RETURNING d.id
),
skipped AS (
    UPDATE deliveries AS d
    SET status = 'skipped', last_error = k.reason, updated_at = k.now
    FROM unnest(%(skip)s::bigint[], %(skip_reason)s::text[], %(skip_now)s::float8[])
        AS k (id, reason, now)
    WHERE d.id = k.id AND d.status = 'pending' AND d.next_attempt_at IS NULL
    RETURNING d.id
),
superseded AS (
    UPDATE deliveries AS d
    SET status = 'skipped', last_error = %(superseded)s, updated_at = c.now
    FROM unnest(
        %(keep_handler)s::text[], %(keep_ordering_key)s::text[], %(keep)s::bigint[],
        %(keep_now)s::float8[]
    ) AS c (handler, ordering_key, keep, now)
    WHERE d.handler = c.handler AND d.ordering_key = c.ordering_key AND d.id <> c.keep
      AND d.ordering_key IS NOT NULL AND d.status = 'pending' AND d.next_attempt_at IS NULL
    RETURNING d.id
),
woken AS (
    SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM activated LIMIT 1) AS any_due
)
SELECT (SELECT count(*) FROM activated) AS activated,
       (SELECT count(*) FROM skipped) + (SELECT count(*) FROM superseded) AS skipped,
       (SELECT count(*) FROM woken) AS woken;

-- name: analyze_queue
-- Fresh planner statistics for the tables whose shape a burst changes (postgres.py,
-- _refresh_statistics).
ANALYZE deliveries, events, ordering_state;

-- name: get_ordering_state
SELECT handler, ordering_key, applied_at, applied_seq, updated_at
FROM ordering_state
WHERE handler = %(handler)s AND ordering_key = %(ordering_key)s;

-- Polls: what each poll remembers between runs (poll_state) and its change-detection
-- index (poll_items).

-- name: get_poll_state
SELECT name, etag, last_modified, cursor, next_due_at, interval, error, error_since,
       failures, stats, updated_at
FROM poll_state
WHERE name = %(name)s;

-- name: list_poll_states
-- COLLATE "C": code point order, the same as Python's and SQLite's, whatever the
-- database's collation.
SELECT name, etag, last_modified, cursor, next_due_at, interval, error, error_since,
       failures, stats, updated_at
FROM poll_state
ORDER BY name COLLATE "C";

-- name: save_poll_state
-- Insert or replace every field (stats arrives as JSON text).
INSERT INTO poll_state (
    name, etag, last_modified, cursor, next_due_at, interval, error, error_since, failures,
    stats, updated_at
) VALUES (
    %(name)s, %(etag)s, %(last_modified)s, %(cursor)s, %(next_due_at)s, %(interval)s,
    %(error)s, %(error_since)s, %(failures)s, %(stats)s::jsonb, %(updated_at)s
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
SELECT item_id, version FROM poll_items WHERE poll = %(poll)s;

-- name: upsert_poll_items
-- Set the versions of many items of one poll in one statement (two parallel arrays).
INSERT INTO poll_items (poll, item_id, version)
SELECT %(poll)s::text, i.item_id, i.version
FROM unnest(%(item_ids)s::text[], %(versions)s::text[]) AS i (item_id, version)
ON CONFLICT (poll, item_id) DO UPDATE SET version = excluded.version;

-- name: delete_poll_items
-- Ids not in the index are ignored.
DELETE FROM poll_items AS p
USING unnest(%(item_ids)s::text[]) AS d (item_id)
WHERE p.poll = %(poll)s AND p.item_id = d.item_id;

-- name: forget_poll_items
DELETE FROM poll_items WHERE poll = %(poll)s;

-- name: forget_poll_state
DELETE FROM poll_state WHERE name = %(poll)s;
