import { Combobox, type ComboboxOption } from '@grafana/ui';
import type { DatasetInfo } from '../api';
import { toOptions } from './options';

interface Props {
  id: string;
  datasets: DatasetInfo[];
  /** Dashboard variables offered beside the datasets (`$dataset`). */
  variables: string[];
  value: string | undefined;
  placeholder: string;
  onChange: (option: ComboboxOption<string> | null) => void;
}

/** The dataset of a query: the service's datasets, the dashboard's variables, or any name typed. */
export function DatasetPicker({ id, datasets, variables, value, placeholder, onChange }: Props) {
  return (
    <Combobox
      id={id}
      width={40}
      isClearable
      createCustomValue
      placeholder={placeholder}
      options={toOptions(
        datasets.map((d) => d.name),
        variables,
        value,
      )}
      value={value ?? null}
      onChange={onChange}
    />
  );
}
