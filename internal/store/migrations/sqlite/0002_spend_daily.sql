-- 0002_spend_daily: the ledger's cost summed per key, team and UTC day.
--
-- A budget starts each period from what its key or team spent since the
-- period began (a UTC midnight). Summed from the ledger, that read every
-- record of the period: about 200 ms per scope with 400k records, seconds
-- with a busy month, paid by the first request of every key and team after
-- a start — their requests waited for it. Summed from here it reads one row
-- per key and day. AppendUsage keeps it in the same transaction as the
-- records it adds, counting only the records actually inserted (a replayed
-- journal's duplicates are skipped by both).
--
-- day is the UTC day number: unix nanoseconds floor-divided by 86400e9.

CREATE TABLE spend_daily (
    key_id     TEXT    NOT NULL,
    day        INTEGER NOT NULL,
    team_id    TEXT    NOT NULL,
    cost_nanos INTEGER NOT NULL,
    PRIMARY KEY (key_id, day, team_id)
) WITHOUT ROWID;

CREATE INDEX spend_daily_team ON spend_daily (team_id, day);

INSERT INTO spend_daily (key_id, day, team_id, cost_nanos)
SELECT key_id,
       (time - (time % 86400000000000 + 86400000000000) % 86400000000000) / 86400000000000,
       team_id, SUM(cost_nanos)
FROM usage
GROUP BY 1, 2, 3
HAVING SUM(cost_nanos) != 0;
