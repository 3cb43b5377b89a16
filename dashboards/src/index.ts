import { analyticsDashboard } from './analytics';
import { serviceHealthDashboard } from './service-health';
import { ALERT_RULES, readAlertRuleGroups, readDatasets, SERVICE_CONFIG } from './sources';

export interface Inputs {
  /** The service config whose datasets the Analytics dashboard shows (the compose one by default). */
  serviceConfig?: string;
  /** The alert rules whose targets the Service health dashboard draws. */
  alertRules?: string;
}

/** Each generated file (under dashboards/json) and its dashboard. */
export function buildDashboards(inputs: Inputs = {}): Map<string, unknown> {
  const datasets = readDatasets(inputs.serviceConfig ?? SERVICE_CONFIG);
  const rules = readAlertRuleGroups(inputs.alertRules ?? ALERT_RULES);
  return new Map<string, unknown>([
    ['livesync-analytics.json', analyticsDashboard(datasets)],
    ['livesync-service-health.json', serviceHealthDashboard(rules)],
  ]);
}
