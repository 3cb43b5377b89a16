import { css } from '@emotion/css';
import {
  CoreApp,
  type DataQuery,
  type DataSourceApi,
  type FieldConfigSource,
  type GrafanaTheme2,
  type PanelData,
  type TimeRange,
  dataFrameToJSON,
} from '@grafana/data';
import { Stack, useStyles2 } from '@grafana/ui';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { panelIds, testIds } from '../../testIds';
import { QueryEditorRow } from './QueryEditorRow';
import { type LiveSyncTarget, type PanelType, timeseriesDefaults } from '../dashboard';
import type { AnyDataSourcePlugin } from '../grafana/dataSourceSrv';
import { PanelQueryRunner } from '../grafana/queryRunner';
import { PanelView } from './panels/PanelView';
import { useMeasure } from './useMeasure';

interface Props {
  plugin: AnyDataSourcePlugin;
  datasource: DataSourceApi;
  timeRange: TimeRange;
  timeZone: string;
  tick: number;
}

/**
 * A query editor row and its result, as in Grafana's Explore: the plugin's QueryEditor gets the
 * query, `onChange`, `onRunQuery`, the range and the query's own slice of the response; the
 * result is drawn as a table when the frames prefer one, else as a time series; the frames as
 * the data source returned them are shown below, as the query inspector shows them.
 */
export function ExplorePage({ plugin, datasource, timeRange, timeZone, tick }: Props) {
  const styles = useStyles2(getStyles);
  // A new query, as Explore starts one: the data source's default; its editor completes it.
  const initial = useMemo<LiveSyncTarget>(
    () => ({ refId: 'A', datasource: datasource.getRef(), ...datasource.getDefaultQuery?.(CoreApp.Explore) }),
    [datasource],
  );
  const [query, setQuery] = useState<LiveSyncTarget>(initial);
  const latest = useRef(query);
  const runner = useMemo(() => new PanelQueryRunner(), []);
  const [data, setData] = useState<PanelData>();
  const [ref, size] = useMeasure<HTMLDivElement>();

  useEffect(() => {
    const sub = runner.get().subscribe(setData);
    return () => {
      sub.unsubscribe();
      runner.destroy();
    };
  }, [runner]);

  const run = useCallback(() => {
    if (size.width <= 0) return;
    runner.run({
      datasource,
      queries: [latest.current],
      timeRange,
      maxDataPoints: size.width,
      panelId: panelIds.explore,
      panelName: 'Explore',
      panelPluginId: 'explore',
      dashboardUID: '',
      timezone: timeZone,
      app: CoreApp.Explore,
    });
  }, [runner, datasource, timeRange, timeZone, size.width]);

  // Runs on the first measure and on every refresh or new range.
  useEffect(run, [run, tick]);

  const onChange = (next: DataQuery) => {
    latest.current = next as LiveSyncTarget;
    setQuery(next as LiveSyncTarget);
  };

  const preferTable =
    query.format === 'table' ||
    query.kind === 'status' ||
    data?.series.some((f) => f.meta?.preferredVisualisationType === 'table');
  const type: PanelType = preferTable ? 'table' : query.kind === 'freshness' ? 'stat' : 'timeseries';

  return (
    <Stack direction="column" gap={2}>
      <QueryEditorRow
        plugin={plugin}
        datasource={datasource}
        query={query}
        onChange={onChange}
        onRunQuery={run}
        data={data}
        range={timeRange}
        app={CoreApp.Explore}
      />
      <div ref={ref}>
        {size.width > 0 && (
          <PanelView
            id={panelIds.explore}
            title="Explore"
            type={type}
            data={data}
            fieldConfig={fieldConfigFor(type)}
            width={size.width}
            height={360}
            timeRange={timeRange}
            timeZone={timeZone}
            onCancelQuery={() => runner.cancel()}
          />
        )}
      </div>
      <details className={styles.frames} open>
        <summary>Frames ({data?.series.length ?? 0}) as the data source returned them</summary>
        <pre data-testid={testIds.frames} data-state={data?.state}>
          {JSON.stringify(data?.series.map((f) => dataFrameToJSON(f)) ?? [], null, 1)}
        </pre>
      </details>
    </Stack>
  );
}

function fieldConfigFor(type: PanelType): FieldConfigSource {
  switch (type) {
    case 'timeseries':
      return { defaults: { custom: timeseriesDefaults, color: { mode: 'palette-classic' } }, overrides: [] };
    case 'stat':
      return { defaults: { unit: 's', decimals: 0, color: { mode: 'thresholds' } }, overrides: [] };
    case 'table':
      return { defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' } } }, overrides: [] };
  }
}

const getStyles = (theme: GrafanaTheme2) => ({
  frames: css({
    pre: { maxHeight: 320, overflow: 'auto', fontSize: theme.typography.bodySmall.fontSize },
    summary: { cursor: 'pointer', color: theme.colors.text.secondary },
  }),
});
