import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import { LIMIT_DEFAULTS } from '../../src/config/schema';

const EXAMPLE = join(__dirname, '../../livesync.example.yaml');

describe('livesync.example.yaml', () => {
  it('loads, with the variables it needs', () => {
    const config = loadConfig({
      LIVESYNC_CONFIG: EXAMPLE,
      DATABASE_URL: 'postgres://livesync:pw@db:5432/shop',
      ORDERS_API_TOKEN: 't0ken',
    });
    expect(config.server).toEqual({
      host: '127.0.0.1',
      port: 3001,
      apiKey: '',
      rateLimitPerMinute: 6000,
      limits: LIMIT_DEFAULTS,
    });
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379/0', prefix: 'livesync' });
    expect(config.datasets.map((dataset) => [dataset.name, dataset.source.kind])).toEqual([
      ['events', 'postgres'],
      ['orders', 'http'],
      ['demo', 'demo'],
    ]);
    expect(config.datasets[1]?.source).toMatchObject({ headers: { Authorization: 'Bearer t0ken' } });
  });

  it('says which variable is missing', () => {
    expect(() => loadConfig({ LIVESYNC_CONFIG: EXAMPLE, ORDERS_API_TOKEN: 't' })).toThrow(
      `${EXAMPLE}: datasets[0].source.url: environment variable DATABASE_URL is not set`,
    );
  });
});
