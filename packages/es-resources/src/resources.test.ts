import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Envelope } from '@kaudit/audit-schema';
import { buildEvent, loadSampleEvents, samplesDir } from '@kaudit/testkit';
import { sampleFinding } from '../test/findings';
import { toEventDocument } from './event-document';
import { toFindingDocument } from './finding-document';
import { composedMappings, documentLeaves, mappedFields, openAncestor } from './mapping-fields';
import { dataStreamName, legacyEventsStreamName, namespaceProblem } from './names';
import { OBJECT_FIELDS } from './object-fields';
import { defaultPoliciesDir, loadResources, type Resources } from './resources';

const dir = defaultPoliciesDir();
const EVENTS = 'logs-kubernetes.audit_logs-kaudit';

describe('es-resources > templates', () => {
  const resources = loadResources(dir);

  it('finds the repository policies', () => {
    expect(dir).toBe(join(__dirname, '../../../policies/elasticsearch'));
    expect(resources.indexTemplates.map((t) => t.name)).toEqual([
      'logs-kaudit.audit',
      'logs-kaudit.findings',
      EVENTS,
    ]);
  });

  it.each(['logs-kaudit.audit', 'logs-kaudit.findings', EVENTS])(
    '%s is a data stream template above the built-in logs template, composed of existing components',
    (name) => {
      const body = resources.indexTemplates.find((t) => t.name === name)!.body as {
        priority: number;
        data_stream: object;
        composed_of: string[];
        ignore_missing_component_templates?: string[];
        template: { lifecycle: { data_retention: string } };
      };
      expect(body.priority).toBeGreaterThan(100);
      expect(body.data_stream).toEqual({});
      expect(body.template.lifecycle.data_retention).toBe('365d');
      const known = new Set(resources.componentTemplates.map((c) => c.name));
      const optional = new Set(body.ignore_missing_component_templates ?? []);
      expect(body.composed_of.filter((c) => !known.has(c) && !optional.has(c))).toEqual([]);
    },
  );

  it.each([
    [EVENTS, 'source.ip', 'ip'],
    [EVENTS, '@timestamp', 'date'],
    [EVENTS, 'kubernetes.audit.sourceIPs', 'ip'],
    [EVENTS, 'related.ip', 'ip'],
    [EVENTS, 'user.name', 'keyword'],
    // Keyword leaves, as the integration maps them: EQL and ES|QL cannot read keys of a flattened field.
    [EVENTS, 'kubernetes.audit.annotations.authorization_k8s_io/decision', 'keyword'],
    [EVENTS, 'event.original', 'keyword'],
    [EVENTS, 'event.ingested', 'date'],
    [EVENTS, 'data_stream.dataset', 'keyword'],
    ['logs-kaudit.findings', 'event.severity', 'long'],
    ['logs-kaudit.findings', 'threat.technique.id', 'keyword'],
    ['logs-kaudit.findings', 'kubernetes.audit.auditID', 'keyword'],
  ])('%s maps %s as %s', (template, field, type) => {
    expect(mappedFields(composedMappings(resources, template)).leaves.get(field)).toBe(type);
  });

  it('maps exactly the request/response object sub-fields the document mapper checks', () => {
    const { leaves } = mappedFields(composedMappings(resources, EVENTS));
    for (const body of ['requestObject', 'responseObject']) {
      const prefix = `kubernetes.audit.${body}.`;
      const mapped = Object.fromEntries(
        [...leaves]
          .filter(([path]) => path.startsWith(prefix))
          .map(([path, type]) => [path.slice(prefix.length), type]),
      );
      expect(mapped).toEqual(OBJECT_FIELDS);
    }
  });

  it('keeps event.original out of the index, stored for ES|QL KEEP and the document view', () => {
    const event = composedMappings(resources, EVENTS).properties!.event!.properties!;
    expect(event.original).toEqual({ type: 'keyword', index: false, doc_values: false });
  });

  it.each([
    ['logs-kubernetes.audit_logs-kaudit', EVENTS],
    ['logs-kubernetes.audit_logs-kaudit_prod', EVENTS],
    ['logs-kubernetes.audit_logs-default', undefined],
    ['logs-kubernetes.audit_logs-kauditor', undefined],
    ['logs-kaudit.audit-default', 'logs-kaudit.audit'],
    ['logs-kaudit.findings-default', 'logs-kaudit.findings'],
  ])(
    'stream %s is governed by %s (Elastic Agent keeps the rest of logs-kubernetes.audit_logs-*)',
    (stream, template) => {
      const glob = (pattern: string) =>
        new RegExp(`^${pattern.replaceAll('.', '\\.').replaceAll('*', '.*')}$`);
      const matching = resources.indexTemplates.filter((t) =>
        (t.body.index_patterns as string[]).some((pattern) => glob(pattern).test(stream)),
      );
      expect(matching.map((t) => t.name)).toEqual(template ? [template] : []);
      // Above the integration's logs-kubernetes.audit_logs template (priority 200) for kaudit's streams.
      for (const t of matching) expect(t.body.priority as number).toBeGreaterThan(200);
    },
  );
});

