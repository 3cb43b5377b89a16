import {
  BigValueColorMode,
  BigValueGraphMode,
  LegendDisplayMode,
  LegendPlacement,
  ReduceDataOptionsBuilder,
  TooltipDisplayMode,
  VizLegendOptionsBuilder,
  VizTooltipOptionsBuilder,
  SortOrder,
} from '@grafana/grafana-foundation-sdk/common';
import {
  AnnotationQueryBuilder,
  type Dashboard,
  DashboardBuilder,
  DashboardCursorSync,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeSeriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { builtInAnnotations } from './common';
import { LIVESYNC } from './datasources';
import { LiveSyncAnnotationQueryBuilder, LiveSyncQueryBuilder } from './livesync-query';
import type { DatasetInfo } from './sources';

export const ANALYTICS_UID = 'livesync-analytics';

/**
 * The freshness frame has one row per dataset: dataset, last_updated, age_seconds, state, stale,
 * records. The stat shows the age only.
 */
export const AGE_FIELD = '/^age_seconds$/';

/** Colours of the data-age stats: fresh, getting old (half of staleAfter), stale. */
const FRESH = 'green';
const AGEING = '#FF9830';
const STALE = 'red';

/**
 * "LiveSync — Analytics": the synced data itself, over the LiveSync data source, moving as
 * upstream rows change (Grafana Live), with how fresh every number is.
 */
export function analyticsDashboard(datasets: DatasetInfo[]): Dashboard {
  const first = datasets[0];
  if (!first) throw new Error('the analytics dashboard needs at least one dataset');
  const builder = new DashboardBuilder('LiveSync — Analytics')
    .uid(ANALYTICS_UID)
    .description('Synced upstream data served from LiveSync rollups, updated live over Grafana Live.')
    .tags(['livesync'])
    .editable()
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser')
    // Panels stream changes and freshness over Grafana Live, and data ages tick on their own;
    // the refresh is only a backstop for a lost Live connection.
    .refresh('1m')
    .liveNow(true)
    .tooltip(DashboardCursorSync.Crosshair)
    .annotations([
      ...builtInAnnotations(),
      new AnnotationQueryBuilder()
        .name('Sync state changes')
        .datasource(LIVESYNC)
        .enable(true)
        .iconColor('#8AB8FF')
        .target(new LiveSyncAnnotationQueryBuilder('$dataset')),
    ])
    .withVariable(
      new QueryVariableBuilder('dataset')
        .label('Dataset')
        .description('A dataset of the LiveSync service')
        .datasource(LIVESYNC)
        .query('datasets')
        .definition('datasets')
        .current({ text: first.name, value: first.name })
        .refresh(VariableRefresh.OnDashboardLoad)
        .sort(VariableSort.AlphabeticalAsc),
    )
    // The dimension values every metrics panel filters by.
    .withVariable(dimensionVariable('country', 'Country'))
    .withVariable(dimensionVariable('device', 'Device'));

  builder
    .withRow(new RowBuilder('Data: $dataset'))
    .withPanel(
      timeSeries('Events by country', 'Events per interval, one series per country.')
        .unit('short')
        .withTarget(filtered(new LiveSyncQueryBuilder('metrics', '$dataset').groupBy(['country']))),
    )
    .withPanel(
      timeSeries('Amount by device', 'Sum of amount per interval, one series per device.')
        .unit('none')
        .withTarget(
          filtered(
            new LiveSyncQueryBuilder('metrics', '$dataset').aggregations(['sum(amount)']).groupBy(['device']),
          ),
        ),
    )
    .withPanel(
      timeSeries('Response time and users', 'Mean duration (left axis) and distinct users (right axis).')
        .unit('ms')
        .withTarget(
          filtered(
            new LiveSyncQueryBuilder('metrics', '$dataset').aggregations([
              'avg(duration_ms)',
              'distinct(user_id)',
            ]),
          ),
        )
        .overrideByRegexp('/distinct/i', [
          { id: 'unit', value: 'short' },
          { id: 'custom.axisPlacement', value: 'right' },
        ]),
    );

  builder.withRow(new RowBuilder('Freshness'));
  const statWidth = Math.max(4, Math.floor(24 / datasets.length));
  for (const dataset of datasets) builder.withPanel(dataAgeStat(dataset).height(5).span(statWidth));
  builder.withPanel(syncStatusTable().height(8).span(24));
  return builder.build();
}

function dimensionVariable(dimension: string, label: string): QueryVariableBuilder {
  const query = `values($dataset, ${dimension})`;
  return new QueryVariableBuilder(dimension)
    .label(label)
    .datasource(LIVESYNC)
    .query(query)
    .definition(query)
    .multi(true)
    .includeAll(true)
    .current({ text: ['All'], value: ['$__all'] })
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc);
}

/** Every metrics panel follows the dimension variables. */
function filtered(query: LiveSyncQueryBuilder): LiveSyncQueryBuilder {
  return query.filter('country', ['$country']).filter('device', ['$device']);
}

function timeSeries(title: string, description: string): TimeSeriesBuilder {
  return new TimeSeriesBuilder()
    .title(title)
    .description(description)
    .datasource(LIVESYNC)
    .height(9)
    .span(8)
    .lineWidth(1)
    .fillOpacity(10)
    .spanNulls(false)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Bottom)
        .calcs([]),
    )
    .tooltip(new VizTooltipOptionsBuilder().mode(TooltipDisplayMode.Multi).sort(SortOrder.Descending));
}

/**
 * The dataset's data age against its own staleAfter: green while fresh, amber from half of
 * staleAfter, red once stale (when panels warn and the stale alert rule fires).
 */
function dataAgeStat(dataset: DatasetInfo): StatBuilder {
  const staleAfter = dataset.staleAfterSeconds;
  return new StatBuilder()
    .title(`Data age: ${dataset.name}`)
    .description(
      `Time since the last successful sync of ${dataset.name}. Amber from ${staleAfter / 2} s, ` +
        `red from its staleAfter (${staleAfter} s).`,
    )
    .datasource(LIVESYNC)
    .withTarget(new LiveSyncQueryBuilder('freshness', dataset.name))
    .unit('s')
    .decimals(0)
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields(AGE_FIELD).values(false))
    .colorMode(BigValueColorMode.Background)
    .graphMode(BigValueGraphMode.None)
    .thresholds(
      new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
        { value: null, color: FRESH },
        { value: staleAfter / 2, color: AGEING },
        { value: staleAfter, color: STALE },
      ]),
    );
}

/** The status query without a dataset answers for every dataset, one row each. */
function syncStatusTable(): TableBuilder {
  return new TableBuilder()
    .title('Sync status')
    .description(
      'Per dataset: state, last run, last success, records and the last error, as the sync engine reports them.',
    )
    .datasource(LIVESYNC)
    .withTarget(new LiveSyncQueryBuilder('status', ''));
}
