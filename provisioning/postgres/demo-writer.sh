#!/bin/sh
# Keeps the demo events table busy so the sync always has work: every round inserts new events,
# updates a few recent ones and soft-deletes one, each round in its own transaction.
#
# Connection: the libpq variables (PGHOST, PGUSER, PGPASSWORD, PGDATABASE, ...).
#   DEMO_WRITER_INSERTS   rows inserted per round (default 10)
#   DEMO_WRITER_UPDATES   recent rows updated per round (default 3)
#   DEMO_WRITER_DELETES   recent rows soft-deleted per round (default 1)
#   DEMO_WRITER_INTERVAL  seconds between rounds (default 1)
#   DEMO_WRITER_ROUNDS    stop after this many rounds (default 0: never)
#   DEMO_WRITER_HEARTBEAT file touched after every round, for a healthcheck (default: none)
set -eu

inserts="${DEMO_WRITER_INSERTS:-10}"
updates="${DEMO_WRITER_UPDATES:-3}"
deletes="${DEMO_WRITER_DELETES:-1}"
interval="${DEMO_WRITER_INTERVAL:-1}"
rounds="${DEMO_WRITER_ROUNDS:-0}"
heartbeat="${DEMO_WRITER_HEARTBEAT:-}"

round=0
echo "demo-writer: $inserts inserts, $updates updates, $deletes soft deletes every ${interval}s"
while [ "$rounds" -eq 0 ] || [ "$round" -lt "$rounds" ]; do
  # Updates and deletes pick among the 1000 newest live rows: a primary-key range, not a scan.
  psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 \
    --set inserts="$inserts" --set updates="$updates" --set deletes="$deletes" <<'SQL'
BEGIN;
INSERT INTO events (ts, country, device, amount, duration_ms, user_id)
SELECT
  now() - make_interval(secs => 5 * random()),
  (ARRAY['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN'])[1 + floor(random() * 7)::int],
  (ARRAY['desktop', 'mobile', 'tablet'])[1 + floor(random() * 3)::int],
  round((5 + random() * 195)::numeric, 2),
  (20 + floor(random() * 480))::int,
  'user-' || floor(random() * 2000)::int
FROM generate_series(1, :inserts);
UPDATE events
SET amount = round((5 + random() * 195)::numeric, 2),
    duration_ms = (20 + floor(random() * 480))::int
WHERE id IN (
  SELECT id FROM events
  WHERE deleted_at IS NULL AND id > (SELECT max(id) - 1000 FROM events)
  ORDER BY random() LIMIT :updates
);
UPDATE events
SET deleted_at = now()
WHERE id IN (
  SELECT id FROM events
  WHERE deleted_at IS NULL AND id > (SELECT max(id) - 1000 FROM events)
  ORDER BY random() LIMIT :deletes
);
COMMIT;
SQL
  round=$((round + 1))
  if [ -n "$heartbeat" ]; then touch "$heartbeat"; fi
  if [ "$rounds" -eq 0 ] || [ "$round" -lt "$rounds" ]; then sleep "$interval"; fi
done
