import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { AnnotationQueryEditor } from '../src/components/AnnotationQueryEditor';
import { selectors } from '../src/components/selectors';
import type { LiveSyncQuery } from '../src/types';
import { resourceCall } from './helpers/dsQuery';
import { ORDERS, SIGNUPS, makeDataSource } from './helpers/fixtures';
import { backendSrv, installDoubles } from './helpers/runtime';

jest.mock('@grafana/runtime', () => jest.requireActual('./helpers/runtime').mockRuntime());

installDoubles();

const labels = selectors.annotationEditor;

function renderEditor(initial: LiveSyncQuery) {
  backendSrv().expect(resourceCall('datasets'), { status: 200, data: { datasets: [ORDERS, SIGNUPS] } });
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
  it('picks the dataset whose state changes to show', async () => {
    const { onChange, user } = renderEditor({ refId: 'Anno', kind: 'annotations' });

    await user.click(screen.getByLabelText(labels.dataset));
    await user.click(await screen.findByRole('option', { name: 'signups' }));

    expect(onChange).toHaveBeenCalledTimes(1);
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'Anno', kind: 'annotations', dataset: 'signups' });
  });

  it('draws every kind of state change by default, and leaves out the ones turned off', async () => {
    const { onChange, user } = renderEditor({ refId: 'Anno', kind: 'annotations', dataset: 'orders' });
    for (const kind of ['failure', 'resync', 'pause'] as const)
      expect(screen.getByLabelText(labels.kinds[kind])).toBeChecked();

    await user.click(screen.getByLabelText(labels.kinds.pause));
    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'Anno',
      kind: 'annotations',
      dataset: 'orders',
      annotationKinds: ['failure', 'resync'],
    });
    await user.click(screen.getByLabelText(labels.kinds.failure));
    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'Anno',
      kind: 'annotations',
      dataset: 'orders',
      annotationKinds: ['resync'],
    });
    // All of them again is saved as the default: unset.
    await user.click(screen.getByLabelText(labels.kinds.failure));
    await user.click(screen.getByLabelText(labels.kinds.pause));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'Anno', kind: 'annotations', dataset: 'orders' });
  });

  it('marks big batches only when given a size', async () => {
    const { onChange, user } = renderEditor({ refId: 'Anno', kind: 'annotations', dataset: 'orders' });
    const size = screen.getByLabelText(labels.minRecords);
    expect(size).toHaveValue(null);

    await user.type(size, '500');
    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'Anno',
      kind: 'annotations',
      dataset: 'orders',
      minRecords: 500,
    });
    await user.clear(size);
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'Anno', kind: 'annotations', dataset: 'orders' });
  });

  it('clears the dataset to show every dataset', async () => {
    const { onChange, user } = renderEditor({ refId: 'Anno', kind: 'annotations', dataset: 'orders' });
    await waitFor(() => expect(screen.getByLabelText(labels.dataset)).toHaveValue('orders'));

    await user.click(screen.getByRole('button', { name: 'Clear value' }));

    expect(onChange).toHaveBeenLastCalledWith({ refId: 'Anno', kind: 'annotations' });
  });
});
