import { type AnnotationEvent, type DataFrame, type TimeRange, dateTimeFormat } from '@grafana/data';
import { LegendDisplayMode, TimeSeries, Tooltip, type UPlotConfigBuilder, useTheme2 } from '@grafana/ui';
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { createPortal } from 'react-dom';
import type uPlot from 'uplot';
import { testIds } from '../../../testIds';

interface Props {
  frames: DataFrame[];
  width: number;
  height: number;
  timeRange: TimeRange;
  timeZone: string;
  annotations: AnnotationEvent[];
}

/** @grafana/ui's TimeSeries (uPlot) with a legend table, and the dashboard's annotations drawn over it. */
export function TimeSeriesViz({ frames, width, height, timeRange, timeZone, annotations }: Props) {
  return (
    <TimeSeries
      frames={frames}
      width={width}
      height={height}
      timeRange={timeRange}
      timeZone={timeZone}
      legend={{
        displayMode: LegendDisplayMode.Table,
        placement: 'right',
        showLegend: true,
        calcs: ['sum', 'lastNotNull'],
      }}
    >
      {(config) => <AnnotationMarkers config={config} events={annotations} timeZone={timeZone} />}
    </TimeSeries>
  );
}

/**
 * Annotation events as Grafana's time series draws them: a dashed line (or a shaded region for
 * events with an end) across the plot, and a marker under it whose tooltip has the title and
 * text. Failures, resyncs and pauses come coloured from the data source (`color`).
 */
function AnnotationMarkers({
  config,
  events,
  timeZone,
}: {
  config: UPlotConfigBuilder;
  events: AnnotationEvent[];
  timeZone: string;
}) {
  const theme = useTheme2();
  const [plot, setPlot] = useState<uPlot>();
  const eventsRef = useRef(events);
  const defaultColor = theme.visualization.getColorByName('rgba(0, 211, 255, 1)');

  useLayoutEffect(() => {
    config.addHook('init', (u) => setPlot(u));
    config.addHook('draw', (u) => {
      const ctx = u.ctx;
      ctx.save();
      ctx.beginPath();
      ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
      ctx.clip();
      for (const event of eventsRef.current) {
        if (event.time === undefined) continue;
        const color = theme.visualization.getColorByName(event.color ?? defaultColor);
        const x0 = Math.round(u.valToPos(event.time, 'x', true));
        const x1 = Math.round(u.valToPos(event.timeEnd ?? event.time, 'x', true));
        if (event.isRegion && x1 - x0 > 1) {
          ctx.fillStyle = color;
          ctx.globalAlpha = 0.1;
          ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
          ctx.globalAlpha = 1;
        }
        ctx.strokeStyle = color;
        ctx.globalAlpha = 0.5;
        ctx.lineWidth = 1;
        ctx.setLineDash([4, 4]);
        ctx.beginPath();
        ctx.moveTo(x0, u.bbox.top);
        ctx.lineTo(x0, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.globalAlpha = 1;
      }
      ctx.restore();
    });
  }, [config, theme, defaultColor]);

  useEffect(() => {
    eventsRef.current = events;
    plot?.redraw();
  }, [plot, events]);

  const over = plot?.root.querySelector('.u-over');
  if (!plot || !over) return null;
  const markers = events.filter((e) => e.time !== undefined);
  return createPortal(
    <div data-testid={testIds.annotations} data-count={markers.length}>
      {markers.map((event, i) => {
        const left = plot.valToPos(event.time!, 'x');
        if (left < 0 || left > plot.over.clientWidth) return null;
        const color = theme.visualization.getColorByName(event.color ?? defaultColor);
        return (
          <Tooltip
            key={`${event.time}-${i}`}
            content={
              <div>
                <strong>{event.title}</strong>
                <div>{dateTimeFormat(event.time!, { timeZone })}</div>
                {event.text && <div>{event.text}</div>}
              </div>
            }
          >
            <div
              data-testid={testIds.annotationMarker}
              data-time={event.time}
              style={{
                position: 'absolute',
                left: left - 4,
                bottom: -8,
                width: 0,
                height: 0,
                borderLeft: '4px solid transparent',
                borderRight: '4px solid transparent',
                borderBottom: `6px solid ${color}`,
                cursor: 'pointer',
              }}
            />
          </Tooltip>
        );
      })}
    </div>,
    over,
  );
}
