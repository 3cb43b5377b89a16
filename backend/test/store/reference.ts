import { CELL, projectionDimensions, type DatasetSpec } from '../../src/config/dataset';
import type { SourceRecord } from '../../src/sources/types';
import type { Store } from '../../src/store/types';

/** A cell's name in the maps below: `${tier}|${projection}|${group}|${bucket}`, NUL for a null value. */
function cellKey(tier: number, mask: number, values: readonly (string | null)[], bucket: number): string {
  return `${tier}|${mask}|${values.map((v) => v ?? '\0').join('\x1f')}|${bucket}`;
}

function groupValues(spec: DatasetSpec, r: SourceRecord, mask: number): (string | null)[] {
  return projectionDimensions(mask, spec.dimensions.length).map((i) => r.dims[i] ?? null);
}

/**
 * The rollups recomputed from scratch from the records a store should hold: the
 * reference every store is checked against. Keyed `${tier}|${projection}|${group}|${bucket}`.
 */
export function referenceCells(spec: DatasetSpec, records: Iterable<SourceRecord>): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const F = spec.layout.fieldCount;
  for (const r of records) {
    for (const tier of spec.layout.tiers) {
      const bucket = Math.floor(r.time / tier) * tier;
      for (const mask of spec.layout.projections) {
        const key = cellKey(tier, mask, groupValues(spec, r, mask), bucket);
        let cell = out.get(key);
        if (!cell) out.set(key, (cell = new Array<number>(F).fill(0)));
        cell[CELL.count]!++;
        r.metrics.forEach((v, m) => {
          if (v === null) return;
          const had = cell[CELL.nonNull(m)]! > 0;
          cell[CELL.sum(m)]! += v;
          cell[CELL.nonNull(m)]!++;
          cell[CELL.min(m)] = had ? Math.min(cell[CELL.min(m)]!, v) : v;
          cell[CELL.max(m)] = had ? Math.max(cell[CELL.max(m)]!, v) : v;
        });
      }
    }
  }
  return out;
}

/** Every stored cell of every tier and projection, as the store reports them, keyed as above. */
export async function storedCells(
  store: Store,
  spec: DatasetSpec,
  from: number,
  to: number,
): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  const F = spec.layout.fieldCount;
  const reads = spec.layout.tiers.flatMap((tier) =>
    spec.layout.projections.map(async (mask) => {
      const start = Math.floor(from / tier) * tier;
      const groups = await store.readRollups(spec.name, { tierMs: tier, projection: mask, from: start, to });
      return { tier, mask, start, groups };
    }),
  );
  for (const { tier, mask, start, groups } of await Promise.all(reads)) {
    for (const g of groups) {
      for (let i = 0; i * F < g.cells.length; i++) {
        if (g.cells[i * F]! <= 0) continue;
        out.set(
          cellKey(tier, mask, g.values, start + i * tier),
          Array.from(g.cells.subarray(i * F, (i + 1) * F)),
        );
      }
    }
  }
  return out;
}

export function referenceDistinct(
  spec: DatasetSpec,
  records: Iterable<SourceRecord>,
  tier: number,
  field: number,
): Map<number, number> {
  const sets = new Map<number, Set<string>>();
  for (const r of records) {
    const v = r.distinct[field];
    if (v === null || v === undefined) continue;
    const bucket = Math.floor(r.time / tier) * tier;
    let set = sets.get(bucket);
    if (!set) sets.set(bucket, (set = new Set()));
    set.add(v);
  }
  return new Map([...sets].map(([b, s]) => [b, s.size]));
}

/**
 * Distinct counts of every cell that holds records, per distinct field, recomputed from the
 * records, at the tiers that keep them (the layout's distinctTier and coarser). Keyed `${cell}|${field}`, the cell named as in referenceCells.
 */
export function referenceDistinctCells(
  spec: DatasetSpec,
  records: Iterable<SourceRecord>,
): Map<string, number> {
  const sets = new Map<string, Set<string>>();
  const { tiers, distinctTier } = spec.layout;
  for (const r of records) {
    for (const tier of tiers.slice(distinctTier)) {
      const bucket = Math.floor(r.time / tier) * tier;
      for (const mask of spec.layout.projections) {
        const cell = cellKey(tier, mask, groupValues(spec, r, mask), bucket);
        spec.distinct.forEach((_, k) => {
          const key = `${cell}|${k}`;
          let set = sets.get(key);
          if (!set) sets.set(key, (set = new Set()));
          const v = r.distinct[k];
          if (v !== null && v !== undefined) set.add(v);
        });
      }
    }
  }
  return new Map([...sets].map(([k, s]) => [k, s.size]));
}

/** The store's distinct count of each named cell and field (names as referenceDistinctCells gives them). */
export async function storedDistinctCells(
  store: Store,
  spec: DatasetSpec,
  keys: string[],
): Promise<Map<string, number>> {
  const counts = await Promise.all(
    keys.map(async (key) => {
      const [tier, mask, group, bucket, field] = key.split('|') as [string, string, string, string, string];
      const size = projectionDimensions(Number(mask), spec.dimensions.length).length;
      const values = size === 0 ? [] : group.split('\x1f').map((v) => (v === '\0' ? null : v));
      const [count] = await store.countDistinct(spec.name, {
        tierMs: Number(tier),
        projection: Number(mask),
        groups: [values],
        field: Number(field),
        ranges: [[Number(bucket), Number(bucket) + Number(tier)]],
      });
      return [key, count!] as const;
    }),
  );
  return new Map(counts);
}
