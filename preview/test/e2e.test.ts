/**
 * The built plugin in a real browser, beside Grafana's own packages, against the real service
 * (backend/dist/main.js with Redis and a PostgreSQL upstream), through the preview's stand-ins
 * for Grafana's server: settings API, /api/ds/query, the data source's health, resources and ds/
 * Live channels answered by the plugin's built Go binary (through grafana-host), and the
 * data-source proxy for the event streams of a Grafana without Live.
 *
 * Needs `npm run build` (the root `e2e` script runs it), Redis, PostgreSQL and Debian's
 * Chromium. Waits are on conditions, never on time.
 */
import { selectors } from '@grafana/e2e-selectors';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Redis from 'ioredis';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { ROOT, type Service, demoConfig, freePort, startService } from '../scripts/serve';
import { panelIds, testIds } from '../src/testIds';
import { type PageProblems, launchBrowser, openPage } from './support/browser';
import { ThrowawayRedis } from '../../backend/test/servers';
import { Upstream } from './support/upstream';
import { waitUntil } from './support/wait';

/**
 * Where the screenshots go: preview/test-results/ (ignored by git), so a test run changes no
 * tracked file. `npm run screenshots` runs the same flow with --update-docs-img to rewrite the
 * README's pictures in docs/img/.
 */
const SCREENSHOTS = process.argv.includes('--update-docs-img')
  ? path.join(ROOT, 'docs', 'img')
  : path.join(ROOT, 'preview', 'test-results');
const MIN = 60_000;
/** Grafana's palette red and green in the dark theme, as the stat's background takes them. */
const RED = '#F2495C';
const GREEN = '#73BF69';

const apiKey = randomBytes(12).toString('hex');
const redisPrefix = `preview-e2e-${randomBytes(4).toString('hex')}`;
/** The service's own Redis: a test flushes it, which a shared server must never see. */
const redis = new ThrowawayRedis();
let admin: Redis;
const upstream = new Upstream();
let service: Service;
let browser: { context: BrowserContext; close: () => Promise<void> };

/** Rows already upstream when the service starts: three countries, whole amounts, within the hour. */
const now = Date.now();
const SEED = [
  ...Array.from({ length: 3 }, () => ({ ts: new Date(now - 40 * MIN), country: 'US', amount: 10 })),
  ...Array.from({ length: 2 }, () => ({ ts: new Date(now - 35 * MIN), country: 'DE', amount: 20 })),
  { ts: new Date(now - 30 * MIN), country: 'FR', amount: 30 },
  ...Array.from({ length: 2 }, () => ({ ts: new Date(now - 12 * MIN), country: 'US', amount: 5 })),
  { ts: new Date(now - 8 * MIN), country: 'DE', amount: 7 },
];

