import {
  Combobox,
  type ComboboxOption,
  IconButton,
  InlineField,
  InlineFieldRow,
  MultiCombobox,
} from '@grafana/ui';
import { useCallback, useId } from 'react';
import type { DataSource } from '../datasource';
import { LABEL_WIDTH } from './layout';
import { toOptions } from './options';
import { selectors } from './selectors';

interface Props {
  datasource: DataSource;
  dataset?: string;
  dimensions: string[];
  variables: string[];
  filters: Record<string, string[]>;
  onChange: (filters: Record<string, string[]>) => void;
}

const labels = selectors.queryEditor;

/** One row per filtered dimension, and a picker that adds one. */
export function FiltersEditor({ datasource, dataset, dimensions, variables, filters, onChange }: Props) {
  const id = useId();
  const unused = dimensions.filter((d) => !(d in filters));

  const remove = (dimension: string) => {
    const { [dimension]: _removed, ...rest } = filters;
    onChange(rest);
  };

  return (
    <>
      {Object.entries(filters).map(([dimension, values]) => (
        <FilterRow
          key={dimension}
          datasource={datasource}
          dataset={dataset}
          dimension={dimension}
          values={values}
          variables={variables}
          onChange={(next) => onChange({ ...filters, [dimension]: next })}
          onRemove={() => remove(dimension)}
        />
      ))}
      <InlineFieldRow>
        <InlineField
          label={labels.addFilter}
          labelWidth={LABEL_WIDTH}
          tooltip="Keep only some values of a dimension"
        >
          <Combobox
            id={`${id}-add-filter`}
            width={40}
            createCustomValue
            placeholder="Choose a dimension"
            options={toOptions(unused, variables)}
            value={null}
            onChange={(option: ComboboxOption<string>) => onChange({ ...filters, [option.value]: [] })}
          />
        </InlineField>
      </InlineFieldRow>
    </>
  );
}

interface RowProps {
  datasource: DataSource;
  dataset?: string;
  dimension: string;
  values: string[];
  variables: string[];
  onChange: (values: string[]) => void;
  onRemove: () => void;
}

function FilterRow({ datasource, dataset, dimension, values, variables, onChange, onRemove }: RowProps) {
  const id = useId();
  // The service suggests the values it has seen, searching as the user types.
  const loadOptions = useCallback(
    async (search: string) => {
      const known = dataset ? await datasource.getDimensionValues(dataset, dimension, search) : [];
      return toOptions(
        known,
        variables.filter((v) => v.includes(search)),
      );
    },
    [datasource, dataset, dimension, variables],
  );
  return (
    <InlineFieldRow>
      <InlineField
        label={labels.filterValues(dimension)}
        labelWidth={LABEL_WIDTH}
        tooltip={`Keep only these values of ${dimension}`}
      >
        <MultiCombobox
          id={`${id}-values`}
          width={60}
          createCustomValue
          options={loadOptions}
          value={values}
          onChange={(options: Array<ComboboxOption<string>>) => onChange(options.map((o) => o.value))}
        />
      </InlineField>
      <IconButton name="trash-alt" aria-label={labels.removeFilter(dimension)} onClick={onRemove} />
    </InlineFieldRow>
  );
}
