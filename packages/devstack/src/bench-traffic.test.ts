import { parseAuditEvent } from '@kaudit/audit-schema';
import { createBenchTraffic } from './bench-traffic';

describe('devstack > bench traffic', () => {
  const options = {
    startMs: Date.UTC(2026, 2, 2, 8),
    spacingMs: 250,
    groupingWindowMs: 600_000,
    allowedLatenessMs: 120_000,
  };

  it('makes valid Metadata-level events in event-time order, with unique audit IDs', () => {
    const traffic = createBenchTraffic(options);
    const batches = [traffic.nextBatch(400, false), traffic.nextBatch(400, true)];
    const events = batches.flatMap((b) => b.items).map((text) => parseAuditEvent(JSON.parse(text)));
    expect(events.filter((e) => !e.ok)).toEqual([]);
    const parsed = events.flatMap((e) => (e.ok ? [e.event] : []));
    const times = parsed.map((e) => Date.parse(e.requestReceivedTimestamp));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(parsed.map((e) => e.auditID)).size).toBe(800);
    expect(parsed.every((e) => e.level === 'Metadata')).toBe(true);
    expect(batches[1]?.minEventTime).toBe(times[400]);
    expect(batches[1]?.maxEventTime).toBe(times[799]);
  });

  it('puts one probe (an anonymous identity of its own) in a batch that asks for it, with when its window closes', () => {
    const traffic = createBenchTraffic(options);
    const first = traffic.nextBatch(10, true);
    const second = traffic.nextBatch(10, true);
    expect(first.probes.map((p) => p.identity)).toEqual(['bench-probe-1']);
    expect(second.probes.map((p) => p.identity)).toEqual(['bench-probe-2']);
    const probe = first.probes[0]!;
    const event = JSON.parse(first.items[5]!);
    expect(event.user).toEqual({ username: 'bench-probe-1', groups: ['system:unauthenticated'] });
    expect(Date.parse(event.requestReceivedTimestamp)).toBe(probe.at);
    // Made at 08:00:01.5; reported once the watermark (2 minutes' lateness here) passes it: 08:02:01.5.
    expect(new Date(probe.closesAt).toISOString()).toBe('2026-03-02T08:02:01.500Z');
    expect(traffic.nextBatch(10, false).probes).toEqual([]);
  });
});
