import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Config } from '../config/load';

/** Where the builds are: preview/dist (the preview's scripts and its server half) and plugin/dist. */
export interface PreviewDirs {
  dir: string;
  pluginDir: string;
}

/** The URL path the preview is served from; `/` redirects there. */
export const PREVIEW_PREFIX = '/preview';

/** The options the preview's server half (preview/server/index.ts) takes. */
interface PreviewPluginOptions {
  publicDir: string;
  pluginDir: string;
  prefix: string;
  serviceUrl: () => string;
  live?: { token: () => Promise<string | undefined>; streamId: string };
}

/**
 * Whether to serve the preview, and from where. It is served when `npm run build` has built it
 * (preview/dist/server.cjs and plugin/dist/plugin.json beside this checkout) unless
 * `LIVESYNC_PREVIEW=off`. With an API key configured it is off unless `LIVESYNC_PREVIEW=on`: its
 * data-source proxy would let anyone who reaches the port use the key saved in its settings.
 */
export function previewDirs(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
  root = path.resolve(__dirname, '..', '..', '..'),
): PreviewDirs | null {
  const mode = env['LIVESYNC_PREVIEW'];
  if (mode === 'off') return null;
  if (config.server.apiKey && mode !== 'on') return null;
  const dirs = { dir: path.join(root, 'preview', 'dist'), pluginDir: path.join(root, 'plugin', 'dist') };
  const built =
    existsSync(path.join(dirs.dir, 'server.cjs')) && existsSync(path.join(dirs.pluginDir, 'plugin.json'));
  return built ? dirs : null;
}

/**
 * Serves the preview (the built plugin in a page that stands in for Grafana, see preview/README.md)
 * under /preview/, and redirects / there. Its server half is loaded from the build at run time,
 * so the service never depends on the preview's code: without a build there is nothing to serve.
 */
export function previewRoutes(dirs: PreviewDirs): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const load = createRequire(__filename);
    const loaded = load(path.join(dirs.dir, 'server.cjs')) as {
      previewPlugin: FastifyPluginAsync<PreviewPluginOptions>;
    };
    const { config } = app;
    const live = config.grafanaLive;
    const options: PreviewPluginOptions = {
      publicDir: path.join(dirs.dir, 'public'),
      pluginDir: dirs.pluginDir,
      prefix: PREVIEW_PREFIX,
      serviceUrl: () => serviceUrl(app, config.server.host),
      ...(live
        ? {
            live: {
              streamId: live.streamId,
              token: async () =>
                live.token ?? (live.tokenFile ? (await readFile(live.tokenFile, 'utf8')).trim() : undefined),
            },
          }
        : {}),
    };
    app.get('/', async (_request, reply) => reply.redirect(`${PREVIEW_PREFIX}/`));
    await app.register(loaded.previewPlugin, { ...options, prefix: PREVIEW_PREFIX });
  };
}

/** The service's own root URL, as the preview's proxy reaches it. */
function serviceUrl(app: FastifyInstance, host: string): string {
  const address = app.server.address() as AddressInfo | null;
  const port = address?.port ?? 0;
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}
