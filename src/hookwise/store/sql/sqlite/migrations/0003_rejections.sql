-- 0003: rejection records.

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
