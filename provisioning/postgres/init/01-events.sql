-- The demo upstream for docker-compose.yml: an events table that LiveSync syncs incrementally
-- by its change column (updated_at, with id as the tie-breaker) and soft deletes (deleted_at).
-- The postgres image runs this once, when its data volume is first created.
-- Names are unqualified on purpose: the image's search_path puts them in public (the service
-- config reads public.events), and dashboards/test runs this file in a throw-away schema.

CREATE TABLE events (
  id          bigserial PRIMARY KEY,
  ts          timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz NULL,
  country     text NOT NULL,
  device      text NOT NULL,
  amount      numeric(12, 2) NOT NULL,
  duration_ms integer NOT NULL,
  user_id     text NOT NULL
);

-- The sync reads WHERE (updated_at, id) > ($cursor, $id) ORDER BY updated_at, id LIMIT n:
-- this index makes every batch an index range scan, whatever the size of the table.
CREATE INDEX events_updated_at_id ON events (updated_at, id);

-- Every update moves the row's cursor forward, so the next sync run sees it. now() is the
-- transaction's start time: a long transaction can commit rows behind the synced cursor, which
-- the dataset's sync.lookback window re-reads.
CREATE FUNCTION events_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE TRIGGER events_touch_updated_at
  BEFORE UPDATE ON events
  FOR EACH ROW EXECUTE FUNCTION events_touch_updated_at();

-- Six hours of history (about one event every two seconds), so panels have something to show
-- from the first minute. The generated rows share one updated_at: the sync's keyset on
-- (updated_at, id) pages through them without losing any.
INSERT INTO events (ts, country, device, amount, duration_ms, user_id)
SELECT
  now() - make_interval(secs => 21600 * random()),
  (ARRAY['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN'])[1 + floor(random() * 7)::int],
  (ARRAY['desktop', 'mobile', 'tablet'])[1 + floor(random() * 3)::int],
  round((5 + random() * 195)::numeric, 2),
  (20 + floor(random() * 480))::int,
  'user-' || floor(random() * 2000)::int
FROM generate_series(1, 10800);
