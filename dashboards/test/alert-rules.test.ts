import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { type AlertRule, readAlertRuleGroups, ruleCondition } from '../src/sources';
import {
  metricsIn,
  promtool,
  provisionedDatasources,
  readYaml,
  serviceMetricNames,
  tempDir,
} from './helpers';

const groups = readAlertRuleGroups();
const rules = groups.flatMap((group) => group.rules);

/** The seed's success targets, which the rules enforce. */
const TARGETS: Record<string, { op: 'gt' | 'lt'; threshold: number }> = {
  'livesync-sync-success-low': { op: 'lt', threshold: 0.99 },
  'livesync-http-errors-high': { op: 'gt', threshold: 0.01 },
  'livesync-dataset-stale': { op: 'gt', threshold: 0 },
  'livesync-cache-hit-low': { op: 'lt', threshold: 0.9 },
  'livesync-latency-high': { op: 'gt', threshold: 0.2 },
  'livesync-lease-unheld': { op: 'lt', threshold: 1 },
  'livesync-replication-wal-retained': { op: 'gt', threshold: 1073741824 },
};

type Labels = Record<string, string>;
interface Scenario {
  name: string;
  /** promtool input series: series selector → values in expanding notation, one sample a minute. */
  series: Record<string, string>;
  /** At each time, the alerts that must be firing (their labels besides the rule's own). */
  expect: Array<{ at: string; firing: Labels[] }>;
}

const query = (status: string) =>
  `livesync_http_requests_total{route="/api/query",method="POST",status="${status}"}`;
const duration = (route: string, part: 'sum' | 'count') =>
  `livesync_http_request_duration_seconds_${part}{route="${route}",method="${route === '/api/query' ? 'POST' : 'GET'}"}`;
const runs = (dataset: string, outcome: string) =>
  `livesync_sync_runs_total{dataset="${dataset}",outcome="${outcome}"}`;
const held = (dataset: string, instance: string) =>
  `livesync_lease_held{dataset="${dataset}",instance="${instance}"}`;
const cache = (layer: string, result: string) =>
  `livesync_cache_requests_total{layer="${layer}",result="${result}"}`;

/**
 * For each rule, series that must fire it and series that must not: below and above the target,
 * before `for` has passed, and the traffic each rule must leave out.
 */
