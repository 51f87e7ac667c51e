import { createRedactor, DEFAULT_REDACTION_POLICY } from '@kaudit/redaction';
import { plantedSecrets, sourceFixture } from '@kaudit/testkit';
import { bridgeMessages } from './event-hubs-bridge';

const ingest = { redactor: createRedactor(DEFAULT_REDACTION_POLICY), eventsTopic: 'events', dlqTopic: 'dlq' };

describe('sink > event-hubs-bridge > bridgeMessages', () => {
  it('unwraps every record, keys it by the cluster its resourceId names, redacts it', () => {
    const hub = sourceFixture('aks-event-hubs.json');
    const out = bridgeMessages(
      [hub, null, Buffer.from('{"records":[{"properties":{"log":"{oops"}}]}')],
      'fallback',
      ingest,
      '2026-12-01T00:00:00Z',
    );
    expect(out).toMatchObject({ accepted: 3, rejected: 1 });
    expect(out.messages.map((m) => [m.topic, (m.key ?? '').split('/')[0]])).toEqual([
      ['events', 'prod-aks-1'],
      ['events', 'prod-aks-1'],
      ['events', 'prod-aks-1'],
      ['dlq', 'fallback'],
    ]);
    const text = out.messages.map((m) => m.value).join('\n');
    for (const secret of plantedSecrets(hub.toString())) expect(text).not.toContain(secret);
  });
});
