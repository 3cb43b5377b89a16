import type { SourceConfig } from '../../src/config/schema';
import { DemoSource } from '../../src/sources/demo';
import { HttpSource } from '../../src/sources/http';
import { createSource } from '../../src/sources/index';
import { PostgresSource } from '../../src/sources/postgres';
import { PG_URL, specFor } from './helpers';

const configs: Record<string, SourceConfig> = {
  postgres: {
    kind: 'postgres',
    url: PG_URL,
    table: 'events',
    id: 'id',
    time: 'time',
    cursor: 'updated_at',
    poolSize: 1,
    statementTimeout: '5s',
  },
  http: {
    kind: 'http',
    url: 'http://127.0.0.1:1/events',
    cursorParam: 'since',
    limitParam: 'limit',
    recordsPath: 'records',
    pagination: { kind: 'page', pageParam: 'page' },
    fields: {},
    headers: {},
    timeout: '1s',
    id: 'id',
    time: 'time',
    cursor: 'cursor',
  },
  demo: { kind: 'demo', rate: 1, history: '1m', updateRatio: 0, deleteRatio: 0, seed: 1 },
};

describe('createSource', () => {
  it.each([
    ['postgres', PostgresSource],
    ['http', HttpSource],
    ['demo', DemoSource],
  ] as const)('builds a %s source', async (kind, type) => {
    const source = createSource(specFor(configs[kind]!));
    expect(source).toBeInstanceOf(type);
    expect(source.kind).toBe(kind);
    await source.close();
  });

  it('refuses an unknown kind', () => {
    const spec = specFor({ kind: 'ftp' } as unknown as SourceConfig);
    expect(() => createSource(spec)).toThrow('datasets.events.source: unknown kind "ftp"');
  });
});
