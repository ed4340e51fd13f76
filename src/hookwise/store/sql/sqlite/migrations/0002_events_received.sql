-- 0002: an index on events(received_at), so retention finds the oldest events
-- without reading the whole table.

CREATE INDEX events_received ON events (received_at);
