import { DataSourcePlugin, type DataSourceSettings } from '@grafana/data';
import { render, screen } from '@testing-library/react';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type ComponentType, createElement } from 'react';
import { type DataSource, ROUTE_PATH } from '../src/datasource';
import type { LiveSyncOptions } from '../src/types';
import { PROXY, instanceSettings } from './helpers/fixtures';
import { pluginJsonProblems } from './helpers/pluginJson';

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');

/** What Grafana provides to plugins at run time: module.js may depend on these and nothing else. */
const ALLOWED_EXTERNALS = new Set([
  '@grafana/data',
  '@grafana/ui',
  '@grafana/runtime',
  'react',
  'react-dom',
  'react/jsx-runtime',
  'rxjs',
  'rxjs/operators',
  'lodash',
  '@emotion/css',
  '@emotion/react',
]);

const read = (file: string) => readFileSync(path.join(dist, file), 'utf8');
const readJson = (file: string) => JSON.parse(read(file));

beforeAll(() => {
  // Build here, so this suite always checks what the current sources produce.
  execFileSync(process.execPath, [path.join(root, 'build.mjs')], { cwd: root, stdio: 'pipe' });
}, 60_000);

describe('dist/', () => {
  it.each([
    'module.js',
    'module.js.map',
    'plugin.json',
    'img/logo.svg',
    'README.md',
    'CHANGELOG.md',
    'LICENSE',
  ])('has %s', (file) => {
    expect(existsSync(path.join(dist, file))).toBe(true);
  });

  it('ships README, CHANGELOG and LICENSE as written', () => {
    for (const file of ['README.md', 'CHANGELOG.md', 'LICENSE']) {
      expect(read(file)).toBe(readFileSync(path.join(root, file), 'utf8'));
    }
    expect(read('LICENSE')).toContain('Apache License');
    expect(read('README.md')).toContain('type: livesync-datasource');
  });
});

describe('module.js', () => {
  const DEFINE = /^define\((\[[^\]]*\]), function \(([^)]*)\) \{\n/;

  it('is an AMD module whose dependencies are only what Grafana provides', () => {
    const match = read('module.js').match(DEFINE);
    expect(match).not.toBeNull();
    const deps: string[] = JSON.parse(match![1]!);
    expect(deps).toEqual(
      expect.arrayContaining(['@grafana/data', '@grafana/ui', '@grafana/runtime', 'react']),
    );
    expect(deps.filter((d) => !ALLOWED_EXTERNALS.has(d))).toEqual([]);
    expect(match![2]!.split(', ')).toHaveLength(deps.length);
  });

  it('bundles none of the packages Grafana provides', () => {
    // The source map lists every file esbuild bundled.
    const sources: string[] = readJson('module.js.map').sources;
    const provided =
      /node_modules\/(@grafana\/(data|ui|runtime)|react|react-dom|rxjs|lodash|@emotion\/[a-z]+)\//;
    expect(sources.filter((s) => provided.test(s))).toEqual([]);
    expect(sources.filter((s) => s.startsWith('../src/')).length).toBeGreaterThan(5);
  });

  it('uses no React API that React 19 removed', () => {
    const code = read('module.js');
    for (const api of [
      'defaultProps',
      'contextTypes',
      'childContextTypes',
      'getChildContext',
      'findDOMNode',
      'propTypes',
    ]) {
      expect(code).not.toContain(api);
    }
    expect(code).not.toMatch(/\bref:"[^"]*"/);
  });

  it('loads through define() with the real packages and exports the data source plugin', async () => {
    let definition:
      { deps: string[]; factory: (...modules: unknown[]) => Record<string, unknown> } | undefined;
    const define = (deps: string[], factory: (...modules: unknown[]) => Record<string, unknown>) => {
      definition = { deps, factory };
    };
    new Function('define', read('module.js'))(define);
    expect(definition).toBeDefined();
    const exports = definition!.factory(...definition!.deps.map((dep) => jest.requireActual(dep)));

    const plugin = exports.plugin as DataSourcePlugin<DataSource>;
    expect(plugin).toBeInstanceOf(DataSourcePlugin);
    expect(plugin.components.QueryEditor).toBeDefined();
    const ds = new plugin.DataSourceClass(instanceSettings());
    expect(ds.url).toBe(PROXY);
    expect(ds.annotations).toHaveProperty('QueryEditor');

    // The bundled editor renders with the real @grafana/ui passed in through define().
    const ConfigEditor = plugin.components.ConfigEditor as unknown as ComponentType<{
      options: Partial<DataSourceSettings<LiveSyncOptions>>;
      onOptionsChange: () => void;
    }>;
    render(
      createElement(ConfigEditor, {
        options: { jsonData: { url: 'http://x:3000' }, secureJsonFields: {} },
        onOptionsChange: () => undefined,
      }),
    );
    expect(await screen.findByDisplayValue('http://x:3000')).toBeInTheDocument();
  });

  it('has a source map that points at the sources, past the AMD header', () => {
    const code = read('module.js');
    const map = readJson('module.js.map');
    expect(code.trimEnd().endsWith('//# sourceMappingURL=module.js.map')).toBe(true);
    expect(map.version).toBe(3);
    expect(map.file).toBe('module.js');
    expect(map.sources).toEqual(
      expect.arrayContaining([
        '../src/module.ts',
        '../src/datasource.ts',
        '../src/components/QueryEditor.tsx',
      ]),
    );
    const lines: string[] = map.mappings.split(';');
    const firstMapped = lines.findIndex((l) => l !== '');
    // The first mapped line is the bundle's first line, right after the wrapper's header.
    expect(code.split('\n')[firstMapped]).toMatch(/^"use strict";/);
    expect(code.split('\n')[firstMapped - 1]).toBe('var module = { exports: {} }, exports = module.exports;');
  });
});

