import closeWithGrace from 'close-with-grace';
import { buildApp } from './app';
import { ConfigError, loadConfig, redactUrl } from './config/load';
import { PREVIEW_PREFIX, previewDirs } from './http/preview';
import { createLogger, logFormat } from './observability/logger';
import { createSource } from './sources';
import { MemoryStore } from './store/memory';
import { RedisStore } from './store/redis';
import type { Store } from './store/types';
import { replicaName } from './sync/lease';
import { SyncManager } from './sync/manager';

async function main(): Promise<void> {
  const log = createLogger();
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // In a terminal the pretty log line would only repeat the lines below it.
    if (logFormat() === 'json') log.fatal(`invalid configuration:\n${err.message}`);
    console.error(`livesync: invalid configuration\n${err.message}`);
    process.exit(2);
  }

  // Secrets in the configuration are redacted by the logger, at every level.
  log.debug({ config }, 'configuration loaded');
  const store: Store = config.redis
    ? await RedisStore.connect(config.redis.url, config.redis.prefix)
    : new MemoryStore();
  const sync = new SyncManager(config.datasets, createSource, store, log.child({ module: 'sync' }), {
    lease: { holder: replicaName(), ttlMs: config.lease?.ttlMs },
  });
  const preview = previewDirs(config);
  const app = await buildApp({ config, store, sync, logger: log, preview });

  closeWithGrace({ delay: 10_000, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error');
    else log.info({ signal }, 'shutting down');
    await app.close();
  });

  const address = await app.listen({ host: config.server.host, port: config.server.port });
  log.info(
    {
      store: config.redis ? { kind: 'redis', url: redactUrl(config.redis.url) } : { kind: 'memory' },
      datasets: config.datasets.map((d) => `${d.name} (${d.source.kind})`),
      config: config.source,
    },
    `LiveSync listening on ${address}`,
  );
  if (preview) log.info(`Preview (the plugin without a Grafana server): ${address}${PREVIEW_PREFIX}/`);
}

main().catch((err: unknown) => {
  console.error('livesync: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
