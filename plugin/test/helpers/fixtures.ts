import type { DataSourceInstanceSettings } from '@grafana/data';
import type { DatasetInfo } from '../../src/api';
import { DataSource } from '../../src/datasource';
import type { LiveSyncOptions } from '../../src/types';

export const PROXY = '/api/datasources/proxy/uid/ls-uid/livesync';
export const SERVICE_URL = 'http://livesync:3000';

export function instanceSettings(
  jsonData: Partial<LiveSyncOptions> = {},
): DataSourceInstanceSettings<LiveSyncOptions> {
  return {
    id: 7,
    uid: 'ls-uid',
    type: 'livesync-datasource',
    name: 'LiveSync',
    url: '/api/datasources/proxy/uid/ls-uid',
    access: 'proxy',
    readOnly: false,
    jsonData: { url: SERVICE_URL, ...jsonData },
    meta: {
      id: 'livesync-datasource',
      name: 'LiveSync',
      type: 'datasource',
      module: 'public/plugins/livesync-datasource/module.js',
      baseUrl: 'public/plugins/livesync-datasource',
      info: {
        author: { name: 'LiveSync' },
        description: '',
        links: [],
        logos: { small: '', large: '' },
        screenshots: [],
        updated: '',
        version: '',
      },
    },
  } as DataSourceInstanceSettings<LiveSyncOptions>;
}

export function makeDataSource(jsonData: Partial<LiveSyncOptions> = {}): DataSource {
  return new DataSource(instanceSettings(jsonData));
}

export const ORDERS: DatasetInfo = {
  name: 'orders',
  source: { kind: 'postgres' },
  dimensions: ['country', 'device'],
  metrics: ['amount'],
  distinct: ['customer_id'],
  resolution: '1m',
  staleAfter: '2m',
  retention: '30d',
  status: {
    state: 'ok',
    lastSuccessAt: 1_750_000_000_000,
    ageSeconds: 12,
    stale: false,
    lastError: null,
    records: 1200,
  },
};

export const SIGNUPS: DatasetInfo = {
  name: 'signups',
  source: { kind: 'http' },
  dimensions: ['plan'],
  metrics: [],
  distinct: ['user_id'],
  resolution: '1m',
  staleAfter: '5m',
  retention: '30d',
};
