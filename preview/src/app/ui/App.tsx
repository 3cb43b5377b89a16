import { css } from '@emotion/css';
import {
  CoreApp,
  type DataQuery,
  type DataQueryRequest,
  type DataQueryResponse,
  type DataSourceApi,
  type DataSourceInstanceSettings,
  type GrafanaTheme2,
  LoadingState,
  type TimeRange,
  dateTime,
} from '@grafana/data';
import { config, frameToMetricFindValue } from '@grafana/runtime';
import {
  Alert,
  Combobox,
  InlineField,
  RefreshPicker,
  Stack,
  Tab,
  TabsBar,
  Text,
  TimeRangePicker,
  useStyles2,
} from '@grafana/ui';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { type Observable, lastValueFrom } from 'rxjs';
import { testIds } from '../../testIds';
import { buildDashboard, durationSeconds } from '../dashboard';
import type { AnyDataSourcePlugin } from '../grafana/dataSourceSrv';
import { nextRequestId, runRequest } from '../grafana/queryRunner';
import { queryVariable } from '../grafana/templateSrv';
import { DashboardPage } from './DashboardPage';
import { DataSourcePage } from './DataSourcePage';
import { ExplorePage } from './ExplorePage';
import { useServices } from './services';
import { type TabName, type UrlState, readUrlState, resolveRange, writeUrlState } from './state';

const REFRESH_INTERVALS = ['1s', '5s', '10s', '30s', '1m', '5m', '15m'];
const TIME_ZONE = 'browser';

interface Booted {
  settings: DataSourceInstanceSettings;
  plugin: AnyDataSourcePlugin;
  datasource: DataSourceApi;
  datasets: string[];
}

/** What the page needs before it can show anything: the data source, its plugin, and the `dataset` variable's values. */
async function bootPreview(services: ReturnType<typeof useServices>): Promise<Booted> {
  const settings = services.dataSourceSrv.getInstanceSettings(null);
  if (!settings) throw new Error('No data source is configured: the preview server provides one, LiveSync.');
  const plugin = await services.dataSourceSrv.plugin(settings.meta);
  const datasource = await services.dataSourceSrv.get(settings.uid);
  const datasets = await variableValues(datasource);
  return { settings, plugin, datasource, datasets };
}

/**
 * A query variable's values through the data source's variable support, as Grafana's variable
 * runner gets them: a DataQueryRequest with the query as target, frames to text/value pairs.
 */
async function variableValues(datasource: DataSourceApi): Promise<string[]> {
  const support = datasource.variables as
    { query?: (request: DataQueryRequest) => Observable<DataQueryResponse> } | undefined;
  const variableQuery = support?.query?.bind(support);
  if (!variableQuery) return [];
  const range = resolveRange({ from: 'now-6h', to: 'now' }, TIME_ZONE);
  const request: DataQueryRequest = {
    app: CoreApp.Dashboard,
    requestId: nextRequestId('V'),
    timezone: TIME_ZONE,
    range,
    rangeRaw: range.raw,
    interval: '1m',
    intervalMs: 60_000,
    targets: [{ refId: 'PreviewVariable-dataset', type: 'datasets' } as DataQuery],
    scopedVars: {},
    startTime: Date.now(),
  };
  const data = await lastValueFrom(runRequest(datasource, request, variableQuery), {
    defaultValue: undefined,
  });
  if (!data || data.state === LoadingState.Error) {
    throw new Error(
      data?.errors?.[0]?.message ?? data?.error?.message ?? 'the dataset variable could not be loaded',
    );
  }
  return data.series.flatMap((frame) => frameToMetricFindValue(frame)).map((v) => String(v.value ?? v.text));
}

