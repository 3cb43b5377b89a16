import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, type Config } from '../../src/config/load';

/** Config files written to one temporary directory, removed by `cleanup`. */
export function configFiles() {
  const dir = mkdtempSync(join(tmpdir(), 'livesync-config-'));
  let count = 0;
  return {
    dir,
    write(text: string, name = `livesync-${++count}.yaml`): string {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    },
    cleanup(): void {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function loadFile(file: string, env: NodeJS.ProcessEnv = {}): Config {
  return loadConfig({ ...env, LIVESYNC_CONFIG: file });
}

/** The problems loading throws, each without the `<file>: ` prefix. */
export function problemsOf(file: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadFile(file, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((line) => (line.startsWith(`${file}: `) ? line.slice(file.length + 2) : line));
  }
  throw new Error('expected a ConfigError');
}

export function problemsOfEnv(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
  throw new Error('expected a ConfigError');
}
