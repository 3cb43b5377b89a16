import { configFiles, loadFile, problemsOf } from './helpers';

const files = configFiles();
afterAll(() => files.cleanup());

/** A config with one http dataset: its source keys, then its sync keys. */
function http(source: string, sync = ''): string {
  return files.write(`
datasets:
  - name: orders
    source: { kind: http, url: "https://api.test/orders", id: id, time: t, cursor: c, ${source} }
    ${sync === '' ? '' : `sync: { ${sync} }`}
`);
}

describe('http source shapes at start-up', () => {
  it('refuses a shape that cannot read past a tie larger than a batch, saying what would', () => {
    expect(problemsOf(http('pagination: { kind: none }'))).toEqual([
      'datasets[0].source.pagination: kind none with no idParam cannot read past more records sharing one ' +
        'cursor value than one batch holds: set source.idParam (the query parameter for the id to continue ' +
        'after), or use pagination page, offset, cursor or link',
    ]);
    // The default pagination is none.
    expect(problemsOf(http('cursorType: timestamp'))).toHaveLength(1);
    expect(loadFile(http('pagination: { kind: none }, idParam: after_id')).datasets[0]?.source).toMatchObject(
      {
        idParam: 'after_id',
      },
    );
  });

  it('refuses lag and lookback on a number cursor, which no duration moves back', () => {
    expect(
      problemsOf(http('cursorType: number, pagination: { kind: link }', 'lag: 2s, lookback: 0s')),
    ).toEqual([
      "datasets[0].sync.lag: must be 0s (got 2s): the source's cursorType is number, which no duration can " +
        'move back; declare epoch_s, epoch_ms, epoch_us or epoch_ns if it counts time',
    ]);
    const sequence = http('cursorType: number, pagination: { kind: link }', 'lag: 0s, lookback: 0s');
    expect(loadFile(sequence).datasets[0]?.source).toMatchObject({
      cursorType: 'number',
      pagination: { kind: 'link' },
    });
    const epoch = http('cursorType: epoch_ms, pagination: { kind: offset }');
    expect(loadFile(epoch).datasets[0]?.source).toMatchObject({
      pagination: { kind: 'offset', offsetParam: 'offset' },
    });
  });

  it('names the cursor types', () => {
    expect(problemsOf(http('cursorType: date, pagination: { kind: link }'))).toEqual([
      'datasets[0].source.cursorType: must be one of timestamp, epoch_s, epoch_ms, epoch_us, epoch_ns, number (got "date")',
    ]);
  });
});
