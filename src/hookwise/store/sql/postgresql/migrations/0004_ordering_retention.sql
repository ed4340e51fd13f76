-- 0004: retention forgets the ordering state of groups with no delivery left.
-- Every ordered delivery of a group, whatever its status: "is anything left in this
-- group?" is one probe (deliveries_group only holds the unfinished members).
CREATE INDEX deliveries_group_any ON deliveries (handler, ordering_key)
    WHERE ordering_key IS NOT NULL;
