import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Combobox, MultiCombobox, InlineField } from '@grafana/ui';

test('combobox', async () => {
  const onChange = jest.fn();
  const onMulti = jest.fn();
  render(
    <div>
      <InlineField label="Dataset"><Combobox id="ds" options={[{ value: 'orders' }, { value: 'users' }]} value={null} onChange={onChange} /></InlineField>
      <InlineField label="Aggs"><MultiCombobox id="aggs" options={[{ value: 'count' }, { value: 'sum(amount)' }]} value={['count']} onChange={onMulti} /></InlineField>
    </div>,
  );
  const user = userEvent.setup();
  await user.click(screen.getByLabelText('Dataset'));
  await user.click(await screen.findByText('users'));
  expect(onChange).toHaveBeenCalledWith({ value: 'users' });
  await user.click(screen.getByLabelText('Aggs'));
  await user.click(await screen.findByText('sum(amount)'));
  expect(onMulti).toHaveBeenCalled();
  console.log(JSON.stringify(onMulti.mock.calls));
});
