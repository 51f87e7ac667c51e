// Two projects: `unit` (pure, no servers, beside the code as *.test.ts) and `integration`
// (*.int.test.ts, against the real Kafka and Elasticsearch of test/stack). Types are checked by
// `pnpm typecheck`, not here: @swc/jest only strips them, which keeps the suites fast.
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    { jsc: { parser: { syntax: 'typescript' }, target: 'es2023' }, module: { type: 'commonjs' } },
  ],
};
// Workspace packages resolve to their sources, so unit tests need no build.
const moduleNameMapper = {
  '^@kaudit/(audit-schema|redaction|service-kit|detection|testkit|cli|es-resources|devstack)$':
    '<rootDir>/packages/$1/src/index.ts',
};
const common = { transform, moduleNameMapper, testEnvironment: 'node', rootDir: __dirname };

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: [
        '<rootDir>/packages/*/src/**/*.test.ts',
        '<rootDir>/services/*/src/**/*.test.ts',
        '<rootDir>/test/unit/**/*.test.ts',
      ],
      testPathIgnorePatterns: ['\\.int\\.test\\.ts$', '/node_modules/', '/dist/'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/**/*.int.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '/dist/'],
      globalSetup: '<rootDir>/test/stack/jest-global-setup.js',
      globalTeardown: '<rootDir>/test/stack/jest-global-teardown.js',
      testTimeout: 120000,
    },
  ],
};
