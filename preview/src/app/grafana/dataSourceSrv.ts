import {
  type DataSourceApi,
  type DataSourceInstanceSettings,
  type DataSourcePlugin,
  type DataSourcePluginMeta,
  type DataSourceRef,
  type ScopedVars,
} from '@grafana/data';
import {
  type BackendSrv,
  type DataSourceSrv,
  type GetDataSourceListFilters,
  type RuntimeDataSourceRegistration,
  config,
  getTemplateSrv,
} from '@grafana/runtime';
import type { AmdRegistry } from '../../amd/registry';

// The plugin's own generic parameters are unknown here, as they are to Grafana.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDataSourcePlugin = DataSourcePlugin<DataSourceApi<any, any>, any, any, any>;

/**
 * Loads a data-source plugin's module the way Grafana's plugin loader does: through the AMD
 * loader at `meta.module` (public/plugins/<id>/module.js), expecting a `plugin` export, to which
 * the plugin's meta is attached.
 */
export async function importDataSourcePlugin(
  registry: AmdRegistry,
  meta: DataSourcePluginMeta,
): Promise<AnyDataSourcePlugin> {
  const exports = (await registry.load(meta.module)) as { plugin?: AnyDataSourcePlugin } | undefined;
  const plugin = exports?.plugin;
  if (!plugin) throw new Error('Plugin module is missing DataSourcePlugin or Datasource constructor export');
  plugin.meta = meta;
  return plugin;
}

/**
 * Grafana's DatasourceSrv: instance settings come from the boot data's `datasources` (and from
 * `/api/frontend/settings` after a reload, as after "Save & test"); `get` resolves a name, a uid,
 * a `{uid}` ref or a `$variable`, imports the plugin once and keeps one instance per data source
 * until the next reload, with the plugin's components attached as Grafana attaches them.
 */
export class PreviewDataSourceSrv implements DataSourceSrv {
  private readonly instances = new Map<string, Promise<DataSourceApi>>();
  private readonly plugins = new Map<string, Promise<AnyDataSourcePlugin>>();

  constructor(
    private readonly registry: AmdRegistry,
    private readonly backendSrv: BackendSrv,
  ) {}

  getList(filters: GetDataSourceListFilters = {}): DataSourceInstanceSettings[] {
    return Object.values(config.datasources).filter((ds) => {
      if (filters.pluginId && ds.meta.id !== filters.pluginId) return false;
      if (filters.metrics && !ds.meta.metrics) return false;
      if (filters.annotations && !ds.meta.annotations) return false;
      if (filters.type && ![filters.type].flat().includes(ds.type)) return false;
      return filters.filter ? filters.filter(ds) : true;
    });
  }

  getInstanceSettings(
    ref?: DataSourceRef | string | null,
    scopedVars?: ScopedVars,
  ): DataSourceInstanceSettings | undefined {
    const all = Object.values(config.datasources);
    if (ref === null || ref === undefined) return all.find((ds) => ds.isDefault) ?? all[0];
    let key = typeof ref === 'string' ? ref : (ref.uid ?? '');
    if (key.startsWith('$') || key.startsWith('${')) key = getTemplateSrv().replace(key, scopedVars);
    return all.find((ds) => ds.uid === key || ds.name === key);
  }

  async get(ref?: DataSourceRef | string | null, scopedVars?: ScopedVars): Promise<DataSourceApi> {
    const settings = this.getInstanceSettings(ref, scopedVars);
    if (!settings) throw new Error(`Datasource ${JSON.stringify(ref)} was not found`);
    let instance = this.instances.get(settings.uid);
    if (!instance) {
      instance = this.load(settings);
      this.instances.set(settings.uid, instance);
      instance.catch(() => this.instances.delete(settings.uid));
    }
    return instance;
  }

  /** The loaded plugin (for its config and query editors), imported once per page. */
  plugin(meta: DataSourcePluginMeta): Promise<AnyDataSourcePlugin> {
    let plugin = this.plugins.get(meta.id);
    if (!plugin) {
      plugin = importDataSourcePlugin(this.registry, meta);
      this.plugins.set(meta.id, plugin);
      plugin.catch(() => this.plugins.delete(meta.id));
    }
    return plugin;
  }

  async reload(): Promise<void> {
    const settings = await this.backendSrv.get<{ datasources: Record<string, DataSourceInstanceSettings> }>(
      '/api/frontend/settings',
    );
    config.datasources = settings.datasources;
    this.instances.clear();
  }

  registerRuntimeDataSource(_entry: RuntimeDataSourceRegistration): void {
    throw new Error('Runtime data sources are not supported by the LiveSync preview');
  }

  private async load(settings: DataSourceInstanceSettings): Promise<DataSourceApi> {
    const plugin = await this.plugin(settings.meta);
    const instance = new plugin.DataSourceClass(settings);
    instance.components = plugin.components;
    return instance;
  }
}
