import type { AnnotationQuery, QueryEditorProps } from '@grafana/data';
import { Alert, type ComboboxOption, InlineField, InlineFieldRow, InlineSwitch, Input } from '@grafana/ui';
import { type ChangeEvent, useId, useMemo } from 'react';
import type { AnnotationKind } from '../api';
import type { DataSource } from '../datasource';
import type { LiveSyncQuery } from '../types';
import { DatasetPicker } from './DatasetPicker';
import { LABEL_WIDTH } from './layout';
import { selectors } from './selectors';
import { useDatasets } from './useDatasets';

type Props = QueryEditorProps<DataSource, LiveSyncQuery> & {
  annotation?: AnnotationQuery<LiveSyncQuery>;
  onAnnotationChange?: (annotation: AnnotationQuery<LiveSyncQuery>) => void;
};

const labels = selectors.annotationEditor;

export const ANNOTATION_KINDS: ReadonlyArray<{ kind: AnnotationKind; tooltip: string }> = [
  {
    kind: 'failure',
    tooltip: 'From the first failed sync run to the recovery, in red, with the last error.',
  },
  {
    kind: 'resync',
    tooltip:
      'From a store loss to the end of the resync that followed, in orange: totals were incomplete then.',
  },
  { kind: 'pause', tooltip: 'Time when nothing synced because the service was stopped, in grey.' },
];

/**
 * What to annotate: a dataset's state changes (one region each, from start to end), and
 * optionally sync runs that applied many records. Routine runs are never annotated.
 */
export function AnnotationQueryEditor({ query: savedQuery, onChange, datasource }: Props) {
  // An annotation saved before this editor existed may have no target yet.
  const query: LiveSyncQuery = savedQuery ?? { refId: 'Anno', kind: 'annotations' };
  const id = useId();
  const { datasets, loading, error } = useDatasets(datasource);
  const variables = useMemo(() => datasource.getVariableOptions(), [datasource]);
  const kinds = query.annotationKinds ?? ANNOTATION_KINDS.map((k) => k.kind);

  const change = (next: LiveSyncQuery) => onChange({ ...next, kind: 'annotations' });

  const onDatasetChange = (option: ComboboxOption<string> | null) => {
    const { dataset: _previous, ...rest } = query;
    change(option ? { ...rest, dataset: option.value } : rest);
  };

  const onKind = (kind: AnnotationKind, on: boolean) => {
    const next = ANNOTATION_KINDS.map((k) => k.kind).filter((k) => (k === kind ? on : kinds.includes(k)));
    // All of them is the default: saved as unset, so kinds added later are drawn too.
    if (next.length === ANNOTATION_KINDS.length) {
      const { annotationKinds: _all, ...rest } = query;
      change(rest);
    } else {
      change({ ...query, annotationKinds: next });
    }
  };

  const onMinRecords = (e: ChangeEvent<HTMLInputElement>) => {
    const value = Math.floor(Number(e.currentTarget.value));
    const { minRecords: _previous, ...rest } = query;
    change(e.currentTarget.value.trim() !== '' && value > 0 ? { ...rest, minRecords: value } : rest);
  };

  return (
    <div data-testid={labels.container}>
      {error && (
        <Alert severity="error" title={selectors.queryEditor.loadError}>
          {error}
        </Alert>
      )}
      <InlineFieldRow>
        <InlineField
          label={labels.dataset}
          loading={loading}
          labelWidth={LABEL_WIDTH}
          tooltip="State changes of this dataset; leave empty for every dataset."
        >
          <DatasetPicker
            id={`${id}-dataset`}
            datasets={datasets}
            variables={variables}
            value={query.dataset}
            placeholder={'All datasets'}
            onChange={onDatasetChange}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        {ANNOTATION_KINDS.map(({ kind, tooltip }) => (
          <InlineField key={kind} label={labels.kinds[kind]} tooltip={tooltip}>
            <InlineSwitch
              id={`${id}-${kind}`}
              value={kinds.includes(kind)}
              onChange={(e: ChangeEvent<HTMLInputElement>) => onKind(kind, e.currentTarget.checked)}
            />
          </InlineField>
        ))}
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField
          label={labels.minRecords}
          labelWidth={LABEL_WIDTH}
          tooltip="Also mark each sync run that applied at least this many records. Empty: no run is marked."
        >
          <Input
            id={`${id}-min-records`}
            type="number"
            min={1}
            width={16}
            placeholder="off"
            value={query.minRecords ?? ''}
            onChange={onMinRecords}
          />
        </InlineField>
      </InlineFieldRow>
    </div>
  );
}
