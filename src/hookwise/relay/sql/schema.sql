-- The relay's data file: channels, and the requests captured for each, in arrival order.

CREATE TABLE IF NOT EXISTS relay_channels (
    id          TEXT PRIMARY KEY,          -- unguessable, part of the public URL
    token_hash  BLOB NOT NULL,             -- SHA-256 of the channel's token; the token is never stored
    created_at  REAL NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0,  -- the newest request's seq (seqs start at 1 per channel)
    cursor      INTEGER NOT NULL DEFAULT 0,  -- every request up to this seq was acknowledged
    dropped     INTEGER NOT NULL DEFAULT 0   -- unacknowledged requests pushed out by the history cap
);

CREATE TABLE IF NOT EXISTS relay_requests (
    channel     TEXT NOT NULL REFERENCES relay_channels (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    method      TEXT NOT NULL,
    target      BLOB NOT NULL,             -- raw path after the channel id, and ?query
    headers     TEXT NOT NULL,             -- JSON [[name, value], ...], Latin-1, as received
    body        BLOB NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (channel, seq)
);

CREATE INDEX IF NOT EXISTS relay_requests_received ON relay_requests (received_at);
