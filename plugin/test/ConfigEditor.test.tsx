import type { DataSourceSettings } from '@grafana/data';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { ConfigEditor } from '../src/components/ConfigEditor';
import { selectors } from '../src/components/selectors';
import type { LiveSyncOptions, LiveSyncSecureOptions } from '../src/types';

type Settings = DataSourceSettings<LiveSyncOptions, LiveSyncSecureOptions>;

const labels = selectors.configEditor;

function settings(overrides: Partial<Settings> = {}): Settings {
  return {
    id: 7,
    uid: 'ls-uid',
    orgId: 1,
    name: 'LiveSync',
    type: 'livesync-datasource',
    typeName: 'LiveSync',
    typeLogoUrl: '',
    access: 'proxy',
    url: '',
    user: '',
    database: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    withCredentials: false,
    readOnly: false,
    jsonData: {},
    secureJsonFields: {},
    ...overrides,
  };
}

/** The settings page keeps the options and hands them back after every change, as Grafana does. */
function renderEditor(initial: Settings) {
  const onOptionsChange = jest.fn<void, [Settings]>();
  function SettingsPage() {
    const [options, setOptions] = useState(initial);
    return (
      <ConfigEditor
        options={options}
        onOptionsChange={(next) => {
          onOptionsChange(next);
          setOptions(next);
        }}
      />
    );
  }
  render(<SettingsPage />);
  return { onOptionsChange, user: userEvent.setup() };
}

describe('ConfigEditor', () => {
  it('stores the service URL in jsonData', async () => {
    const initial = settings();
    const { onOptionsChange, user } = renderEditor(initial);

    await user.type(screen.getByLabelText(labels.url), 'http://livesync:3000');

    expect(onOptionsChange).toHaveBeenLastCalledWith({
      ...initial,
      jsonData: { url: 'http://livesync:3000' },
    });
  });

  it('flags a URL that is not http(s)', async () => {
    const { user } = renderEditor(settings());
    await user.type(screen.getByLabelText(labels.url), 'livesync:3000');
    expect(await screen.findByText('An http:// or https:// URL')).toBeInTheDocument();
  });

  it('keeps a new API key in secureJsonData only', async () => {
    const initial = settings({ jsonData: { url: 'http://livesync:3000' } });
    const { onOptionsChange, user } = renderEditor(initial);

    await user.type(screen.getByLabelText(labels.apiKey), 's3cret');

    const last = onOptionsChange.mock.lastCall![0];
    expect(last).toEqual({ ...initial, secureJsonData: { apiKey: 's3cret' } });
    expect(JSON.stringify(last.jsonData)).not.toContain('s3cret');
  });

  it('shows a saved key as configured and resets it', async () => {
    const initial = settings({ secureJsonFields: { apiKey: true } });
    const { onOptionsChange, user } = renderEditor(initial);

    expect(screen.getByLabelText(labels.apiKey)).toHaveValue('configured');
    expect(screen.getByLabelText(labels.apiKey)).toBeDisabled();
    await user.click(screen.getByRole('button', { name: 'Reset' }));

    expect(onOptionsChange).toHaveBeenLastCalledWith({
      ...initial,
      secureJsonFields: { apiKey: false },
      secureJsonData: { apiKey: '' },
    });
  });

  it('has live updates on by default and turns them off', async () => {
    const initial = settings({ jsonData: { url: 'http://livesync:3000' } });
    const { onOptionsChange, user } = renderEditor(initial);

    const toggle = screen.getByLabelText(labels.liveEnabled);
    expect(toggle).toBeChecked();
    await user.click(toggle);

    expect(onOptionsChange).toHaveBeenLastCalledWith({
      ...initial,
      jsonData: { url: 'http://livesync:3000', liveEnabled: false },
    });
  });
});
