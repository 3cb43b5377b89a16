import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Combobox, MultiCombobox } from '@grafana/ui';

test('combobox', async () => {
  const onChange = jest.fn();
  const onMulti = jest.fn();
  render(
    <div>
      <Combobox aria-label="Dataset" options={[{ value: 'orders' }, { value: 'users' }]} value={null} onChange={onChange} />
      <MultiCombobox aria-label="Aggs" options={[{ value: 'count' }, { value: 'sum(amount)' }]} value={['count']} onChange={onMulti} />
    </div>,
  );
  const user = userEvent.setup();
  await user.click(screen.getByLabelText('Dataset'));
  screen.debug(undefined, 100000);
  await user.click(await screen.findByText('users'));
  expect(onChange).toHaveBeenCalledWith({ value: 'users' });
  await user.click(screen.getByLabelText('Aggs'));
  await user.click(await screen.findByText('sum(amount)'));
  expect(onMulti).toHaveBeenCalled();
  console.log(JSON.stringify(onMulti.mock.calls));
});
