import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { Subject } from 'rxjs';
import { QueryEditor } from '../src/components/QueryEditor';
import { selectors } from '../src/components/selectors';
import type { DataSource } from '../src/datasource';
import type { LiveSyncQuery } from '../src/types';
import type { Reply } from './helpers/backendSrv';
import { resourceCall } from './helpers/dsQuery';
import { ORDERS, SERVICE_URL, SIGNUPS, makeDataSource } from './helpers/fixtures';
import { backendSrv, installDoubles, templateSrv } from './helpers/runtime';

jest.mock('@grafana/runtime', () => jest.requireActual('./helpers/runtime').mockRuntime());

installDoubles();

const labels = selectors.queryEditor;

const ORDERS_QUERY: LiveSyncQuery = {
  refId: 'A',
  kind: 'metrics',
  dataset: 'orders',
  aggregations: ['count'],
  groupBy: ['country'],
  format: 'timeseries',
};

function serveDatasets(datasets = [ORDERS, SIGNUPS]) {
  backendSrv().expect(resourceCall('datasets'), { status: 200, data: { datasets } });
}

/** Renders the editor the way Grafana does: the query lives in the parent and comes back on every change. */
function renderEditor(initial: LiveSyncQuery, datasource: DataSource = makeDataSource()) {
  const onChange = jest.fn<void, [LiveSyncQuery]>();
  const onRunQuery = jest.fn<void, []>();
  function Panel() {
    const [query, setQuery] = useState(initial);
    return (
      <QueryEditor
        query={query}
        datasource={datasource}
        onChange={(next) => {
          onChange(next);
          setQuery(next);
        }}
        onRunQuery={onRunQuery}
      />
    );
  }
  render(<Panel />);
  return { onChange, onRunQuery, user: userEvent.setup() };
}

async function pick(user: ReturnType<typeof userEvent.setup>, label: string, option: string) {
  await user.click(screen.getByLabelText(label));
  await user.click(await screen.findByRole('option', { name: option }));
}

