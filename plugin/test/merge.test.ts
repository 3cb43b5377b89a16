import { type DataFrame, FieldType, createDataFrame } from '@grafana/data';
import { mergeTouched, seriesKey } from '../src/live/merge';

const M = 60_000;
const T0 = 1_750_000_000_000 - (1_750_000_000_000 % M);
const at = (minute: number) => T0 + minute * M;

type Labels = Record<string, string> | undefined;

/** A time series frame as the data source builds it: time, then one field per aggregation. */
function series(labels: Labels, rows: Array<[number, ...Array<number | null>]>, aggs = ['count']): DataFrame {
  return createDataFrame({
    refId: 'A',
    meta: { custom: { stepMs: M, lastSyncAt: T0 } },
    fields: [
      { name: 'time', type: FieldType.time, values: rows.map((r) => at(r[0])) },
      ...aggs.map((name, i) => ({
        name,
        type: FieldType.number,
        labels,
        config: name === 'count' ? { unit: 'short' } : {},
        values: rows.map((r) => r[i + 1] ?? null),
      })),
    ],
  });
}

/** [minute, ...values] rows of a frame, for compact assertions. */
const rowsOf = (frame: DataFrame) =>
  Array.from({ length: frame.length }, (_, i) => [
    (frame.fields[0]!.values[i] - T0) / M,
    ...frame.fields.slice(1).map((f) => f.values[i]),
  ]);

const labelsOf = (frame: DataFrame) => frame.fields[1]?.labels;

const FR = { country: 'FR' };
const DE = { country: 'DE' };
const US = { country: 'US' };

