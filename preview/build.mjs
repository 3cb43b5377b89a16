// Builds dist/ for the preview:
//
//   public/build/vendor.js  Grafana's runtime packages (@grafana/data, ui, runtime, React, rxjs, …),
//                           bundled once and registered in a small AMD registry under the names
//                           Grafana's plugin loader uses, the way Grafana shares them with plugins.
//   public/build/app.js     the preview shell (the stand-ins for Grafana's services, the pages and
//                           panels), an AMD module that receives those packages from the registry
//                           exactly as the plugin's dist/module.js does.
//   server.cjs              the server half (data-source proxy, data-source settings, Grafana Live
//                           push endpoint), a Fastify plugin the service loads when it serves the
//                           preview. Node built-ins only: Fastify comes from the host.
//   grafana-host            Grafana's server side for the plugin's Go backend (plugin/cmd/grafana-host):
//                           starts plugin/dist/gpx_… over Grafana's plugin protocol and serves
//                           /api/ds/query, health, resources and ds/ streams to server.cjs.
//
// The plugin is never bundled here: the browser loads plugin/dist/module.js at run time.
import * as esbuild from 'esbuild';
import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, 'dist');

/**
 * The modules the shell and plugins get from the registry: the ones Grafana's plugin loader shares
 * that a data-source plugin built with @grafana/create-plugin leaves external (Grafana also shares
 * d3, moment, jquery, slate, react-router, redux, i18next, the `/unstable` entry points, …). A
 * plugin asking for a module not here fails to load with a message naming it; @grafana/schema and
 * @grafana/e2e-selectors are not shared by Grafana either: plugins bundle them.
 */
export const SHARED_MODULES = [
  '@emotion/css',
  '@emotion/react',
  '@grafana/data',
  '@grafana/runtime',
  '@grafana/ui',
  'lodash',
  'react',
  'react-dom',
  'react-dom/client',
  'react/jsx-runtime',
  'rxjs',
  'rxjs/operators',
];

/** `PREVIEW_DEV=1 npm run build -w preview`: unminified vendor bundle with React's development build, for debugging. */
const dev = process.env.PREVIEW_DEV === '1';
const production = { 'process.env.NODE_ENV': dev ? '"development"' : '"production"' };

/** The version of Grafana's packages the preview runs: the page reports it as Grafana's version. */
async function grafanaVersion() {
  const manifest = createRequire(import.meta.url).resolve('@grafana/runtime/package.json');
  return JSON.parse(await readFile(manifest, 'utf8')).version;
}

/** Wraps a CommonJS bundle as an anonymous AMD module whose dependencies come from the registry. */
function wrapAmd(cjs, deps) {
  // The CommonJS sugar of AMD: `require(id)` inside the factory hands back a dependency the
  // loader has already resolved; listing them all up front makes the loader check them first.
  const header = [
    `define(${JSON.stringify(['require', 'module', 'exports', ...deps])}, function (require, module, exports) {`,
    "'use strict';",
  ];
  const footer = ['return module.exports;', '});', '//# sourceMappingURL=app.js.map', ''];
  return { code: [...header, cjs.replace(/\n$/, ''), ...footer].join('\n'), headerLines: header.length };
}

async function buildVendor() {
  const entry = [
    "import { installRegistry } from './src/amd/registry';",
    // CommonJS builds, required: Grafana's ESM builds (.mjs) default-import CommonJS packages
    // (react-custom-scrollbars-2, …) in a way only webpack's interop resolves; their CommonJS
    // builds carry their own interop. Required before `define` exists (see installRegistry).
    ...SHARED_MODULES.map((name, i) => `const m${i} = require(${JSON.stringify(name)});`),
    'const registry = installRegistry();',
    ...SHARED_MODULES.map((name, i) => `registry.provide(${JSON.stringify(name)}, m${i});`),
  ].join('\n');
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: root, sourcefile: 'vendor-entry.ts', loader: 'ts' },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    minify: !dev,
    legalComments: 'none',
    define: production,
    // @grafana/ui's code editor brings Monaco's stylesheet and icon font: vendor.css and its fonts.
    loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file' },
    assetNames: '[name]-[hash]',
    outfile: path.join(dist, 'public/build/vendor.js'),
    metafile: true,
    logLevel: 'warning',
  });
  return Object.entries(result.metafile.outputs).find(([file]) => file.endsWith('vendor.js'))?.[1].bytes ?? 0;
}

