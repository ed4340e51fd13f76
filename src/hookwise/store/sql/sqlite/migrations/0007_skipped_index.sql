-- 0007: skipped deliveries by reason, for metrics, without reading the whole table.

CREATE INDEX deliveries_skipped ON deliveries (last_error) WHERE status = 'skipped';