describe('mergeTouched', () => {
  it('replaces the touched steps of a series and keeps its rows outside them', () => {
    const current = [
      series(FR, [
        [0, 1],
        [1, 2],
        [2, 3],
        [3, 4],
      ]),
    ];
    const touched = [
      series(FR, [
        [1, 20],
        [2, 30],
      ]),
    ];
    const [merged, ...more] = mergeTouched(current, touched, { from: at(1), to: at(3) });

    expect(more).toEqual([]);
    expect(rowsOf(merged!)).toEqual([
      [0, 1],
      [1, 20],
      [2, 30],
      [3, 4],
    ]);
    expect(merged!.length).toBe(4);
    expect(labelsOf(merged!)).toEqual(FR);
  });

  it('removes rows of touched steps the answer no longer has (all their records were deleted)', () => {
    const current = [
      series(FR, [
        [0, 1],
        [1, 2],
        [2, 3],
      ]),
    ];
    const touched = [series(FR, [[2, 5]])];

    expect(rowsOf(mergeTouched(current, touched, { from: at(1), to: at(3) })[0]!)).toEqual([
      [0, 1],
      [2, 5],
    ]);
  });

  it('adds rows for steps that had none, in time order', () => {
    const current = [
      series(FR, [
        [0, 1],
        [4, 5],
      ]),
    ];
    const touched = [
      series(FR, [
        [2, 3],
        [3, 4],
      ]),
    ];

    expect(rowsOf(mergeTouched(current, touched, { from: at(1), to: at(4) })[0]!)).toEqual([
      [0, 1],
      [2, 3],
      [3, 4],
      [4, 5],
    ]);
  });

  it('matches series by labels, whatever their order in either answer', () => {
    const current = [series(DE, [[0, 1]]), series(FR, [[0, 2]])];
    const touched = [series(FR, [[0, 20]]), series(DE, [[0, 10]])];
    const merged = mergeTouched(current, touched, { from: at(0), to: at(1) });

    expect(merged.map((f) => [labelsOf(f), rowsOf(f)])).toEqual([
      [DE, [[0, 10]]],
      [FR, [[0, 20]]],
    ]);
  });

  it('appends a series that appears in the touched steps, after the known ones', () => {
    const current = [
      series(DE, [
        [0, 1],
        [1, 1],
      ]),
    ];
    const touched = [series(DE, [[1, 2]]), series(US, [[1, 7]])];
    const merged = mergeTouched(current, touched, { from: at(1), to: at(2) });

    expect(merged.map((f) => [labelsOf(f), rowsOf(f)])).toEqual([
      [
        DE,
        [
          [0, 1],
          [1, 2],
        ],
      ],
      [US, [[1, 7]]],
    ]);
  });

  it('takes from a new series only its rows inside the touched steps', () => {
    const touched = [
      series(US, [
        [0, 1],
        [1, 2],
        [5, 3],
      ]),
    ];
    const [merged] = mergeTouched([], touched, { from: at(1), to: at(2) });
    expect(rowsOf(merged!)).toEqual([[1, 2]]);
  });

  it('empties the touched steps of a series the answer lacks, and keeps its other rows', () => {
    const current = [
      series(FR, [
        [0, 1],
        [1, 1],
      ]),
      series(DE, [
        [0, 5],
        [1, 6],
      ]),
    ];
    const touched = [series(FR, [[1, 2]])];
    const merged = mergeTouched(current, touched, { from: at(1), to: at(2) });

    expect(merged.map((f) => [labelsOf(f), rowsOf(f)])).toEqual([
      [
        FR,
        [
          [0, 1],
          [1, 2],
        ],
      ],
      [DE, [[0, 5]]],
    ]);
  });

  it('drops a series left without rows', () => {
    const current = [series(FR, [[0, 1]]), series(DE, [[1, 6]])];
    const merged = mergeTouched(current, [series(FR, [[1, 2]])], { from: at(1), to: at(2) });
    expect(merged.map(labelsOf)).toEqual([FR]);
  });

  it('keeps one empty frame when every series is gone, so the panel says No data', () => {
    const current = [series(FR, [[1, 1]])];
    const empty = series(undefined, []);
    const merged = mergeTouched(current, [empty], { from: at(0), to: at(5) });

    expect(merged).toHaveLength(1);
    expect(merged[0]!.length).toBe(0);
    expect(merged[0]!.fields.map((f) => f.values)).toEqual([[], []]);
  });

  it("ignores the service's empty placeholder frame next to real series", () => {
    const current = [series(FR, [[0, 1]])];
    const merged = mergeTouched(current, [series(undefined, []), series(FR, [[1, 2]])], {
      from: at(1),
      to: at(2),
    });
    expect(merged.map((f) => [labelsOf(f), rowsOf(f)])).toEqual([
      [
        FR,
        [
          [0, 1],
          [1, 2],
        ],
      ],
    ]);
  });

  it('drops rows before the moving window start', () => {
    const current = [
      series(FR, [
        [0, 1],
        [1, 2],
        [2, 3],
      ]),
    ];
    const touched = [series(FR, [[3, 4]])];
    const [merged] = mergeTouched(current, touched, { from: at(3), to: at(4) }, at(1));
    expect(rowsOf(merged!)).toEqual([
      [1, 2],
      [2, 3],
      [3, 4],
    ]);
  });

  it('merges every aggregation of a series, nulls included', () => {
    const aggs = ['count', 'sum(amount)'];
    const current = [
      series(
        FR,
        [
          [0, 1, 10],
          [1, 2, 20],
        ],
        aggs,
      ),
    ];
    const touched = [series(FR, [[1, 3, null]], aggs)];
    const [merged] = mergeTouched(current, touched, { from: at(1), to: at(2) });
    expect(rowsOf(merged!)).toEqual([
      [0, 1, 10],
      [1, 3, null],
    ]);
  });

  it('merges a table-format frame by time, keeping the groups of one time in their order', () => {
    const table = (rows: Array<[number, string, number]>) =>
      createDataFrame({
        refId: 'A',
        fields: [
          { name: 'time', type: FieldType.time, values: rows.map((r) => at(r[0])) },
          { name: 'country', type: FieldType.string, values: rows.map((r) => r[1]) },
          { name: 'count', type: FieldType.number, values: rows.map((r) => r[2]) },
        ],
      });
    const current = [
      table([
        [0, 'DE', 1],
        [0, 'FR', 2],
        [1, 'DE', 3],
        [1, 'FR', 4],
        [2, 'FR', 5],
      ]),
    ];
    const touched = [
      table([
        [1, 'FR', 40],
        [1, 'US', 9],
      ]),
    ];
    const [merged] = mergeTouched(current, touched, { from: at(1), to: at(2) });
    expect(
      Array.from({ length: merged!.length }, (_, i) => merged!.fields.map((f) => f.values[i])).map(
        ([t, ...rest]) => [(t - T0) / M, ...rest],
      ),
    ).toEqual([
      [0, 'DE', 1],
      [0, 'FR', 2],
      [1, 'FR', 40],
      [1, 'US', 9],
      [2, 'FR', 5],
    ]);
  });

  it("takes the touched answer's meta (fresher freshness), keeps field config, and leaves the inputs alone", () => {
    const current = [series(FR, [[0, 1]])];
    current[0]!.meta = {
      custom: { stepMs: M, lastSyncAt: T0 },
      notices: [{ severity: 'warning', text: 'stale' }],
    };
    current[0]!.fields[1]!.state = { displayName: 'cached' };
    const touched = [series(FR, [[1, 2]])];
    touched[0]!.meta = { custom: { stepMs: M, lastSyncAt: T0 + M } };
    const before = JSON.stringify(current);

    const [merged] = mergeTouched(current, touched, { from: at(1), to: at(2) });

    expect(merged!.meta).toEqual({ custom: { stepMs: M, lastSyncAt: T0 + M } });
    expect(merged!.refId).toBe('A');
    expect(merged!.fields[1]!.config).toEqual({ unit: 'short' });
    // Grafana's display caches belong to the old values.
    expect(merged!.fields[1]!.state).toBeUndefined();
    expect(JSON.stringify(current)).toBe(before);
    expect(merged).not.toBe(current[0]);
  });

  it('keeps every row outside the touched steps when the answer is empty', () => {
    const current = [
      series(FR, [
        [0, 1],
        [5, 2],
      ]),
    ];
    expect(rowsOf(mergeTouched(current, [], { from: at(1), to: at(4) })[0]!)).toEqual([
      [0, 1],
      [5, 2],
    ]);
  });
});

describe('seriesKey', () => {
  it('names a series by its value fields and labels, in any label order', () => {
    const a = series({ country: 'FR', device: 'ios' }, []);
    const b = series({ device: 'ios', country: 'FR' }, []);
    expect(seriesKey(a)).toBe(seriesKey(b));
    expect(seriesKey(a)).not.toBe(seriesKey(series({ country: 'FR', device: 'web' }, [])));
    expect(seriesKey(series(FR, [], ['count']))).not.toBe(seriesKey(series(FR, [], ['sum(amount)'])));
  });
});