async function buildApp() {
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'src/app/main.tsx')],
    outfile: path.join(dist, 'public/build/app.js'),
    bundle: true,
    format: 'cjs',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    minify: false,
    sourcemap: 'external',
    sourcesContent: true,
    external: SHARED_MODULES,
    define: production,
    metafile: true,
    write: false,
    logLevel: 'warning',
  });
  const output = (suffix) => result.outputFiles.find((f) => f.path.endsWith(suffix));
  const js = output('app.js');
  const map = output('app.js.map');
  if (!js || !map) throw new Error('esbuild produced no app.js');
  const meta = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith('app.js'))?.[1];
  const deps = [...new Set((meta?.imports ?? []).filter((i) => i.external).map((i) => i.path))];
  const unknown = deps.filter((d) => !SHARED_MODULES.includes(d));
  if (unknown.length)
    throw new Error(`app imports modules the registry does not share: ${unknown.join(', ')}`);
  const { code, headerLines } = wrapAmd(js.text, deps);
  const sourceMap = JSON.parse(map.text);
  sourceMap.file = 'app.js';
  sourceMap.mappings = ';'.repeat(headerLines) + sourceMap.mappings;
  await writeFile(js.path, code);
  await writeFile(map.path, JSON.stringify(sourceMap));
  return code.length;
}

async function buildServer() {
  await esbuild.build({
    entryPoints: [path.join(root, 'server/index.ts')],
    outfile: path.join(dist, 'server.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    // Only Node built-ins are used at run time; Fastify is the host's.
    packages: 'external',
    define: { 'process.env.PREVIEW_GRAFANA_VERSION': JSON.stringify(await grafanaVersion()) },
    logLevel: 'warning',
  });
}

/**
 * What Grafana serves beside its bundles and @grafana/ui asks for by URL: the icons
 * (public/build/img/icons/) and the fonts (public/fonts/). Grafana ships Inter from rsms.me;
 * the preview uses @fontsource's Latin subsets under Grafana's file names.
 */
async function copyAssets() {
  const resolve = createRequire(import.meta.url).resolve;
  const uiPublic = path.join(path.dirname(resolve('@grafana/ui/package.json')), 'dist/public/img');
  const icons = path.join(dist, 'public/build/img/icons/unicons');
  await cp(uiPublic, path.join(dist, 'public/build/img'), { recursive: true });
  // A few icons (time picker, loading and streaming states) come with Grafana itself, not @grafana/ui.
  const right = await readFile(path.join(icons, 'angle-double-right.svg'), 'utf8');
  await writeFile(
    path.join(icons, 'angle-double-left.svg'),
    right
      .replace(/<svg([^>]*)>/, '<svg$1><g transform="matrix(-1 0 0 1 24 0)">')
      .replace('</svg>', '</g></svg>'),
  );
  await writeFile(
    path.join(icons, '..', 'mono', 'circle-mono.svg'),
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><circle cx="12" cy="12" r="8"/></svg>',
  );
  await writeFile(
    path.join(icons, 'spinner.svg'),
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M12 2a10 10 0 1 0 10 10h-2a8 8 0 1 1-8-8V2z"/></svg>',
  );
  const fonts = [
    ['@fontsource/inter', 'inter-latin-400-normal.woff2', 'inter/Inter-Regular.woff2'],
    ['@fontsource/inter', 'inter-latin-500-normal.woff2', 'inter/Inter-Medium.woff2'],
    ['@fontsource/inter', 'inter-latin-400-italic.woff2', 'inter/Inter-Italic.woff2'],
    ['@fontsource/inter', 'inter-latin-500-italic.woff2', 'inter/Inter-MediumItalic.woff2'],
    [
      '@fontsource/roboto-mono',
      'roboto-mono-latin-400-normal.woff2',
      'roboto/L0xTDF4xlVMF-BfR8bXMIhJHg45mwgGEFl0_3vrtSM1J-gEPT5Ese6hmHSh0mQ.woff2',
    ],
  ];
  for (const [pkg, file, target] of fonts) {
    const from = path.join(path.dirname(resolve(`${pkg}/package.json`)), 'files', file);
    await mkdir(path.dirname(path.join(dist, 'public/fonts', target)), { recursive: true });
    await copyFile(from, path.join(dist, 'public/fonts', target));
  }
}

/** The Go host program, with the plugin's Go toolchain script (Go 1.26+). */
async function buildHost() {
  const plugin = path.join(root, '..', 'plugin');
  const args = [
    path.join(plugin, 'scripts/go.sh'),
    'build',
    '-o',
    path.join(dist, 'grafana-host'),
    './cmd/grafana-host',
  ];
  await new Promise((resolve, reject) =>
    execFile('sh', args, { cwd: plugin }, (err, _stdout, stderr) =>
      err ? reject(new Error(`building grafana-host failed: ${stderr || err.message}`)) : resolve(undefined),
    ),
  );
}

async function build() {
  const started = Date.now();
  await rm(dist, { recursive: true, force: true });
  await mkdir(path.join(dist, 'public/build'), { recursive: true });
  const [vendor, app] = await Promise.all([
    buildVendor(),
    buildApp(),
    buildServer(),
    copyAssets(),
    buildHost(),
  ]);
  const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
  console.error(
    `preview dist/: vendor.js ${kib(vendor)}, app.js ${kib(app)}, server.cjs, grafana-host (${Date.now() - started} ms)`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