describe('plugin.json', () => {
  it.each(['src', 'dist'])("follows the rules of Grafana's plugin validator (%s)", (dir) => {
    const json = JSON.parse(readFileSync(path.join(root, dir, 'plugin.json'), 'utf8'));
    expect(pluginJsonProblems(json, path.join(root, dir))).toEqual([]);
  });

  it('would reject a plugin.json that breaks the rules', () => {
    const json = { ...readJson('plugin.json'), id: 'LiveSync', dependencies: {} };
    expect(pluginJsonProblems(json, dist)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^id: /), 'dependencies.grafanaDependency: is required']),
    );
  });

  /** plugin.json as JSON.parse returns it: each case below breaks it at its own path. */
  type Parsed = ReturnType<typeof JSON.parse>;
  const broken: Array<[string, (json: Parsed) => void, string]> = [
    ['no name', (json) => delete json.name, 'name: is required'],
    ['no info', (json) => delete json.info, 'info: is required'],
    ['an unknown type', (json) => (json.type = 'widget'), 'type: must be one of'],
    ['an id with upper case', (json) => (json.id = 'LiveSync-datasource'), 'id: must be'],
    ['an id of three parts and a suffix', (json) => (json.id = 'a-b-c-datasource'), 'id: must be'],
    ['an id whose suffix is not its type', (json) => (json.id = 'livesync-panel'), 'id: must end with'],
    ['an unknown key', (json) => (json.alert = true), 'alert: is not a known key'],
    ['a flag that is not a boolean', (json) => (json.metrics = 'yes'), 'metrics: must be a boolean'],
    ['backend without executable', (json) => delete json.executable, 'executable: is required'],
    [
      'alerting without backend',
      (json) => {
        json.backend = false;
        delete json.executable;
      },
      'alerting: requires backend',
    ],
    ['a version that is not semver', (json) => (json.info.version = 'v1'), 'info.version: must be'],
    ['no version', (json) => delete json.info.version, 'info.version: is required'],
    ['an updated that is not a date', (json) => (json.info.updated = 'today'), 'info.updated: must be'],
    ['no keywords', (json) => (json.info.keywords = []), 'info.keywords: must be'],
    ['no large logo', (json) => delete json.info.logos.large, 'info.logos.large: is required'],
    [
      'a logo dist lacks',
      (json) => (json.info.logos.small = 'img/missing.svg'),
      'info.logos.small: img/missing.svg',
    ],
    [
      'a logo that is not SVG',
      (json) => (json.info.logos.small = 'img/logo.png'),
      'info.logos.small: must be an SVG',
    ],
    [
      'a screenshot dist lacks',
      (json) => (json.info.screenshots = [{ name: 'x', path: 'img/x.png' }]),
      'info.screenshots[0].path: img/x.png',
    ],
    [
      'a link that is not a URL',
      (json) => (json.info.links = [{ name: 'x', url: 'nowhere' }]),
      'info.links[0].url',
    ],
    [
      'an empty grafanaDependency',
      (json) => (json.dependencies.grafanaDependency = ''),
      'dependencies.grafanaDependency',
    ],
    ['any Grafana', (json) => (json.dependencies.grafanaDependency = '*'), 'dependencies.grafanaDependency'],
    [
      'no lower bound',
      (json) => (json.dependencies.grafanaDependency = '<13.0.0'),
      'dependencies.grafanaDependency',
    ],
    [
      'not a range',
      (json) => (json.dependencies.grafanaDependency = 'latest'),
      'dependencies.grafanaDependency',
    ],
    ['a route without path', (json) => delete json.routes[0].path, 'routes[0].path: is required'],
    ['a route with an empty path', (json) => (json.routes[0].path = ''), 'routes[0].path: is required'],
    ['an unknown route key', (json) => (json.routes[0].proxy = true), 'routes[0].proxy: is not a known key'],
    [
      'a route header without content',
      (json) => delete json.routes[0].headers[0].content,
      'routes[0].headers[0].content: must be a string',
    ],
    [
      'route headers that are not a list',
      (json) => (json.routes[0].headers = {}),
      'routes[0].headers: must be a list',
    ],
  ];

  it.each(broken)('rejects %s', (_what, breakIt, message) => {
    const json = readJson('plugin.json');
    breakIt(json);
    expect(pluginJsonProblems(json, dist)).toEqual([expect.stringContaining(message)]);
  });

  it('accepts the ranges and placeholders Grafana accepts', () => {
    for (const grafanaDependency of ['>=12.3.0', '^12.3.0', '>=12.3.0 <14', '>=11.6.7 || >=12.3.0', '12.x'])
      expect(
        pluginJsonProblems({ ...readJson('plugin.json'), dependencies: { grafanaDependency } }, dist),
      ).toEqual([]);
    const frontendOnly = { ...readJson('plugin.json'), backend: false, alerting: false };
    delete frontendOnly.executable;
    expect(pluginJsonProblems(frontendOnly, dist)).toEqual([]);
  });

  it('declares the data source, its features and Grafana 12.3+', () => {
    const json = readJson('plugin.json');
    expect(json).toMatchObject({
      id: 'livesync-datasource',
      type: 'datasource',
      metrics: true,
      annotations: true,
      streaming: true,
      // The Go backend (pkg/): alert rules, recording rules and ds/ streams run through it.
      backend: true,
      alerting: true,
      executable: 'gpx_livesync',
      dependencies: { grafanaDependency: '>=12.3.0' },
    });
    expect(json.info.keywords.length).toBeGreaterThan(0);
  });

  it('stamps the version and build date', () => {
    const json = readJson('plugin.json');
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    expect(json.info.version).toBe(pkg.version);
    expect(json.info.updated).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('routes calls through the proxy to the service URL with the API key as a bearer token', () => {
    expect(readJson('plugin.json').routes).toEqual([
      {
        path: ROUTE_PATH,
        url: '{{ .JsonData.url }}',
        headers: [{ name: 'Authorization', content: 'Bearer {{ .SecureJsonData.apiKey }}' }],
      },
    ]);
  });

  it('names logos that dist has', () => {
    const { logos } = readJson('plugin.json').info;
    for (const logo of [logos.small, logos.large]) expect(existsSync(path.join(dist, logo))).toBe(true);
  });
});

describe('logo.svg', () => {
  it('is plain SVG: known elements, no script, no event handlers, no external references', () => {
    const svg = read('img/logo.svg');
    const elements = new Set([...svg.matchAll(/<([a-zA-Z][\w:-]*)/g)].map((m) => m[1]));
    const known = new Set(['svg', 'title', 'defs', 'linearGradient', 'stop', 'rect', 'path', 'circle', 'g']);
    expect([...elements].filter((e) => !known.has(e!))).toEqual([]);
    expect(svg).not.toMatch(/<script|\son\w+=|javascript:|xlink:href|href=/i);
  });
});

describe('package.json', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

  it('never runs the deprecated grafana-toolkit', () => {
    expect(JSON.stringify(pkg.scripts)).not.toContain('toolkit');
    expect(Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })).not.toContain('@grafana/toolkit');
  });

  it('pins the Grafana packages it builds against, with React 18.3', () => {
    for (const name of ['@grafana/data', '@grafana/ui', '@grafana/runtime'])
      expect(pkg.dependencies[name]).toBe('13.1.1');
    expect(pkg.dependencies.react).toMatch(/^18\.3\./);
    expect(pkg.dependencies['react-dom']).toMatch(/^18\.3\./);
  });
});
