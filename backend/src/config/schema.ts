import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN } from './duration';
import { ReconcileSchema } from './reconcile';

const Duration = (description: string, def?: string) =>
  Type.String({ pattern: DURATION_PATTERN, description, ...(def === undefined ? {} : { default: def }) });

/** `datasets[].sync.permanentRetry` when not given. */
export const PERMANENT_RETRY_DEFAULT = '5m';

const Identifier = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z_][A-Za-z0-9_$]*$' });
/** A PostgreSQL table name, optionally schema-qualified: `events` or `public.events`. */
const TableName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_$]*(\\.[A-Za-z_][A-Za-z0-9_$]*)?$' });

/** What an HTTP source's cursor values are (sources/cursor-type.ts): compared by value, never as text. */
export const CURSOR_TYPES = ['timestamp', 'epoch_s', 'epoch_ms', 'epoch_us', 'epoch_ns', 'number'] as const;
export type CursorType = (typeof CURSOR_TYPES)[number];
export const CURSOR_TYPE_PATTERN = `^(${CURSOR_TYPES.join('|')})$`;

/** A replication slot or publication name: PostgreSQL allows lowercase letters, digits and _ in slot names. */
const ReplicationName = Type.String({ pattern: '^[a-z0-9_]{1,63}$' });

const SourceFields = {
  id: Identifier,
  time: Identifier,
  cursor: Identifier,
  deleted: Type.Optional(Identifier),
};

export const PostgresSourceSchema = Type.Object(
  {
    kind: Type.Literal('postgres'),
    url: Type.String({ minLength: 1, description: 'postgres:// connection string' }),
    table: Type.Optional(TableName),
    query: Type.Optional(Type.String({ minLength: 1, description: 'a SELECT used instead of table' })),
    ...SourceFields,
    poolSize: Type.Integer({ minimum: 1, maximum: 64, default: 2 }),
    statementTimeout: Duration('statement timeout for each batch query', '30s'),
    mode: Type.Optional(
      Type.Union([Type.Literal('poll'), Type.Literal('cdc')], {
        description: 'poll (when absent): keyset reads on the cursor; cdc: logical replication (pgoutput)',
      }),
    ),
    cdc: Type.Optional(
      Type.Object(
        {
          slot: Type.Optional(ReplicationName),
          publication: Type.Optional(ReplicationName),
          heartbeat: Duration(
            'how often the slot is told what is committed, and WAL is written when idle',
            '10s',
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const HttpSourceSchema = Type.Object(
  {
    kind: Type.Literal('http'),
    url: Type.String({ pattern: '^https?://', description: 'endpoint returning a JSON page of records' }),
    cursorParam: Type.String({ minLength: 1, default: 'since' }),
    cursorType: Type.Optional(
      Type.Unsafe<CursorType>(
        Type.String({
          pattern: CURSOR_TYPE_PATTERN,
          description: 'inferred from the first value when left out',
        }),
      ),
    ),
    idParam: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'query parameter for the id to continue after, within a cursor value',
      }),
    ),
    limitParam: Type.String({ minLength: 1, default: 'limit' }),
    recordsPath: Type.String({ default: 'records', description: 'dot path to the array of records' }),
    pagination: Type.Union(
      [
        Type.Object(
          {
            kind: Type.Literal('cursor'),
            nextPath: Type.String({ minLength: 1, description: 'dot path to the next cursor' }),
          },
          { additionalProperties: false },
        ),
        Type.Object(
          { kind: Type.Literal('page'), pageParam: Type.String({ minLength: 1, default: 'page' }) },
          { additionalProperties: false },
        ),
        Type.Object(
          { kind: Type.Literal('offset'), offsetParam: Type.String({ minLength: 1, default: 'offset' }) },
          { additionalProperties: false },
        ),
        // RFC 8288: the next page's URL in the response's Link header, rel="next".
        Type.Object({ kind: Type.Literal('link') }, { additionalProperties: false }),
        Type.Object({ kind: Type.Literal('none') }, { additionalProperties: false }),
      ],
      { default: { kind: 'none' } },
    ),
    /** Where each dataset field lives in a record: a dot path; defaults to the field's own name. */
    fields: Type.Record(Type.String(), Type.String({ minLength: 1 }), { default: {} }),
    headers: Type.Record(Type.String(), Type.String(), { default: {} }),
    timeout: Duration('request timeout', '10s'),
    idFilterParam: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'query parameter that selects records by id, repeated per id',
      }),
    ),
    ...SourceFields,
  },
  { additionalProperties: false },
);

export const DemoSourceSchema = Type.Object(
  {
    kind: Type.Literal('demo'),
    rate: Type.Number({
      exclusiveMinimum: 0,
      maximum: 10_000,
      default: 5,
      description: 'new events per second',
    }),
    history: Duration('events generated into the past at start', '6h'),
    updateRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.02 }),
    deleteRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.005 }),
    seed: Type.Integer({ default: 1 }),
  },
  { additionalProperties: false },
);

export const SourceSchema = Type.Union([PostgresSourceSchema, HttpSourceSchema, DemoSourceSchema]);

/** Distinct counts per hour and coarser by default: per-minute sketches cost more than all else held. */
export const DISTINCT_FROM_DEFAULT = '1h';

