import { createEngine, defaultPolicy } from '@kaudit/detection';
import { buildEvent } from '@kaudit/testkit';
import { applyStateRecord, changedStateMessages, emptyPartitionState } from './changelog';

describe('detector > changelog', () => {
  const policy = defaultPolicy({ baseline: { identityRetention: '30d' } });
  const at = (iso: string, username: string) =>
    buildEvent({ requestReceivedTimestamp: iso, stageTimestamp: iso, user: { username } });

  it('writes what changed to the same partition and reads it back into an equal engine', () => {
    const engine = createEngine({ policy });
    engine.process({ cluster: 'prod', event: at('2026-01-05T10:00:00Z', 'alice') });
    const sizes = new Map<string, number>();
    const messages = changedStateMessages(engine, 2, sizes);
    expect(messages.map((m) => [m.key, m.partition])).toEqual([
      ['i:prod/alice', 2],
      ['c:prod', 2],
    ]);
    expect(changedStateMessages(engine, 2, sizes)).toEqual([]);

    const restored = emptyPartitionState();
    for (const m of messages) applyStateRecord(restored, String(m.key), Buffer.from(String(m.value)));
    expect(createEngine({ policy, state: restored.state }).snapshot()).toEqual(
      JSON.parse(JSON.stringify(engine.snapshot())),
    );
    expect([...restored.sizes.keys()]).toEqual(['i:prod/alice', 'c:prod']);
  });

  it('writes a tombstone for a forgotten identity, and a tombstone deletes on restore', () => {
    const engine = createEngine({ policy });
    engine.process({ cluster: 'prod', event: at('2026-01-01T10:00:00Z', 'gone') });
    const sizes = new Map<string, number>();
    const restored = emptyPartitionState();
    const apply = () => {
      for (const m of changedStateMessages(engine, 0, sizes)) {
        applyStateRecord(restored, String(m.key), m.value === null ? null : Buffer.from(String(m.value)));
      }
    };
    apply();
    expect(Object.keys(restored.state.identities)).toEqual(['prod/gone']);
    engine.process({ cluster: 'prod', event: at('2026-03-01T10:00:00Z', 'bob') });
    engine.flush();
    apply();
    expect(Object.keys(restored.state.identities)).toEqual(['prod/bob']);
    expect(sizes.has('i:prod/gone')).toBe(false);
  });
});
