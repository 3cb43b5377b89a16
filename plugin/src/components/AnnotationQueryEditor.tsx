import type { AnnotationQuery, QueryEditorProps } from '@grafana/data';
import { Alert, type ComboboxOption, InlineField, InlineFieldRow, InlineSwitch } from '@grafana/ui';
import { type ChangeEvent, useId, useMemo } from 'react';
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

/** Sync runs of one dataset (or all) as annotations: "last updated" markers, failures in red. */
export function AnnotationQueryEditor({ query: savedQuery, onChange, datasource }: Props) {
  // An annotation saved before this editor existed may have no target yet.
  const query: LiveSyncQuery = savedQuery ?? { refId: 'Anno', kind: 'annotations' };
  const id = useId();
  const { datasets, loading, error } = useDatasets(datasource);
  const variables = useMemo(() => datasource.getVariableOptions(), [datasource]);

  const onDatasetChange = (option: ComboboxOption<string> | null) => {
    const { dataset: _previous, ...rest } = query;
    onChange(
      option ? { ...rest, kind: 'annotations', dataset: option.value } : { ...rest, kind: 'annotations' },
    );
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
          tooltip="Sync runs of this dataset; leave empty for every dataset. Failed runs are tagged failure and drawn in red."
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
        <InlineField
          label={labels.changesOnly}
          tooltip="Leave out sync runs that applied no records; failed runs always show."
        >
          <InlineSwitch
            id={`${id}-changes-only`}
            value={query.changesOnly ?? false}
            onChange={(e: ChangeEvent<HTMLInputElement>) =>
              onChange({ ...query, kind: 'annotations', changesOnly: e.currentTarget.checked })
            }
          />
        </InlineField>
      </InlineFieldRow>
    </div>
  );
}
