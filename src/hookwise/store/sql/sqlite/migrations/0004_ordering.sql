-- 0004: ordering policies (serial, latest, coalesce) per (handler, ordering key).
-- Ordered deliveries carry copies of their event's ordering key and time and the policy
-- they were stored with, so a settle promotes the next one without a join, and a later
-- configuration change never reorders work already stored. Unordered deliveries keep
-- NULL in all four. ADD COLUMN puts them after updated_at, where schema.sql has them.

ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN occurred_at REAL;
ALTER TABLE deliveries ADD COLUMN policy TEXT CHECK (policy IN ('serial', 'latest', 'coalesce'));
ALTER TABLE deliveries ADD COLUMN ordering_window REAL;

-- The unfinished members of each group, oldest event first: finding a group's active
-- member, or the next waiting one, reads one short range of this index.
CREATE INDEX deliveries_group ON deliveries (handler, ordering_key, event_seq)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'leased', 'retrying');
-- The active member of each group: due, leased or retrying (waiting members are
-- 'pending' without a due time). UNIQUE: at most one, whatever a bug elsewhere would
-- do; and "has this group an active member?" is one probe.
CREATE UNIQUE INDEX deliveries_group_active ON deliveries (handler, ordering_key)
    WHERE ordering_key IS NOT NULL
      AND (status IN ('leased', 'retrying') OR (status = 'pending' AND next_attempt_at IS NOT NULL));

-- Per group, the newest event applied (settled done): latest and coalesce skip older ones.
CREATE TABLE ordering_state (
    handler TEXT NOT NULL,
    ordering_key TEXT NOT NULL,
    applied_at REAL,  -- the newest occurred_at applied; NULL while none had a time
    applied_seq INTEGER,  -- the newest event seq applied
    updated_at REAL NOT NULL,
    PRIMARY KEY (handler, ordering_key)
) WITHOUT ROWID;
