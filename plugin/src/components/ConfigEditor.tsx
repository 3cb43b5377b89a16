import type { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { InlineField, InlineSwitch, Input, SecretInput, Stack, Text } from '@grafana/ui';
import type { ChangeEvent } from 'react';
import type { LiveSyncOptions, LiveSyncSecureOptions } from '../types';
import { selectors } from './selectors';

type Props = DataSourcePluginOptionsEditorProps<LiveSyncOptions, LiveSyncSecureOptions>;

const labels = selectors.configEditor;
const LABEL_WIDTH = 20;
const INPUT_WIDTH = 48;

const isHttpUrl = (value: string) => /^https?:\/\/[^\s/]+/i.test(value.trim());

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields, secureJsonData } = options;
  const url = jsonData.url ?? '';

  const setJsonData = (patch: Partial<LiveSyncOptions>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, ...patch } });

  return (
    <Stack direction="column" gap={1}>
      <Text element="h3">Connection</Text>
      <InlineField
        label={labels.url}
        labelWidth={LABEL_WIDTH}
        interactive
        tooltip="The LiveSync service's root URL as Grafana's server reaches it, e.g. http://livesync:3000. Browsers never call it: Grafana proxies every request."
        invalid={url !== '' && !isHttpUrl(url)}
        error="An http:// or https:// URL"
      >
        <Input
          id="livesync-config-url"
          width={INPUT_WIDTH}
          placeholder="http://livesync:3000"
          value={url}
          onChange={(e: ChangeEvent<HTMLInputElement>) => setJsonData({ url: e.currentTarget.value })}
        />
      </InlineField>
      <InlineField
        label={labels.apiKey}
        labelWidth={LABEL_WIDTH}
        interactive
        tooltip="Sent as Authorization: Bearer <key> by Grafana's proxy. Stored encrypted; the browser never sees it again."
      >
        <SecretInput
          id="livesync-config-api-key"
          width={INPUT_WIDTH}
          placeholder="The service's API key, if it has one"
          isConfigured={Boolean(secureJsonFields?.apiKey)}
          value={secureJsonData?.apiKey ?? ''}
          onChange={(e: ChangeEvent<HTMLInputElement>) =>
            onOptionsChange({
              ...options,
              secureJsonData: { ...secureJsonData, apiKey: e.currentTarget.value },
            })
          }
          onReset={() =>
            onOptionsChange({
              ...options,
              secureJsonFields: { ...secureJsonFields, apiKey: false },
              secureJsonData: { ...secureJsonData, apiKey: '' },
            })
          }
        />
      </InlineField>
      <Text element="h3">Live updates</Text>
      <InlineField
        label={labels.liveEnabled}
        labelWidth={LABEL_WIDTH}
        tooltip="Metrics panels whose range ends at now follow the service's changes (over Grafana Live on this data source's own channels, or the service's server-sent events when Grafana Live is off) instead of waiting for the next refresh. Off turns every query's Live toggle off."
      >
        <InlineSwitch
          id="livesync-config-live-enabled"
          value={jsonData.liveEnabled ?? true}
          onChange={(e: ChangeEvent<HTMLInputElement>) =>
            setJsonData({ liveEnabled: e.currentTarget.checked })
          }
        />
      </InlineField>
    </Stack>
  );
}
