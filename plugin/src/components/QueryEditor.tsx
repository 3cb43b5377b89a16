import type { QueryEditorProps } from '@grafana/data';
import {
  Alert,
  type ComboboxOption,
  InlineField,
  InlineFieldRow,
  InlineSwitch,
  MultiCombobox,
  RadioButtonGroup,
  Stack,
} from '@grafana/ui';
import { type ChangeEvent, useEffect, useId, useMemo, useRef } from 'react';
import type { DatasetInfo } from '../api';
import { type DataSource, kindOf } from '../datasource';
import type { LiveSyncOptions, LiveSyncQuery, QueryFormat } from '../types';
import { FiltersEditor } from './FiltersEditor';
import { DatasetPicker } from './DatasetPicker';
import { LABEL_WIDTH } from './layout';
import { aggregationsOf, toOptions } from './options';
import { selectors } from './selectors';
import { useDatasets } from './useDatasets';

type Props = QueryEditorProps<DataSource, LiveSyncQuery, LiveSyncOptions>;

type EditorKind = 'metrics' | 'freshness' | 'status';

const labels = selectors.queryEditor;

const KIND_OPTIONS: Array<{ value: EditorKind; label: string; description: string }> = [
  {
    value: 'metrics',
    label: labels.kindOptions.metrics,
    description: 'Aggregations over time, from the rollups',
  },
  {
    value: 'freshness',
    label: labels.kindOptions.freshness,
    description: 'age_seconds and last_updated per dataset, for stat panels with stale thresholds',
  },
  {
    value: 'status',
    label: labels.kindOptions.status,
    description: 'A table of datasets and how their syncs go',
  },
];

const FORMAT_OPTIONS: Array<{ value: QueryFormat; label: string }> = [
  { value: 'timeseries', label: labels.formatOptions.timeseries },
  { value: 'table', label: labels.formatOptions.table },
];

const LIVE_TOOLTIP =
  "While the time range ends at now, update the panel as soon as LiveSync syncs changes in it, re-reading only the changed time buckets. The panel's freshness warnings follow the dataset either way.";
const LIVE_OFF_TOOLTIP =
  "Live updates are turned off for this data source: turn on Live updates in the data source's settings to use them.";

const containsVariable = (value: string) => value.includes('$') || value.includes('[[');

/** Keeps what the new dataset has (and template variables, which only the panel can resolve). */
function fitToDataset(query: LiveSyncQuery, dataset: DatasetInfo): LiveSyncQuery {
  const dimensions = new Set(dataset.dimensions);
  const aggregations = new Set(aggregationsOf(dataset));
  const keep = (allowed: Set<string>) => (v: string) => allowed.has(v) || containsVariable(v);
  const next: LiveSyncQuery = { ...query, dataset: dataset.name };
  if (query.aggregations) {
    const kept = query.aggregations.filter(keep(aggregations));
    next.aggregations = kept.length > 0 ? kept : ['count'];
  }
  if (query.groupBy) next.groupBy = query.groupBy.filter(keep(dimensions));
  if (query.filters) {
    next.filters = Object.fromEntries(Object.entries(query.filters).filter(([dim]) => keep(dimensions)(dim)));
  }
  return next;
}

