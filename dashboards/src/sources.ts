import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

/** The repository root (this file is dashboards/src/sources.ts). */
export const REPO_ROOT = resolve(__dirname, '../..');
/** The service configuration docker-compose.yml runs: the datasets the dashboards show. */
export const SERVICE_CONFIG = join(REPO_ROOT, 'provisioning/livesync/livesync.yaml');
export const ALERT_RULES = join(REPO_ROOT, 'provisioning/alerting/rules.yaml');
export const JSON_DIR = join(REPO_ROOT, 'dashboards/json');

export interface DatasetInfo {
  name: string;
  staleAfterSeconds: number;
}

/** The service's own default for staleAfter (backend/src/config/schema.ts). */
const DEFAULT_STALE_AFTER = '2m';
const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/** A duration as the service config writes it: `500ms`, `5s`, `2m`, `1h`, `30d`. */
export function durationSeconds(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match) throw new Error(`"${text}" is not a duration such as 30s, 2m or 1h`);
  return Number(match[1]) * (UNIT_SECONDS[match[2] as string] as number);
}

/**
 * The datasets of a service config file: names and stale thresholds. The service
 * validates the whole file (dashboards/test checks it with the service's own loader); this
 * reads only what the dashboards need.
 */
export function readDatasets(file: string = SERVICE_CONFIG): DatasetInfo[] {
  const config = parse(readFileSync(file, 'utf8')) as { datasets?: unknown };
  if (!Array.isArray(config.datasets) || config.datasets.length === 0) {
    throw new Error(`${file}: no datasets`);
  }
  return config.datasets.map((raw: unknown, index) => {
    const dataset = raw as { name?: unknown; staleAfter?: unknown };
    if (typeof dataset.name !== 'string') throw new Error(`${file}: datasets[${index}].name is missing`);
    const staleAfter = typeof dataset.staleAfter === 'string' ? dataset.staleAfter : DEFAULT_STALE_AFTER;
    return { name: dataset.name, staleAfterSeconds: durationSeconds(staleAfter) };
  });
}

/** One Grafana-managed alert rule of provisioning/alerting/rules.yaml, as far as the checks need it. */
export interface AlertRule {
  uid: string;
  title: string;
  condition: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  noDataState?: string;
  data: Array<{
    refId: string;
    datasourceUid: string;
    relativeTimeRange?: { from: number; to: number };
    model: Record<string, unknown>;
  }>;
}

export interface AlertRuleGroup {
  orgId: number;
  name: string;
  folder: string;
  interval: string;
  rules: AlertRule[];
}

export function readAlertRuleGroups(file: string = ALERT_RULES): AlertRuleGroup[] {
  const document = parse(readFileSync(file, 'utf8')) as { apiVersion?: unknown; groups?: AlertRuleGroup[] };
  if (document.apiVersion !== 1) throw new Error(`${file}: apiVersion must be 1`);
  return document.groups ?? [];
}

/** What a rule compares: its PromQL (query A), the comparison and the target (threshold C). */
export interface RuleCondition {
  expr: string;
  op: 'gt' | 'lt';
  threshold: number;
}

/**
 * A rule in the shape every LiveSync rule has: an instant PromQL query, a reduce to its last
 * value and a threshold on that, the condition. Anything else is an error, not a guess.
 */
export function ruleCondition(rule: AlertRule): RuleCondition {
  const byRef = new Map(rule.data.map((query) => [query.refId, query]));
  const threshold = byRef.get(rule.condition);
  if (threshold?.model['type'] !== 'threshold') {
    throw new Error(`rule ${rule.uid}: its condition ${rule.condition} is not a threshold expression`);
  }
  const conditions = threshold.model['conditions'] as Array<{
    evaluator: { type: string; params: number[] };
  }>;
  const evaluator = conditions?.[0]?.evaluator;
  if (conditions.length !== 1 || !evaluator || (evaluator.type !== 'gt' && evaluator.type !== 'lt')) {
    throw new Error(`rule ${rule.uid}: the threshold must have one gt or lt evaluator`);
  }
  const reduce = byRef.get(String(threshold.model['expression']));
  if (reduce?.model['type'] !== 'reduce' || reduce.model['reducer'] !== 'last') {
    throw new Error(`rule ${rule.uid}: the threshold must read a reduce (last) expression`);
  }
  const query = byRef.get(String(reduce.model['expression']));
  const expr = query?.model['expr'];
  if (typeof expr !== 'string' || query?.model['instant'] !== true) {
    throw new Error(`rule ${rule.uid}: the reduce must read an instant PromQL query`);
  }
  return { expr, op: evaluator.type, threshold: evaluator.params[0] as number };
}

/** The rule with this uid, and what it compares. */
export function findRule(groups: AlertRuleGroup[], uid: string): AlertRule & RuleCondition {
  const rule = groups.flatMap((group) => group.rules).find((candidate) => candidate.uid === uid);
  if (!rule) throw new Error(`no alert rule with uid ${uid}`);
  return { ...rule, ...ruleCondition(rule) };
}
