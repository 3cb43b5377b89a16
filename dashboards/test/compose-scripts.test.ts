import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoPath, tempDir } from './helpers';

const exec = promisify(execFile);

interface Call {
  method: string;
  url: string;
  authorization: string;
  body: unknown;
}

/**
 * The part of Grafana's HTTP API the token bootstrap uses: service accounts, their tokens, and
 * `GET /api/org` answered for a token it issued. Admin requests need admin:secret.
 */
class FakeGrafana {
  readonly calls: Call[] = [];
  readonly accounts: Array<{ id: number; name: string; role: string }> = [];
  readonly tokens = new Map<string, number>();
  private readonly server: Server;

  constructor() {
    this.server = createServer((request, response) => {
      void this.handle(request).then(([status, body]) => {
        response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      });
    });
  }

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.close();
    await once(this.server, 'close');
  }

  private async handle(request: IncomingMessage): Promise<[number, unknown]> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const call = {
      method: request.method ?? '',
      url: request.url ?? '',
      authorization: request.headers.authorization ?? '',
      body: text ? (JSON.parse(text) as unknown) : undefined,
    };
    this.calls.push(call);
    if (call.method === 'GET' && call.url === '/api/org') {
      const token = call.authorization.replace(/^Bearer /, '');
      return this.tokens.has(token)
        ? [200, { id: 1, name: 'Main Org.' }]
        : [401, { message: 'invalid API key' }];
    }
    if (call.authorization !== `Basic ${Buffer.from('admin:secret').toString('base64')}`) {
      return [401, { message: 'Unauthorized' }];
    }
    const url = new URL(call.url, 'http://grafana');
    if (call.method === 'GET' && url.pathname === '/api/serviceaccounts/search') {
      const query = url.searchParams.get('query') ?? '';
      const found = this.accounts.filter((account) => account.name.includes(query));
      return [
        200,
        {
          totalCount: found.length,
          serviceAccounts: found.map((account) => ({
            ...account,
            uid: `sa-${account.id}`,
            login: `sa-1-${account.name}`,
            orgId: 1,
            isDisabled: false,
            tokens: 0,
            avatarUrl: '/avatar/x',
            accessControl: { 'serviceaccounts:read': true },
          })),
          page: 1,
          perPage: 1000,
        },
      ];
    }
    if (call.method === 'POST' && url.pathname === '/api/serviceaccounts') {
      const { name, role } = call.body as { name: string; role: string };
      const account = { id: this.accounts.length + 2, name, role };
      this.accounts.push(account);
      return [
        201,
        { ...account, uid: `sa-${account.id}`, login: `sa-1-${name}`, orgId: 1, isDisabled: false },
      ];
    }
    const tokenPath = /^\/api\/serviceaccounts\/(\d+)\/tokens$/.exec(url.pathname);
    if (call.method === 'POST' && tokenPath) {
      const accountId = Number(tokenPath[1]);
      if (!this.accounts.some((account) => account.id === accountId)) return [404, { message: 'not found' }];
      const key = `glsa_${this.tokens.size + 1}_secret`;
      this.tokens.set(key, accountId);
      return [200, { id: this.tokens.size, name: (call.body as { name: string }).name, key }];
    }
    return [404, { message: 'not found' }];
  }
}

