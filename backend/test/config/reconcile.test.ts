import { configFiles, loadFile, problemsOf } from './helpers';

const files = configFiles();
afterAll(() => files.cleanup());

const POSTGRES = `{ kind: postgres, url: postgres://app@db/shop, table: events, id: id, time: ts, cursor: updated_at }`;
const HTTP = `{ kind: http, url: http://api.example/events, pagination: { kind: page }, id: id, time: ts, cursor: updatedAt }`;

function dataset(source: string, sync = ''): string {
  return `datasets:\n  - name: events\n    source: ${source}\n${sync === '' ? '' : `    sync: ${sync}\n`}`;
}

describe('sync.reconcile', () => {
  it('is on every hour for postgres and off for http and demo by default', () => {
    const reconcileOf = (text: string) => loadFile(files.write(text)).datasets[0]!.sync.reconcile;
    expect(reconcileOf(dataset(POSTGRES))).toEqual({ everyMs: 3_600_000, pageSize: 1000, perRun: 10_000 });
    expect(reconcileOf(dataset(HTTP)).everyMs).toBeNull();
    expect(reconcileOf(dataset('{ kind: demo }')).everyMs).toBeNull();
    // Change data capture reads deletes from the replication stream.
    expect(reconcileOf(dataset(`${POSTGRES.slice(0, -1)}, mode: cdc }`)).everyMs).toBeNull();
  });

  it('is refused for mode: cdc, which sees deletes itself', () => {
    expect(
      problemsOf(
        files.write(dataset(`${POSTGRES.slice(0, -1)}, mode: cdc }`, '{ reconcile: { every: 1h } }')),
      ),
    ).toEqual([
      'datasets[0].sync.reconcile.every: mode: cdc reads deletes from the replication stream itself: set every: off',
    ]);
  });

  it('takes every, pageSize and perRun; off turns it off', () => {
    const reconcileOf = (text: string) => loadFile(files.write(text)).datasets[0]!.sync.reconcile;
    expect(
      reconcileOf(dataset(POSTGRES, '{ reconcile: { every: 10m, pageSize: 200, perRun: 2000 } }')),
    ).toEqual({
      everyMs: 600_000,
      pageSize: 200,
      perRun: 2000,
    });
    expect(reconcileOf(dataset(POSTGRES, '{ reconcile: { every: off } }')).everyMs).toBeNull();
    const http = `${HTTP.slice(0, -1)}, idFilterParam: id }`;
    expect(reconcileOf(dataset(http, '{ reconcile: { every: 1h } }')).everyMs).toBe(3_600_000);
  });

  it('refuses to start when a pass is asked for and cannot be done, saying why', () => {
    expect(problemsOf(files.write(dataset(HTTP, '{ reconcile: { every: 1h } }')))).toEqual([
      'datasets[0].sync.reconcile.every: needs source.idFilterParam, the query parameter the API filters records by id with ' +
        '(GET …?id=1&id=2 must answer exactly those that exist): without it deletes cannot be found; or set every: off',
    ]);
    expect(problemsOf(files.write(dataset('{ kind: demo }', '{ reconcile: { every: 1h } }')))).toEqual([
      'datasets[0].sync.reconcile.every: the demo source reports its deletes itself: set every: off',
    ]);
    expect(
      problemsOf(files.write(dataset(POSTGRES, '{ reconcile: { every: sometimes, pageSize: 0 } }'))),
    ).toEqual([
      'datasets[0].sync.reconcile.every: must be a duration like 30m, 1h, or off (got "sometimes")',
      'datasets[0].sync.reconcile.pageSize: must be at least 1 (got 0)',
    ]);
    expect(problemsOf(files.write(dataset(POSTGRES, '{ reconcile: { every: 0s } }')))).toEqual([
      'datasets[0].sync.reconcile.every: must be longer than 0, or off',
    ]);
  });
});
