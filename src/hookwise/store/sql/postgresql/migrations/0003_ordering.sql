-- 0003: ordering policies (serial, latest, coalesce) per group (handler, ordering key).
-- Ordered deliveries carry copies of their event's ordering key and time, the policy
-- and reorder window they were stored with, so a settle promotes the next member
-- without a join and a later configuration change never reorders stored work.
-- Unordered deliveries keep NULL in all four. Nullable columns without a default are
-- added without rewriting the table.

ALTER TABLE deliveries ADD COLUMN ordering_key text;
ALTER TABLE deliveries ADD COLUMN occurred_at double precision;
ALTER TABLE deliveries ADD COLUMN policy text CHECK (policy IN ('serial', 'latest', 'coalesce'));
ALTER TABLE deliveries ADD COLUMN ordering_window double precision;

-- The unfinished members of each group, oldest event first: the next waiting member
-- is the first entries of one group's range.
CREATE INDEX deliveries_group ON deliveries (handler, ordering_key, event_seq)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'leased', 'retrying');
-- The active member of each group (due, leased or retrying; waiting members are
-- 'pending' with no due time). At most one: the database refuses a second, whatever
-- a bug elsewhere would do; and "has this group an active member?" is one probe.
CREATE UNIQUE INDEX deliveries_group_active ON deliveries (handler, ordering_key)
    WHERE ordering_key IS NOT NULL
      AND (status IN ('leased', 'retrying') OR (status = 'pending' AND next_attempt_at IS NOT NULL));
-- Waiting members in the order their events happened (a reorder window promotes by
-- time): the next one is the first entry, however long the key's backlog. Only
-- waiting rows are in it: work that never waits costs it nothing.
CREATE INDEX deliveries_waiting_by_time ON deliveries (handler, ordering_key, occurred_at, event_seq)
    WHERE ordering_key IS NOT NULL AND status = 'pending' AND next_attempt_at IS NULL;

-- Per group, the newest event applied (settled done): latest and coalesce skip older ones.
CREATE TABLE ordering_state (
    handler text NOT NULL,
    ordering_key text NOT NULL,
    applied_at double precision,  -- the newest occurred_at applied; NULL while none had one
    applied_seq bigint,  -- the newest event seq applied
    updated_at double precision NOT NULL,
    PRIMARY KEY (handler, ordering_key)
);
