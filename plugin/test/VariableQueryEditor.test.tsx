import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { VariableQueryEditor } from '../src/components/VariableQueryEditor';
import { selectors } from '../src/components/selectors';
import type { LiveSyncVariableQuery } from '../src/types';
import { resourceCall } from './helpers/dsQuery';
import { ORDERS, SIGNUPS, makeDataSource } from './helpers/fixtures';
import { backendSrv, installDoubles } from './helpers/runtime';

jest.mock('@grafana/runtime', () => jest.requireActual('./helpers/runtime').mockRuntime());

installDoubles();

const labels = selectors.variableEditor;

function renderEditor(initial: LiveSyncVariableQuery | string) {
  backendSrv().expect(resourceCall('datasets'), { status: 200, data: { datasets: [ORDERS, SIGNUPS] } });
  const onChange = jest.fn<void, [LiveSyncVariableQuery]>();
  const onRunQuery = jest.fn<void, []>();
  const datasource = makeDataSource();
  function VariableSettings() {
    const [query, setQuery] = useState(initial);
    return (
      <VariableQueryEditor
        query={query as LiveSyncVariableQuery}
        datasource={datasource}
        onChange={(next) => {
          onChange(next);
          setQuery(next);
        }}
        onRunQuery={onRunQuery}
      />
    );
  }
  render(<VariableSettings />);
  return { onChange, onRunQuery, user: userEvent.setup() };
}

describe('VariableQueryEditor', () => {
  it('builds values(<dataset>, <dimension>) step by step', async () => {
    const { onChange, onRunQuery, user } = renderEditor({ refId: 'V', type: 'datasets' });
    expect(screen.getByTestId(labels.syntax)).toHaveTextContent('datasets');

    await user.click(screen.getByRole('radio', { name: labels.typeOptions.values }));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'V', type: 'values' });

    await user.click(screen.getByLabelText(labels.dataset));
    await user.click(await screen.findByRole('option', { name: 'orders' }));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'V', type: 'values', dataset: 'orders' });

    await user.click(screen.getByLabelText(labels.dimension));
    await user.click(await screen.findByRole('option', { name: 'device' }));
    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'V',
      type: 'values',
      dataset: 'orders',
      dimension: 'device',
    });
    expect(onRunQuery).toHaveBeenCalledTimes(3);
    expect(screen.getByTestId(labels.syntax)).toHaveTextContent('values(orders, device)');
  });

  it('reads a text query from a provisioned dashboard and drops the dimension when the dataset changes', async () => {
    const { onChange, user } = renderEditor('values(orders, country)');
    expect(screen.getByRole('radio', { name: labels.typeOptions.values })).toBeChecked();
    expect(await screen.findByDisplayValue('country')).toBeInTheDocument();

    await user.click(screen.getByLabelText(labels.dataset));
    await user.click(await screen.findByRole('option', { name: 'signups' }));

    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'LiveSyncVariable',
      type: 'values',
      dataset: 'signups',
    });
  });

  it('says when a saved text query cannot be read, and replaces it on the first choice', async () => {
    const { onChange, user } = renderEditor('metrics(orders)');

    expect(screen.getByRole('alert', { name: labels.unreadable })).toHaveTextContent(
      'LiveSync variable query "metrics(orders)" is not one of',
    );
    await user.click(screen.getByRole('radio', { name: labels.typeOptions.dimensions }));

    expect(onChange).toHaveBeenLastCalledWith({ refId: 'LiveSyncVariable', type: 'dimensions' });
  });

  it('asks the service for the dimensions of a dataset it has not listed (a variable)', async () => {
    backendSrv().expect(resourceCall('datasets/archive'), {
      status: 200,
      data: { ...ORDERS, name: 'archive', dimensions: ['region'] },
    });
    const { onChange, user } = renderEditor({ refId: 'V', type: 'values', dataset: 'archive' });

    await user.click(screen.getByLabelText(labels.dimension));
    await user.click(await screen.findByRole('option', { name: 'region' }));

    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'V',
      type: 'values',
      dataset: 'archive',
      dimension: 'region',
    });
  });
});
