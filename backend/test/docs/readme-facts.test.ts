/**
 * Facts the docs state that are not commands: the headline's numbers are BENCHMARKS.md's, the
 * plugin's provisioning example points at the port the service listens on, and the PostgreSQL
 * quick path links the DDL it needs. (readme-commands.test.ts runs the commands.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

const ROOT = resolve(__dirname, '../../..');
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

describe('README headline', () => {
  const readme = read('README.md');
  const benchmarks = read('BENCHMARKS.md');
  const headline = readme.slice(0, readme.indexOf('\n## ')).replace(/\s+/g, ' ');
  const measured = headline.slice(headline.indexOf('Measured'));

  it('quotes measurements, and names the machine and the row count as BENCHMARKS.md records them', () => {
    expect(headline).toContain('Measured on');
    expect(headline).toContain('[BENCHMARKS.md](BENCHMARKS.md)');
    const cpu = /\| cores +\| (\d+) \((.*)\) +\|/.exec(benchmarks);
    expect(cpu).not.toBeNull();
    expect(measured).toContain(`${cpu![1]} cores (${cpu![2]})`);
    const rows = /\| rows \(N\) +\| ([\d,]+)/.exec(benchmarks);
    expect(measured).toContain(`${rows![1]}-row table`);
  });

  it('has no number that BENCHMARKS.md does not have', () => {
    const numbers = [
      ...measured.matchAll(/(\d[\d,]*(?:\.\d+)?)(?= ?(?:ms|×|records\/s|%|rows|-row| s\b))/g),
    ].map((match) => match[1]!);
    expect(numbers.length).toBeGreaterThan(10);
    const missing = numbers.filter(
      (number) => !new RegExp(`(^|[^\\d.,])${number.replace(/\./g, '\\.')}($|[^\\d])`).test(benchmarks),
    );
    expect(missing).toEqual([]);
  });

  it('marks every goal BENCHMARKS.md misses as a miss', () => {
    const goals = benchmarks.slice(benchmarks.indexOf('## Goals'), benchmarks.indexOf('## Panels'));
    const missed = (goals.match(/\*\*miss\*\*/g) ?? []).length;
    expect(missed).toBeGreaterThan(0);
    expect((measured.match(/\*\*miss\*\*/g) ?? []).length).toBeGreaterThanOrEqual(missed);
  });
});

describe('plugin/README.md', () => {
  it('provisions the data source at the port the service listens on in the compose stack', () => {
    const plugin = read('plugin/README.md');
    const block = [...plugin.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((match) => match[1]!)
      .find((yaml) => yaml.includes('type: livesync-datasource'));
    const provisioned = parse(block!) as { datasources: { jsonData: { url: string } }[] };
    const url = new URL(provisioned.datasources[0]!.jsonData.url);

    const service = parse(read('provisioning/livesync/livesync.yaml')) as { server: { port: number } };
    const compose = parse(read('docker-compose.yml')) as {
      services: Record<string, { environment?: Record<string, string> }>;
    };
    expect(url.toString()).toBe(`${compose.services['grafana']!.environment!['LIVESYNC_URL']}/`);
    expect(Number(url.port)).toBe(service.server.port);
  });
});

describe('README: the PostgreSQL quick path', () => {
  it('links the DDL, which has the updated_at trigger and the deleted_at column the source reads', () => {
    const ddl = 'provisioning/postgres/init/01-events.sql';
    expect(read('README.md')).toContain(`[provisioning/postgres/init/01-events.sql](${ddl})`);
    expect(existsSync(join(ROOT, ddl))).toBe(true);
    const sql = read(ddl);
    expect(sql).toMatch(/deleted_at\s+timestamptz NULL/);
    expect(sql).toMatch(/NEW\.updated_at := now\(\)/);
    expect(sql).toMatch(
      /BEFORE UPDATE ON events\s+FOR EACH ROW EXECUTE FUNCTION events_touch_updated_at\(\)/,
    );
  });
});