export const DatasetSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9_-]{1,64}$' }),
    source: SourceSchema,
    dimensions: Type.Array(Identifier, { maxItems: 4, uniqueItems: true, default: [] }),
    metrics: Type.Array(Identifier, { maxItems: 16, uniqueItems: true, default: [] }),
    distinct: Type.Array(Identifier, { maxItems: 4, uniqueItems: true, default: [] }),
    resolution: Duration('base bucket size', '1m'),
    sync: Type.Object(
      {
        interval: Duration('time between sync runs', '5s'),
        batchSize: Type.Integer({ minimum: 1, maximum: 100_000, default: 5000 }),
        lag: Duration('read only changes older than this', '2s'),
        lookback: Duration('window re-read each run for late commits', '30s'),
        // Optional in the type so that datasets declared in code may leave it out; loading fills it in.
        permanentRetry: Type.Optional(
          Duration(
            'wait after a permanent error (bad credentials, missing table) before trying again',
            PERMANENT_RETRY_DEFAULT,
          ),
        ),
        reconcile: Type.Optional(ReconcileSchema),
      },
      { additionalProperties: false, default: {} },
    ),
    staleAfter: Duration('age after which the dataset is stale', '2m'),
    retention: Duration('how long records and buckets are kept', '30d'),
    // Optional in the type so that datasets declared in code may leave it out.
    projections: Type.Optional(
      Type.Array(Type.Array(Identifier, { uniqueItems: true, minItems: 2 }), {
        maxItems: 16,
        description:
          'dimension combinations kept besides none, each dimension alone and all of them together',
      }),
    ),
    // Optional in the type so that datasets declared in code may leave it out; resolveDataset fills it in.
    distinctFrom: Type.Optional(
      Duration('the finest tier that keeps distinct-count sketches', DISTINCT_FROM_DEFAULT),
    ),
  },
  { additionalProperties: false },
);

/**
 * Defaults of `server.limits`: what one `/api/query` request may cost and how many are
 * computed at once (query/budget.ts, query/gate.ts, query/overload.ts say why these values).
 */
export const LIMIT_DEFAULTS = {
  maxCellsPerRequest: 4_000_000,
  maxPointsPerRequest: 1_000_000,
  maxConcurrentQueries: 2,
  maxQueuedQueries: 64,
  maxEventLoopDelayMs: 200,
  maxHeapUsedPercent: 85,
} as const;

export const LimitsSchema = Type.Object(
  {
    maxCellsPerRequest: Type.Integer({
      minimum: 1,
      default: LIMIT_DEFAULTS.maxCellsPerRequest,
      description: 'stored cells (groups × tier buckets) one request may read, over all its queries',
    }),
    maxPointsPerRequest: Type.Integer({
      minimum: 1,
      default: LIMIT_DEFAULTS.maxPointsPerRequest,
      description: 'values one request may return (rows × fields of every frame), cached or not',
    }),
    maxConcurrentQueries: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: LIMIT_DEFAULTS.maxConcurrentQueries,
      description: 'requests computing metrics from rollups at once',
    }),
    maxQueuedQueries: Type.Integer({
      minimum: 0,
      default: LIMIT_DEFAULTS.maxQueuedQueries,
      description: 'requests waiting for a computation slot; beyond them /api/query answers 503',
    }),
    maxEventLoopDelayMs: Type.Integer({
      minimum: 0,
      default: LIMIT_DEFAULTS.maxEventLoopDelayMs,
      description: 'mean event-loop delay above which /api/query answers 503 (0 turns it off)',
    }),
    maxHeapUsedPercent: Type.Integer({
      minimum: 0,
      maximum: 100,
      default: LIMIT_DEFAULTS.maxHeapUsedPercent,
      description: "heap used, in % of V8's heap limit, above which /api/query answers 503 (0 turns it off)",
    }),
  },
  { additionalProperties: false, default: {} },
);

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 3001 }),
        apiKey: Type.String({ default: '' }),
        rateLimitPerMinute: Type.Integer({
          minimum: 0,
          default: 6000,
          description: 'requests per minute per client on /api/* (0 turns the limit off)',
        }),
        limits: LimitsSchema,
      },
      { additionalProperties: false, default: {} },
    ),
    redis: Type.Optional(
      Type.Object(
        {
          url: Type.String({ pattern: '^(redis|rediss|unix|redis\\+cluster|rediss\\+cluster)://' }),
          prefix: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', default: 'livesync' }),
        },
        { additionalProperties: false },
      ),
    ),
    datasets: Type.Array(DatasetSchema, { minItems: 1 }),
    lease: Type.Object(
      {
        ttl: Duration(
          "how long a replica holds a dataset's sync lease unless it renews it (every third of it)",
          '15s',
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    grafanaLive: Type.Optional(
      Type.Object(
        {
          url: Type.String({ pattern: '^https?://', description: 'Grafana base URL for the Live push API' }),
          token: Type.Optional(Type.String({ minLength: 1, description: 'service-account token' })),
          tokenFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the token' })),
          streamId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'livesync' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export type RawConfig = Static<typeof ConfigSchema>;
export type Limits = Static<typeof LimitsSchema>;
export type RawDataset = Static<typeof DatasetSchema>;
export type PostgresSourceConfig = Static<typeof PostgresSourceSchema>;
export type HttpSourceConfig = Static<typeof HttpSourceSchema>;
export type DemoSourceConfig = Static<typeof DemoSourceSchema>;
export type SourceConfig = Static<typeof SourceSchema>;
