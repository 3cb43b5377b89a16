import { css } from '@emotion/css';
import {
  type CoreApp,
  type DataQuery,
  type DataSourceApi,
  type GrafanaTheme2,
  type PanelData,
  type TimeRange,
} from '@grafana/data';
import { Button, Stack, Text, useStyles2 } from '@grafana/ui';
import { testIds } from '../../testIds';
import type { AnyDataSourcePlugin } from '../grafana/dataSourceSrv';

interface Props {
  plugin: AnyDataSourcePlugin;
  datasource: DataSourceApi;
  query: DataQuery;
  onChange: (query: DataQuery) => void;
  onRunQuery: () => void;
  /** The response the query belongs to: the row passes the editor its own query's slice. */
  data: PanelData | undefined;
  range: TimeRange;
  app: CoreApp;
  title?: string;
}

/**
 * One row of Grafana's query editor (QueryEditorRow): the plugin's QueryEditor with the query,
 * `onChange`, `onRunQuery`, the range, the app it runs in, and the query's own frames and
 * errors (Grafana's filterPanelDataToQuery).
 */
export function QueryEditorRow(props: Props) {
  const styles = useStyles2(getStyles);
  const { plugin, datasource, query } = props;
  const QueryEditor = plugin.components.QueryEditor;
  return (
    <div className={styles.row}>
      <Stack direction="row" justifyContent="space-between" alignItems="center">
        <Text element="h2" variant="h5">
          {props.title ?? `Query ${query.refId}`} · {datasource.getQueryDisplayText?.(query) ?? ''}
        </Text>
        <Button icon="sync" size="sm" onClick={props.onRunQuery} data-testid={testIds.runQuery}>
          Run query
        </Button>
      </Stack>
      {QueryEditor ? (
        <QueryEditor
          datasource={datasource}
          query={query}
          queries={[query]}
          onChange={props.onChange}
          onRunQuery={props.onRunQuery}
          data={filterToQuery(props.data, query.refId)}
          range={props.range}
          app={props.app}
        />
      ) : (
        'The plugin has no query editor.'
      )}
    </div>
  );
}

/** A query editor sees its own query's frames and errors, as Grafana's filterPanelDataToQuery gives them. */
export function filterToQuery(data: PanelData | undefined, refId: string): PanelData | undefined {
  if (!data) return undefined;
  const errors = data.errors?.filter((e) => !e.refId || e.refId === refId);
  const error = data.error && (!data.error.refId || data.error.refId === refId) ? data.error : errors?.[0];
  const out: PanelData = { ...data, series: data.series.filter((f) => !f.refId || f.refId === refId) };
  if (errors) out.errors = errors;
  if (error) out.error = error;
  return out;
}

const getStyles = (theme: GrafanaTheme2) => ({
  row: css({
    padding: theme.spacing(2),
    background: theme.colors.background.primary,
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
  }),
});
