import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** The parts of a built plugin.json the preview uses. */
export interface PluginJson {
  id: string;
  name: string;
  type: string;
  info: { version: string; logos: { small: string; large: string }; [key: string]: unknown };
  routes?: PluginRoute[];
  [key: string]: unknown;
}

/** A plugin.json route, as Grafana's data-source proxy applies it. */
export interface PluginRoute {
  path: string;
  method?: string;
  url?: string;
  headers?: Array<{ name: string; content: string }>;
  urlParams?: Array<{ name: string; content: string }>;
  reqRole?: string;
}

/** A data source as Grafana stores it: secrets in plain text here, encrypted at rest in Grafana. */
export interface StoredDataSource {
  id: number;
  uid: string;
  orgId: number;
  name: string;
  type: string;
  access: 'proxy';
  url: string;
  user: string;
  database: string;
  basicAuth: boolean;
  basicAuthUser: string;
  withCredentials: boolean;
  isDefault: boolean;
  jsonData: Record<string, unknown>;
  secureJsonData: Record<string, string>;
  readOnly: boolean;
  version: number;
}

export async function readPluginJson(pluginDir: string): Promise<PluginJson> {
  return JSON.parse(await readFile(path.join(pluginDir, 'plugin.json'), 'utf8')) as PluginJson;
}

/**
 * Grafana's data-source settings API for the preview's data sources, with Grafana's rules for
 * secrets: `secureJsonData` is write-only (a key sent replaces the stored one, a key not sent is
 * kept), and what the browser gets back is `secureJsonFields`, true for each key with a value.
 * A `version` older than the stored one is refused (409), as Grafana refuses a stale update.
 */
export class DataSourceStore {
  private readonly byUid = new Map<string, StoredDataSource>();

  add(ds: StoredDataSource): void {
    this.byUid.set(ds.uid, ds);
  }

  get(uid: string): StoredDataSource | undefined {
    return this.byUid.get(uid);
  }

  all(): StoredDataSource[] {
    return [...this.byUid.values()];
  }

  /** `PUT /api/datasources/uid/:uid`. */
  update(uid: string, body: unknown): { status: number; body: unknown } {
    const stored = this.byUid.get(uid);
    if (!stored) return { status: 404, body: { message: 'Data source not found' } };
    if (!body || typeof body !== 'object') return { status: 400, body: { message: 'bad request data' } };
    const input = body as Partial<StoredDataSource> & { secureJsonData?: Record<string, unknown> };
    if (stored.readOnly) return { status: 403, body: { message: 'Cannot update read-only data source' } };
    if (typeof input.version === 'number' && input.version < stored.version) {
      return {
        status: 409,
        body: { message: 'Datasource has already been updated by someone else. Please reload and try again' },
      };
    }
    if (input.jsonData !== undefined && (typeof input.jsonData !== 'object' || input.jsonData === null)) {
      return { status: 400, body: { message: 'jsonData must be an object' } };
    }
    const secure = { ...stored.secureJsonData };
    for (const [key, value] of Object.entries(input.secureJsonData ?? {})) {
      if (typeof value === 'string') secure[key] = value;
    }
    const next: StoredDataSource = {
      ...stored,
      name: typeof input.name === 'string' && input.name ? input.name : stored.name,
      url: typeof input.url === 'string' ? input.url : stored.url,
      isDefault: typeof input.isDefault === 'boolean' ? input.isDefault : stored.isDefault,
      jsonData: (input.jsonData as Record<string, unknown> | undefined) ?? stored.jsonData,
      secureJsonData: secure,
      version: stored.version + 1,
    };
    this.byUid.set(uid, next);
    return {
      status: 200,
      body: { datasource: settingsDto(next), id: next.id, name: next.name, message: 'Datasource updated' },
    };
  }
}

/** What `GET /api/datasources/uid/:uid` answers: everything but the secrets, which become `secureJsonFields`. */
export function settingsDto(ds: StoredDataSource, plugin?: PluginJson) {
  const { secureJsonData, ...rest } = ds;
  return {
    ...rest,
    typeName: plugin?.name ?? ds.type,
    typeLogoUrl: plugin ? `public/plugins/${plugin.id}/${plugin.info.logos.small}` : '',
    secureJsonFields: Object.fromEntries(
      Object.entries(secureJsonData)
        .filter(([, value]) => value !== '')
        .map(([key]) => [key, true]),
    ),
  };
}

/** The plugin's meta as Grafana's frontend settings carry it: module and logo paths under public/plugins/<id>/. */
export function pluginMeta(plugin: PluginJson) {
  const baseUrl = `public/plugins/${plugin.id}`;
  const { routes: _routes, ...json } = plugin;
  return {
    ...json,
    baseUrl,
    module: `${baseUrl}/module.js`,
    info: {
      ...plugin.info,
      logos: {
        small: `${baseUrl}/${plugin.info.logos.small}`,
        large: `${baseUrl}/${plugin.info.logos.large}`,
      },
    },
    signature: 'unsigned',
  };
}

/**
 * A data source in the frontend settings (boot data and `/api/frontend/settings`): a proxy data
 * source's `url` is the proxy path, never the upstream URL; jsonData is visible to every viewer.
 */
export function instanceSettings(ds: StoredDataSource, plugin: PluginJson) {
  return {
    id: ds.id,
    uid: ds.uid,
    type: ds.type,
    name: ds.name,
    meta: pluginMeta(plugin),
    url: `/api/datasources/proxy/uid/${ds.uid}`,
    isDefault: ds.isDefault,
    access: ds.access,
    jsonData: ds.jsonData,
    readOnly: ds.readOnly,
  };
}