describe('QueryEditor', () => {
  it("fills a new query with the first dataset's count by its first dimension, and runs it", async () => {
    serveDatasets();
    const { onChange, onRunQuery } = renderEditor({
      refId: 'A',
      kind: 'metrics',
      aggregations: ['count'],
      format: 'timeseries',
    });

    await waitFor(() => expect(onChange).toHaveBeenCalledTimes(1));
    expect(onChange).toHaveBeenCalledWith({
      refId: 'A',
      kind: 'metrics',
      dataset: 'orders',
      aggregations: ['count'],
      groupBy: ['country'],
      format: 'timeseries',
    });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('clears the dataset without filling it in again', async () => {
    serveDatasets();
    const { onChange, onRunQuery, user } = renderEditor(ORDERS_QUERY);
    await waitFor(() => expect(screen.getByLabelText(labels.dataset)).toHaveValue('orders'));

    await user.click(screen.getByRole('button', { name: 'Clear value' }));

    const { dataset: _cleared, ...withoutDataset } = ORDERS_QUERY;
    expect(onChange).toHaveBeenCalledTimes(1);
    expect(onChange).toHaveBeenLastCalledWith(withoutDataset);
    expect(onRunQuery).toHaveBeenCalledTimes(1);
    expect(await screen.findByText('A metrics query needs a dataset')).toBeInTheDocument();
  });

  it('switches the query kind and hides what only metrics use', async () => {
    serveDatasets();
    const { onChange, onRunQuery, user } = renderEditor(ORDERS_QUERY);

    await user.click(screen.getByRole('radio', { name: labels.kindOptions.freshness }));

    expect(onChange).toHaveBeenLastCalledWith({ ...ORDERS_QUERY, kind: 'freshness' });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
    expect(screen.queryByLabelText(labels.aggregations)).not.toBeInTheDocument();
    expect(screen.queryByLabelText(labels.groupBy)).not.toBeInTheDocument();
    expect(screen.getByPlaceholderText('All datasets')).toBeInTheDocument();
  });

  it('keeps what the new dataset has when the dataset changes', async () => {
    serveDatasets();
    templateSrv().setVariables({ agg: 'count', dim: 'plan' });
    const query: LiveSyncQuery = {
      ...ORDERS_QUERY,
      aggregations: ['count', 'sum(amount)', 'distinct(customer_id)', '$agg'],
      groupBy: ['country', '$dim'],
      filters: { country: ['FR'], $dim: ['pro'] },
    };
    const { onChange, onRunQuery, user } = renderEditor(query);

    await pick(user, labels.dataset, 'signups');

    expect(onChange).toHaveBeenCalledTimes(1);
    expect(onChange).toHaveBeenLastCalledWith({
      ...query,
      dataset: 'signups',
      aggregations: ['count', '$agg'],
      groupBy: ['$dim'],
      filters: { $dim: ['pro'] },
    });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it("offers the dataset's aggregations and takes typed ones", async () => {
    serveDatasets();
    const { onChange, onRunQuery, user } = renderEditor(ORDERS_QUERY);

    await user.click(screen.getByLabelText(labels.aggregations));
    const listbox = await screen.findByRole('listbox');
    await waitFor(() =>
      expect(
        within(listbox)
          .getAllByRole('option')
          .map((o) => o.textContent),
      ).toEqual([
        'count',
        'sum(amount)',
        'avg(amount)',
        'min(amount)',
        'max(amount)',
        'distinct(customer_id)',
      ]),
    );
    await user.click(within(listbox).getByRole('option', { name: 'avg(amount)' }));
    expect(onChange).toHaveBeenLastCalledWith({ ...ORDERS_QUERY, aggregations: ['count', 'avg(amount)'] });

    await user.type(screen.getByLabelText(labels.aggregations), 'max(fee)');
    await user.click(await screen.findByRole('option', { name: /^max\(fee\)/ }));
    expect(onChange).toHaveBeenLastCalledWith({
      ...ORDERS_QUERY,
      aggregations: ['count', 'avg(amount)', 'max(fee)'],
    });
    expect(onRunQuery).toHaveBeenCalledTimes(onChange.mock.calls.length);
  });

  it('groups by another dimension', async () => {
    serveDatasets();
    const { onChange, onRunQuery, user } = renderEditor(ORDERS_QUERY);

    await pick(user, labels.groupBy, 'device');

    expect(onChange).toHaveBeenLastCalledWith({ ...ORDERS_QUERY, groupBy: ['country', 'device'] });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('adds a filter, then picks a value the service suggests', async () => {
    serveDatasets();
    backendSrv().expect(resourceCall('datasets/orders/values/device', { limit: 100 }), {
      status: 200,
      data: { values: ['android', 'ios'] },
    });
    const { onChange, onRunQuery, user } = renderEditor(ORDERS_QUERY);

    await pick(user, labels.addFilter, 'device');
    expect(onChange).toHaveBeenLastCalledWith({ ...ORDERS_QUERY, filters: { device: [] } });

    await pick(user, labels.filterValues('device'), 'ios');
    expect(onChange).toHaveBeenLastCalledWith({ ...ORDERS_QUERY, filters: { device: ['ios'] } });
    expect(onRunQuery).toHaveBeenCalledTimes(2);
  });

  it('removes a filter', async () => {
    serveDatasets();
    const query = { ...ORDERS_QUERY, filters: { country: ['FR'], device: ['ios'] } };
    const { onChange, onRunQuery, user } = renderEditor(query);

    await user.click(screen.getByRole('button', { name: labels.removeFilter('country') }));

    expect(onChange).toHaveBeenLastCalledWith({ ...ORDERS_QUERY, filters: { device: ['ios'] } });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('switches the format to a table', async () => {
    serveDatasets();
    const { onChange, onRunQuery, user } = renderEditor(ORDERS_QUERY);

    await user.click(screen.getByRole('radio', { name: labels.formatOptions.table }));

    expect(onChange).toHaveBeenLastCalledWith({ ...ORDERS_QUERY, format: 'table' });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('turns live updates off for the query, and on again', async () => {
    serveDatasets();
    const { onChange, onRunQuery, user } = renderEditor(ORDERS_QUERY);
    const live = screen.getByLabelText(labels.live);
    // On by default: the saved query says nothing about it.
    expect(live).toBeChecked();
    expect(live).toBeEnabled();

    await user.click(live);
    expect(onChange).toHaveBeenLastCalledWith({ ...ORDERS_QUERY, live: false });
    expect(screen.getByLabelText(labels.live)).not.toBeChecked();

    await user.click(screen.getByLabelText(labels.live));
    expect(onChange).toHaveBeenLastCalledWith({ ...ORDERS_QUERY, live: true });
    expect(onChange).toHaveBeenCalledTimes(2);
    expect(onRunQuery).toHaveBeenCalledTimes(2);
  });

  it('disables the Live toggle, and says why, when the data source has live updates off', async () => {
    serveDatasets();
    const { onChange, user } = renderEditor(
      { ...ORDERS_QUERY, live: true },
      makeDataSource({ liveEnabled: false }),
    );
    const live = screen.getByLabelText(labels.live);
    expect(live).toBeDisabled();
    expect(live).not.toBeChecked();

    await user.click(live);
    expect(onChange).not.toHaveBeenCalled();
    const label = screen.getByText(labels.live).closest('label') as HTMLElement;
    // The tooltip opens on keyboard focus (hover is not simulated on a disabled field's label).
    act(() => within(label).getByTestId('icon-info-circle').focus());
    expect(await screen.findByText(/Live updates are turned off for this data source/)).toBeInTheDocument();
  });

  it('offers the Live toggle for metrics only', async () => {
    serveDatasets();
    renderEditor({ ...ORDERS_QUERY, kind: 'freshness' });
    await waitFor(() => expect(screen.getByLabelText(labels.dataset)).toHaveValue('orders'));
    expect(screen.queryByLabelText(labels.live)).not.toBeInTheDocument();
  });

  it('shows a spinner on the dataset field while datasets load', async () => {
    const answer = new Subject<Reply>();
    backendSrv().expect(resourceCall('datasets'), answer);
    renderEditor({ refId: 'A', kind: 'metrics', aggregations: ['count'] });
    const field = screen
      .getByLabelText(labels.dataset)
      .closest('[data-testid="input-wrapper"]') as HTMLElement;

    expect(within(field).getByTestId('icon-spinner')).toBeInTheDocument();
    act(() => answer.next({ status: 200, data: { datasets: [ORDERS] } }));
    await waitFor(() => expect(within(field).queryByTestId('icon-spinner')).not.toBeInTheDocument());
  });

  it('says why datasets could not load, and leaves the query alone', async () => {
    backendSrv().expect(resourceCall('datasets'), {
      status: 502,
      data: { message: `Could not reach LiveSync at ${SERVICE_URL}: connection refused.` },
    });
    const { onChange } = renderEditor({ refId: 'A', kind: 'metrics', aggregations: ['count'] });

    const alert = await screen.findByRole('alert', { name: labels.loadError });
    expect(alert).toHaveTextContent(labels.loadError);
    expect(alert).toHaveTextContent(`Could not reach LiveSync at ${SERVICE_URL}: connection refused.`);
    expect(onChange).not.toHaveBeenCalled();
  });

  it('explains an empty service', async () => {
    serveDatasets([]);
    const { onChange } = renderEditor({ refId: 'A', kind: 'metrics', aggregations: ['count'] });

    expect(await screen.findByText(labels.noDatasets)).toBeInTheDocument();
    expect(onChange).not.toHaveBeenCalled();
  });
});
