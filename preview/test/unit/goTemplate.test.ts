import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TemplateError, interpolateString } from '../../server/goTemplate';

const data = {
  JsonData: { url: 'http://svc:3000', n: 2, flag: true, none: null },
  SecureJsonData: { apiKey: 's3cret' },
};

test('fills .JsonData and .SecureJsonData as a route template does', () => {
  assert.equal(interpolateString('{{ .JsonData.url }}', data), 'http://svc:3000');
  assert.equal(interpolateString('Bearer {{ .SecureJsonData.apiKey }}', data), 'Bearer s3cret');
  assert.equal(interpolateString('{{.JsonData.n}}/{{ .JsonData.flag }}', data), '2/true');
});

test('prints a missing key as Go does, and orEmpty as nothing', () => {
  assert.equal(interpolateString('Bearer {{ .SecureJsonData.missing }}', data), 'Bearer <no value>');
  assert.equal(interpolateString('{{ .JsonData.none }}', data), '<nil>');
  assert.equal(interpolateString('[{{ orEmpty .SecureJsonData.missing }}]', data), '[]');
  assert.equal(interpolateString('[{{ orEmpty .JsonData.none }}]', data), '[]');
});

test('refuses what it does not understand, with Grafana words', () => {
  assert.throws(() => interpolateString('{{ .Other.x }}', data), TemplateError);
  assert.throws(() => interpolateString('{{ printf "%s" .JsonData.url }}', data), /could not parse template/);
});
