import type { Client } from '@elastic/elasticsearch';
import { stackEnv, uniqueName } from '@kaudit/testkit';
import { applyResources, dataStreamExists } from './apply';
import { createEsClient } from './es-client';
import { dataStreamNames } from './names';

const { esNode } = stackEnv();
const namespace = () => uniqueName('apply').replaceAll('-', '_');

describe('es-resources > apply (real Elasticsearch)', () => {
  let client: Client;
  beforeAll(() => {
    client = createEsClient({ node: esNode });
  });
  afterAll(() => client.close());

  it('installs the templates and creates both data streams; a second run changes nothing', async () => {
    const ns = namespace();
    const first = await applyResources(client, { namespace: ns, numberOfReplicas: 0, retention: '400d' });
    expect(first.dataStreams.map((d) => d.outcome)).not.toContain('existed');
    const names = dataStreamNames(ns);
    expect(await dataStreamExists(client, names.events)).toBe(true);
    expect(await dataStreamExists(client, names.findings)).toBe(true);

    const second = await applyResources(client, { namespace: ns, numberOfReplicas: 0, retention: '400d' });
    expect(second.dataStreams).toEqual([
      { name: names.events, outcome: 'existed' },
      { name: names.findings, outcome: 'existed' },
    ]);
    expect(['updated', 'unsupported']).toContain(second.streamLifecycle);

    const templates = await client.indices.getIndexTemplate({ name: 'logs-kubernetes.audit_logs-kaudit' });
    const template = templates.index_templates[0]!.index_template;
    expect(template.priority).toBeGreaterThan(200);
    expect(template.template?.lifecycle?.data_retention).toBe('400d');

    const mapping = await client.indices.getMapping({ index: names.events });
    const properties = Object.values(mapping)[0]!.mappings.properties as Record<
      string,
      { type?: string; properties?: Record<string, { type?: string }> }
    >;
    expect(properties['@timestamp']?.type).toBe('date');
    expect(properties.source?.properties?.ip?.type).toBe('ip');
    // Nothing was stored by creating the streams.
    expect((await client.count({ index: names.events })).count).toBe(0);
  });

  it('applies a changed retention to data streams that already exist, or says in one line that it cannot', async () => {
    const ns = namespace();
    await applyResources(client, { namespace: ns, numberOfReplicas: 0, retention: '400d' });
    const warnings: Array<{ details: object; message: string }> = [];
    const logger = {
      info: () => {},
      warn: (details: object, message: string) => warnings.push({ details, message }),
    };
    const result = await applyResources(client, {
      namespace: ns,
      numberOfReplicas: 0,
      retention: '30d',
      logger,
    });
    const names = Object.values(dataStreamNames(ns));
    if (result.streamLifecycle === 'unsupported') {
      // The test stack's integ-test distribution has no _data_stream/<name>/_lifecycle endpoint.
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toMatch(/existing data streams keep their lifecycle/);
      expect(warnings[0]!.details).toMatchObject({
        dataStreams: names,
        request: `PUT /_data_stream/${names[0]}/_lifecycle`,
        reason: expect.stringMatching(/no handler found/),
      });
    } else {
      expect(result.streamLifecycle).toBe('updated');
      const lifecycle = await client.indices.getDataLifecycle({ name: names.join(',') });
      expect(lifecycle.data_streams.map((d) => d.lifecycle?.data_retention)).toEqual(['30d', '30d']);
    }
    // Either way the templates carry the new retention for the streams created from now on.
    const templates = await client.indices.getIndexTemplate({ name: 'logs-kubernetes.audit_logs-kaudit' });
    expect(templates.index_templates[0]!.index_template.template?.lifecycle?.data_retention).toBe('30d');
  });

  it('skips the ILM policy with a log line when the cluster has no ILM API, keeping the lifecycle', async () => {
    const warnings: string[] = [];
    const logger = { info: () => {}, warn: (_details: object, message: string) => warnings.push(message) };
    const result = await applyResources(client, {
      namespace: namespace(),
      numberOfReplicas: 0,
      ilm: true,
      logger,
    });
    // The test stack's integ-test distribution has no ILM; a full distribution applies the policy.
    if (result.ilm === 'skipped') {
      expect(warnings.join('\n')).toMatch(/ILM policy skipped/);
      const templates = await client.indices.getIndexTemplate({ name: 'logs-kaudit.findings' });
      expect(templates.index_templates[0]!.index_template.template?.lifecycle?.data_retention).toBe('365d');
    } else {
      expect(result.ilm).toBe('applied');
    }
  });

  it("leaves Elastic Agent's logs-kubernetes.audit_logs template every stream but kaudit's", async () => {
    // A stand-in for the kubernetes integration's template: same name, pattern and priority.
    await client.indices.putIndexTemplate({
      name: 'logs-kubernetes.audit_logs',
      index_patterns: ['logs-kubernetes.audit_logs-*'],
      data_stream: {},
      priority: 200,
      _meta: { managed_by: 'fleet' },
      template: { mappings: { properties: { kubernetes: { properties: { audit: { type: 'object' } } } } } },
    });
    try {
      const ns = namespace();
      await applyResources(client, { namespace: ns, numberOfReplicas: 0 });
      const simulate = async (index: string) =>
        (
          (await client.transport.request({
            method: 'POST',
            path: `/_index_template/_simulate_index/${index}`,
          })) as { template: { mappings: { properties?: Record<string, unknown> } } }
        ).template.mappings.properties ?? {};
      // kaudit's stream gets kaudit's mappings (its template wins over the integration's 200)...
      expect(Object.keys(await simulate(dataStreamNames(ns).events))).toContain('kaudit');
      const mapping = await client.indices.getFieldMapping({
        index: dataStreamNames(ns).events,
        fields: ['event.original'],
      });
      expect(JSON.stringify(mapping)).toContain('"index":false');
      // ...and an Elastic Agent stream keeps the integration's template: none of kaudit's mappings.
      const agent = Object.keys(await simulate('logs-kubernetes.audit_logs-default'));
      expect(agent).toContain('kubernetes');
      expect(agent).not.toContain('kaudit');
    } finally {
      await client.indices.deleteIndexTemplate({ name: 'logs-kubernetes.audit_logs' });
    }
  });
});
