import {
  BigValueColorMode,
  BigValueGraphMode,
  GraphThresholdsStyleConfigBuilder,
  GraphThresholdsStyleMode,
  LegendDisplayMode,
  LegendPlacement,
  ReduceDataOptionsBuilder,
  SortOrder,
  TooltipDisplayMode,
  VizLegendOptionsBuilder,
  VizTooltipOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';
import {
  type Dashboard,
  DashboardBuilder,
  DashboardCursorSync,
  RowBuilder,
  type Threshold,
  ThresholdsConfigBuilder,
  ThresholdsMode,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder as PromQueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeSeriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { builtInAnnotations } from './common';
import { PROMETHEUS } from './datasources';
import { type AlertRuleGroup, findRule, type RuleCondition } from './sources';

export const SERVICE_HEALTH_UID = 'livesync-service-health';

/** The alert rules that carry the success targets; their thresholds are the panels' target lines. */
export const TARGET_RULES = {
  syncSuccess: 'livesync-sync-success-low',
  httpErrors: 'livesync-http-errors-high',
  cacheHit: 'livesync-cache-hit-low',
  meanLatency: 'livesync-latency-high',
} as const;

/** Scrapes, probes and event streams: not user requests (the alert rules leave them out too). */
const NOT_REQUESTS = 'route!~"/metrics|/api/health.*|.*/events"';
const RATE = '$__rate_interval';

/**
 * "LiveSync — Service health": the service's Prometheus metrics against its success targets.
 * Every target line comes from the alert rule that enforces it, so the dashboard and the
 * alerts cannot disagree about what "good" means.
 */
export function serviceHealthDashboard(rules: AlertRuleGroup[]): Dashboard {
  const target = {
    syncSuccess: findRule(rules, TARGET_RULES.syncSuccess),
    httpErrors: findRule(rules, TARGET_RULES.httpErrors),
    cacheHit: findRule(rules, TARGET_RULES.cacheHit),
    meanLatency: findRule(rules, TARGET_RULES.meanLatency),
  };

  return (
    new DashboardBuilder('LiveSync — Service health')
      .uid(SERVICE_HEALTH_UID)
      .description(
        'The LiveSync service against its targets: sync success, errors, cache hits, latency, freshness.',
      )
      .tags(['livesync'])
      .editable()
      .time({ from: 'now-3h', to: 'now' })
      .timezone('browser')
      .refresh('30s')
      .tooltip(DashboardCursorSync.Crosshair)
      .annotations(builtInAnnotations())

      // The alert rules' own expressions and windows, now.
      .withRow(new RowBuilder('Targets (as the alert rules evaluate them)'))
      .withPanel(targetStat('Sync success, 10 m', target.syncSuccess, 'percentunit', '{{dataset}}'))
      .withPanel(targetStat('HTTP 5xx ratio, 5 m', target.httpErrors, 'percentunit', '5xx ratio'))
      .withPanel(targetStat('Response-cache hit ratio, 15 m', target.cacheHit, 'percentunit', 'hit ratio'))
      .withPanel(targetStat('Mean response time, 5 m', target.meanLatency, 's', 'mean'))

      .withRow(new RowBuilder('Sync'))
      .withPanel(
        series('Sync success rate', 'Share of sync runs that succeeded, per dataset.', target.syncSuccess)
          .unit('percentunit')
          .min(0)
          .max(1)
          .withTarget(
            prom(
              `(sum by (dataset) (rate(livesync_sync_runs_total{outcome="success"}[${RATE}]))` +
                ` or sum by (dataset) (rate(livesync_sync_runs_total[${RATE}])) * 0)` +
                ` / sum by (dataset) (rate(livesync_sync_runs_total[${RATE}]))`,
              '{{dataset}}',
            ),
          )
          .span(12),
      )
      .withPanel(
        series(
          'Data age',
          "Time since the last successful sync, per dataset; dashed: the dataset's staleAfter, where the stale alert fires.",
        )
          .unit('s')
          .min(0)
          .withTarget(prom('max by (dataset) (livesync_dataset_age_seconds)', '{{dataset}}'))
          .withTarget(
            prom(
              'max by (dataset) (livesync_dataset_stale_threshold_seconds)',
              '{{dataset}} staleAfter',
              'B',
            ),
          )
          .overrideByQuery('B', [
            { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
            { id: 'custom.fillOpacity', value: 0 },
            { id: 'color', value: { mode: 'fixed', fixedColor: 'red' } },
          ])
          .span(12),
      )
      .withPanel(
        series(
          'Records synced / s',
          'Upserts and deletes applied, per dataset. No target: it follows upstream.',
        )
          .unit('reqps')
          .withTarget(
            prom(`sum by (dataset, op) (rate(livesync_sync_records_total[${RATE}]))`, '{{dataset}} {{op}}'),
          )
          .span(8),
      )
      .withPanel(
        series(
          'Sync run duration (p95)',
          "How long one sync run takes; compare with the dataset's sync.interval.",
        )
          .unit('s')
          .withTarget(
            prom(
              `histogram_quantile(0.95, sum by (dataset, le) (rate(livesync_sync_duration_seconds_bucket[${RATE}])))`,
              '{{dataset}}',
            ),
          )
          .span(8),
      )
      .withPanel(
        series(
          'Sync errors / s',
          'Failed sync runs per dataset and origin: upstream, config (a table, column, URL or credential to fix), store (Redis), internal.',
        )
          .unit('reqps')
          .withTarget(
            prom(
              `sum by (dataset, origin) (rate(livesync_sync_errors_total[${RATE}]))`,
              '{{dataset}} {{origin}}',
            ),
          )
          .span(8),
      )

      .withRow(new RowBuilder('Serving'))
      .withPanel(
        series('Error rate (5xx)', 'Share of requests answered with a 5xx status.', target.httpErrors)
          .unit('percentunit')
          .min(0)
          .withTarget(
            prom(
              `(sum(rate(livesync_http_requests_total{status=~"5..", ${NOT_REQUESTS}}[${RATE}])) or vector(0))` +
                ` / sum(rate(livesync_http_requests_total{${NOT_REQUESTS}}[${RATE}]))`,
              '5xx ratio',
            ),
          )
          .span(8),
      )
      .withPanel(
        series(
          'Cache hit rate',
          'Per layer: response (cached query results) and http (304 Not Modified). Bypasses left out.',
          target.cacheHit,
        )
          .unit('percentunit')
          .min(0)
          .max(1)
          .withTarget(
            prom(
              `(sum by (layer) (rate(livesync_cache_requests_total{result=~"hit|not_modified"}[${RATE}]))` +
                ` or sum by (layer) (rate(livesync_cache_requests_total[${RATE}])) * 0)` +
                ` / sum by (layer) (rate(livesync_cache_requests_total{result=~"hit|not_modified|miss"}[${RATE}]))`,
              '{{layer}}',
            ),
          )
          .span(8),
      )
      .withPanel(
        series('Response time', "p50, p95, p99 and mean of the service's responses.", target.meanLatency)
          .unit('s')
          .min(0)
          .withTarget(latencyQuantile(0.5, 'A'))
          .withTarget(latencyQuantile(0.95, 'B'))
          .withTarget(latencyQuantile(0.99, 'C'))
          .withTarget(
            prom(
              `sum(rate(livesync_http_request_duration_seconds_sum{${NOT_REQUESTS}}[${RATE}]))` +
                ` / sum(rate(livesync_http_request_duration_seconds_count{${NOT_REQUESTS}}[${RATE}]))`,
              'mean',
              'D',
            ),
          )
          .span(8),
      )
      .withPanel(
        series('Requests / s', 'By route and status.')
          .unit('reqps')
          .withTarget(
            prom(
              `sum by (route, status) (rate(livesync_http_requests_total{${NOT_REQUESTS}}[${RATE}]))`,
              '{{route}} {{status}}',
            ),
          )
          .span(12),
      )
      .withPanel(
        series('Queries / s', 'By dataset and query kind; Grafana Live pushes by outcome.')
          .unit('reqps')
          .withTarget(
            prom(`sum by (dataset, kind) (rate(livesync_queries_total[${RATE}]))`, '{{dataset}} {{kind}}'),
          )
          .withTarget(
            prom(
              `sum by (outcome) (rate(livesync_live_pushes_total[${RATE}]))`,
              'live push {{outcome}}',
              'B',
            ),
          )
          .span(12),
      )
      .build()
  );
}

function prom(expr: string, legend: string, refId = 'A'): PromQueryBuilder {
  return new PromQueryBuilder().datasource(PROMETHEUS).refId(refId).expr(expr).legendFormat(legend).range();
}

function latencyQuantile(quantile: number, refId: string): PromQueryBuilder {
  return prom(
    `histogram_quantile(${quantile}, sum by (le) (rate(livesync_http_request_duration_seconds_bucket{${NOT_REQUESTS}}[${RATE}])))`,
    `p${quantile * 100}`,
    refId,
  );
}

/** Colours on the good and the bad side of a rule's target: `lt` rules want to stay above it. */
function targetSteps(rule: RuleCondition): Threshold[] {
  return rule.op === 'lt'
    ? [
        { value: null, color: 'red' },
        { value: rule.threshold, color: 'green' },
      ]
    : [
        { value: null, color: 'green' },
        { value: rule.threshold, color: 'red' },
      ];
}

/** A time series; with a rule, its target as a dashed threshold line. */
function series(title: string, description: string, rule?: RuleCondition): TimeSeriesBuilder {
  const panel = new TimeSeriesBuilder()
    .title(title)
    .description(description)
    .datasource(PROMETHEUS)
    .height(8)
    .lineWidth(1)
    .fillOpacity(10)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Bottom)
        .calcs([]),
    )
    .tooltip(new VizTooltipOptionsBuilder().mode(TooltipDisplayMode.Multi).sort(SortOrder.Descending));
  if (rule) {
    panel
      .thresholds(new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(targetSteps(rule)))
      .thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(GraphThresholdsStyleMode.Dashed));
  }
  return panel;
}

/** The rule's own expression, coloured by its target. */
function targetStat(
  title: string,
  rule: RuleCondition & { title: string },
  unit: string,
  legend: string,
): StatBuilder {
  return new StatBuilder()
    .title(title)
    .description(
      `${rule.title}: the alert rule's query, coloured by its threshold (${rule.op} ${rule.threshold}).`,
    )
    .datasource(PROMETHEUS)
    .withTarget(prom(rule.expr, legend))
    .unit(unit)
    .decimals(unit === 's' ? 3 : 2)
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .colorMode(BigValueColorMode.Background)
    .graphMode(BigValueGraphMode.Area)
    .thresholds(new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(targetSteps(rule)))
    .height(5)
    .span(6);
}
