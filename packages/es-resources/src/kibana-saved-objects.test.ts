import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { composedMappings, type MappedFields, mappedFields } from './mapping-fields';
import { defaultPoliciesDir, loadResources } from './resources';

/**
 * policies/kibana/*.ndjson is imported into Kibana by docker-compose's kibana-setup. Kibana accepts
 * objects that point at missing data views or unmapped fields and shows empty panels: these checks
 * catch that here.
 */
interface SavedObject {
  id: string;
  type: string;
  typeMigrationVersion?: string;
  coreMigrationVersion?: string;
  attributes: Record<string, unknown> & { title: string };
  references: Array<{ name: string; type: string; id: string }>;
}

const kibanaDir = join(__dirname, '../../../policies/kibana');
const readNdjson = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
const files = readdirSync(kibanaDir).filter((file) => file.endsWith('.ndjson'));
const objects: SavedObject[] = files.flatMap((file) => readNdjson(join(kibanaDir, file)));
const resources = loadResources(defaultPoliciesDir());

/** A data view title's patterns (comma-separated) matched against the index templates' patterns. */
const covers = (templatePattern: string, viewPattern: string) =>
  templatePattern === viewPattern ||
  (viewPattern.endsWith('*') && templatePattern.startsWith(viewPattern.slice(0, -1)));

/**
 * Data view id -> the fields of the index template its first pattern reads (the current streams),
 * plus the data view's own runtime fields. Every other pattern must belong to a template too.
 */
const dataViews = new Map<string, MappedFields>(
  objects
    .filter((o) => o.type === 'index-pattern')
    .map((view) => {
      const patterns = view.attributes.title.split(',');
      const templates = patterns.map((pattern) =>
        resources.indexTemplates.find((t) =>
          (t.body.index_patterns as string[]).some((p) => covers(p, pattern)),
        ),
      );
      if (templates.some((t) => !t))
        throw new Error(
          `data view ${view.id}: no index template has every pattern of ${view.attributes.title}`,
        );
      const fields = mappedFields(composedMappings(resources, templates[0]!.name));
      for (const [name, field] of Object.entries(runtimeFields(view))) fields.leaves.set(name, field.type);
      return [view.id, fields];
    }),
);

function runtimeFields(view: SavedObject): Record<string, { type: string; script: { source: string } }> {
  const map = view.attributes.runtimeFieldMap as string | undefined;
  return map ? JSON.parse(map) : {};
}

/** Field names a KQL query filters on (quoted values removed first, so "system:anonymous" is no field). */
function kqlFields(query: string): string[] {
  const unquoted = query.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...unquoted.matchAll(/([A-Za-z0-9_@./]+)\s*(?::|>=|<=|>|<)/g)].map((match) => match[1]!);
}

function fieldsOf(object: SavedObject): string[] {
  const attributes = object.attributes as Record<string, unknown> & {
    kibanaSavedObjectMeta?: { searchSourceJSON: string };
  };
  const source = JSON.parse(attributes.kibanaSavedObjectMeta?.searchSourceJSON ?? '{}') as {
    query?: { query: string };
  };
  const fields = kqlFields(source.query?.query ?? '');
  if (object.type === 'search') {
    fields.push(
      ...(attributes.columns as string[]),
      ...(attributes.sort as string[][]).map(([field]) => field!),
    );
  }
  if (object.type === 'visualization') {
    const state = JSON.parse(attributes.visState as string) as {
      aggs: Array<{ params: { field?: string; filters?: Array<{ input: { query: string } }> } }>;
    };
    for (const agg of state.aggs) {
      if (agg.params.field) fields.push(agg.params.field);
      for (const filter of agg.params.filters ?? []) fields.push(...kqlFields(filter.input.query));
    }
  }
  return fields;
}

function isMapped(fields: MappedFields, field: string): boolean {
  if (fields.leaves.has(field)) return true;
  // A key inside a flattened field, e.g. kubernetes.audit.annotations.authorization_k8s_io/decision.
  const parts = field.split('.');
  return parts.some((_, i) => i > 0 && fields.leaves.get(parts.slice(0, i).join('.')) === 'flattened');
}

