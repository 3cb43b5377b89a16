import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { describeAge } from '../../config/duration';
import { QueryError } from '../../query/errors';
import type { RegionKind, SyncEvent, SyncRegion } from '../../store/types';
import type { DatasetStatus } from '../../sync/status';

const Annotation = Type.Object({
  time: Type.Number(),
  timeEnd: Type.Number(),
  title: Type.String(),
  text: Type.String(),
  tags: Type.Array(Type.String()),
});

type AnnotationRecord = {
  time: number;
  timeEnd: number;
  title: string;
  text: string;
  tags: string[];
};

export const REGION_KINDS: readonly RegionKind[] = ['failure', 'resync', 'pause', 'reconcile'];

/** `failure,resync`: the kinds of state change to annotate, checked one by one so an error names the wrong one. */
function parseKinds(text: string | undefined): Set<RegionKind> {
  if (text === undefined) return new Set(REGION_KINDS);
  const kinds = new Set<RegionKind>();
  for (const part of text.split(',')) {
    const kind = part.trim();
    if (kind === '') continue;
    if (!REGION_KINDS.includes(kind as RegionKind)) {
      throw new QueryError(`kinds: "${kind}" is not a kind of annotation; use ${REGION_KINDS.join(', ')}`);
    }
    kinds.add(kind as RegionKind);
  }
  return kinds;
}

function errorText(error: SyncRegion['error'] | DatasetStatus['lastError']): string {
  return error ? `; last error (${error.origin ?? 'upstream'}, ${error.class}): ${error.message}` : '';
}

function region(dataset: string, r: SyncRegion, ongoing: boolean): AnnotationRecord {
  const lasted = describeAge(r.endedAt - r.startedAt);
  const tags = ['sync', r.kind, dataset, ...(ongoing ? ['ongoing'] : [])];
  const base = { time: r.startedAt, timeEnd: r.endedAt, tags };
  switch (r.kind) {
    case 'failure':
      return {
        ...base,
        title: ongoing ? `${dataset}: sync failing` : `${dataset}: sync failed, then recovered`,
        text: `${r.count} failed run${r.count === 1 ? '' : 's'} over ${lasted}${errorText(r.error)}`,
      };
    case 'resync':
      return {
        ...base,
        title: ongoing
          ? `${dataset}: resyncing after the store lost its data`
          : `${dataset}: resynced after the store lost its data`,
        text: ongoing
          ? `totals are incomplete until it catches up; ${r.count} records read again so far`
          : `${r.count} records read again in ${lasted}; totals were incomplete until then`,
      };
    case 'pause':
      return {
        ...base,
        title: `${dataset}: sync paused`,
        text: `nothing was synced for ${lasted}: the service was stopped or restarting`,
      };
    case 'reconcile':
      return {
        ...base,
        title: `${dataset}: ${r.count} record${r.count === 1 ? '' : 's'} deleted upstream removed`,
        text: `a reconciliation pass checked ${r.checked ?? 0} records in ${lasted} and removed those gone upstream`,
      };
  }
}

/** Regions still under way, from the live status: they end now, as far as anyone knows. */
function ongoing(status: DatasetStatus, clock: number): SyncRegion[] {
  const out: SyncRegion[] = [];
  const now = Math.max(clock, status.lastAttemptAt ?? clock);
  if (status.failingSince !== null) {
    out.push({
      kind: 'failure',
      startedAt: status.failingSince,
      endedAt: now,
      count: status.consecutiveFailures,
      ...(status.lastError ? { error: status.lastError } : {}),
    });
  }
  if (status.resyncSince !== null) {
    out.push({
      kind: 'resync',
      startedAt: status.resyncSince,
      endedAt: now,
      count: status.backfill?.applied ?? 0,
    });
  }
  return out;
}

function batch(dataset: string, event: SyncEvent): AnnotationRecord {
  return {
    time: event.endedAt,
    timeEnd: event.endedAt,
    title: `${dataset}: ${event.records} records synced`,
    text: `one sync run applied ${event.records} records in ${event.endedAt - event.startedAt} ms`,
    tags: ['sync', 'batch', dataset],
  };
}

/**
 * Sync state changes as Grafana annotations: a region from each failure to its recovery, from
 * each store loss to the end of its resync, and over each pause in syncing; runs that applied
 * at least `minRecords` records as points when asked. Routine runs are never annotated: one
 * per run buries a graph under markers.
 */
export const annotationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/api/annotations',
    {
      schema: {
        querystring: Type.Object(
          {
            dataset: Type.Optional(Type.String({ maxLength: 128 })),
            from: Type.Integer({ minimum: 0 }),
            to: Type.Integer({ minimum: 0 }),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            /** State changes to annotate, comma-separated; empty for none. Default: all of them. */
            kinds: Type.Optional(Type.String({ maxLength: 64 })),
            /** Also annotate runs that applied at least this many records. */
            minRecords: Type.Optional(Type.Integer({ minimum: 1 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(Annotation) },
      },
    },
    async (request) => {
      const { dataset, from, to, limit, minRecords } = request.query;
      if (from > to) throw new QueryError('from: must not be after to');
      const kinds = parseKinds(request.query.kinds);
      const names = dataset ? [dataset] : app.sync.specs().map((s) => s.name);
      for (const name of names) {
        if (!app.sync.get(name)) throw new QueryError(`dataset: unknown dataset "${name}"`, 404);
      }
      const now = app.clock();
      const perDataset = await Promise.all(
        names.map(async (name) => {
          const status = app.sync.get(name)!.status();
          const ended = kinds.size > 0 ? await app.store.readRegions(name, from, to, limit) : [];
          const out = [
            ...ended.filter((r) => kinds.has(r.kind)).map((r) => region(name, r, false)),
            ...ongoing(status, now)
              .filter((r) => kinds.has(r.kind) && r.startedAt <= to)
              .map((r) => region(name, r, true)),
          ];
          if (minRecords !== undefined) {
            const runs = await app.store.readEvents(name, from, to, 1000);
            out.push(
              ...runs
                .filter((e) => e.outcome === 'success' && e.records >= minRecords)
                .map((e) => batch(name, e)),
            );
          }
          return out;
        }),
      );
      return perDataset
        .flat()
        .sort((a, b) => b.time - a.time)
        .slice(0, limit);
    },
  );
};
