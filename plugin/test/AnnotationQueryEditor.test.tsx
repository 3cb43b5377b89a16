import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { AnnotationQueryEditor } from '../src/components/AnnotationQueryEditor';
import { selectors } from '../src/components/selectors';
import type { LiveSyncQuery } from '../src/types';
import { ORDERS, PROXY, SIGNUPS, makeDataSource } from './helpers/fixtures';
import { backendSrv, installDoubles } from './helpers/runtime';

jest.mock('@grafana/runtime', () => jest.requireActual('./helpers/runtime').mockRuntime());

installDoubles();

const labels = selectors.annotationEditor;

function renderEditor(initial: LiveSyncQuery) {
  backendSrv().expect(
    { method: 'GET', url: `${PROXY}/api/datasets` },
    { status: 200, data: { datasets: [ORDERS, SIGNUPS] } },
  );
  const onChange = jest.fn<void, [LiveSyncQuery]>();
  const datasource = makeDataSource();
  function AnnotationSettings() {
    const [query, setQuery] = useState(initial);
    return (
      <AnnotationQueryEditor
        query={query}
        datasource={datasource}
        onChange={(next) => {
          onChange(next);
          setQuery(next);
        }}
        onRunQuery={() => undefined}
      />
    );
  }
  render(<AnnotationSettings />);
  return { onChange, user: userEvent.setup() };
}

describe('AnnotationQueryEditor', () => {
  it('picks the dataset whose sync runs to show', async () => {
    const { onChange, user } = renderEditor({ refId: 'Anno', kind: 'annotations' });

    await user.click(screen.getByLabelText(labels.dataset));
    await user.click(await screen.findByRole('option', { name: 'signups' }));

    expect(onChange).toHaveBeenCalledTimes(1);
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'Anno', kind: 'annotations', dataset: 'signups' });
  });

  it('leaves out runs that changed nothing when asked', async () => {
    const { onChange, user } = renderEditor({ refId: 'Anno', kind: 'annotations', dataset: 'orders' });

    await user.click(screen.getByLabelText(labels.changesOnly));

    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'Anno',
      kind: 'annotations',
      dataset: 'orders',
      changesOnly: true,
    });
  });

  it('clears the dataset to show every sync run', async () => {
    const { onChange, user } = renderEditor({ refId: 'Anno', kind: 'annotations', dataset: 'orders' });
    await waitFor(() => expect(screen.getByLabelText(labels.dataset)).toHaveValue('orders'));

    await user.click(screen.getByRole('button', { name: 'Clear value' }));

    expect(onChange).toHaveBeenLastCalledWith({ refId: 'Anno', kind: 'annotations' });
  });
});
