import {
  type AnnotationEvent,
  type DataFrame,
  type FieldConfigSource,
  LoadingState,
  type PanelData,
  type QueryResultMetaNotice,
  type TimeRange,
  applyFieldOverrides,
} from '@grafana/data';
import { selectors } from '@grafana/e2e-selectors';
import { Icon, PanelChrome, Tooltip, useTheme2 } from '@grafana/ui';
import { type ReactElement, useMemo } from 'react';
import { testIds } from '../../../testIds';
import type { PanelType } from '../../dashboard';
import { fieldConfigRegistry } from '../../grafana/fieldConfig';
import { useServices } from '../services';
import { StatViz } from './StatViz';
import { TableViz } from './TableViz';
import { TimeSeriesViz } from './TimeSeriesViz';

export interface PanelViewProps {
  id: number;
  title: string;
  description?: string;
  type: PanelType;
  data: PanelData | undefined;
  fieldConfig: FieldConfigSource;
  width: number;
  height: number;
  timeRange: TimeRange;
  timeZone: string;
  annotations?: AnnotationEvent[];
  /** Stat panels: the fields to show (Grafana's reduce option "Fields"). */
  statFields?: string;
  onCancelQuery?: () => void;
  /** The panel menu (Grafana's: View, Edit, Inspect, …; the preview has Edit). */
  menu?: ReactElement;
}

/**
 * A panel the way Grafana's PanelStateWrapper draws one: PanelChrome with the data's loading
 * or streaming state, the error of a failed query as the header's status (its tooltip holds the
 * message), the frames' notices as header items (one per severity, the text in a tooltip, as
 * PanelHeaderNotices), and the visualization fed with frames after field overrides.
 */
export function PanelView(props: PanelViewProps) {
  const { data, title, width, height } = props;
  const theme = useTheme2();
  const { templateSrv } = useServices();
  const frames = useMemo(
    () =>
      applyFieldOverrides({
        data: data?.series ?? [],
        fieldConfig: props.fieldConfig,
        fieldConfigRegistry: fieldConfigRegistry(props.fieldConfig),
        replaceVariables: (value, scopedVars, format) => templateSrv.replace(value, scopedVars, format),
        theme,
        timeZone: props.timeZone,
      }),
    [data?.series, props.fieldConfig, templateSrv, theme, props.timeZone],
  );
  const status = statusMessage(data);
  const notices = collectNotices(data?.series ?? []);
  const loadingState =
    data?.state === LoadingState.Loading || data?.state === LoadingState.Streaming ? data.state : undefined;

  return (
    <div
      data-testid={testIds.panel(props.id)}
      data-state={data?.state ?? 'NotStarted'}
      data-rows={frames.reduce((sum, frame) => sum + frame.length, 0)}
      {...rangeAttributes(data)}
    >
      <PanelChrome
        title={title}
        description={props.description}
        width={width}
        height={height}
        loadingState={loadingState}
        statusMessage={status}
        onCancelQuery={props.onCancelQuery}
        menu={props.menu}
        titleItems={notices.map((notice) => (
          <PanelNotice key={notice.severity} notice={notice} />
        ))}
      >
        {(innerWidth, innerHeight) => (
          <Viz {...props} frames={frames} width={innerWidth} height={innerHeight} />
        )}
      </PanelChrome>
    </div>
  );
}

function Viz(props: PanelViewProps & { frames: DataFrame[] }) {
  const { frames, width, height } = props;
  if (width <= 0 || height <= 0) return null;
  const empty = frames.length === 0 || frames.every((f) => f.length === 0);
  if (empty) {
    return (
      <div data-testid={testIds.noData} style={{ display: 'grid', placeItems: 'center', width, height }}>
        {props.data?.state === LoadingState.Loading || !props.data ? '' : 'No data'}
      </div>
    );
  }
  switch (props.type) {
    case 'timeseries':
      return (
        <TimeSeriesViz
          frames={frames}
          width={width}
          height={height}
          timeRange={props.data?.timeRange ?? props.timeRange}
          timeZone={props.timeZone}
          annotations={props.annotations ?? []}
        />
      );
    case 'stat':
      return (
        <StatViz
          frames={frames}
          fieldConfig={props.fieldConfig}
          width={width}
          height={height}
          timeZone={props.timeZone}
          fields={props.statFields}
        />
      );
    case 'table':
      return <TableViz frames={frames} width={width} height={height} />;
  }
}

/** The header's error, in Grafana's words: one error's message, or a hint to look at all of them. */
export function statusMessage(data: PanelData | undefined): string | undefined {
  if (!data || data.state !== LoadingState.Error) return undefined;
  if (data.errors?.length) {
    return data.errors.length === 1
      ? data.errors[0]!.message
      : 'Multiple errors found. Click for more details';
  }
  return data.error?.message ?? 'Error';
}

/** Notices of every frame, one per severity (the last one wins), as Grafana's panel header shows them. */
export function collectNotices(frames: DataFrame[]): QueryResultMetaNotice[] {
  const bySeverity = new Map<string, QueryResultMetaNotice>();
  for (const frame of frames)
    for (const notice of frame.meta?.notices ?? []) bySeverity.set(notice.severity, notice);
  return [...bySeverity.values()];
}

function PanelNotice({ notice }: { notice: QueryResultMetaNotice }) {
  const theme = useTheme2();
  const icon = notice.severity === 'info' ? 'info-circle' : 'exclamation-triangle';
  const color =
    notice.severity === 'error'
      ? theme.colors.error.text
      : notice.severity === 'warning'
        ? theme.colors.warning.text
        : undefined;
  return (
    <Tooltip content={notice.text}>
      <PanelChrome.TitleItem data-testid={testIds.notice(notice.severity)} aria-label={notice.text}>
        <Icon name={icon} size="md" style={{ color }} />
      </PanelChrome.TitleItem>
    </Tooltip>
  );
}

/** The request behind what is drawn, for anyone (a test, a curious reader) who wants to ask the service the same. */
function rangeAttributes(data: PanelData | undefined): Record<string, string> {
  const request = data?.request;
  if (!request) return {};
  return {
    'data-request-id': request.requestId,
    'data-range-from': String(request.range.from.valueOf()),
    'data-range-to': String(request.range.to.valueOf()),
    'data-interval-ms': String(request.intervalMs),
    'data-max-data-points': String(request.maxDataPoints ?? ''),
  };
}

export const panelSelector = (title: string) => selectors.components.Panels.Panel.title(title);
