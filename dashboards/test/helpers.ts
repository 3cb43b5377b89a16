import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../src/sources';

export { REPO_ROOT };

export function repoPath(...parts: string[]): string {
  return join(REPO_ROOT, ...parts);
}

export function readYaml<T = Record<string, unknown>>(...parts: string[]): T {
  return parse(readFileSync(repoPath(...parts), 'utf8')) as T;
}

/** A fresh directory under the system temp dir and a function that removes it. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `livesync-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Every file under a directory, recursively. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

export interface ProvisionedDatasource {
  name: string;
  type: string;
  uid: string;
  url?: string;
  jsonData?: Record<string, unknown>;
  secureJsonData?: Record<string, unknown>;
}

export function provisionedDatasources(): ProvisionedDatasource[] {
  const file = readYaml<{ apiVersion: number; datasources: ProvisionedDatasource[] }>(
    'provisioning/datasources/datasources.yaml',
  );
  return file.datasources;
}

/** Grafana's own pseudo data sources, which need no provisioning. */
export const BUILT_IN_DATASOURCE_UIDS = new Set([
  '-- Grafana --',
  'grafana',
  '-- Mixed --',
  '-- Dashboard --',
  '__expr__',
]);

/**
 * Every data source a dashboard or rule names: `datasource` objects ({type, uid}) or strings,
 * wherever they are nested.
 */
export function datasourceRefs(node: unknown, found: Array<{ uid: string; type?: string }> = []) {
  if (Array.isArray(node)) {
    for (const item of node) datasourceRefs(item, found);
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'datasource' && typeof value === 'string') found.push({ uid: value });
      else if (key === 'datasource' && value !== null && typeof value === 'object') {
        const ref = value as { uid?: unknown; type?: unknown };
        found.push({ uid: String(ref.uid), ...(typeof ref.type === 'string' ? { type: ref.type } : {}) });
      } else datasourceRefs(value, found);
    }
  }
  return found;
}

/** The metric names of the service (backend/src): `name: 'livesync_…'` of every prom-client metric. */
export function serviceMetricNames(): Set<string> {
  const names = new Set<string>();
  for (const file of listFiles(repoPath('backend/src')).filter((path) => path.endsWith('.ts'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(/\bname:\s*['"`](livesync_[a-z0-9_]+)['"`]/g)) {
      names.add(match[1] as string);
    }
  }
  return names;
}

/** The LiveSync metrics a PromQL expression reads, histogram series folded to their metric. */
export function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\blivesync_[a-z0-9_]+/g)].map((match) =>
    match[0].replace(/_(bucket|sum|count)$/, (suffix, _part, offset: number, whole: string) =>
      whole.slice(0, offset).endsWith('_seconds') ? '' : suffix,
    ),
  );
}

export interface Run {
  status: number | null;
  output: string;
}

/** Runs a command to completion; `output` is its stdout and stderr. */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Run {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    env: options.env ?? process.env,
    cwd: options.cwd ?? REPO_ROOT,
  });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** promtool from Debian's `prometheus` package; the tests need it, so its absence is a failure. */
export function promtool(args: string[]): Run {
  try {
    return run(process.env['PROMTOOL'] ?? 'promtool', args);
  } catch (error) {
    throw new Error(
      `promtool is needed (apt-get install prometheus, or set PROMTOOL): ${(error as Error).message}`,
    );
  }
}