describe('es-resources > kibana saved objects', () => {
  it('has the data views, saved searches and dashboards the issues name', () => {
    const titles = (type: string) => objects.filter((o) => o.type === type).map((o) => o.attributes.title);
    // The events data view keeps its id and name and reads the streams before ADR 0008 too.
    expect(titles('index-pattern').sort()).toEqual([
      'logs-kaudit.findings-*',
      'logs-kubernetes.audit_logs-kaudit*,logs-kaudit.audit-*',
    ]);
    expect(objects.find((o) => o.id === 'kaudit-events')!.attributes.name).toBe('kaudit audit events');
    expect(titles('search').sort()).toEqual([
      'Denied secret access',
      'Findings with links to their audit events',
      'Findings, last 24 h',
      'Secret access by non-system identities',
      'TokenRequest and privilege changes',
      'What did this identity read',
      'Who read this Secret',
    ]);
    expect(titles('dashboard').sort()).toEqual([
      'kaudit: Kubernetes Secret access',
      'kaudit: Secret investigations',
    ]);
    expect(new Set(objects.map((o) => o.id)).size).toBe(objects.length);
  });

  it('every object imports into Kibana 8.19: migration versions it knows, none newer', () => {
    const known: Record<string, string> = {
      'index-pattern': '8.0.0',
      search: '8.0.0',
      visualization: '8.5.0',
      dashboard: '8.9.0',
    };
    for (const object of objects) {
      expect({ id: object.id, type: object.typeMigrationVersion }).toEqual({
        id: object.id,
        type: known[object.type],
      });
      expect({ id: object.id, core: object.coreMigrationVersion }).toEqual({ id: object.id, core: '8.8.0' });
    }
  });

  it("computes hour of week in the detection policy's time zone, not UTC", () => {
    const policy = parse(readFileSync(join(kibanaDir, '../detection.yaml'), 'utf8')) as { timezone?: string };
    const runtime = runtimeFields(objects.find((o) => o.id === 'kaudit-events')!);
    for (const name of ['kaudit.local.hour', 'kaudit.local.weekday']) {
      expect(runtime[name]!.script.source).toContain(`ZoneId.of('${policy.timezone ?? 'UTC'}')`);
    }
    const heatmap = objects.find((o) => o.id === 'kaudit-secret-hour-of-week-local')!;
    expect(heatmap.attributes.visState).toContain('kaudit.local.hour');
  });

  it("the investigations dashboard's cluster control reads a mapped field of a data view in the file", () => {
    const dashboard = objects.find((o) => o.id === 'kaudit-secret-investigations')!;
    const controls = dashboard.attributes.controlGroupInput as { panelsJSON: string };
    const panels = Object.entries(
      JSON.parse(controls.panelsJSON) as Record<string, { explicitInput: { fieldName: string } }>,
    );
    expect(panels).toHaveLength(1);
    for (const [id, panel] of panels) {
      const view = dashboard.references.find((r) => r.name === `controlGroup_${id}:optionsListDataView`)!;
      expect(dataViews.get(view.id)?.leaves.get(panel.explicitInput.fieldName)).toBe('keyword');
    }
  });

  it('links each finding to its audit events through the findings data view', () => {
    const findings = objects.find((o) => o.id === 'kaudit-findings')!;
    const formats = JSON.parse(findings.attributes.fieldFormatMap as string) as Record<
      string,
      { id: string; params: { urlTemplate: string } }
    >;
    const link = formats['kubernetes.audit.auditID']!;
    expect(link.id).toBe('url');
    expect(link.params.urlTemplate).toContain('dataViewId:kaudit-events');
    expect(link.params.urlTemplate).toContain('kubernetes.audit.auditID:"{{value}}"');
    expect(dataViews.get('kaudit-events')!.leaves.get('kubernetes.audit.auditID')).toBe('keyword');
  });

  it('the Security rule that promotes findings reads only fields the findings template maps', () => {
    const [rule] = readNdjson(join(kibanaDir, 'security/kaudit-findings-rule.ndjson')) as Array<{
      type: string;
      index: string[];
      query: string;
      required_fields: Array<{ name: string; type: string }>;
      severity_mapping: Array<{ field: string; value: string }>;
      risk_score_mapping: Array<{ field: string }>;
      rule_name_override: string;
    }>;
    expect(rule!.type).toBe('query');
    const template = resources.indexTemplates.find((t) =>
      (t.body.index_patterns as string[]).includes(rule!.index[0]!),
    )!;
    const { leaves } = mappedFields(composedMappings(resources, template.name));
    const used = [
      ...kqlFields(rule!.query),
      ...rule!.severity_mapping.map((m) => m.field),
      ...rule!.risk_score_mapping.map((m) => m.field),
      rule!.rule_name_override,
    ];
    expect(used.filter((field) => !leaves.has(field))).toEqual([]);
    for (const field of rule!.required_fields) expect(leaves.get(field.name)).toBe(field.type);
    expect(rule!.severity_mapping.map((m) => m.value)).toEqual(['low', 'medium', 'high', 'critical']);
  });

  it.each(objects.filter((o) => o.references.length > 0).map((o) => [o.type, o.id, o] as const))(
    '%s %s refers only to objects in the file',
    (_type, _id, object) => {
      const known = new Set(objects.map((o) => `${o.type}/${o.id}`));
      expect(object.references.filter((r) => !known.has(`${r.type}/${r.id}`))).toEqual([]);
    },
  );

  it.each(
    objects
      .filter((o) => o.type === 'search' || o.type === 'visualization')
      .map((o) => [o.type, o.id, o] as const),
  )('%s %s uses a data view that exists and only fields its template maps', (_type, _id, object) => {
    const source = JSON.parse(
      (object.attributes.kibanaSavedObjectMeta as { searchSourceJSON: string }).searchSourceJSON,
    ) as { indexRefName: string };
    const reference = object.references.find((r) => r.name === source.indexRefName);
    expect(reference?.type).toBe('index-pattern');
    const fields = dataViews.get(reference!.id);
    expect(fields).toBeDefined();
    const used = fieldsOf(object);
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((field) => !isMapped(fields!, field))).toEqual([]);
  });

  it.each(objects.filter((o) => o.type === 'dashboard').map((o) => [o.id, o] as const))(
    'dashboard %s has a reference for every panel',
    (_id, dashboard) => {
      const panels = JSON.parse(dashboard.attributes.panelsJSON as string) as Array<{
        panelIndex: string;
        panelRefName: string;
        type: string;
      }>;
      expect(panels.length).toBeGreaterThanOrEqual(7);
      for (const panel of panels) {
        const reference = dashboard.references.find(
          (r) => r.name === `${panel.panelIndex}:${panel.panelRefName}`,
        );
        expect({ panel: panel.panelIndex, type: reference?.type }).toEqual({
          panel: panel.panelIndex,
          type: panel.type,
        });
      }
    },
  );

  it.each([
    [
      'kubernetes.audit.objectRef.resource : "secrets" and not user.name : system\\:*',
      ['kubernetes.audit.objectRef.resource', 'user.name'],
    ],
    ['user.name : "system:anonymous" or a.b/c : "x"', ['user.name', 'a.b/c']],
    ['@timestamp >= "now-24h"', ['@timestamp']],
  ])('reads the fields of the KQL %s', (query, fields) => {
    expect(kqlFields(query)).toEqual(fields);
  });
});
