import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DataSourceStore,
  type StoredDataSource,
  instanceSettings,
  settingsDto,
} from '../../server/datasources';
import { joinUrlFragments } from '../../server/proxy';

const plugin = {
  id: 'livesync-datasource',
  name: 'LiveSync',
  type: 'datasource',
  info: { version: '1.0.0', logos: { small: 'img/logo.svg', large: 'img/logo.svg' } },
  routes: [{ path: 'livesync', url: '{{ .JsonData.url }}' }],
};

function stored(): StoredDataSource {
  return {
    id: 1,
    uid: 'livesync',
    orgId: 1,
    name: 'LiveSync',
    type: plugin.id,
    access: 'proxy',
    url: '',
    user: '',
    database: '',
    basicAuth: false,
    basicAuthUser: '',
    withCredentials: false,
    isDefault: true,
    jsonData: { url: 'http://svc' },
    secureJsonData: { apiKey: 'old' },
    readOnly: false,
    version: 1,
  };
}

test('never sends secrets back: only secureJsonFields', () => {
  const dto = settingsDto(stored(), plugin);
  assert.equal('secureJsonData' in dto, false);
  assert.deepEqual(dto.secureJsonFields, { apiKey: true });
  assert.equal(JSON.stringify(instanceSettings(stored(), plugin)).includes('old'), false);
});

test('a secret sent replaces the stored one; one not sent is kept; an empty one clears it', () => {
  const store = new DataSourceStore();
  store.add(stored());
  store.update('livesync', { jsonData: { url: 'http://other' }, version: 1 });
  assert.equal(store.get('livesync')?.secureJsonData['apiKey'], 'old');
  store.update('livesync', { secureJsonData: { apiKey: 'new' } });
  assert.equal(store.get('livesync')?.secureJsonData['apiKey'], 'new');
  const cleared = store.update('livesync', { secureJsonData: { apiKey: '' } });
  assert.deepEqual(
    (cleared.body as { datasource: { secureJsonFields: object } }).datasource.secureJsonFields,
    {},
  );
});

test('refuses a stale version, as Grafana does', () => {
  const store = new DataSourceStore();
  store.add({ ...stored(), version: 3 });
  assert.equal(store.update('livesync', { version: 2 }).status, 409);
  assert.equal(store.update('nope', {}).status, 404);
});

test('frontend settings point at the proxy and the module under public/plugins', () => {
  const settings = instanceSettings(stored(), plugin);
  assert.equal(settings.url, '/api/datasources/proxy/uid/livesync');
  assert.equal(settings.meta.module, 'public/plugins/livesync-datasource/module.js');
  assert.equal(settings.meta.info.logos.small, 'public/plugins/livesync-datasource/img/logo.svg');
  assert.equal('routes' in settings.meta, false);
});

test('joins URL parts with one slash, as Go util.JoinURLFragments', () => {
  assert.equal(joinUrlFragments('/', '/api/query'), '/api/query');
  assert.equal(joinUrlFragments('/base', 'api'), '/base/api');
  assert.equal(joinUrlFragments('/base/', ''), '/base/');
});