export function App() {
  const services = useServices();
  const styles = useStyles2(getStyles);
  const [url, setUrl] = useState<UrlState>(() => readUrlState());
  const [booted, setBooted] = useState<Booted>();
  const [bootError, setBootError] = useState<string>();
  const [tick, setTick] = useState(0);
  const [dsVersion, setDsVersion] = useState(0);
  const [staleAfter, setStaleAfter] = useState<number>();

  // The dashboard's template variable, as the template service holds it: set before the panels
  // that use `$dataset` render (at boot, and when a value is picked).
  const applyDataset = useCallback(
    (b: Booted, value: string) =>
      services.templateSrv.setVariables([
        queryVariable({
          name: 'dataset',
          label: 'Dataset',
          datasource: { type: b.settings.type, uid: b.settings.uid },
          query: { refId: 'PreviewVariable-dataset', type: 'datasets' },
          definition: 'datasets',
          options: b.datasets,
          current: value,
        }),
      ]),
    [services.templateSrv],
  );

  useEffect(() => {
    bootPreview(services).then(
      (b) => {
        applyDataset(b, readUrlState().variables['dataset'] ?? b.datasets[0] ?? '');
        setBooted(b);
      },
      (err: unknown) =>
        setBootError(
          err instanceof Error
            ? err.message
            : String((err as { data?: { message?: string } }).data?.message ?? err),
        ),
    );
  }, [services, dsVersion, applyDataset]);

  useEffect(() => writeUrlState(url), [url]);

  const dataset = booted ? (url.variables['dataset'] ?? booted.datasets[0] ?? '') : '';

  // The stale threshold of the chosen dataset, for the data-age stat's colours.
  useEffect(() => {
    if (!booted || !dataset) return;
    // The plugin backend's resource, as a dashboard's author would look the threshold up.
    services.backendSrv
      .get<{ staleAfter?: string }>(
        `/api/datasources/uid/${booted.settings.uid}/resources/datasets/${encodeURIComponent(dataset)}`,
        undefined,
        undefined,
        {
          showErrorAlert: false,
        },
      )
      .then((info) => setStaleAfter(durationSeconds(info.staleAfter)))
      .catch(() => setStaleAfter(undefined));
  }, [booted, dataset, services.backendSrv, dsVersion]);

  // Auto refresh, as the dashboard's refresh picker sets it.
  useEffect(() => {
    if (!url.refresh) return;
    const ms = Math.max(1000, intervalMs(url.refresh));
    const timer = setInterval(() => setTick((t) => t + 1), ms);
    return () => clearInterval(timer);
  }, [url.refresh]);

  const timeRange: TimeRange = useMemo(() => {
    const range = resolveRange(url.raw, TIME_ZONE);
    services.templateSrv.updateTimeRange(range);
    return range;
    // `tick` re-resolves a relative range, as each refresh does in Grafana.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [url.raw, tick, services.templateSrv]);

  const setTab = (tab: TabName) => setUrl((u) => ({ ...u, tab }));
  const refresh = useCallback(() => setTick((t) => t + 1), []);
  const onSaved = useCallback(() => setDsVersion((v) => v + 1), []);

  const dashboard = useMemo(
    () =>
      booted
        ? buildDashboard({ type: booted.settings.type, uid: booted.settings.uid }, staleAfter ?? 120)
        : undefined,
    [booted, staleAfter],
  );

  const moduleInfo = booted
    ? services.registry.loaded.find((m) => m.url === booted.settings.meta.module)
    : undefined;

  return (
    <div className={styles.page}>
      <header className={styles.header}>
        <Stack direction="row" alignItems="center" justifyContent="space-between" wrap="wrap">
          <Stack direction="column" gap={0}>
            <Text element="h1" variant="h3">
              LiveSync preview
            </Text>
            <span
              className={styles.muted}
              data-testid={testIds.pluginInfo}
              data-module={moduleInfo?.url}
              data-deps={moduleInfo?.deps.join(',')}
            >
              {booted && moduleInfo
                ? `${booted.settings.meta.name} plugin ${booted.settings.meta.info.version} (${booted.settings.meta.id}) loaded from ${moduleInfo.url} as an AMD module, with ${moduleInfo.deps.join(', ')} from Grafana ${config.buildInfo.version}`
                : 'Loading the plugin…'}
            </span>
          </Stack>
          <Stack direction="row" alignItems="center" gap={1}>
            {booted && (
              <InlineField label="Dataset" data-testid={testIds.variable('dataset')}>
                <Combobox
                  id="var-dataset"
                  width={24}
                  options={booted.datasets.map((d) => ({ value: d, label: d }))}
                  value={dataset}
                  onChange={(option) => {
                    applyDataset(booted, option?.value ?? '');
                    setUrl((u) => ({ ...u, variables: { ...u.variables, dataset: option?.value ?? '' } }));
                  }}
                />
              </InlineField>
            )}
            <TimeRangePicker
              value={timeRange}
              timeZone={TIME_ZONE}
              onChange={(range) => setUrl((u) => ({ ...u, raw: range.raw }))}
              onChangeTimeZone={() => undefined}
              onMoveBackward={() => setUrl((u) => ({ ...u, raw: shift(timeRange, -0.5) }))}
              onMoveForward={() => setUrl((u) => ({ ...u, raw: shift(timeRange, 0.5) }))}
              onZoom={() => setUrl((u) => ({ ...u, raw: zoomOut(timeRange) }))}
            />
            <RefreshPicker
              value={url.refresh}
              intervals={REFRESH_INTERVALS}
              onRefresh={refresh}
              onIntervalChanged={(interval) => setUrl((u) => ({ ...u, refresh: interval }))}
            />
          </Stack>
        </Stack>
        <TabsBar>
          <Tab
            label="Dashboard"
            active={url.tab === 'dashboard'}
            onChangeTab={() => setTab('dashboard')}
            data-testid={testIds.tab('dashboard')}
          />
          <Tab
            label="Explore"
            active={url.tab === 'explore'}
            onChangeTab={() => setTab('explore')}
            data-testid={testIds.tab('explore')}
          />
          <Tab
            label="Data source"
            active={url.tab === 'datasource'}
            onChangeTab={() => setTab('datasource')}
            data-testid={testIds.tab('datasource')}
          />
        </TabsBar>
      </header>
      <main className={styles.main}>
        {bootError && (
          <Alert severity="error" title="The preview could not start" data-testid={testIds.bootError}>
            {bootError}
          </Alert>
        )}
        {booted && dashboard && url.tab === 'dashboard' && (
          <DashboardPage
            dashboard={dashboard}
            plugin={booted.plugin}
            datasource={booted.datasource}
            timeRange={timeRange}
            timeZone={TIME_ZONE}
            tick={tick}
            variablesKey={`${dataset}/${dsVersion}`}
            editPanel={url.editPanel}
            onEditPanel={(editPanel) =>
              setUrl(({ editPanel: _old, ...u }) => (editPanel === undefined ? u : { ...u, editPanel }))
            }
          />
        )}
        {booted && url.tab === 'explore' && (
          <ExplorePage
            plugin={booted.plugin}
            datasource={booted.datasource}
            timeRange={timeRange}
            timeZone={TIME_ZONE}
            tick={tick}
          />
        )}
        {booted && url.tab === 'datasource' && (
          <DataSourcePage settings={booted.settings} plugin={booted.plugin} onSaved={onSaved} />
        )}
      </main>
    </div>
  );
}

function intervalMs(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match) return 0;
  return (
    Number(match[1]) *
    { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd']
  );
}

function shift(range: TimeRange, by: number) {
  const span = range.to.valueOf() - range.from.valueOf();
  return {
    from: dateTime(range.from.valueOf() + span * by),
    to: dateTime(range.to.valueOf() + span * by),
  };
}

function zoomOut(range: TimeRange) {
  const span = range.to.valueOf() - range.from.valueOf();
  return { from: dateTime(range.from.valueOf() - span / 2), to: dateTime(range.to.valueOf() + span / 2) };
}

const getStyles = (theme: GrafanaTheme2) => ({
  page: css({ minHeight: '100vh', background: theme.colors.background.canvas }),
  header: css({
    padding: theme.spacing(2, 2, 0, 2),
    background: theme.colors.background.primary,
    borderBottom: `1px solid ${theme.colors.border.weak}`,
  }),
  muted: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize }),
  main: css({ padding: theme.spacing(2) }),
});