const SCENARIOS: Record<string, Scenario[]> = {
  'livesync-sync-success-low': [
    {
      name: '95 % and 0 % success fire, 99.5 % does not',
      series: {
        [runs('events', 'success')]: '0+100x40',
        [runs('events', 'failure')]: '0+5x40',
        [runs('demo', 'success')]: '0+199x40',
        [runs('demo', 'failure')]: '0+1x40',
        // Never succeeded: no success series at all.
        [runs('orders', 'failure')]: '0+2x40',
      },
      expect: [
        { at: '5m', firing: [] },
        { at: '20m', firing: [{ dataset: 'events' }, { dataset: 'orders' }] },
      ],
    },
    {
      name: 'resolves once the runs succeed again',
      series: {
        [runs('events', 'success')]: '0+100x20 2000+120x30',
        [runs('events', 'failure')]: '0+5x20 100+0x30',
      },
      expect: [
        { at: '15m', firing: [{ dataset: 'events' }] },
        { at: '45m', firing: [] },
      ],
    },
  ],
  'livesync-http-errors-high': [
    {
      name: '2 % 5xx fires; scrapes and probes do not dilute it',
      series: {
        [query('200')]: '0+980x30',
        [query('500')]: '0+20x30',
        'livesync_http_requests_total{route="/metrics",method="GET",status="200"}': '0+100000x30',
        'livesync_http_requests_total{route="/api/health/live",method="GET",status="200"}': '0+100000x30',
      },
      expect: [
        { at: '4m', firing: [] },
        { at: '20m', firing: [{}] },
      ],
    },
    {
      name: '0.5 % 5xx does not fire',
      series: { [query('200')]: '0+995x30', [query('503')]: '0+5x30' },
      expect: [{ at: '20m', firing: [] }],
    },
    {
      name: 'no 5xx series yet does not fire',
      series: { [query('200')]: '0+1000x30', [query('404')]: '0+500x30' },
      expect: [{ at: '20m', firing: [] }],
    },
  ],
  'livesync-dataset-stale': [
    {
      name: 'each dataset against its own staleAfter',
      series: {
        'livesync_dataset_age_seconds{dataset="events"}': '90x20',
        'livesync_dataset_stale_threshold_seconds{dataset="events"}': '120x20',
        'livesync_dataset_age_seconds{dataset="demo"}': '90x20',
        'livesync_dataset_stale_threshold_seconds{dataset="demo"}': '60x20',
      },
      expect: [
        { at: '0m', firing: [] },
        { at: '5m', firing: [{ dataset: 'demo' }] },
      ],
    },
    {
      name: 'exactly at staleAfter is not stale yet; any replica past it is',
      series: {
        'livesync_dataset_age_seconds{dataset="events",instance="a"}': '120x20',
        'livesync_dataset_stale_threshold_seconds{dataset="events",instance="a"}': '120x20',
        'livesync_dataset_age_seconds{dataset="demo",instance="a"}': '10x20',
        'livesync_dataset_age_seconds{dataset="demo",instance="b"}': '70x20',
        'livesync_dataset_stale_threshold_seconds{dataset="demo",instance="a"}': '60x20',
        'livesync_dataset_stale_threshold_seconds{dataset="demo",instance="b"}': '60x20',
      },
      expect: [{ at: '5m', firing: [{ dataset: 'demo' }] }],
    },
  ],
  'livesync-cache-hit-low': [
    {
      name: '80 % response-cache hits fire; the http layer does not count',
      series: {
        [cache('response', 'hit')]: '0+80x40',
        [cache('response', 'miss')]: '0+20x40',
        [cache('http', 'not_modified')]: '0+1000x40',
      },
      expect: [
        { at: '5m', firing: [] },
        { at: '30m', firing: [{}] },
      ],
    },
    {
      name: '95 % hits do not fire, however many bypasses',
      series: {
        [cache('response', 'hit')]: '0+95x40',
        [cache('response', 'miss')]: '0+5x40',
        [cache('response', 'bypass')]: '0+1000x40',
      },
      expect: [{ at: '30m', firing: [] }],
    },
    {
      name: 'a cache that only misses fires',
      series: { [cache('response', 'miss')]: '0+10x40' },
      expect: [{ at: '30m', firing: [{}] }],
    },
  ],
  'livesync-lease-unheld': [
    {
      name: 'a dataset no replica holds fires after 2 minutes; one held by one replica does not',
      series: {
        [held('events', 'a')]: '1x5 0x20',
        [held('events', 'b')]: '0x5 0x20',
        [held('demo', 'a')]: '0x25',
        [held('demo', 'b')]: '1x25',
      },
      expect: [
        { at: '4m', firing: [] },
        { at: '7m', firing: [] },
        { at: '10m', firing: [{ dataset: 'events' }] },
      ],
    },
    {
      name: 'a takeover within a scrape or two does not fire',
      series: {
        [held('events', 'a')]: '1x5 0x20',
        [held('events', 'b')]: '0x6 1x19',
      },
      expect: [{ at: '20m', firing: [] }],
    },
  ],
  'livesync-latency-high': [
    {
      name: '300 ms mean fires',
      series: { [duration('/api/query', 'sum')]: '0+30x30', [duration('/api/query', 'count')]: '0+100x30' },
      expect: [
        { at: '4m', firing: [] },
        { at: '20m', firing: [{}] },
      ],
    },
    {
      name: '100 ms mean does not fire; event streams and scrapes are left out',
      series: {
        [duration('/api/query', 'sum')]: '0+10x30',
        [duration('/api/query', 'count')]: '0+100x30',
        [duration('/api/datasets/:name/events', 'sum')]: '0+600x30',
        [duration('/api/datasets/:name/events', 'count')]: '0+1x30',
        [duration('/metrics', 'sum')]: '0+500x30',
        [duration('/metrics', 'count')]: '0+10x30',
      },
      expect: [{ at: '20m', firing: [] }],
    },
  ],
  'livesync-replication-wal-retained': [
    {
      name: 'a slot past 1 GiB for 10 minutes fires; one at 100 MiB does not',
      series: {
        'livesync_replication_slot_retained_wal_bytes{dataset="events",slot="livesync_events"}':
          '2147483648x30',
        'livesync_replication_slot_retained_wal_bytes{dataset="orders",slot="livesync_orders"}':
          '104857600x30',
      },
      expect: [
        { at: '5m', firing: [] },
        { at: '20m', firing: [{ dataset: 'events', slot: 'livesync_events' }] },
      ],
    },
    {
      name: 'resolves once the slot moves on',
      series: {
        'livesync_replication_slot_retained_wal_bytes{dataset="events",slot="livesync_events"}':
          '2147483648x15 1048576x20',
      },
      expect: [
        { at: '14m', firing: [{ dataset: 'events', slot: 'livesync_events' }] },
        { at: '30m', firing: [] },
      ],
    },
  ],
};

/** The rule as Prometheus would evaluate it: A's PromQL, C's comparison, the same `for` and labels. */
function prometheusRule(rule: AlertRule) {
  const { expr, op, threshold } = ruleCondition(rule);
  return {
    alert: rule.uid,
    expr: `(${expr}) ${op === 'gt' ? '>' : '<'} ${threshold}`,
    for: rule.for,
    labels: rule.labels,
  };
}

