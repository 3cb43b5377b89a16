import { DataSourcePlugin } from '@grafana/data';
import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import type { LiveSyncOptions, LiveSyncQuery, LiveSyncSecureOptions } from './types';

export const plugin = new DataSourcePlugin<DataSource, LiveSyncQuery, LiveSyncOptions, LiveSyncSecureOptions>(
  DataSource,
)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