describe('es-resources > options', () => {
  const body = (resources: Resources, name: string) =>
    resources.indexTemplates.find((t) => t.name === name)!.body as {
      template: { lifecycle?: { data_retention: string }; settings?: { index?: Record<string, unknown> } };
    };

  it('sets retention and replicas', () => {
    const resources = loadResources(dir, { retention: '30d', numberOfReplicas: 0 });
    expect(body(resources, 'logs-kaudit.audit').template.lifecycle).toEqual({ data_retention: '30d' });
    const settings = resources.componentTemplates.find((c) => c.name === 'kaudit-settings')!.body as {
      template: { settings: { index: { number_of_replicas: number } } };
    };
    expect(settings.template.settings.index.number_of_replicas).toBe(0);
    expect(resources.ilmPolicies[0]!.body).toMatchObject({
      policy: { phases: { delete: { min_age: '30d' } } },
    });
  });

  it('with ILM, drops the lifecycle, names the policy, and skips a warm phase later than deletion', () => {
    const resources = loadResources(dir, { ilm: true, retention: '7d' });
    const template = body(resources, 'logs-kaudit.findings').template;
    expect(template.lifecycle).toBeUndefined();
    expect(template.settings?.index?.lifecycle).toEqual({ name: 'kaudit-logs', prefer_ilm: true });
    const phases = (resources.ilmPolicies[0]!.body as { policy: { phases: Record<string, unknown> } }).policy
      .phases;
    expect(Object.keys(phases).sort()).toEqual(['delete', 'hot']);
  });

  it.each(['365', '1y', '-1d', '0d', ''])('rejects retention %j', (retention) => {
    expect(() => loadResources(dir, { retention })).toThrow(/retention/);
  });

  it.each([
    ['default', undefined, 'kaudit'],
    ['team_a.prod', undefined, 'kaudit_team_a.prod'],
    ['Team', 'must be lowercase', ''],
    ['a-b', 'must not contain', ''],
    ['', 'must not be empty', ''],
    ['x'.repeat(94), 'at most 93 bytes', ''],
  ])('namespace %j: %s', (namespace, problem, events) => {
    if (problem) expect(namespaceProblem(namespace)).toMatch(problem);
    else {
      expect(dataStreamName('events', namespace)).toBe(`logs-kubernetes.audit_logs-${events}`);
      expect(dataStreamName('findings', namespace)).toBe(`logs-kaudit.findings-${namespace}`);
      expect(legacyEventsStreamName(namespace)).toBe(`logs-kaudit.audit-${namespace}`);
    }
  });
});

/**
 * The root of every document is strict, so a field the mapper writes but the templates do not map
 * would be rejected by Elasticsearch. These checks run the mapper over every real sample.
 */
describe('es-resources > documents fit the templates', () => {
  const resources = loadResources(dir);

  const unmapped = (template: string, doc: Record<string, unknown>) => {
    const fields = mappedFields(composedMappings(resources, template));
    const problems: string[] = [];
    for (const [path, values] of documentLeaves(doc)) {
      const type = fields.leaves.get(path);
      if (type === undefined) {
        if (!openAncestor(fields, path)) problems.push(`${path} is not mapped`);
        continue;
      }
      for (const value of values) {
        if (type === 'ip' && path !== 'kubernetes.audit.sourceIPs' && typeof value !== 'string')
          problems.push(`${path}=${value}`);
        if (type === 'date' && Number.isNaN(Date.parse(String(value))))
          problems.push(`${path}=${value} is not a date`);
        if ((type === 'long' || type === 'integer' || type === 'byte') && !Number.isInteger(value))
          problems.push(`${path}=${value}`);
        if (type === 'boolean' && typeof value !== 'boolean' && value !== 'true' && value !== 'false')
          problems.push(`${path}=${value}`);
      }
    }
    return problems;
  };

  const sampleFiles = [
    ...[
      'openshift/ocp-4.12-audit.jsonl',
      'openshift/ocp-aws-2024-audit-with-bad-line.jsonl',
      'audit2rbac/demo-v1beta1.jsonl',
    ],
    ...[
      'aks/eventhub-batch.json',
      'aks/single-event-bom.json',
      'minikube/pod-exec.jsonl',
      'minikube/privileged-pod.jsonl',
    ],
    ...readdirSync(join(samplesDir, 'openshift'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => `openshift/${f}`),
    ...readdirSync(join(samplesDir, 'falco-secrets')).map((f) => `falco-secrets/${f}`),
  ];

  it.each(sampleFiles)('every event of %s', (file) => {
    const events = loadSampleEvents(file);
    expect(events.length).toBeGreaterThan(0);
    for (const event of events) {
      const envelope: Envelope = { cluster: 'c', receivedAt: '2026-01-01T00:00:00Z', event };
      const { doc } = toEventDocument(envelope, { namespace: 'default' });
      expect({ auditID: event.auditID, problems: unmapped(EVENTS, doc) }).toEqual({
        auditID: event.auditID,
        problems: [],
      });
    }
  });

  it('an event with every optional part', () => {
    const event = buildEvent({
      impersonatedUser: { username: 'bob', uid: 'u', groups: ['g'], extra: { 'scopes.x/y': ['a'] } },
      annotations: { 'authorization.k8s.io/decision': 'allow', 'kaudit.dev/redacted': 'requestObject.data' },
      requestObject: { spec: { type: { conflicting: true } } },
      responseObject: { kind: 'Pod', spec: { hostNetwork: true, containers: [{ image: 'x' }] } },
    });
    const { doc } = toEventDocument(
      { cluster: 'c', receivedAt: '2026-01-01T00:00:00Z', event },
      { namespace: 'x' },
    );
    expect(unmapped(EVENTS, doc)).toEqual([]);
  });

  it('a finding', () => {
    const { doc } = toFindingDocument(
      sampleFinding({ identity: { username: 'b', kind: 'user', groups: [], impersonator: 'a' } }),
      {
        namespace: 'default',
      },
    );
    expect(unmapped('logs-kaudit.findings', doc)).toEqual([]);
  });
});
