-- 0005: what polls remember between runs, so a restart does not refetch everything and
-- change detection survives a crash. New tables only: the release before this one
-- never reads them.

-- One row per poll: the first page's validators, the cursor of the next run, when it
-- is due, and how it has been failing.
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