/** Writes a rule file with every rule and a test file with the scenarios; runs promtool on them. */
function promtoolTest(scenarios: Array<{ rule: AlertRule; scenario: Scenario }>) {
  const { dir, remove } = tempDir('promtool');
  try {
    const rulesFile = join(dir, 'rules.yml');
    writeFileSync(
      rulesFile,
      stringify({
        groups: groups.map((group) => ({
          name: group.name,
          interval: group.interval,
          rules: group.rules.map(prometheusRule),
        })),
      }),
    );
    const testFile = join(dir, 'rules.test.yml');
    writeFileSync(
      testFile,
      stringify({
        rule_files: [rulesFile],
        evaluation_interval: groups[0]?.interval,
        tests: scenarios.map(({ rule, scenario }) => ({
          name: `${rule.uid}: ${scenario.name}`,
          interval: '1m',
          input_series: Object.entries(scenario.series).map(([series, values]) => ({ series, values })),
          alert_rule_test: scenario.expect.map(({ at, firing }) => ({
            eval_time: at,
            alertname: rule.uid,
            exp_alerts: firing.map((labels) => ({ exp_labels: { ...labels, ...rule.labels } })),
          })),
        })),
      }),
    );
    return promtool(['test', 'rules', testFile]);
  } finally {
    remove();
  }
}

describe('alert rules (provisioning/alerting/rules.yaml)', () => {
  test('one group in one folder, evaluated every minute', () => {
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ orgId: 1, folder: 'LiveSync', interval: '1m' });
  });

  test.each(rules.map((rule) => [rule.uid, rule] as const))(
    '%s is complete and well formed',
    (_uid, rule) => {
      expect(rule.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
      expect(rule.title.length).toBeGreaterThan(0);
      expect(['critical', 'warning']).toContain(rule.labels['severity']);
      for (const key of ['summary', 'description', 'runbook'])
        expect(rule.annotations[key]?.trim()).toBeTruthy();
      expect(rule.for).toMatch(/^\d+[smh]$/);
      const provisioned = new Set(provisionedDatasources().map((datasource) => datasource.uid));
      for (const step of rule.data) {
        if (step.datasourceUid === '__expr__') continue;
        expect(provisioned).toContain(step.datasourceUid);
        expect(step.datasourceUid).toBe('prometheus');
      }
      // Throws unless the rule is an instant PromQL query → reduce (last) → one threshold.
      expect(ruleCondition(rule).expr.length).toBeGreaterThan(0);
    },
  );

  test('the rules are the five success targets, the lease alert and the replication limit, with their thresholds', () => {
    expect(Object.fromEntries(rules.map((rule) => [rule.uid, ruleCondition(rule)]))).toEqual(
      Object.fromEntries(
        Object.entries(TARGETS).map(([uid, target]) => [uid, expect.objectContaining(target)]),
      ),
    );
  });

  test('the rules read only metrics the service exports', () => {
    const exported = serviceMetricNames();
    for (const rule of rules) {
      const used = metricsIn(ruleCondition(rule).expr);
      expect(used.length).toBeGreaterThan(0);
      for (const metric of used)
        expect({ rule: rule.uid, metric, exported: exported.has(metric) }).toEqual({
          rule: rule.uid,
          metric,
          exported: true,
        });
    }
  });

  test('notifications go to the webhook contact point, whose URL comes from the environment', () => {
    const points = readYaml<{
      contactPoints: Array<{ name: string; receivers: Array<Record<string, unknown>> }>;
    }>('provisioning/alerting/contact-points.yaml').contactPoints;
    const policies = readYaml<{
      policies: Array<{ receiver: string; routes?: Array<{ receiver: string }> }>;
    }>('provisioning/alerting/notification-policies.yaml').policies;
    expect(points).toHaveLength(1);
    expect(points[0]?.receivers).toEqual([
      expect.objectContaining({
        type: 'webhook',
        settings: expect.objectContaining({ url: '${LIVESYNC_ALERT_WEBHOOK_URL}' }),
      }),
    ]);
    const names = new Set(points.map((point) => point.name));
    for (const policy of policies) {
      expect(names).toContain(policy.receiver);
      for (const route of policy.routes ?? []) expect(names).toContain(route.receiver);
    }
  });
});

describe('alert rules under promtool test rules', () => {
  test('every rule has scenarios that fire it and scenarios that do not', () => {
    expect(Object.keys(SCENARIOS).sort()).toEqual(rules.map((rule) => rule.uid).sort());
    for (const scenarios of Object.values(SCENARIOS)) {
      const expectations = scenarios.flatMap((scenario) => scenario.expect);
      expect(expectations.some((check) => check.firing.length > 0)).toBe(true);
      expect(expectations.some((check) => check.firing.length === 0)).toBe(true);
    }
  });

  test.each(rules.map((rule) => [rule.uid, rule] as const))(
    '%s fires exactly when it should',
    (_uid, rule) => {
      const result = promtoolTest((SCENARIOS[rule.uid] ?? []).map((scenario) => ({ rule, scenario })));
      expect(result).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') });
    },
  );

  test('a wrong expectation fails promtool, so the checks above can fail', () => {
    const rule = rules.find((candidate) => candidate.uid === 'livesync-sync-success-low') as AlertRule;
    const [firing] = SCENARIOS[rule.uid] as Scenario[];
    const quiet = { ...(firing as Scenario), expect: [{ at: '20m', firing: [] }] };
    const result = promtoolTest([{ rule, scenario: quiet }]);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('FAILED');
  });
});
