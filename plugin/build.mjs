// Builds dist/ the way Grafana loads a plugin: module.js is an AMD module whose dependencies
// are the packages Grafana shares with plugins at run time, so none of them is bundled.
//
// esbuild has no AMD output. It bundles to CommonJS instead, which calls require('react') and
// the like for every external; the wrapper below turns that into
//   define(["@grafana/data", …], function (dep0, …) { var require = …; …; return module.exports; })
// where `require` hands back the module Grafana passed in, and the bundle's exports (`plugin`)
// become the AMD module's value. The source map shifts by the wrapper's header lines.
import * as esbuild from 'esbuild';
import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');

/** What the Go build writes into dist/: the frontend build leaves it alone. */
export const BACKEND_FILE = /^(gpx_livesync_.+|go_plugin_build_manifest)$/;

/** What Grafana provides to plugins through its module loader; everything else is bundled. */
export const GRAFANA_EXTERNALS = [
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
];

/** Wraps a CommonJS bundle as an AMD module; returns the code and how many lines came before the bundle. */
export function wrapAmd(cjs, deps) {
  const params = deps.map((_, i) => `__dep${i}`);
  const header = [
    `define(${JSON.stringify(deps)}, function (${params.join(', ')}) {`,
    "'use strict';",
    `var __deps = {${deps.map((d, i) => `${JSON.stringify(d)}: ${params[i]}`).join(', ')}};`,
    'var require = function (id) {',
    '  if (Object.prototype.hasOwnProperty.call(__deps, id)) return __deps[id];',
    "  throw new Error('livesync-datasource: ' + id + ' is not provided by Grafana');",
    '};',
    'var module = { exports: {} }, exports = module.exports;',
  ];
  const footer = ['return module.exports;', '});', '//# sourceMappingURL=module.js.map', ''];
  return { code: [...header, cjs.replace(/\n$/, ''), ...footer].join('\n'), headerLines: header.length };
}

async function build() {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
  const result = await esbuild.build({
    entryPoints: [path.join(src, 'module.ts')],
    outfile: path.join(dist, 'module.js'),
    bundle: true,
    format: 'cjs',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    minify: true,
    sourcemap: 'external',
    sourcesContent: true,
    legalComments: 'none',
    external: GRAFANA_EXTERNALS,
    define: { 'process.env.NODE_ENV': '"production"' },
    metafile: true,
    write: false,
    logLevel: 'warning',
  });

  const output = (suffix) => result.outputFiles.find((f) => f.path.endsWith(suffix));
  const js = output('module.js');
  const map = output('module.js.map');
  const meta = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith('module.js'))?.[1];
  if (!js || !map || !meta) throw new Error('esbuild produced no module.js');
  const deps = [...new Set(meta.imports.filter((i) => i.external).map((i) => i.path))].sort();

  const { code, headerLines } = wrapAmd(js.text, deps);
  const sourceMap = JSON.parse(map.text);
  sourceMap.file = 'module.js';
  sourceMap.mappings = ';'.repeat(headerLines) + sourceMap.mappings;

  // dist/ is rebuilt, except the backend's binaries and build manifest (`go tool mage` writes them).
  await mkdir(dist, { recursive: true });
  for (const entry of await readdir(dist))
    if (!BACKEND_FILE.test(entry)) await rm(path.join(dist, entry), { recursive: true, force: true });
  await writeFile(path.join(dist, 'module.js'), code);
  await writeFile(path.join(dist, 'module.js.map'), JSON.stringify(sourceMap));

  // plugin.json placeholders, as grafana.com and create-plugin use them.
  const today = new Date(
    process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) * 1000 : Date.now(),
  )
    .toISOString()
    .slice(0, 10);
  const pluginJson = (await readFile(path.join(src, 'plugin.json'), 'utf8'))
    .replaceAll('%VERSION%', pkg.version)
    .replaceAll('%TODAY%', today);
  await writeFile(path.join(dist, 'plugin.json'), pluginJson);
  await cp(path.join(src, 'img'), path.join(dist, 'img'), { recursive: true });
  for (const file of ['README.md', 'CHANGELOG.md', 'LICENSE'])
    await cp(path.join(root, file), path.join(dist, file));

  console.error(`dist/module.js: ${(code.length / 1024).toFixed(1)} KiB, AMD deps ${deps.join(', ')}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
