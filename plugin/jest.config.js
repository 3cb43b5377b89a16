/** @type {import('jest').Config} */
const swc = (parser) => [
  '@swc/jest',
  {
    jsc: {
      parser,
      transform: { react: { runtime: 'automatic' } },
      target: 'es2022',
    },
  },
];

const ESM_ONLY = [
  'marked',
  'd3-interpolate',
  'd3-color',
  'd3-scale-chromatic',
  'react-calendar',
  'get-user-locale',
  'memoize',
  'mimic-function',
  '@wojtekmaj/date-utils',
];

module.exports = {
  testEnvironment: 'jsdom',
  // Resolve packages by their CommonJS `require` entry points (the jsdom default prefers `browser`,
  // which sends some of @grafana/ui's dependencies to ES modules jest cannot load untransformed).
  testEnvironmentOptions: { customExportConditions: ['require', 'node', 'default'] },
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts', '**/*.test.tsx'],
  moduleNameMapper: {
    '\\.css$': '<rootDir>/test/stubs/style.ts',
    '^react-inlinesvg$': '<rootDir>/test/stubs/react-inlinesvg.tsx',
  },
  setupFiles: ['<rootDir>/test/polyfills.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/setup.ts'],
  transform: {
    '^.+\\.ts$': swc({ syntax: 'typescript' }),
    '^.+\\.tsx$': swc({ syntax: 'typescript', tsx: true }),
    '^.+\\.m?js$': swc({ syntax: 'ecmascript' }),
  },
  // Dependencies of @grafana/* that ship only ES modules are compiled to CommonJS like our own code.
  transformIgnorePatterns: [`node_modules/(?!(${ESM_ONLY.join('|')})/)`],
  testTimeout: 30_000,
  maxWorkers: 2,
};