export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const id = useId();
  const { datasets, loading, error } = useDatasets(datasource);
  const variables = useMemo(() => datasource.getVariableOptions(), [datasource]);
  const kind = kindOf(query);
  const dataset = datasets.find((d) => d.name === query.dataset);

  const change = (next: LiveSyncQuery) => {
    onChange(next);
    onRunQuery();
  };

  // A new query starts as something worth seeing: the first dataset's count by its first
  // dimension. Decided once, when the datasets arrive: a dataset cleared later stays cleared.
  const decided = useRef(false);
  useEffect(() => {
    if (loading || decided.current) return;
    decided.current = true;
    const first = datasets[0];
    if (!first || kind !== 'metrics' || query.dataset) return;
    onChange({
      ...query,
      kind: 'metrics',
      dataset: first.name,
      aggregations: query.aggregations?.length ? query.aggregations : ['count'],
      groupBy: query.groupBy?.length ? query.groupBy : first.dimensions.slice(0, 1),
      format: query.format ?? 'timeseries',
    });
    onRunQuery();
  }, [loading, datasets, kind, query, onChange, onRunQuery]);

  const onDatasetChange = (option: ComboboxOption<string> | null) => {
    if (!option) {
      const { dataset: _cleared, ...rest } = query;
      change(rest);
      return;
    }
    const next = datasets.find((d) => d.name === option.value);
    change(kind === 'metrics' && next ? fitToDataset(query, next) : { ...query, dataset: option.value });
  };

  return (
    <div data-testid={labels.container}>
      {error && (
        <Alert severity="error" title={labels.loadError}>
          {error} You can still type a dataset name.
        </Alert>
      )}
      {!loading && !error && datasets.length === 0 && (
        <Alert severity="info" title={labels.noDatasets}>
          Declare a dataset in the service&apos;s config file; it shows up here once the service has loaded
          it.
        </Alert>
      )}
      <Stack direction="column" gap={0}>
        <InlineFieldRow>
          <InlineField
            label={labels.kind}
            labelWidth={LABEL_WIDTH}
            tooltip={KIND_OPTIONS.find((o) => o.value === kind)?.description}
          >
            <RadioButtonGroup<EditorKind>
              id={`${id}-kind`}
              options={KIND_OPTIONS}
              value={kind === 'annotations' ? 'metrics' : kind}
              onChange={(value) => change({ ...query, kind: value })}
            />
          </InlineField>
        </InlineFieldRow>
        <InlineFieldRow>
          <InlineField
            label={labels.dataset}
            loading={loading}
            labelWidth={LABEL_WIDTH}
            invalid={kind === 'metrics' && !loading && !query.dataset}
            error="A metrics query needs a dataset"
            tooltip={kind === 'metrics' ? 'The dataset to aggregate' : 'Leave empty for every dataset'}
          >
            <DatasetPicker
              id={`${id}-dataset`}
              datasets={datasets}
              variables={variables}
              value={query.dataset}
              placeholder={kind === 'metrics' ? 'Choose a dataset' : 'All datasets'}
              onChange={onDatasetChange}
            />
          </InlineField>
        </InlineFieldRow>
        {kind === 'metrics' && (
          <>
            <InlineFieldRow>
              <InlineField
                label={labels.aggregations}
                loading={loading}
                labelWidth={LABEL_WIDTH}
                tooltip="count, sum(metric), avg(metric), min(metric), max(metric), distinct(field)"
              >
                <MultiCombobox
                  id={`${id}-aggregations`}
                  width={60}
                  createCustomValue
                  options={toOptions(aggregationsOf(dataset), variables, query.aggregations)}
                  value={query.aggregations ?? []}
                  onChange={(options) => change({ ...query, aggregations: options.map((o) => o.value) })}
                />
              </InlineField>
            </InlineFieldRow>
            <InlineFieldRow>
              <InlineField
                label={labels.groupBy}
                loading={loading}
                labelWidth={LABEL_WIDTH}
                tooltip="One series per combination of these dimensions"
              >
                <MultiCombobox
                  id={`${id}-group-by`}
                  width={60}
                  createCustomValue
                  options={toOptions(dataset?.dimensions ?? [], variables, query.groupBy)}
                  value={query.groupBy ?? []}
                  onChange={(options) => change({ ...query, groupBy: options.map((o) => o.value) })}
                />
              </InlineField>
            </InlineFieldRow>
            <FiltersEditor
              datasource={datasource}
              dataset={query.dataset}
              dimensions={dataset?.dimensions ?? []}
              variables={variables}
              filters={query.filters ?? {}}
              onChange={(filters) => change({ ...query, filters })}
            />
            <InlineFieldRow>
              <InlineField label={labels.format} labelWidth={LABEL_WIDTH}>
                <RadioButtonGroup<QueryFormat>
                  id={`${id}-format`}
                  options={FORMAT_OPTIONS}
                  value={query.format ?? 'timeseries'}
                  onChange={(format) => change({ ...query, format })}
                />
              </InlineField>
              <InlineField
                label={labels.live}
                tooltip={datasource.liveEnabled ? LIVE_TOOLTIP : LIVE_OFF_TOOLTIP}
                disabled={!datasource.liveEnabled}
              >
                <InlineSwitch
                  id={`${id}-live`}
                  value={datasource.isLive(query)}
                  onChange={(e: ChangeEvent<HTMLInputElement>) =>
                    change({ ...query, live: e.currentTarget.checked })
                  }
                />
              </InlineField>
            </InlineFieldRow>
          </>
        )}
      </Stack>
    </div>
  );
}
