import { css } from '@emotion/css';
import {
  type AnnotationEvent,
  CoreApp,
  type DataQuery,
  type DataSourceApi,
  type GrafanaTheme2,
  type PanelData,
  type TimeRange,
} from '@grafana/data';
import { Button, Menu, Stack, useStyles2 } from '@grafana/ui';
import { useEffect, useMemo, useState } from 'react';
import type { DashboardModel, LiveSyncTarget, PanelModel } from '../dashboard';
import type { AnyDataSourcePlugin } from '../grafana/dataSourceSrv';
import { PanelQueryRunner, executeAnnotationQuery } from '../grafana/queryRunner';
import { PanelView } from './panels/PanelView';
import { QueryEditorRow } from './QueryEditorRow';
import { useMeasure } from './useMeasure';

/** Grafana's grid: 24 columns, rows of 30 px, 8 px apart. */
const CELL_HEIGHT = 30;
const CELL_GAP = 8;

interface Props {
  dashboard: DashboardModel;
  plugin: AnyDataSourcePlugin;
  datasource: DataSourceApi;
  timeRange: TimeRange;
  timeZone: string;
  /** Bumped by every refresh, manual or automatic. */
  tick: number;
  /** Changes when a variable or the data source changes: the panels run again. */
  variablesKey: string;
  /** The panel whose queries are being edited (Grafana's `editPanel` URL parameter). */
  editPanel: number | undefined;
  onEditPanel: (id: number | undefined) => void;
}

/**
 * The dashboard: panels on Grafana's grid, the annotation layer run beside them, and, while a
 * panel is edited, its query editor under the grid (Grafana's panel editor, kept on the
 * dashboard so the other panels stay in view). An edited query runs in its panel only.
 */
export function DashboardPage(props: Props) {
  const styles = useStyles2(getStyles);
  const { dashboard, datasource, timeRange, timeZone, tick, variablesKey } = props;
  const [annotations, setAnnotations] = useState<AnnotationEvent[]>([]);
  const [edits, setEdits] = useState<Record<number, LiveSyncTarget[]>>({});
  const [runKeys, setRunKeys] = useState<Record<number, number>>({});
  const [editedData, setEditedData] = useState<PanelData>();

  useEffect(() => {
    const subs = dashboard.annotations
      .filter((a) => a.enable)
      .map((annotation) =>
        executeAnnotationQuery(datasource, annotation, timeRange, timeZone).subscribe(({ events }) =>
          setAnnotations(events.map((e) => ({ ...e, color: e.color ?? annotation.iconColor }))),
        ),
      );
    return () => subs.forEach((s) => s.unsubscribe());
    // Annotations run with the panels: on refresh, on a new range, on a new variable value.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [datasource, tick, timeRange, variablesKey, dashboard.annotations]);

  const panels = useMemo(
    () =>
      dashboard.panels.map((panel) => (edits[panel.id] ? { ...panel, targets: edits[panel.id]! } : panel)),
    [dashboard.panels, edits],
  );
  const edited = panels.find((p) => p.id === props.editPanel);

  return (
    <Stack direction="column" gap={2}>
      <div className={styles.grid}>
        {panels.map((panel) => (
          <DashboardPanel
            key={panel.id}
            panel={panel}
            dashboardUID={dashboard.uid}
            datasource={datasource}
            timeRange={timeRange}
            timeZone={timeZone}
            tick={tick}
            runKey={`${variablesKey}/${runKeys[panel.id] ?? 0}`}
            annotations={panel.annotations ? annotations : undefined}
            onEdit={() => props.onEditPanel(panel.id)}
            onData={panel.id === props.editPanel ? setEditedData : undefined}
          />
        ))}
      </div>
      {edited && (
        <Stack direction="column" gap={1}>
          {edited.targets.map((target, index) => (
            <QueryEditorRow
              key={target.refId}
              title={`${edited.title}: query ${target.refId}`}
              plugin={props.plugin}
              datasource={datasource}
              query={target}
              onChange={(query: DataQuery) =>
                setEdits((all) => ({
                  ...all,
                  [edited.id]: edited.targets.map((t, i) => (i === index ? (query as LiveSyncTarget) : t)),
                }))
              }
              onRunQuery={() => setRunKeys((keys) => ({ ...keys, [edited.id]: (keys[edited.id] ?? 0) + 1 }))}
              data={editedData}
              range={timeRange}
              app={CoreApp.PanelEditor}
            />
          ))}
          <div>
            <Button variant="secondary" icon="arrow-left" onClick={() => props.onEditPanel(undefined)}>
              Back to dashboard
            </Button>
          </div>
        </Stack>
      )}
    </Stack>
  );
}

function DashboardPanel(props: {
  panel: PanelModel;
  dashboardUID: string;
  datasource: DataSourceApi;
  timeRange: TimeRange;
  timeZone: string;
  tick: number;
  runKey: string;
  annotations: AnnotationEvent[] | undefined;
  onEdit: () => void;
  onData: ((data: PanelData) => void) | undefined;
}) {
  const { panel, datasource, timeRange, timeZone, tick, runKey, onData } = props;
  const [ref, size] = useMeasure<HTMLDivElement>();
  const runner = useMemo(() => new PanelQueryRunner(), []);
  const [data, setData] = useState<PanelData>();
  const height = panel.gridPos.h * CELL_HEIGHT + (panel.gridPos.h - 1) * CELL_GAP;
  const measured = size.width > 0;

  useEffect(() => {
    const sub = runner.get().subscribe(setData);
    return () => {
      sub.unsubscribe();
      runner.destroy();
    };
  }, [runner]);

  useEffect(() => {
    if (data && onData) onData(data);
  }, [data, onData]);

  useEffect(() => {
    if (!measured) return;
    runner.run({
      datasource,
      queries: panel.targets,
      timeRange,
      maxDataPoints: size.width,
      ...(panel.interval ? { minInterval: panel.interval } : {}),
      panelId: panel.id,
      panelName: panel.title,
      panelPluginId: panel.type,
      dashboardUID: props.dashboardUID,
      timezone: timeZone,
    });
    // A panel runs on refresh, range and variable changes and when its queries are run from
    // the editor; not when it is resized (as in Grafana).
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [measured, runner, datasource, tick, timeRange, runKey]);

  return (
    <div
      ref={ref}
      style={{
        gridColumn: `${panel.gridPos.x + 1} / span ${panel.gridPos.w}`,
        gridRow: `${panel.gridPos.y + 1} / span ${panel.gridPos.h}`,
        minWidth: 0,
      }}
    >
      {measured && (
        <PanelView
          id={panel.id}
          title={panel.title}
          description={panel.description}
          type={panel.type}
          data={data}
          fieldConfig={panel.fieldConfig}
          statFields={panel.statFields}
          width={size.width}
          height={height}
          timeRange={timeRange}
          timeZone={timeZone}
          annotations={props.annotations}
          onCancelQuery={() => runner.cancel()}
          menu={
            <Menu>
              <Menu.Item label="Edit" icon="edit" onClick={props.onEdit} shortcut="e" />
            </Menu>
          }
        />
      )}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  grid: css({
    display: 'grid',
    gridTemplateColumns: 'repeat(24, minmax(0, 1fr))',
    gridAutoRows: `${CELL_HEIGHT}px`,
    gap: `${CELL_GAP}px`,
    color: theme.colors.text.primary,
  }),
});
