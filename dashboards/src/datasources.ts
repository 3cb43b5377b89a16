import type { DataSourceRef } from '@grafana/grafana-foundation-sdk/common';

/** The data sources of provisioning/datasources/datasources.yaml, by their fixed uids. */
export const LIVESYNC: DataSourceRef = { type: 'livesync-datasource', uid: 'livesync' };
export const PROMETHEUS: DataSourceRef = { type: 'prometheus', uid: 'prometheus' };
/** Grafana's own annotations (alert state changes, annotations added by hand). */
export const GRAFANA: DataSourceRef = { type: 'grafana', uid: '-- Grafana --' };
