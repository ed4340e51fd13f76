-- 0002: rejection records.

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
