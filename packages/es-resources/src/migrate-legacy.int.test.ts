import type { Client } from '@elastic/elasticsearch';
import { stackEnv, uniqueName } from '@kaudit/testkit';
import { applyResources, dataStreamExists } from './apply';
import { createEsClient } from './es-client';
import { migrateLegacyEvents } from './migrate-legacy';
import { dataStreamNames, legacyEventsStreamName } from './names';

describe('es-resources > migrate legacy events (real Elasticsearch)', () => {
  let client: Client;
  beforeAll(() => {
    client = createEsClient({ node: stackEnv().esNode });
  });
  afterAll(() => client.close());

  it('copies logs-kaudit.audit-<ns> into the new stream with the new dataset, again harmlessly, then deletes it', async () => {
    const ns = uniqueName('migrate').replaceAll('-', '_');
    await applyResources(client, { namespace: ns, numberOfReplicas: 0 });
    const legacy = legacyEventsStreamName(ns);
    // Documents as kaudit wrote them before ADR 0008 (the legacy template still governs the old stream).
    const old = Array.from({ length: 5 }, (_, i) => ({
      '@timestamp': `2026-01-05T10:00:0${i}.000Z`,
      data_stream: { type: 'logs', dataset: 'kaudit.audit', namespace: ns },
      event: { kind: 'event', action: 'get', dataset: 'kubernetes.audit_logs' },
      kubernetes: {
        audit: { verb: 'get', annotations: { 'authorization_k8s_io/decision': i % 2 ? 'allow' : 'forbid' } },
      },
    }));
    await client.bulk({
      refresh: true,
      operations: old.flatMap((doc, i) => [{ create: { _index: legacy, _id: `old-${i}` } }, doc]),
    });
    const first = await migrateLegacyEvents(client, { namespace: ns, batchSize: 2 });
    expect(first).toMatchObject({ outcome: 'migrated', total: 5, copied: 5, existed: 0, deleted: false });
    const to = dataStreamNames(ns).events;
    await client.indices.refresh({ index: to });
    const moved = await client.search({
      index: to,
      query: {
        bool: {
          filter: [
            { term: { 'data_stream.dataset': 'kubernetes.audit_logs' } },
            { term: { 'kubernetes.audit.annotations.authorization_k8s_io/decision': 'forbid' } },
          ],
        },
      },
    });
    expect((moved.hits.total as { value: number }).value).toBe(3);

    const again = await migrateLegacyEvents(client, { namespace: ns, deleteLegacy: true });
    expect(again).toMatchObject({ copied: 0, existed: 5 });
    if (again.deleteUnsupported) {
      // The integ-test distribution has no DELETE /_data_stream: the old stream stays, said so.
      expect(again.deleted).toBe(false);
    } else {
      expect(again.deleted).toBe(true);
      expect(await dataStreamExists(client, legacy)).toBe(false);
      expect(await migrateLegacyEvents(client, { namespace: ns })).toMatchObject({
        outcome: 'no-legacy-stream',
      });
    }
  });
});
