import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../backend/src/config/load';
import { AGE_FIELD } from '../src/analytics';
import { buildDashboards } from '../src/index';
import { TARGET_RULES } from '../src/service-health';
import { findRule, JSON_DIR, readAlertRuleGroups, SERVICE_CONFIG } from '../src/sources';
import {
  BUILT_IN_DATASOURCE_UIDS,
  datasourceRefs,
  metricsIn,
  promtool,
  provisionedDatasources,
  repoPath,
  serviceMetricNames,
  tempDir,
} from './helpers';

interface Target {
  refId: string;
  datasource?: { type: string; uid: string };
  expr?: string;
  [key: string]: unknown;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
  fieldConfig?: {
    defaults: {
      thresholds?: { steps: Array<{ value: number | null; color: string }> };
      custom?: { thresholdsStyle?: { mode: string } };
    };
  };
  options?: { reduceOptions?: { fields?: string } };
}
interface Dashboard {
  uid: string;
  title: string;
  liveNow?: boolean;
  panels: Panel[];
  templating: { list: Array<{ name: string; query: string; datasource: { uid: string } }> };
  annotations: {
    list: Array<{ name: string; datasource: { uid: string }; target?: Record<string, unknown> }>;
  };
}

const committed = new Map(
  readdirSync(JSON_DIR)
    .filter((file) => file.endsWith('.json'))
    .map((file) => [file, readFileSync(join(JSON_DIR, file), 'utf8')]),
);
const dashboards = new Map([...committed].map(([file, text]) => [file, JSON.parse(text) as Dashboard]));

function dashboard(uid: string): Dashboard {
  const found = [...dashboards.values()].find((candidate) => candidate.uid === uid);
  if (!found) throw new Error(`no committed dashboard with uid ${uid}`);
  return found;
}

function panel(board: Dashboard, title: string): Panel {
  const found = board.panels.find((candidate) => candidate.title === title);
  if (!found) throw new Error(`${board.uid}: no panel "${title}"`);
  return found;
}

/** The compose service config, validated by the service's own loader. */
const serviceConfig = loadConfig({
  LIVESYNC_CONFIG: SERVICE_CONFIG,
  DATABASE_URL: 'postgres://livesync:livesync@postgres:5432/livesync',
});

describe('generated dashboards (dashboards/json)', () => {
  test('the committed JSON is what `npm run generate -w dashboards` writes', () => {
    // Compared as data: the formatting is Prettier's (the generator formats with it, and
    // `npm run lint` checks it). On failure: run `npm run generate -w dashboards` and commit.
    const generated = buildDashboards();
    expect([...committed.keys()].sort()).toEqual([...generated.keys()].sort());
    for (const [file, board] of generated) {
      expect({ file, json: dashboards.get(file) }).toEqual({ file, json: JSON.parse(JSON.stringify(board)) });
    }
  });

  test('the comparison above notices a change in what the dashboards are generated from', () => {
    const { dir, remove } = tempDir('config');
    try {
      const config = join(dir, 'livesync.yaml');
      writeFileSync(config, readFileSync(SERVICE_CONFIG, 'utf8').replace('staleAfter: 2m', 'staleAfter: 3m'));
      const changed = buildDashboards({ serviceConfig: config }).get('livesync-analytics.json');
      expect(JSON.parse(JSON.stringify(changed))).not.toEqual(dashboards.get('livesync-analytics.json'));
    } finally {
      remove();
    }
  });

  test('each dashboard has its own fixed uid and a title', () => {
    expect([...dashboards.values()].map((board) => board.uid).sort()).toEqual([
      'livesync-analytics',
      'livesync-service-health',
    ]);
    for (const board of dashboards.values()) expect(board.title).toMatch(/^LiveSync — /);
  });

  test('every data source they reference is provisioned, with the same type', () => {
    const provisioned = new Map(
      provisionedDatasources().map((datasource) => [datasource.uid, datasource.type]),
    );
    for (const [file, board] of dashboards) {
      const refs = datasourceRefs(board);
      expect(refs.length).toBeGreaterThan(0);
      for (const ref of refs) {
        if (BUILT_IN_DATASOURCE_UIDS.has(ref.uid)) continue;
        expect({ file, uid: ref.uid, type: ref.type, provisioned: provisioned.has(ref.uid) }).toEqual({
          file,
          uid: ref.uid,
          type: provisioned.get(ref.uid),
          provisioned: true,
        });
      }
    }
  });
});

