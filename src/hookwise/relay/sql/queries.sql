-- name: create_channel
INSERT INTO relay_channels (id, token_hash, created_at) VALUES (:id, :token_hash, :now);

-- name: get_channel
SELECT id, token_hash, created_at, last_seq, cursor, dropped FROM relay_channels WHERE id = :id;

-- name: count_requests
-- How many requests the channel holds, and how many of them wait for an ack.
SELECT count(*), count(*) FILTER (WHERE seq > :cursor)
FROM relay_requests WHERE channel = :id;

-- name: next_seq
UPDATE relay_channels SET last_seq = last_seq + 1 WHERE id = :id RETURNING last_seq, cursor;

-- name: insert_request
INSERT INTO relay_requests (channel, seq, method, target, headers, body, received_at)
VALUES (:id, :seq, :method, :target, :headers, :body, :now);

-- name: drop_up_to
-- Requests at or below a seq (acknowledged ones, or ones over the cap).
DELETE FROM relay_requests WHERE channel = :id AND seq > :above AND seq <= :upto;

-- name: count_dropped
UPDATE relay_channels SET dropped = dropped + :count WHERE id = :id;

-- name: fetch_after
SELECT seq, method, target, headers, body, received_at
FROM relay_requests WHERE channel = :id AND seq > :after
ORDER BY seq LIMIT :limit;

-- name: advance_cursor
-- The cursor only moves forward, and never past the newest request.
UPDATE relay_channels SET cursor = max(cursor, :seq)
WHERE id = :id AND :seq <= last_seq
RETURNING cursor;

-- name: prune_acked
-- Acknowledged requests received before :before (the history's age limit).
DELETE FROM relay_requests
WHERE received_at < :before
  AND seq <= (SELECT cursor FROM relay_channels WHERE relay_channels.id = relay_requests.channel);

-- name: count_channels
SELECT count(*) FROM relay_channels;
