import type { FastifyInstance, FastifyReply } from 'fastify';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  DataSourceStore,
  type PluginJson,
  type StoredDataSource,
  instanceSettings,
  readPluginJson,
  settingsDto,
} from './datasources';
import { openDataSourceStream, registerBackendApi } from './backendApi';
import { GrafanaHost, pluginBinary } from './host';
import { registerLive } from './live';
import { indexHtml } from './page';
import { registerProxy } from './proxy';

/** What the service hands the preview when it serves it (see backend/src/http/preview.ts). */
export interface PreviewOptions {
  /** preview/dist/public: the page's scripts. */
  publicDir: string;
  /** plugin/dist: the built plugin, served as Grafana serves plugins, its plugin.json's routes applied by the proxy. */
  pluginDir: string;
  /** The URL path the preview is served from, e.g. `/preview`: Grafana served from a sub path. */
  prefix: string;
  /** The service's root URL as this server reaches it: the data source's `url` to begin with. */
  serviceUrl: () => string;
  /** Grafana Live, when the service pushes to this preview: the token it pushes with, its stream id. */
  live?: { token: () => Promise<string | undefined>; streamId: string };
}

const GRAFANA_VERSION: string = process.env['PREVIEW_GRAFANA_VERSION'] ?? '13.1.1';

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.md': 'text/markdown; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/**
 * The preview's server half, a Fastify plugin registered under `prefix`: the page (with
 * Grafana's boot data), its scripts, the built plugin under public/plugins/<id>/, and the parts
 * of Grafana's HTTP API a data-source plugin meets: frontend settings, data-source settings,
 * the data-source proxy, the backend plugin's API (/api/ds/query, health, resources, ds/ Live
 * channels: answered by the plugin's built binary through grafana-host) and Grafana Live.
 */
export async function previewPlugin(app: FastifyInstance, options: PreviewOptions): Promise<void> {
  const plugin = await readPluginJson(options.pluginDir);
  // Seeded on first use: the service's own URL is known once it listens.
  let seeded: DataSourceStore | undefined;
  const dataSources = () => {
    if (!seeded) {
      seeded = new DataSourceStore();
      seeded.add(initialDataSource(plugin, options));
    }
    return seeded;
  };

  const frontendDataSources = async () => {
    const current = await readPluginJson(options.pluginDir).catch(() => plugin);
    return Object.fromEntries(
      dataSources()
        .all()
        .map((ds) => [ds.name, instanceSettings(ds, current)]),
    );
  };

  app.get('/', async (request, reply) => {
    const host = request.headers.host ?? '127.0.0.1';
    const query = request.query as { theme?: string; live?: string };
    const theme = query.theme === 'light' ? 'light' : 'dark';
    // Live runs (the plugin's ds/ streams need nothing from the service); `?live=off` runs the
    // page as a Grafana without Live, so plugins take their fallback path.
    const liveEnabled = query.live !== 'off';
    const html = indexHtml({
      prefix: options.prefix,
      appUrl: `${request.protocol}://${host}${options.prefix}/`,
      grafanaVersion: GRAFANA_VERSION,
      datasources: await frontendDataSources(),
      defaultDatasource:
        dataSources()
          .all()
          .find((d) => d.isDefault)?.uid ?? '',
      theme,
      liveEnabled,
      logo: `public/plugins/${plugin.id}/${plugin.info.logos.small}`,
      assetVersion: String(Date.now()),
    });
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
  });

  for (const dir of ['build', 'fonts']) {
    app.get(`/public/${dir}/*`, async (request, reply) =>
      sendFile(reply, path.join(options.publicDir, dir), (request.params as { '*': string })['*']),
    );
  }
  app.get('/public/plugins/:id/*', async (request, reply) => {
    const { id, '*': file } = request.params as { id: string; '*': string };
    if (id !== plugin.id) return reply.status(404).send({ message: 'Plugin not found' });
    return sendFile(reply, options.pluginDir, file);
  });

  app.get('/api/frontend/settings', async () => ({
    datasources: await frontendDataSources(),
    defaultDatasource:
      dataSources()
        .all()
        .find((d) => d.isDefault)?.uid ?? '',
    buildInfo: { version: GRAFANA_VERSION },
  }));

  app.get('/api/datasources', async () =>
    dataSources()
      .all()
      .map((ds) => settingsDto(ds, plugin)),
  );
  app.get('/api/datasources/uid/:uid', async (request, reply) => {
    const ds = dataSources().get((request.params as { uid: string }).uid);
    if (!ds) return reply.status(404).send({ message: 'Data source not found' });
    return settingsDto(ds, plugin);
  });
  app.put('/api/datasources/uid/:uid', async (request, reply) => {
    const uid = (request.params as { uid: string }).uid;
    const result = dataSources().update(uid, request.body);
    const body = result.body as { datasource?: ReturnType<typeof settingsDto> };
    if (body.datasource) body.datasource = settingsDto(dataSources().get(uid)!, plugin);
    return reply.status(result.status).send(result.body);
  });

  // Grafana's server side of the plugin's Go backend: its built binary, over Grafana's protocol.
  const host = new GrafanaHost({
    program: path.join(options.publicDir, '..', 'grafana-host'),
    binary: pluginBinary(options.pluginDir, String(plugin['executable'] ?? '')),
  });
  app.addHook('onClose', async () => host.close());

  registerLive(app, {
    token: options.live?.token ?? (async () => undefined),
    dataSourceStream: (uid, streamPath, onPacket, onError) => {
      const ds = dataSources().get(uid);
      return ds ? openDataSourceStream(host, ds, streamPath, onPacket, onError) : undefined;
    },
  });

  await app.register(async (proxyScope) => {
    registerProxy(proxyScope, {
      store: dataSources,
      pluginDir: options.pluginDir,
      grafanaVersion: GRAFANA_VERSION,
    });
    registerBackendApi(proxyScope, { store: dataSources, host });
  });
}

/**
 * The one data source the preview starts with: LiveSync at the service's own URL, live updates
 * on (over Grafana Live when the service pushes to this preview, else over the service's own
 * server-sent events, the plugin's fallback). No API key: as in Grafana, it is typed into the config
 * editor ("Save & test"), and then kept in this process's memory only.
 */
function initialDataSource(plugin: PluginJson, options: PreviewOptions): StoredDataSource {
  return {
    id: 1,
    uid: 'livesync',
    orgId: 1,
    name: 'LiveSync',
    type: plugin.id,
    access: 'proxy',
    url: '',
    user: '',
    database: '',
    basicAuth: false,
    basicAuthUser: '',
    withCredentials: false,
    isDefault: true,
    jsonData: {
      url: options.serviceUrl(),
      liveEnabled: true,
    },
    secureJsonData: {},
    readOnly: false,
    version: 1,
  };
}

async function sendFile(reply: FastifyReply, dir: string, relative: string) {
  const file = path.resolve(dir, relative);
  if (!file.startsWith(path.resolve(dir) + path.sep)) return reply.status(404).send({ message: 'Not found' });
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return reply.status(404).send({ message: 'Not found' });
  return reply
    .type(CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream')
    .header('cache-control', 'no-cache')
    .header('content-length', info.size)
    .send(createReadStream(file));
}

export default previewPlugin;
