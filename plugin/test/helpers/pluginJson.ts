import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The rules Grafana's plugin validator applies to plugin.json, written out as checks so the
 * tests need nothing beside the repository (no npm package ships Grafana's plugin.json schema,
 * and the schema itself is not copied here). Returns one line per problem, naming the key path;
 * an empty list means plugin.json passes. With `dir`, files that plugin.json names (logos,
 * screenshots) must exist under it, as they must in dist/.
 */
export function pluginJsonProblems(json: unknown, dir?: string): string[] {
  const problems: string[] = [];
  const problem = (at: string, message: string) => problems.push(`${at}: ${message}`);

  if (!isObject(json)) return ['plugin.json: must be an object'];

  for (const key of ['id', 'type', 'name', 'info', 'dependencies'])
    if (!(key in json)) problem(key, 'is required');
  unknownKeys(json, TOP_LEVEL_KEYS, '', problem);

  if ('id' in json && !(typeof json.id === 'string' && PLUGIN_ID.test(json.id)))
    problem(
      'id',
      'must be <org>-<name>-<type> or <name>-<type>: lower-case letters and digits, type app, panel or datasource',
    );
  if ('type' in json && !PLUGIN_TYPES.includes(json.type as string))
    problem('type', `must be one of ${PLUGIN_TYPES.join(', ')}`);
  const suffixed = typeof json.type === 'string' && ['app', 'panel', 'datasource'].includes(json.type);
  if (
    suffixed &&
    typeof json.id === 'string' &&
    PLUGIN_ID.test(json.id) &&
    !json.id.endsWith(`-${json.type}`)
  )
    problem('id', `must end with its type, -${json.type as string}`);
  if ('name' in json && !nonEmptyString(json.name)) problem('name', 'must be a non-empty string');

  for (const key of BOOLEAN_KEYS)
    if (key in json && typeof json[key] !== 'boolean') problem(key, 'must be a boolean');
  for (const key of STRING_KEYS)
    if (key in json && typeof json[key] !== 'string') problem(key, 'must be a string');
  if ('state' in json && !STATES.includes(json.state as string))
    problem('state', `must be one of ${STATES.join(', ')}`);

  if (json.backend === true && !nonEmptyString(json.executable))
    problem('executable', 'is required when backend is true');
  if (json.alerting === true && json.backend !== true) problem('alerting', 'requires backend: true');

  if ('info' in json) checkInfo(json.info, dir, problem);
  if ('dependencies' in json) checkDependencies(json.dependencies, problem);
  if ('routes' in json) checkRoutes(json.routes, problem);
  if ('includes' in json) checkIncludes(json.includes, problem);
  return problems;
}

type Problem = (at: string, message: string) => void;
type Json = Record<string, unknown>;

/** `<name>-<type>` or `<org>-<name>-<type>`. */
const PLUGIN_ID = /^[0-9a-z]+-([0-9a-z]+-)?(app|panel|datasource)$/;
const PLUGIN_TYPES = ['app', 'datasource', 'panel', 'renderer'];
const STATES = ['alpha', 'beta', 'stable', 'deprecated'];

const BOOLEAN_KEYS = [
  'alerting',
  'annotations',
  'autoEnabled',
  'backend',
  'builtIn',
  'hideFromList',
  'logs',
  'metrics',
  'mixed',
  'multiValueFilterOperators',
  'preload',
  'skipDataQuery',
  'streaming',
  'suggestions',
  'tracing',
];
const STRING_KEYS = ['$schema', 'buildMode', 'category', 'docsPath', 'executable', 'pascalName'];
const TOP_LEVEL_KEYS = [
  'id',
  'type',
  'name',
  'info',
  'dependencies',
  'enterpriseFeatures',
  'extensions',
  'iam',
  'includes',
  'languages',
  'queryOptions',
  'roles',
  'routes',
  'state',
  ...BOOLEAN_KEYS,
  ...STRING_KEYS,
];

