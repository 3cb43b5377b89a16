import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { buildApp } from '../../src/app';
import type { Config } from '../../src/config/load';
import { previewDirs } from '../../src/http/preview';
import { MemoryStore } from '../../src/store/memory';
import { SyncManager } from '../../src/sync/manager';
import { datasetSpec } from '../helpers';
import { ArraySource } from '../sync/array-source';

/** The service's side of the preview: when it is served, and what it hands the preview's server half. */

// A stand-in for preview/dist/server.cjs: answers with the options the service gave it.
const SERVER_STUB = `
exports.previewPlugin = async function (app, options) {
  app.get('/options', async () => ({
    prefix: options.prefix,
    publicDir: options.publicDir,
    pluginDir: options.pluginDir,
    serviceUrl: options.serviceUrl(),
    live: options.live ? { streamId: options.live.streamId, token: await options.live.token() } : null,
  }));
};
`;

function config(
  overrides: Partial<Config['server']> = {},
  grafanaLive: Config['grafanaLive'] = null,
): Config {
  return {
    server: { host: '127.0.0.1', port: 0, apiKey: '', rateLimitPerMinute: 0, ...overrides },
    redis: null,
    grafanaLive,
    datasets: [datasetSpec()],
    source: 'test',
  };
}

describe('the preview, as the service serves it', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'livesync-preview-test-'));
    await mkdir(path.join(root, 'preview', 'dist'), { recursive: true });
    await mkdir(path.join(root, 'plugin', 'dist'), { recursive: true });
    await writeFile(path.join(root, 'preview', 'dist', 'server.cjs'), SERVER_STUB);
    await writeFile(path.join(root, 'plugin', 'dist', 'plugin.json'), '{}');
  });
  afterAll(async () => rm(root, { recursive: true, force: true }));

  it('is served when built, unless turned off', () => {
    expect(previewDirs(config(), {}, root)).toEqual({
      dir: path.join(root, 'preview', 'dist'),
      pluginDir: path.join(root, 'plugin', 'dist'),
    });
    expect(previewDirs(config(), { LIVESYNC_PREVIEW: 'off' }, root)).toBeNull();
    expect(previewDirs(config(), {}, path.join(root, 'nothing-built'))).toBeNull();
  });

  it('is off with an API key unless asked for: its proxy would hand the key to anyone', () => {
    expect(previewDirs(config({ apiKey: 'k' }), {}, root)).toBeNull();
    expect(previewDirs(config({ apiKey: 'k' }), { LIVESYNC_PREVIEW: 'on' }, root)).not.toBeNull();
  });

  it('redirects / to /preview/ and gives the preview its paths, the service URL and the Live token', async () => {
    const spec = datasetSpec();
    const store = new MemoryStore();
    const logger = pino({ level: 'silent' });
    const conf = config(
      { apiKey: 'k' },
      { url: 'http://127.0.0.1/preview', token: 't0k', streamId: 'livesync' },
    );
    const app = await buildApp({
      config: conf,
      store,
      sync: new SyncManager([spec], () => new ArraySource(), store, logger),
      logger,
      startSync: false,
      preview: previewDirs(conf, { LIVESYNC_PREVIEW: 'on' }, root),
    });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const port = (app.server.address() as { port: number }).port;
      const home = await app.inject({ method: 'GET', url: '/' });
      expect(home.statusCode).toBe(302);
      expect(home.headers.location).toBe('/preview/');
      // Under /preview/ rather than /api/: the service's API key does not apply to the preview's own routes.
      const options = await app.inject({ method: 'GET', url: '/preview/options' });
      expect(options.statusCode).toBe(200);
      expect(options.json()).toEqual({
        prefix: '/preview',
        publicDir: path.join(root, 'preview', 'dist', 'public'),
        pluginDir: path.join(root, 'plugin', 'dist'),
        serviceUrl: `http://127.0.0.1:${port}`,
        live: { streamId: 'livesync', token: 't0k' },
      });
      expect((await app.inject({ method: 'GET', url: '/api/datasets' })).statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });
});