describe('LiveSync — Analytics', () => {
  const board = dashboard('livesync-analytics');
  const targets = board.panels.flatMap((candidate) => candidate.targets ?? []);

  test('is live: the dashboard follows now and every query streams changes', () => {
    expect(board.liveNow).toBe(true);
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets)
      expect(target).toMatchObject({ datasource: { uid: 'livesync' }, live: true });
  });

  test('shows events by country, filtered by the dataset and dimension variables', () => {
    expect(panel(board, 'Events by country').targets).toEqual([
      expect.objectContaining({
        kind: 'metrics',
        dataset: '$dataset',
        aggregations: ['count'],
        groupBy: ['country'],
        filters: { country: ['$country'], device: ['$device'] },
        format: 'timeseries',
      }),
    ]);
    expect(
      board.templating.list.map(({ name, query, datasource }) => ({ name, query, uid: datasource.uid })),
    ).toEqual([
      { name: 'dataset', query: 'datasets', uid: 'livesync' },
      { name: 'country', query: 'values($dataset, country)', uid: 'livesync' },
      { name: 'device', query: 'values($dataset, device)', uid: 'livesync' },
    ]);
  });

  test('marks the sync state changes of the selected dataset as annotations', () => {
    expect(board.annotations.list).toContainEqual(
      expect.objectContaining({
        datasource: expect.objectContaining({ uid: 'livesync' }),
        target: expect.objectContaining({ kind: 'annotations', dataset: '$dataset' }),
      }),
    );
  });

  test('has a data-age stat per dataset: amber from half of staleAfter, red from staleAfter', () => {
    for (const dataset of serviceConfig.datasets) {
      const stat = panel(board, `Data age: ${dataset.name}`);
      const staleAfter = dataset.staleAfterMs / 1000;
      expect(stat.targets).toEqual([expect.objectContaining({ kind: 'freshness', dataset: dataset.name })]);
      expect(stat.fieldConfig?.defaults.thresholds?.steps).toEqual([
        { value: null, color: 'green' },
        { value: staleAfter / 2, color: expect.any(String) },
        { value: staleAfter, color: 'red' },
      ]);
    }
  });

  test('has a sync-status table over every dataset', () => {
    const table = panel(board, 'Sync status');
    expect(table.type).toBe('table');
    // A status query without a dataset answers for all of them.
    expect(table.targets).toEqual([expect.objectContaining({ kind: 'status', dataset: '' })]);
  });

  test("the data-age stats read the age field of the service's freshness frame", () => {
    const field = /^\/\^(\w+)\$\/$/.exec(AGE_FIELD)?.[1];
    expect(field).toBeDefined();
    expect(readFileSync(repoPath('backend/src/query/status-frames.ts'), 'utf8')).toContain(
      `name: '${field}'`,
    );
    for (const dataset of serviceConfig.datasets) {
      expect(panel(board, `Data age: ${dataset.name}`).options?.reduceOptions?.fields).toBe(AGE_FIELD);
    }
  });
});

describe('LiveSync — Service health', () => {
  const board = dashboard('livesync-service-health');
  const rules = readAlertRuleGroups();
  const exprs = board.panels.flatMap((candidate) => (candidate.targets ?? []).map((target) => target.expr));

  test('queries Prometheus only, and only metrics the service exports', () => {
    const exported = serviceMetricNames();
    for (const target of board.panels.flatMap((candidate) => candidate.targets ?? [])) {
      expect(target.datasource).toEqual({ type: 'prometheus', uid: 'prometheus' });
      expect(typeof target.expr).toBe('string');
      for (const metric of metricsIn(target.expr as string)) {
        expect({ metric, exported: exported.has(metric) }).toEqual({ metric, exported: true });
      }
    }
  });

  test('every PromQL expression parses (promtool check rules)', () => {
    const { dir, remove } = tempDir('promql');
    try {
      const file = join(dir, 'dashboard-queries.yml');
      const recording = exprs.map((expr, index) => ({
        record: `livesync:dashboard_query_${index}`,
        // Grafana's interval variable, as Prometheus would see it once Grafana replaced it.
        expr: (expr as string).replaceAll('$__rate_interval', '1m'),
      }));
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard-queries', rules: recording }] }));
      const result = promtool(['check', 'rules', file]);
      expect(result).toEqual({
        status: 0,
        output: expect.stringContaining(`SUCCESS: ${recording.length} rules found`),
      });
    } finally {
      remove();
    }
  });

  test.each([
    ['Sync success rate', TARGET_RULES.syncSuccess, 0.99],
    ['Error rate (5xx)', TARGET_RULES.httpErrors, 0.01],
    ['Cache hit rate', TARGET_RULES.cacheHit, 0.9],
    ['Response time', TARGET_RULES.meanLatency, 0.2],
  ])('"%s" draws the target of %s (%s) as a threshold line', (title, uid, target) => {
    expect(findRule(rules, uid).threshold).toBe(target);
    const defaults = panel(board, title).fieldConfig?.defaults;
    expect(defaults?.custom?.thresholdsStyle?.mode).toMatch(/line|dashed/);
    expect(defaults?.thresholds?.steps.map((step) => step.value)).toEqual([null, target]);
  });

  test("draws each dataset's staleAfter beside its data age", () => {
    expect(panel(board, 'Data age').targets?.map((target) => target.expr)).toEqual([
      'max by (dataset) (livesync_dataset_age_seconds)',
      'max by (dataset) (livesync_dataset_stale_threshold_seconds)',
    ]);
  });

  test('shows p50, p95 and p99 latency and records per second', () => {
    const latency = panel(board, 'Response time').targets?.map((target) => target.expr) ?? [];
    for (const quantile of ['0.5', '0.95', '0.99']) {
      expect(latency).toContainEqual(expect.stringContaining(`histogram_quantile(${quantile},`));
    }
    expect(panel(board, 'Records synced / s').targets?.[0]?.expr).toContain('livesync_sync_records_total');
  });

  test("the target stats use the alert rules' own expressions", () => {
    for (const uid of Object.values(TARGET_RULES)) expect(exprs).toContain(findRule(rules, uid).expr);
  });
});