/** `1.2.3` (with an optional pre-release and build) or the placeholder a build replaces. */
const VERSION = /^((0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?|%VERSION%)$/;
const UPDATED = /^(\d{4}-\d{2}-\d{2}|%TODAY%)$/;

/** One comparator of an npm semver range: `>=12.3.0`, `^12`, `12.x`, `<13.0.0-beta`. */
const COMPARATOR = /^(<=|>=|<|>|=|~|\^)?\d+(\.[0-9x*]+)?(\.[0-9x*]+)?(-[0-9A-Za-z.-]+)?$/;

function checkInfo(info: unknown, dir: string | undefined, problem: Problem): void {
  if (!isObject(info)) return problem('info', 'must be an object');
  for (const key of ['logos', 'version', 'updated', 'keywords'])
    if (!(key in info)) problem(`info.${key}`, 'is required');
  unknownKeys(
    info,
    ['author', 'build', 'description', 'keywords', 'links', 'logos', 'screenshots', 'updated', 'version'],
    'info.',
    problem,
  );

  if ('version' in info && !(typeof info.version === 'string' && VERSION.test(info.version)))
    problem('info.version', 'must be a semantic version like 1.2.3, or %VERSION%');
  if ('updated' in info && !(typeof info.updated === 'string' && UPDATED.test(info.updated)))
    problem('info.updated', 'must be a date YYYY-MM-DD, or %TODAY%');
  if (
    'keywords' in info &&
    !(Array.isArray(info.keywords) && info.keywords.length > 0 && info.keywords.every(nonEmptyString))
  )
    problem('info.keywords', 'must be a non-empty list of strings');
  if ('description' in info && typeof info.description !== 'string')
    problem('info.description', 'must be a string');

  if ('author' in info) {
    const author = info.author;
    if (!isObject(author)) problem('info.author', 'must be an object');
    else {
      unknownKeys(author, ['name', 'email', 'url'], 'info.author.', problem);
      if ('name' in author && typeof author.name !== 'string')
        problem('info.author.name', 'must be a string');
      if ('email' in author && !(typeof author.email === 'string' && /^[^\s@]+@[^\s@]+$/.test(author.email)))
        problem('info.author.email', 'must be an email address');
      if ('url' in author && !isUrl(author.url)) problem('info.author.url', 'must be a URL');
    }
  }

  if ('logos' in info) {
    const logos = info.logos;
    if (!isObject(logos)) problem('info.logos', 'must be an object');
    else {
      unknownKeys(logos, ['small', 'large'], 'info.logos.', problem);
      for (const size of ['small', 'large']) {
        const logo = logos[size];
        if (!nonEmptyString(logo)) problem(`info.logos.${size}`, 'is required: the path of an SVG image');
        else if (!logo.endsWith('.svg')) problem(`info.logos.${size}`, 'must be an SVG image');
        else if (dir !== undefined && !existsSync(path.join(dir, logo)))
          problem(`info.logos.${size}`, `${logo} does not exist`);
      }
    }
  }

  if ('links' in info)
    list(info.links, 'info.links', problem, (link, at) => {
      unknownKeys(link, ['name', 'url', 'target'], `${at}.`, problem);
      if ('name' in link && typeof link.name !== 'string') problem(`${at}.name`, 'must be a string');
      if ('url' in link && !isUrl(link.url)) problem(`${at}.url`, 'must be a URL');
      if ('target' in link && !['_blank', '_self', '_parent', '_top'].includes(link.target as string))
        problem(`${at}.target`, 'must be one of _blank, _self, _parent, _top');
    });

  if ('screenshots' in info)
    list(info.screenshots, 'info.screenshots', problem, (screenshot, at) => {
      unknownKeys(screenshot, ['name', 'path'], `${at}.`, problem);
      if (!nonEmptyString(screenshot.path)) problem(`${at}.path`, 'must be a non-empty string');
      else if (dir !== undefined && !existsSync(path.join(dir, screenshot.path)))
        problem(`${at}.path`, `${screenshot.path} does not exist`);
    });
}

function checkDependencies(dependencies: unknown, problem: Problem): void {
  if (!isObject(dependencies)) return problem('dependencies', 'must be an object');
  unknownKeys(
    dependencies,
    ['grafanaDependency', 'grafanaVersion', 'plugins', 'extensions'],
    'dependencies.',
    problem,
  );
  const range = dependencies.grafanaDependency;
  if (!('grafanaDependency' in dependencies)) problem('dependencies.grafanaDependency', 'is required');
  else if (!(typeof range === 'string' && boundedRange(range)))
    problem('dependencies.grafanaDependency', 'must be a semver range with a lower bound, like >=12.3.0');
  if ('plugins' in dependencies)
    list(dependencies.plugins, 'dependencies.plugins', problem, (plugin, at) => {
      if (!(typeof plugin.id === 'string' && PLUGIN_ID.test(plugin.id)))
        problem(`${at}.id`, 'must be a plugin id');
      if (!['app', 'datasource', 'panel'].includes(plugin.type as string))
        problem(`${at}.type`, 'must be one of app, datasource, panel');
      if (typeof plugin.name !== 'string') problem(`${at}.name`, 'is required');
    });
}

/**
 * An npm semver range as Grafana accepts it: alternatives joined by ` || `, each one or two
 * comparators. Every alternative needs a lower bound: `*`, an empty range or `<13` alone would
 * let the plugin load on any old Grafana.
 */
function boundedRange(range: string): boolean {
  return range.split(' || ').every((alternative) => {
    const comparators = alternative.split(' ');
    if (comparators.length > 2 || !comparators.every((comparator) => COMPARATOR.test(comparator)))
      return false;
    return comparators.some((comparator) => !comparator.startsWith('<'));
  });
}

const ROUTE_KEYS = [
  'path',
  'method',
  'url',
  'reqSignedIn',
  'reqRole',
  'reqAction',
  'headers',
  'body',
  'tokenAuth',
  'jwtTokenAuth',
  'urlParams',
];

function checkRoutes(routes: unknown, problem: Problem): void {
  list(routes, 'routes', problem, (route, at) => {
    unknownKeys(route, ROUTE_KEYS, `${at}.`, problem);
    // An empty path matches every request the data source makes.
    if (!nonEmptyString(route.path)) problem(`${at}.path`, 'is required and must not be empty');
    for (const key of ['method', 'url', 'reqRole', 'reqAction'])
      if (key in route && typeof route[key] !== 'string') problem(`${at}.${key}`, 'must be a string');
    if ('reqSignedIn' in route && typeof route.reqSignedIn !== 'boolean')
      problem(`${at}.reqSignedIn`, 'must be a boolean');
    if ('body' in route && !isObject(route.body)) problem(`${at}.body`, 'must be an object');
    for (const key of ['headers', 'urlParams'])
      if (key in route)
        list(route[key], `${at}.${key}`, problem, (entry, entryAt) => {
          unknownKeys(entry, ['name', 'content'], `${entryAt}.`, problem);
          if (!nonEmptyString(entry.name)) problem(`${entryAt}.name`, 'must be a non-empty string');
          if (typeof entry.content !== 'string') problem(`${entryAt}.content`, 'must be a string');
        });
  });
}

function checkIncludes(includes: unknown, problem: Problem): void {
  list(includes, 'includes', problem, (include, at) => {
    if (!['dashboard', 'page', 'panel', 'datasource'].includes(include.type as string))
      problem(`${at}.type`, 'is required: dashboard, page, panel or datasource');
    if ('role' in include && !['Admin', 'Editor', 'Viewer'].includes(include.role as string))
      problem(`${at}.role`, 'must be one of Admin, Editor, Viewer');
  });
}

/** Checks a list of objects, calling `each` with each entry and its key path. */
function list(value: unknown, at: string, problem: Problem, each: (entry: Json, at: string) => void): void {
  if (!Array.isArray(value)) return problem(at, 'must be a list');
  value.forEach((entry: unknown, index) => {
    if (!isObject(entry)) problem(`${at}[${index}]`, 'must be an object');
    else each(entry, `${at}[${index}]`);
  });
}

function unknownKeys(object: Json, known: string[], prefix: string, problem: Problem): void {
  for (const key of Object.keys(object))
    if (!known.includes(key)) problem(`${prefix}${key}`, 'is not a known key');
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function isUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}
