import { fatalReason } from './supervisor';

describe('devstack > chaos supervisor', () => {
  it("tells a crash-policy exit (the service's fatal reason in its log) from one it did not decide", () => {
    const lines = [
      '{"level":"warn","msg":"findings consumer crashed; kafkajs restarts it"}',
      '{"level":"fatal","component":"liveness","reason":"findings consumer crashed and will not be restarted: Failed to find group coordinator","msg":"dead: ..."}',
      '{"level":"info","msg":"shutting down"}',
    ];
    expect(fatalReason(lines.join('\n'))).toBe(
      'findings consumer crashed and will not be restarted: Failed to find group coordinator',
    );
    expect(fatalReason('{"level":"fatal","msg":"alerter failed to start"}')).toBe('alerter failed to start');
    // An unhandled error prints a stack, no fatal line: no reason, so the chaos run counts it as a defect.
    expect(fatalReason(lines[0]!)).toBeUndefined();
    expect(fatalReason('TypeError: x is undefined\n    at y (z.js:1:1)')).toBeUndefined();
  });
});
