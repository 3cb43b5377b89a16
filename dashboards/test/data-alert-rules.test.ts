import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ALERT_RULES, REPO_ROOT, SERVICE_CONFIG, readAlertRuleGroups } from '../src/sources';
import { provisionedDatasources } from './helpers';

/**
 * The Grafana-managed rule over LiveSync data itself (provisioning/alerting/livesync-data.yaml):
 * Grafana evaluates it on the server through the LiveSync data source's Go backend, so it must
 * name the provisioned LiveSync data source, a plugin that declares a backend and alerting, a
 * dataset and dimensions the service really has, and only keys the backend's query model reads.
 */
const FILE = join(REPO_ROOT, 'provisioning/alerting/livesync-data.yaml');
const groups = readAlertRuleGroups(FILE);
const rules = groups.flatMap((group) => group.rules);
const [rule] = rules;

/** The json tags of the backend's Query struct: what the Go backend reads from a query model. */
function backendQueryKeys(): Set<string> {
  const source = readFileSync(join(REPO_ROOT, 'plugin/pkg/models/query.go'), 'utf8');
  const struct = /type Query struct \{([\s\S]*?)\n\}/.exec(source)?.[1] ?? '';
  return new Set([...struct.matchAll(/json:"(\w+)/g)].map((m) => m[1] as string));
}

/** Keys Grafana itself puts in or reads from every query model. */
const GRAFANA_QUERY_KEYS = ['refId', 'intervalMs', 'maxDataPoints', 'datasource', 'hide'];

describe('alert rules on LiveSync data (provisioning/alerting/livesync-data.yaml)', () => {
  test('one group beside the Prometheus rules, in their folder, with uids of its own', () => {
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ orgId: 1, folder: 'LiveSync', interval: '1m', name: 'livesync-data' });
    const others = readAlertRuleGroups(ALERT_RULES);
    expect(others.map((g) => g.name)).not.toContain('livesync-data');
    const otherUids = new Set(others.flatMap((g) => g.rules.map((r) => r.uid)));
    for (const r of rules) expect(otherUids.has(r.uid)).toBe(false);
  });

  test('the rule is complete and well formed', () => {
    expect(rules).toHaveLength(1);
    if (!rule) return;
    expect(rule.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(['critical', 'warning']).toContain(rule.labels['severity']);
    for (const key of ['summary', 'description', 'runbook'])
      expect(rule.annotations[key]?.trim()).toBeTruthy();
    expect(rule.for).toMatch(/^\d+[smh]$/);
  });

  test('it queries the provisioned LiveSync data source, whose plugin has a backend and alerting', () => {
    const query = rule?.data.find((step) => step.refId === 'A');
    const datasource = provisionedDatasources().find((ds) => ds.uid === query?.datasourceUid);
    expect(datasource).toMatchObject({ uid: 'livesync', type: 'livesync-datasource' });
    const pluginJson = JSON.parse(readFileSync(join(REPO_ROOT, 'plugin/src/plugin.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(pluginJson).toMatchObject({ id: 'livesync-datasource', backend: true, alerting: true });
    expect(pluginJson['executable']).toEqual(expect.any(String));
  });

  test('its query is a metrics query over a dataset and dimensions the service has, in keys the backend reads', () => {
    const query = rule?.data.find((step) => step.refId === 'A');
    const model = query?.model ?? {};
    const config = parse(readFileSync(SERVICE_CONFIG, 'utf8')) as {
      datasets: Array<{ name: string; dimensions?: string[] }>;
    };
    const dataset = config.datasets.find((d) => d.name === model['dataset']);
    expect(dataset).toBeDefined();
    expect(model).toMatchObject({
      refId: 'A',
      kind: 'metrics',
      aggregations: ['count'],
      format: 'timeseries',
    });
    for (const dimension of model['groupBy'] as string[]) expect(dataset?.dimensions).toContain(dimension);
    const known = new Set([...backendQueryKeys(), ...GRAFANA_QUERY_KEYS]);
    expect(known).toContain('groupBy');
    for (const key of Object.keys(model))
      expect({ key, known: known.has(key) }).toEqual({ key, known: true });
    // The minute still filling is left out: it would always look low.
    expect(query?.relativeTimeRange?.to).toBeGreaterThanOrEqual(60);
    expect(query?.relativeTimeRange?.from).toBeGreaterThan(query?.relativeTimeRange?.to ?? 0);
  });

  test('it fires when a country averages under its threshold, and when the data is gone', () => {
    const byRef = new Map(rule?.data.map((step) => [step.refId, step]));
    expect(rule?.condition).toBe('C');
    expect(byRef.get('B')?.model).toMatchObject({ type: 'reduce', expression: 'A', reducer: 'mean' });
    const threshold = byRef.get('C')?.model as { type: string; expression: string; conditions: unknown[] };
    expect(threshold).toMatchObject({
      type: 'threshold',
      expression: 'B',
      conditions: [{ evaluator: { type: 'lt', params: [expect.any(Number)] } }],
    });
    expect(rule?.noDataState).toBe('Alerting');
  });
});
