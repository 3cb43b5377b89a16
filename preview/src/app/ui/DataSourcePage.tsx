import { css } from '@emotion/css';
import type {
  DataSourceInstanceSettings,
  DataSourceSettings,
  GrafanaTheme2,
  TestDataSourceResponse,
} from '@grafana/data';
import { selectors } from '@grafana/e2e-selectors';
import { isFetchError } from '@grafana/runtime';
import { Alert, Button, Stack, Text, useStyles2 } from '@grafana/ui';
import { useEffect, useState } from 'react';
import type { AnyDataSourcePlugin } from '../grafana/dataSourceSrv';
import { useServices } from './services';

interface Props {
  settings: DataSourceInstanceSettings;
  plugin: AnyDataSourcePlugin;
  onSaved: () => void;
}

/** What the page shows under the editor: `testing` while Save & test runs, then the result. */
interface TestingStatus {
  status: string;
  message?: string;
  details?: TestDataSourceResponse['details'];
}

/**
 * Grafana's data-source settings page for this one data source: the settings come from
 * `GET /api/datasources/uid/<uid>` (secrets only as `secureJsonFields`), the plugin's
 * ConfigEditor edits them, and "Save & test" does what Grafana's does: `PUT` the settings,
 * take the saved ones back (the secrets gone again), reload the data-source service, then call
 * `testDatasource()` on a fresh instance and show its answer in an Alert (`status` as severity,
 * `message` as title, `details` below); a thrown error is shown as Grafana's parseHealthCheckError
 * words it.
 */
export function DataSourcePage({ settings, plugin, onSaved }: Props) {
  const styles = useStyles2(getStyles);
  const { backendSrv, dataSourceSrv } = useServices();
  const [options, setOptions] = useState<DataSourceSettings>();
  const [loadError, setLoadError] = useState<string>();
  const [testing, setTesting] = useState<TestingStatus>();
  const ConfigEditor = plugin.components.ConfigEditor;

  useEffect(() => {
    backendSrv
      .get<DataSourceSettings>(`/api/datasources/uid/${settings.uid}`)
      .then(setOptions, (err: unknown) => setLoadError(describe(err)));
  }, [backendSrv, settings.uid]);

  const saveAndTest = async () => {
    if (!options) return;
    setTesting({ status: 'testing' });
    try {
      const saved = await backendSrv.put<{ datasource: DataSourceSettings }>(
        `/api/datasources/uid/${options.uid}`,
        options,
        {
          showSuccessAlert: false,
        },
      );
      setOptions(saved.datasource);
      await dataSourceSrv.reload();
      onSaved();
    } catch (err) {
      setTesting({ status: 'error', message: `Saving failed: ${describe(err)}` });
      return;
    }
    try {
      const datasource = await dataSourceSrv.get(options.uid);
      if (!datasource.testDatasource) {
        setTesting(undefined);
        return;
      }
      const result = await datasource.testDatasource();
      setTesting({ status: result.status, message: result.message, details: result.details });
    } catch (err) {
      setTesting({ status: 'error', ...parseHealthCheckError(err) });
    }
  };

  return (
    <div className={styles.page}>
      <Stack direction="column" gap={2}>
        <Stack direction="row" alignItems="center" gap={2}>
          <img src={settings.meta.info.logos.small} alt="" width={32} height={32} />
          <Stack direction="column" gap={0}>
            <Text element="h2" variant="h3">
              {settings.name}
            </Text>
            <Text color="secondary">
              Type: {settings.meta.name} · uid {settings.uid} · queried through its backend
            </Text>
          </Stack>
        </Stack>
        {loadError && (
          <Alert severity="error" title="Could not load the data source">
            {loadError}
          </Alert>
        )}
        {options && ConfigEditor && <ConfigEditor options={options} onOptionsChange={setOptions} />}
        {testing && testing.status !== 'testing' && testing.message && (
          <Alert
            severity={severityOf(testing.status)}
            title={testing.message}
            data-testid={selectors.pages.DataSource.alert}
          >
            {testing.details?.message}
            {testing.details?.verboseMessage && (
              <details>
                <summary>Details</summary>
                <pre>{testing.details.verboseMessage}</pre>
              </details>
            )}
          </Alert>
        )}
        <Stack direction="row" gap={1}>
          <Button
            type="submit"
            disabled={!options || testing?.status === 'testing'}
            onClick={saveAndTest}
            data-testid={selectors.pages.DataSource.saveAndTest}
          >
            {testing?.status === 'testing' ? 'Testing...' : 'Save & test'}
          </Button>
        </Stack>
      </Stack>
    </div>
  );
}

function severityOf(status: string): 'success' | 'error' | 'warning' | 'info' {
  return status === 'success' || status === 'warning' || status === 'info' ? status : 'error';
}

/** Grafana's parseHealthCheckError: a backend health check's `error`, a FetchError's message, or an Error's. */
function parseHealthCheckError(err: unknown): {
  message?: string;
  details?: TestDataSourceResponse['details'];
} {
  const e = err as { error?: string; details?: TestDataSourceResponse['details'] };
  if (e && typeof e === 'object' && typeof e.error === 'string')
    return { message: e.error, details: e.details };
  if (isFetchError<{ message?: string }>(err))
    return { message: err.data?.message ?? `HTTP error ${err.statusText}` };
  if (err instanceof Error) return { message: err.message };
  return {};
}

function describe(err: unknown): string {
  if (isFetchError<{ message?: string }>(err))
    return err.data?.message ?? `${err.status} ${err.statusText ?? ''}`;
  return err instanceof Error ? err.message : String(err);
}

const getStyles = (theme: GrafanaTheme2) => ({
  page: css({
    maxWidth: 900,
    padding: theme.spacing(3),
    background: theme.colors.background.primary,
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
  }),
});
