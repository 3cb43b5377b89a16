import type { QueryEditorProps } from '@grafana/data';
import {
  Alert,
  Combobox,
  type ComboboxOption,
  InlineField,
  InlineFieldRow,
  RadioButtonGroup,
  Stack,
  Text,
} from '@grafana/ui';
import { useEffect, useId, useMemo, useState } from 'react';
import type { DataSource } from '../datasource';
import type { LiveSyncOptions, LiveSyncQuery, LiveSyncVariableQuery, VariableQueryType } from '../types';
import { toVariableQuery, variableQueryText } from '../variableQuery';
import { LABEL_WIDTH } from './layout';
import { toOptions } from './options';
import { selectors } from './selectors';
import { useDatasets } from './useDatasets';

type Props = QueryEditorProps<DataSource, LiveSyncQuery, LiveSyncOptions, LiveSyncVariableQuery>;

const labels = selectors.variableEditor;

const TYPE_OPTIONS: Array<{ value: VariableQueryType; label: string }> = [
  { value: 'datasets', label: labels.typeOptions.datasets },
  { value: 'dimensions', label: labels.typeOptions.dimensions },
  { value: 'values', label: labels.typeOptions.values },
];

/** Reads a saved variable query, text or structured; text that does not parse starts over, saying why. */
function readQuery(query: LiveSyncVariableQuery | string | undefined): {
  query: LiveSyncVariableQuery;
  problem?: string;
} {
  try {
    return { query: toVariableQuery(query) };
  } catch (err) {
    return {
      query: { refId: 'LiveSyncVariable', type: 'datasets' },
      problem: err instanceof Error ? err.message : String(err),
    };
  }
}

/** Template variables: the datasets, the dimensions of one, or the known values of a dimension. */
export function VariableQueryEditor({ query: rawQuery, onChange, onRunQuery, datasource }: Props) {
  const id = useId();
  const { query, problem } = readQuery(rawQuery as LiveSyncVariableQuery | string | undefined);
  const { datasets, loading, error } = useDatasets(datasource);
  const variables = useMemo(() => datasource.getVariableOptions(), [datasource]);
  const dataset = datasets.find((d) => d.name === query.dataset);
  const dimensions = useDimensions(datasource, loading ? undefined : query.dataset, dataset?.dimensions);

  const change = (next: LiveSyncVariableQuery) => {
    onChange(next);
    onRunQuery();
  };

  const onTypeChange = (type: VariableQueryType) => {
    const next: LiveSyncVariableQuery = { refId: query.refId, type };
    if (type !== 'datasets' && query.dataset) next.dataset = query.dataset;
    if (type === 'values' && query.dimension) next.dimension = query.dimension;
    change(next);
  };

  return (
    <div data-testid={labels.container}>
      {problem && (
        <Alert severity="warning" title={labels.unreadable}>
          {problem}. Choose what the variable lists to replace it.
        </Alert>
      )}
      {error && (
        <Alert severity="error" title={selectors.queryEditor.loadError}>
          {error}
        </Alert>
      )}
      <Stack direction="column" gap={0}>
        <InlineFieldRow>
          <InlineField label={labels.type} labelWidth={LABEL_WIDTH}>
            <RadioButtonGroup<VariableQueryType>
              id={`${id}-type`}
              options={TYPE_OPTIONS}
              value={query.type}
              onChange={onTypeChange}
            />
          </InlineField>
        </InlineFieldRow>
        {query.type !== 'datasets' && (
          <InlineFieldRow>
            <InlineField
              label={labels.dataset}
              loading={loading}
              labelWidth={LABEL_WIDTH}
              invalid={!loading && !query.dataset}
              error="Choose a dataset"
            >
              <Combobox
                id={`${id}-dataset`}
                width={40}
                createCustomValue
                placeholder="Choose a dataset"
                options={toOptions(
                  datasets.map((d) => d.name),
                  variables,
                  query.dataset,
                )}
                value={query.dataset ?? null}
                onChange={(option: ComboboxOption<string>) => {
                  const next: LiveSyncVariableQuery = { ...query, dataset: option.value };
                  // A dimension of the old dataset rarely exists in the new one.
                  if (query.type === 'values') delete next.dimension;
                  change(next);
                }}
              />
            </InlineField>
          </InlineFieldRow>
        )}
        {query.type === 'values' && (
          <InlineFieldRow>
            <InlineField
              label={labels.dimension}
              labelWidth={LABEL_WIDTH}
              invalid={Boolean(query.dataset) && !query.dimension}
              error="Choose a dimension"
            >
              <Combobox
                id={`${id}-dimension`}
                width={40}
                createCustomValue
                placeholder="Choose a dimension"
                options={toOptions(dimensions, variables, query.dimension)}
                value={query.dimension ?? null}
                onChange={(option: ComboboxOption<string>) => change({ ...query, dimension: option.value })}
              />
            </InlineField>
          </InlineFieldRow>
        )}
        <Text color="secondary" variant="bodySmall" data-testid={labels.syntax}>
          As text (for provisioning): <code>{variableQueryText(query)}</code>
        </Text>
      </Stack>
    </div>
  );
}

/** Dimensions of the chosen dataset: from the list when known, else asked of the service (a variable dataset). */
function useDimensions(
  datasource: DataSource,
  dataset: string | undefined,
  known: string[] | undefined,
): string[] {
  const [fetched, setFetched] = useState<{ dataset?: string; dimensions: string[] }>({ dimensions: [] });
  useEffect(() => {
    if (known || !dataset) return;
    let current = true;
    datasource.getDataset(dataset).then(
      (info) => current && setFetched({ dataset, dimensions: info.dimensions }),
      () => current && setFetched({ dataset, dimensions: [] }),
    );
    return () => {
      current = false;
    };
  }, [datasource, dataset, known]);
  if (known) return known;
  return fetched.dataset === dataset ? fetched.dimensions : [];
}
