import { CELL, projectionDimensions, type DatasetSpec } from '../../src/config/dataset';
import type { SourceRecord } from '../../src/sources/types';

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
        const group = projectionDimensions(mask, spec.dimensions.length)
          .map((i) => r.dims[i] ?? '\0')
          .join('\x1f');
        const key = `${tier}|${mask}|${group}|${bucket}`;
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
