// Two projects: `unit` (pure, no servers, beside the code as *.test.ts) and `integration`
// (*.int.test.ts, against the real Kafka and Elasticsearch of test/stack). Both sit beside the code under
// src/ (each tsconfig excludes them from dist/); helpers and fixtures only tests use are in <package>/test/,
// benchmarks in services/<name>/bench/ (docs/architecture.md, "Where tests and benches live"). Types are checked by
// `pnpm typecheck`, not here: @swc/jest only strips them, which keeps the suites fast.
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    { jsc: { parser: { syntax: 'typescript' }, target: 'es2023' }, module: { type: 'commonjs' } },
  ],
};
// Workspace packages resolve to their sources, so unit tests need no build.
const moduleNameMapper = {
  '^@kaudit/(common|audit-schema|redaction|service-kit|detection|testkit|cli|es-resources|devstack)$':
    '<rootDir>/packages/$1/src/index.ts',
};
const common = { transform, moduleNameMapper, testEnvironment: 'node', rootDir: __dirname };

// `jest --selectProjects unit services/sink` would read `services/sink` as a second project name
// (the flag takes many values) and run every suite. Treat path-like values after it as path filters.
const pathArgs = (() => {
  const i = process.argv.indexOf('--selectProjects');
  if (i < 0) return [];
  const after = [];
  for (const arg of process.argv.slice(i + 1)) {
    if (arg.startsWith('-')) break;
    after.push(arg);
  }
  return after.filter((arg) => arg.includes('/') || arg.endsWith('.ts'));
})();
const only = (suffix, fallback) =>
  pathArgs.length === 0
    ? fallback
    : pathArgs.flatMap((p) => {
        const clean = p.replace(/^\.\//, '').replace(/\/$/, '');
        return clean.endsWith('.ts') ? [`<rootDir>/${clean}`] : [`<rootDir>/${clean}/**/*${suffix}`];
      });

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: only('.test.ts', [
        '<rootDir>/packages/*/src/**/*.test.ts',
        '<rootDir>/services/*/src/**/*.test.ts',
        '<rootDir>/test/unit/**/*.test.ts',
      ]),
      testPathIgnorePatterns: ['\\.int\\.test\\.ts$', '/node_modules/', '/dist/'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: only('.int.test.ts', ['<rootDir>/**/*.int.test.ts']),
      testPathIgnorePatterns: ['/node_modules/', '/dist/'],
      globalSetup: '<rootDir>/test/stack/jest-global-setup.js',
      globalTeardown: '<rootDir>/test/stack/jest-global-teardown.js',
      setupFilesAfterEnv: ['<rootDir>/test/stack/jest-integration-setup.js'],
    },
  ],
};
