import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { StoredDataSource } from './datasources';

/** The header that carries a data source's settings to the host (grafanahost.SettingsHeader). */
export const SETTINGS_HEADER = 'x-livesync-host-datasource';

/** Go's names for Node's architectures, as in the plugin's `gpx_<name>_<os>_<arch>`. */
const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

/** The backend binary Grafana would start for this machine: `<executable>_<os>_<arch>`. */
export function pluginBinary(pluginDir: string, executable: string): string {
  const arch = GO_ARCH[process.arch] ?? process.arch;
  return path.join(pluginDir, `${executable}_${process.platform}_${arch}`);
}

/** The data source's settings for the host, as Grafana sends them to a plugin with each call. */
export function settingsHeader(ds: StoredDataSource): string {
  const settings = {
    id: ds.id,
    uid: ds.uid,
    name: ds.name,
    type: ds.type,
    url: ds.url,
    jsonData: ds.jsonData,
    secureJsonData: ds.secureJsonData,
    // Grafana's `updated` changes with every save, and the plugin makes a new instance then.
    updated: ds.version,
  };
  return Buffer.from(JSON.stringify(settings)).toString('base64');
}

export interface HostOptions {
  /** The grafana-host program (plugin/cmd/grafana-host, built into preview/dist). */
  program: string;
  /** The plugin's backend binary. */
  binary: string;
}

/**
 * Grafana's server side for a backend data source: the `grafana-host` program, which starts the
 * plugin's built binary over Grafana's plugin protocol and serves `/api/ds/query`, health,
 * resources and `ds/` streams on a loopback port. Started on first use, stopped by `close`.
 */
export class GrafanaHost {
  private started: Promise<{ url: string; child: ChildProcessWithoutNullStreams }> | undefined;

  constructor(private readonly options: HostOptions) {}

  /** The host's root URL, starting it if needed. */
  async url(): Promise<string> {
    this.started ??= this.start().catch((err: unknown) => {
      this.started = undefined;
      throw err;
    });
    return (await this.started).url;
  }

  async close(): Promise<void> {
    const started = this.started;
    this.started = undefined;
    const child = await started?.then((s) => s.child).catch(() => undefined);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // The host exits when its standard input closes, and stops the plugin with it.
    child.stdin.end();
    await exited;
  }

  private start(): Promise<{ url: string; child: ChildProcessWithoutNullStreams }> {
    const { program, binary } = this.options;
    for (const [what, file] of [
      ['the preview host (npm run build -w preview builds it)', program],
      ['the plugin backend binary (npm run build -w plugin builds it)', binary],
    ] as const) {
      if (!existsSync(file)) return Promise.reject(new Error(`${what} is missing: ${file}`));
    }
    return new Promise((resolve, reject) => {
      const child = spawn(program, ['-binary', binary], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString('utf8')).slice(-4000);
      });
      child.once('error', reject);
      child.once('exit', (code) => {
        this.started = undefined;
        reject(
          new Error(`the preview host exited (${code ?? 'signal'}) before it listened: ${stderr.trim()}`),
        );
      });
      createInterface({ input: child.stdout }).once('line', (line) => {
        try {
          const { url } = JSON.parse(line) as { url: string };
          resolve({ url, child });
        } catch {
          reject(new Error(`the preview host said ${JSON.stringify(line)} instead of its address`));
        }
      });
    });
  }
}
