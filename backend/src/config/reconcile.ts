import { Type } from '@sinclair/typebox';
import { DURATION_PATTERN, parseDuration } from './duration';
import type { KeyPath } from './keypath';
import type { RawDataset } from './schema';
import type { Problem } from './validate';

/** `sync.reconcile.every`: a duration, or `off`. */
export const RECONCILE_EVERY_PATTERN = `^off$|${DURATION_PATTERN}`;

/**
 * The pass interval when `every` is not given: on for PostgreSQL polling a cursor, whose deletes
 * nothing else reports (`mode: cdc` reads them from the replication stream: off there).
 */
export const RECONCILE_EVERY_DEFAULT: Record<RawDataset['source']['kind'], string> = {
  postgres: '1h',
  http: 'off',
  demo: 'off',
};

export const ReconcileSchema = Type.Object(
  {
    every: Type.Optional(
      Type.String({
        pattern: RECONCILE_EVERY_PATTERN,
        description:
          'how often a pass looks for records deleted upstream (off: never); default 1h for postgres',
      }),
    ),
    pageSize: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 1000,
      description: 'ids checked against the upstream in one query',
    }),
    perRun: Type.Integer({
      minimum: 1,
      default: 10_000,
      description: 'ids a sync run checks at most; a longer pass goes on in the next runs',
    }),
  },
  { additionalProperties: false },
);

/** `sync.reconcile` as the sync engine reads it. */
export interface ReconcileSpec {
  /** Time from the start of one pass to the start of the next; null: reconciliation is off. */
  everyMs: number | null;
  pageSize: number;
  perRun: number;
}

type Raw = NonNullable<RawDataset['sync']['reconcile']>;

export function resolveReconcile(raw: Raw | undefined, source: RawDataset['source']): ReconcileSpec {
  const every = raw?.every ?? (seesDeletes(source) ? 'off' : RECONCILE_EVERY_DEFAULT[source.kind]);
  return {
    everyMs: every === 'off' ? null : parseDuration(every),
    pageSize: raw?.pageSize ?? 1000,
    perRun: raw?.perRun ?? 10_000,
  };
}

/**
 * A pass needs a way to ask the upstream which ids still exist: PostgreSQL always has one, an
 * HTTP API only when it filters by id (`source.idFilterParam`), and the demo reports its deletes itself.
 */
export function reconcileProblems(dataset: RawDataset, path: KeyPath): Problem[] {
  const every = dataset.sync.reconcile?.every;
  if (every === undefined || every === 'off') return [];
  const at: KeyPath = [...path, 'sync', 'reconcile', 'every'];
  const { source } = dataset;
  if (parseDuration(every) === 0) return [{ path: at, message: 'must be longer than 0, or off' }];
  if (source.kind === 'http' && source.idFilterParam === undefined) {
    return [
      {
        path: at,
        message:
          'needs source.idFilterParam, the query parameter the API filters records by id with ' +
          '(GET …?id=1&id=2 must answer exactly those that exist): without it deletes cannot be found; ' +
          'or set every: off',
      },
    ];
  }
  if (source.kind === 'demo') {
    return [{ path: at, message: 'the demo source reports its deletes itself: set every: off' }];
  }
  if (seesDeletes(source)) {
    return [
      { path: at, message: 'mode: cdc reads deletes from the replication stream itself: set every: off' },
    ];
  }
  return [];
}

function seesDeletes(source: RawDataset['source']): boolean {
  return source.kind === 'postgres' && source.mode === 'cdc';
}
