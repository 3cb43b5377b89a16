// Writes dashboards/json/*.json from the dashboards' code: `npm run generate -w dashboards`.
// Commit the result; dashboards/test fails while the committed JSON differs from what this writes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as prettier from 'prettier';
import { buildDashboards } from './index';
import { JSON_DIR, REPO_ROOT } from './sources';

async function main(): Promise<void> {
  // Formatted as the repository's Prettier formats JSON, so `npm run lint` accepts the files
  // and an unchanged dashboard is rewritten byte for byte.
  const options = (await prettier.resolveConfig(join(REPO_ROOT, 'package.json'))) ?? {};
  mkdirSync(JSON_DIR, { recursive: true });
  for (const [file, dashboard] of buildDashboards()) {
    const path = join(JSON_DIR, file);
    writeFileSync(path, await prettier.format(JSON.stringify(dashboard), { ...options, parser: 'json' }));
    process.stdout.write(`wrote ${relative(process.cwd(), path)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error('generate:', error instanceof Error ? error.message : error);
  process.exit(1);
});
