// testTimeout is a global jest option (ignored inside `projects`), so integration suites set theirs here:
// real brokers, consumer-group joins and bulk refreshes take seconds, not milliseconds.
jest.setTimeout(120_000);