describe('grafana-token.sh (the one-shot token bootstrap of docker-compose.yml)', () => {
  let grafana: FakeGrafana;
  let url: string;
  let temp: ReturnType<typeof tempDir>;
  let tokenFile: string;

  beforeEach(async () => {
    grafana = new FakeGrafana();
    url = await grafana.start();
    temp = tempDir('token');
    tokenFile = join(temp.dir, 'run/livesync/grafana-token');
  });

  afterEach(async () => {
    await grafana.stop();
    temp.remove();
  });

  const bootstrap = () =>
    exec('sh', [repoPath('provisioning/livesync/grafana-token.sh')], {
      env: {
        PATH: process.env['PATH'],
        GRAFANA_URL: url,
        GRAFANA_ADMIN_USER: 'admin',
        GRAFANA_ADMIN_PASSWORD: 'secret',
        SERVICE_ACCOUNT: 'livesync',
        TOKEN_FILE: tokenFile,
        TOKEN_OWNER: `${process.getuid?.()}:${process.getgid?.()}`,
      },
    });

  test('creates an Admin service account and its token, readable only by the service', async () => {
    const { stdout } = await bootstrap();
    expect(stdout).toContain('wrote a token');
    expect(grafana.accounts).toEqual([{ id: 2, name: 'livesync', role: 'Admin' }]);
    expect(readFileSync(tokenFile, 'utf8')).toBe('glsa_1_secret');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o400);
  });

  test('keeps a token Grafana still accepts: a restart creates nothing', async () => {
    await bootstrap();
    const calls = grafana.calls.length;
    const { stdout } = await bootstrap();
    expect(stdout).toContain('keeping it');
    expect(grafana.calls.slice(calls).map((call) => `${call.method} ${call.url}`)).toEqual(['GET /api/org']);
    expect(grafana.tokens.size).toBe(1);
  });

  test('reuses the existing account of that exact name when the token is gone', async () => {
    grafana.accounts.push(
      { id: 7, name: 'livesync-old', role: 'Viewer' },
      { id: 9, name: 'livesync', role: 'Admin' },
    );
    await bootstrap();
    expect(grafana.accounts).toHaveLength(2);
    expect(grafana.calls.map((call) => `${call.method} ${call.url}`)).toContain(
      'POST /api/serviceaccounts/9/tokens',
    );
    expect(readFileSync(tokenFile, 'utf8')).toBe('glsa_1_secret');
  });

  test('fails, writing nothing, when Grafana refuses the admin credentials', async () => {
    const failed = exec('sh', [repoPath('provisioning/livesync/grafana-token.sh')], {
      env: {
        PATH: process.env['PATH'],
        GRAFANA_URL: url,
        GRAFANA_ADMIN_PASSWORD: 'wrong',
        TOKEN_FILE: tokenFile,
      },
    });
    await expect(failed).rejects.toMatchObject({ code: expect.any(Number) });
    expect(() => statSync(tokenFile)).toThrow();
  });
});

describe('alert-sink.mjs (the webhook contact point of docker-compose.yml)', () => {
  test('prints one line per alert of a Grafana webhook notification', async () => {
    const sink = spawn(process.execPath, [repoPath('provisioning/alert-sink/alert-sink.mjs')], {
      env: { ...process.env, PORT: '0' },
    });
    try {
      let output = '';
      sink.stdout.setEncoding('utf8');
      const port = await new Promise<number>((resolve, reject) => {
        sink.once('exit', (code) => reject(new Error(`alert-sink exited (${code}): ${output}`)));
        sink.stdout.on('data', (chunk: string) => {
          output += chunk;
          const match = /listening on :(\d+)/.exec(output);
          if (match) resolve(Number(match[1]));
        });
      });
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/health`)).status).toBe(200);
      const notification = {
        status: 'firing',
        alerts: [
          {
            status: 'firing',
            labels: { alertname: 'LiveSync dataset older than its stale threshold', dataset: 'events' },
            annotations: { summary: 'Dataset events is 3m past its stale threshold' },
          },
        ],
      };
      const printed = new Promise<void>((resolve) =>
        sink.stdout.on('data', () => output.includes('dataset=events') && resolve()),
      );
      const response = await fetch(`${base}/alerts`, { method: 'POST', body: JSON.stringify(notification) });
      expect(response.status).toBe(204);
      await printed;
      expect(output).toMatch(
        /firing alertname=LiveSync dataset older than its stale threshold dataset=events Dataset events is 3m past/,
      );
      expect((await fetch(`${base}/alerts`, { method: 'POST', body: 'not json' })).status).toBe(400);
    } finally {
      const exited = once(sink, 'exit');
      sink.kill('SIGTERM');
      await exited;
    }
  });
});