before(async () => {
  await upstream.create();
  await upstream.insert(SEED);
  await redis.start();
  admin = new Redis(redis.url);
  const port = await freePort();
  service = await startService({
    port,
    config: {
      server: { host: '127.0.0.1', port, apiKey, rateLimitPerMinute: 0 },
      redis: { url: redis.url, prefix: redisPrefix },
      // No grafanaLive: live panels follow the plugin backend's ds/ streams, which need no Grafana token.
      datasets: [
        {
          name: 'events',
          source: {
            kind: 'postgres',
            url: upstream.serviceUrl(),
            table: upstream.table,
            id: 'id',
            time: 'ts',
            cursor: 'updated_at',
            deleted: 'deleted_at',
            statementTimeout: '5s',
          },
          dimensions: ['country', 'device'],
          metrics: ['amount', 'duration_ms'],
          distinct: ['user_id'],
          resolution: '1m',
          sync: { interval: '1s', batchSize: 1000, lag: '0s', lookback: '5s' },
          staleAfter: '3s',
          retention: '7d',
        },
      ],
    },
  });
  // The first sync has run once the service reports the seed.
  await waitUntil('the first sync', async () => (await apiTotals())['US'] === 5, { timeoutMs: 30_000 }).catch(
    (err: unknown) => {
      throw new Error(`${String(err)}\n--- service output ---\n${service.output()}`);
    },
  );
  // As an admin would: the data source's API key, saved once through Grafana's API.
  await saveApiKey(apiKey);
  browser = await launchBrowser();
  await mkdir(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await service?.stop();
  await upstream.drop();
  admin?.disconnect();
  await redis.stop();
});

describe('the preview', () => {
  test('loads the built plugin through the AMD loader, beside Grafana 13 packages', async () => {
    const { page, problems } = await open('');
    const info = page.getByTestId(testIds.pluginInfo);
    await waitFor(
      page,
      (id) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-module'),
      testIds.pluginInfo,
    );
    assert.equal(await info.getAttribute('data-module'), 'public/plugins/livesync-datasource/module.js');
    const deps = (await info.getAttribute('data-deps'))?.split(',') ?? [];
    for (const dep of ['@grafana/data', '@grafana/runtime', '@grafana/ui', 'react', 'rxjs'])
      assert.ok(deps.includes(dep), dep);
    // The panels ran the plugin's queries: the table shows the seed.
    await panelState(page, panelIds.eventsTable, 'Done');
    assert.deepEqual(problems.errors, []);
    await page.close();
  });

  test('"Save & test" reports success, and a wrong API key in words', async () => {
    const { page } = await open('tab=datasource');
    const alert = page.getByTestId(selectors.pages.DataSource.alert);
    const saveAndTest = page.getByTestId(selectors.pages.DataSource.saveAndTest);
    try {
      await typeApiKey(page, apiKey);
      await saveAndTest.click();
      await alert.filter({ hasText: /^Connected to LiveSync/ }).waitFor();
      // It names the store the service really uses: this Redis, by its URL (no password in it).
      assert.match(
        (await alert.textContent()) ?? '',
        new RegExp(
          `^Connected to LiveSync \\(store: Redis at ${redis.url.replaceAll('.', '\\.')}, reachable\\); 1 dataset up to date \\(events\\)`,
        ),
      );
      await page.screenshot({ path: path.join(SCREENSHOTS, 'preview-datasource.png') });

      await typeApiKey(page, 'not-the-key');
      await saveAndTest.click();
      await alert.filter({ hasNotText: /^Connected to LiveSync/ }).waitFor();
      const text = (await alert.textContent()) ?? '';
      // Grafana's proxy turns the service's 401 into "400 Authentication to data source failed":
      // the plugin must still say that the API key is the problem.
      assert.match(text, /API key/, `the error should name the API key; it says: ${text}`);
    } finally {
      await saveApiKey(apiKey);
      await page.close();
    }
  });

  test('a metrics query shows what the service answers for the same request', async () => {
    const { page } = await open('');
    const panel = await panelState(page, panelIds.eventsTable, 'Done');
    const request = await requestOf(panel);
    const body = await serviceQuery({
      range: { from: request.from, to: request.to },
      intervalMs: request.intervalMs,
      maxDataPoints: request.maxDataPoints,
      queries: [
        {
          refId: 'A',
          dataset: 'events',
          aggregations: ['count', 'sum(amount)'],
          groupBy: ['country'],
          format: 'table',
        },
      ],
    });
    const frame = body.results.A.frames[0]!;
    const names = frame.schema.fields.map((f) => f.name);
    const expected = frame.data.values[0]!.map((_, row) =>
      frame.schema.fields.map((field, col) => display(field.type, frame.data.values[col]!, row)),
    );
    const table = await readTable(panel);
    assert.deepEqual(table.header, names);
    assert.deepEqual(table.rows, expected);
    assert.ok(expected.length >= 3, 'the seed fills at least three rows');
    await page.close();
  });

  test('after upstream data changes, a manual refresh shows the new value, not a cached one', async () => {
    // A fixed range: the refresh sends the very request it sent before, so only fresh data can change its answer.
    const from = Math.floor((Date.now() - 2 * 60 * MIN) / MIN) * MIN;
    const to = from + 4 * 60 * MIN;
    const { page } = await open(`from=${from}&to=${to}`);
    const panel = await panelState(page, panelIds.eventsTable, 'Done');
    const request = await requestOf(panel);
    const before = await countryTotal(panel, 'FR');
    await upstream.insert([{ ts: new Date(Date.now() - 20 * MIN), country: 'FR', amount: 30 }]);
    await waitUntil(
      'the service to answer the new row',
      async () => (await apiTotals(request))['FR'] === before + 1,
    );
    // Nothing refreshed the panel yet: it still shows what it had.
    assert.equal(await countryTotal(panel, 'FR'), before);
    assert.equal(await requestOf(panel).then((r) => r.id), request.id);
    await page.getByTestId(selectors.components.RefreshPicker.runButtonV2).click();
    await waitFor(
      page,
      ({ id, requestId }) =>
        document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-request-id') !== requestId,
      { id: testIds.panel(panelIds.eventsTable), requestId: request.id },
    );
    await panelState(page, panelIds.eventsTable, 'Done');
    assert.equal(await countryTotal(panel, 'FR'), before + 1);
    await page.close();
  });

  test('a row inserted upstream appears on the live panel without a refresh (Grafana Live, ds/ channel)', async () => {
    const requests = await liveRowAppears('', 'NZ');
    // The panel asked Grafana's /api/ds/query, which the plugin's own binary answered, and followed
    // the data source's ds/ channel, which the binary's RunStream fed: the service pushes nothing
    // to Grafana here (no grafanaLive in its config) and the plugin used no proxy route.
    assert.ok(
      requests.some((url) => url.includes('/preview/api/ds/query?ds_type=livesync-datasource')),
      'queried through /api/ds/query',
    );
    assert.ok(
      requests.some((url) => url.includes('/api/live/preview/subscribe')),
      'subscribed over Grafana Live',
    );
    assert.ok(!requests.some((url) => url.includes('/api/datasources/proxy/')), 'no data-source proxy');
  });

  test("a row inserted upstream appears without a refresh in a Grafana without Live (the service's events)", async () => {
    const requests = await liveRowAppears('live=off', 'NO');
    // The plugin read the service's events through the data-source proxy instead.
    assert.ok(
      requests.some((url) =>
        url.includes('/api/datasources/proxy/uid/livesync/livesync/api/datasets/events/events'),
      ),
      'followed the service events through the proxy',
    );
    assert.ok(!requests.some((url) => url.includes('/api/live/preview/')), 'no Grafana Live');
  });

  test('a bad query shows a readable error on its panel only', async () => {
    const { page, problems } = await open(`editPanel=${panelIds.eventsTable}`);
    const edited = await panelState(page, panelIds.eventsTable, 'Done');
    const aggregations = page.getByTestId('livesync-query-editor').locator('input[id$="-aggregations"]');
    await aggregations.click();
    await aggregations.fill('sum(nope)');
    await page.getByRole('option', { name: /sum\(nope\)/ }).click();
    await panelState(page, panelIds.eventsTable, 'Error');
    const status = edited.getByTestId(selectors.components.Panels.Panel.status('error'));
    await status.hover();
    const tooltip = page.getByRole('tooltip');
    await tooltip.waitFor();
    const message = (await tooltip.textContent()) ?? '';
    assert.match(message, /nope/, `the error should name what is wrong: ${message}`);
    assert.doesNotMatch(message, /Internal Server Error|undefined|\[object Object\]/);
    // Every other panel still shows its data, without an error.
    for (const id of [panelIds.eventsByCountry, panelIds.dataAge, panelIds.syncStatus]) {
      const other = page.getByTestId(testIds.panel(id));
      assert.equal(
        await other.getByTestId(selectors.components.Panels.Panel.status('error')).count(),
        0,
        `panel ${id}`,
      );
      assert.notEqual(await other.getAttribute('data-state'), 'Error', `panel ${id}`);
    }
    assert.deepEqual(problems.errors, []);
    await page.close();
  });

  test('with auto-refresh off, a broken upstream turns the open panels stale on time, and its return clears them', async (t) => {
    // The default: no `refresh` in the URL, so nothing refreshes the panels but their own live updates.
    const { page } = await open('');
    const events = page.getByTestId(testIds.panel(panelIds.eventsByCountry));
    const status = page.getByTestId(testIds.panel(panelIds.syncStatus));
    const stat = page.getByTestId(testIds.panel(panelIds.dataAge)).getByTestId(testIds.stat);
    const notice = events.getByTestId(testIds.notice('warning'));
    await events.getByText('count US', { exact: true }).waitFor();
    await waitForAttribute(stat, 'data-color', GREEN, 20_000);
    assert.equal(await notice.count(), 0);
    const requests = await requestIds(page);

    const cut = Date.now();
    await upstream.relay.stop();
    try {
      await notice.waitFor({ timeout: 20_000 });
      t.diagnostic(
        `measured: the stale notice showed ${Date.now() - cut} ms after the upstream broke (staleAfter 3 s)`,
      );
      await waitForAttribute(stat, 'data-color', RED, 20_000);
      t.diagnostic(`measured: the data-age stat turned red ${Date.now() - cut} ms after the upstream broke`);
      await status
        .getByText(/^(backoff|failing)$/)
        .first()
        .waitFor({ timeout: 20_000 });
      await notice.hover();
      const tooltip = page.getByRole('tooltip');
      await tooltip.waitFor();
      assert.match(
        (await tooltip.textContent()) ?? '',
        /events: last synced .* ago; threshold 3 s; last error: .*/,
      );
      await page.screenshot({ path: path.join(SCREENSHOTS, 'preview-stale.png') });
      await page.mouse.move(0, 0);
    } finally {
      await upstream.relay.start();
    }
    const restored = Date.now();
    // A blip costs about its own length: the first retry after it syncs.
    await notice.waitFor({ state: 'detached', timeout: 20_000 });
    await waitForAttribute(stat, 'data-color', GREEN, 20_000);
    t.diagnostic(`measured: green again ${Date.now() - restored} ms after the upstream came back`);
    await status.getByText('idle', { exact: true }).first().waitFor({ timeout: 20_000 });
    // All of it without a single refresh: every panel still shows its first request.
    assert.deepEqual(await requestIds(page), requests);

    // The outage is one annotated region, from the first failed run to the recovery, not a mark per run.
    const annotations = await serviceGet<Array<{ time: number; timeEnd: number; tags: string[] }>>(
      `/api/annotations?dataset=events&from=${cut - MIN}&to=${Date.now()}`,
    );
    assert.deepEqual(
      annotations.map((a) => a.tags),
      [['sync', 'failure', 'events']],
    );
    assert.ok(annotations[0]!.time >= cut && annotations[0]!.timeEnd <= Date.now());
    await page.close();
  });

  test('with auto-refresh off, a renamed table shows as failing within a second, and "sync now" recovers at once', async (t) => {
    const { page } = await open('');
    const events = page.getByTestId(testIds.panel(panelIds.eventsByCountry));
    const status = page.getByTestId(testIds.panel(panelIds.syncStatus));
    const notice = events.getByTestId(testIds.notice('warning'));
    await events.getByText('count US', { exact: true }).waitFor();
    await status.getByText('idle', { exact: true }).first().waitFor({ timeout: 20_000 });

    const table = await upstream.rename();
    let restored = false;
    try {
      await status.getByText('failing', { exact: true }).first().waitFor({ timeout: 20_000 });
      const shownAt = Date.now();
      await notice.waitFor({ timeout: 5_000 });
      const { status: failed } = await serviceGet<{
        status: { state: string; lastError: { message: string; class: string; at: number } };
      }>('/api/datasets/events');
      assert.equal(failed.state, 'failing');
      assert.equal(failed.lastError.class, 'permanent');
      t.diagnostic(
        `measured: "failing" showed ${shownAt - failed.lastError.at} ms after the failed run ended`,
      );
      await notice.hover();
      assert.match((await page.getByRole('tooltip').textContent()) ?? '', /last error: .*does not exist/);
      await page.mouse.move(0, 0);

      // Fixed: no need to wait out the permanent-error wait (5 min); "sync now" tries at once.
      await table.restore();
      restored = true;
      const fixed = Date.now();
      const response = await fetch(`${service.url}/api/datasets/events/sync`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}` },
      });
      assert.equal(response.status, 200, await response.text());
      await status.getByText('idle', { exact: true }).first().waitFor({ timeout: 10_000 });
      await notice.waitFor({ state: 'detached', timeout: 10_000 });
      t.diagnostic(`measured: idle and no notice ${Date.now() - fixed} ms after "sync now"`);
    } finally {
      if (!restored) await table.restore();
    }
    await page.close();
  });

  test('with auto-refresh off, a flushed store shows the incomplete notice on open panels until the resync catches up', async (t) => {
    const { page } = await open('');
    const events = page.getByTestId(testIds.panel(panelIds.eventsByCountry));
    const age = page.getByTestId(testIds.panel(panelIds.dataAge));
    const notice = events.getByTestId(testIds.notice('warning'));
    await events.getByText('count US', { exact: true }).waitFor();
    await waitForAttribute(age.getByTestId(testIds.stat), 'data-color', GREEN, 20_000);
    assert.equal(await notice.count(), 0);
    const requests = await requestIds(page);

    // The upstream table is locked: the resync after the flush cannot read it, its runs fail.
    const unlock = await upstream.lock();
    try {
      const flushed = Date.now();
      await admin.flushall();
      await notice.waitFor({ timeout: 10_000 });
      t.diagnostic(`measured: the incomplete notice showed ${Date.now() - flushed} ms after FLUSHALL`);
      await notice.hover();
      const tooltip = page.getByRole('tooltip');
      await tooltip.waitFor();
      assert.match(
        (await tooltip.textContent()) ?? '',
        /^events: resyncing from the start after the store lost its data.*; totals are incomplete until it catches up/,
      );
      await page.mouse.move(0, 0);
      await age.getByTestId(testIds.notice('warning')).waitFor();
      // A resync run fails (the lock outlasts its statement timeout): the notice stays.
      await waitUntil(
        'a failed resync run',
        async () => {
          const { status } = await serviceGet<{
            status: { incomplete: boolean; lastError: unknown; state: string };
          }>('/api/datasets/events');
          return status.incomplete && status.state !== 'resyncing' && status.lastError !== null;
        },
        { timeoutMs: 20_000 },
      );
      assert.equal(await notice.count(), 1);
      await notice.hover();
      assert.match((await page.getByRole('tooltip').textContent()) ?? '', /totals are incomplete/);
      await page.mouse.move(0, 0);
    } finally {
      await unlock();
    }
    const unlocked = Date.now();
    await notice.waitFor({ state: 'detached', timeout: 30_000 });
    t.diagnostic(
      `measured: the notice went ${Date.now() - unlocked} ms after the upstream could be read again`,
    );
    await events.getByText('count US', { exact: true }).waitFor();
    assert.deepEqual(await requestIds(page), requests);
    await page.close();
  });
});

describe('the preview on the demo dataset, as `npm start` shows it', () => {
  let demo: Service;
  before(async () => {
    const port = await freePort();
    demo = await startService({ port, config: demoConfig(port, randomBytes(12).toString('hex')) });
  });
  after(async () => demo?.stop());

  test('shows live panels over the demo data (screenshots for the README)', async () => {
    const { page, problems } = await openPage(browser.context);
    await page.goto(demo.url);
    assert.equal(new URL(page.url()).pathname, '/preview/');
    await panelState(page, panelIds.eventsByCountry, 'Streaming');
    await panelState(page, panelIds.eventsTable, 'Done');
    // Freshness and status tick on their own: they stream.
    for (const id of [panelIds.dataAge, panelIds.syncStatus]) await panelState(page, id, 'Streaming');
    await page
      .getByTestId(testIds.panel(panelIds.eventsByCountry))
      .getByText('count US', { exact: true })
      .waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'preview-dashboard.png') });

    await page.getByTestId(testIds.tab('explore')).click();
    const explore = page.getByTestId(testIds.panel(panelIds.explore));
    await waitFor(
      page,
      (id) => !!document.querySelector(`[data-testid="${id}"] .u-over`),
      testIds.panel(panelIds.explore),
    );
    assert.match((await explore.textContent()) ?? '', /count US/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'preview-explore.png') });

    // "Save & test" names the store this service really uses.
    await page.getByTestId(testIds.tab('datasource')).click();
    await page.getByTestId(selectors.pages.DataSource.saveAndTest).click();
    const alert = page.getByTestId(selectors.pages.DataSource.alert);
    await alert.filter({ hasText: /^Connected to LiveSync/ }).waitFor();
    assert.match(
      (await alert.textContent()) ?? '',
      /^Connected to LiveSync \(store: embedded memory, so its data is lost when the service restarts and is synced again\)/,
    );
    assert.deepEqual(problems.errors, []);
    await page.close();
  });
});

// --- the page ---------------------------------------------------------------------------------

async function open(
  query: string,
  onRequest?: (url: string) => void,
): Promise<{ page: Page; problems: PageProblems }> {
  const { page, problems } = await openPage(browser.context);
  if (onRequest) page.on('request', (request) => onRequest(request.url()));
  await page.goto(`${service.previewUrl}?var-dataset=events${query ? `&${query}` : ''}`);
  await page.getByTestId(testIds.pluginInfo).waitFor();
  return { page, problems };
}

/** Waits for a condition in the page (`fn` runs there, with `arg`). */
function waitFor<A>(page: Page, fn: (arg: A) => unknown, arg: A, timeout = 20_000) {
  return page.waitForFunction(fn as (arg: unknown) => unknown, arg as unknown, { timeout, polling: 100 });
}

async function waitForAttribute(
  locator: Locator,
  name: string,
  value: string,
  timeout: number,
): Promise<void> {
  const handle = await locator.elementHandle({ timeout });
  if (!handle) throw new Error(`no element for ${name}`);
  await locator
    .page()
    .waitForFunction(
      ({ element, name, value }) => element.getAttribute(name) === value,
      { element: handle, name, value },
      {
        timeout,
        polling: 100,
      },
    )
    .catch(async (err: unknown) => {
      throw new Error(
        `${name} stayed ${await locator.getAttribute(name)}, expected ${value}: ${String(err)}`,
      );
    });
}

/** A panel, once its data is in the given state. */
async function panelState(page: Page, id: number, state: string): Promise<Locator> {
  const panel = page.getByTestId(testIds.panel(id));
  await waitFor(
    page,
    ({ testId, state }) =>
      document.querySelector(`[data-testid="${testId}"]`)?.getAttribute('data-state') === state,
    { testId: testIds.panel(id), state },
  );
  return panel;
}

/** The request behind what every panel of the dashboard draws: a refresh would change them. */
async function requestIds(page: Page): Promise<Record<number, string | null>> {
  const ids: Record<number, string | null> = {};
  for (const id of [panelIds.eventsByCountry, panelIds.dataAge, panelIds.syncStatus, panelIds.eventsTable])
    ids[id] = await page.getByTestId(testIds.panel(id)).getAttribute('data-request-id');
  return ids;
}

/** The request behind what a panel draws (the preview writes it on the panel). */
async function requestOf(panel: Locator) {
  const attr = async (name: string) => Number(await panel.getAttribute(name));
  return {
    id: (await panel.getAttribute('data-request-id')) ?? '',
    from: await attr('data-range-from'),
    to: await attr('data-range-to'),
    intervalMs: await attr('data-interval-ms'),
    maxDataPoints: await attr('data-max-data-points'),
  };
}

/** The header and rows of a panel's @grafana/ui Table, as rendered. */
async function readTable(panel: Locator): Promise<{ header: string[]; rows: string[][] }> {
  const header = (await panel.getByRole('columnheader').allTextContents()).map((t) => t.trim());
  const body = panel.getByTestId(selectors.components.Panels.Visualization.Table.body);
  const rows: string[][] = [];
  for (const row of await body.getByRole('row').all()) {
    rows.push((await row.getByRole('cell').allTextContents()).map((t) => t.trim()));
  }
  // The table draws only the rows that fit: a check on fewer rows than the data has would miss some.
  const total = Number(await panel.getAttribute('data-rows'));
  assert.equal(
    rows.length,
    total,
    `the table shows ${rows.length} of its ${total} rows: make the panel taller`,
  );
  return { header, rows };
}

/** The sum of a country's `count` column in the per-hour table. */
async function countryTotal(panel: Locator, country: string): Promise<number> {
  const { header, rows } = await readTable(panel);
  const c = header.indexOf('country');
  const n = header.indexOf('count');
  return rows.filter((r) => r[c] === country).reduce((sum, r) => sum + Number(r[n]), 0);
}

/**
 * A field value as Grafana's default display shows it in a table: plain numbers; times in local
 * time, with milliseconds when the field's first and last values are less than a minute apart
 * (@grafana/data's display processor).
 */
function display(type: string, values: unknown[], row: number): string {
  const value = values[row];
  if (type !== 'time') return String(value);
  const first = Number(values[0]);
  const last = Number(values[values.length - 1]);
  const showMs = values.length > 1 && Math.abs(last - first) / 1000 < 60;
  const d = new Date(Number(value));
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const text = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return showMs ? `${text}.${p(d.getMilliseconds(), 3)}` : text;
}

async function typeApiKey(page: Page, key: string): Promise<void> {
  const input = page.locator('#livesync-config-api-key');
  await input.waitFor();
  const reset = page.getByRole('button', { name: 'Reset' });
  if (await reset.isVisible()) await reset.click();
  await input.fill(key);
}

/** A new row arrives upstream: the live panel must show its country. Returns the URLs the page requested. */
async function liveRowAppears(query: string, country: string): Promise<string[]> {
  const requests: string[] = [];
  const { page, problems } = await open(query, (url) => requests.push(url));
  const panel = await panelState(page, panelIds.eventsByCountry, 'Done');
  const request = await requestOf(panel);
  await panel.getByText('count US', { exact: true }).waitFor();
  assert.equal(await panel.getByText(`count ${country}`, { exact: true }).count(), 0);
  await upstream.insert([{ ts: new Date(), country, amount: 1 }]);
  // A few sync intervals (1 s each), the push and the plugin's fetch of the touched minutes.
  await panel.getByText(`count ${country}`, { exact: true }).waitFor({ timeout: 15_000 });
  // The same request, still running: the panel was updated, not refreshed, and it says it is streaming.
  assert.equal((await requestOf(panel)).id, request.id);
  assert.equal(await panel.getAttribute('data-state'), 'Streaming');
  assert.deepEqual(problems.errors, []);
  await page.close();
  return requests;
}

// --- the service's API --------------------------------------------------------------------------

interface QueryResponse {
  results: Record<
    string,
    {
      frames: Array<{
        schema: { fields: Array<{ name: string; type: string }> };
        data: { values: unknown[][] };
      }>;
    }
  >;
}

async function serviceQuery(body: unknown): Promise<{ results: { A: QueryResponse['results'][string] } }> {
  const response = await fetch(`${service.url}/api/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as { results: { A: QueryResponse['results'][string] } };
}

async function serviceGet<T>(route: string): Promise<T> {
  const response = await fetch(`${service.url}${route}`, { headers: { authorization: `Bearer ${apiKey}` } });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as T;
}

/** Count per country over a range (the last hour by default), straight from the service. */
async function apiTotals(range?: { from: number; to: number }): Promise<Record<string, number>> {
  const to = range?.to ?? Date.now();
  const from = range?.from ?? to - 60 * MIN;
  const body = await serviceQuery({
    range: { from, to },
    intervalMs: 60 * MIN,
    maxDataPoints: 100,
    queries: [
      { refId: 'A', dataset: 'events', aggregations: ['count'], groupBy: ['country'], format: 'table' },
    ],
  });
  const frame = body.results.A.frames[0];
  const totals: Record<string, number> = {};
  if (!frame) return totals;
  const names = frame.schema.fields.map((f) => f.name);
  const country = frame.data.values[names.indexOf('country')] ?? [];
  const count = frame.data.values[names.indexOf('count')] ?? [];
  country.forEach((c, i) => {
    totals[String(c)] = (totals[String(c)] ?? 0) + Number(count[i]);
  });
  return totals;
}

/** Sets the data source's API key through the preview's Grafana API, as provisioning would. */
async function saveApiKey(key: string): Promise<void> {
  const url = `${service.previewUrl}api/datasources/uid/livesync`;
  const current = (await (await fetch(url)).json()) as Record<string, unknown>;
  const response = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...current, secureJsonData: { apiKey: key } }),
  });
  assert.equal(response.status, 200, await response.text());
}
