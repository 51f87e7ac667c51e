import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { composedMappings, type MappedFields, mappedFields } from './mapping-fields';
import { defaultPoliciesDir, loadResources } from './resources';

/**
 * policies/kibana/kaudit.ndjson is imported into Kibana by docker-compose. Kibana accepts objects that
 * point at missing data views or unmapped fields and shows empty panels: these checks catch that here.
 */
interface SavedObject {
  id: string;
  type: string;
  attributes: Record<string, unknown> & { title: string };
  references: Array<{ name: string; type: string; id: string }>;
}

const file = join(__dirname, '../../../policies/kibana/kaudit.ndjson');
const objects: SavedObject[] = readFileSync(file, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line));
const resources = loadResources(defaultPoliciesDir());

/** Data view id -> the fields of the index template whose pattern is the data view's title. */
const dataViews = new Map<string, MappedFields>(
  objects
    .filter((o) => o.type === 'index-pattern')
    .map((view) => {
      const template = resources.indexTemplates.find((t) =>
        (t.body.index_patterns as string[]).includes(view.attributes.title),
      );
      if (!template)
        throw new Error(`data view ${view.id}: no index template has the pattern ${view.attributes.title}`);
      return [view.id, mappedFields(composedMappings(resources, template.name))];
    }),
);

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
  it('has the data views, saved searches and dashboard the issue names', () => {
    const titles = (type: string) => objects.filter((o) => o.type === type).map((o) => o.attributes.title);
    expect(titles('index-pattern').sort()).toEqual(['logs-kaudit.audit-*', 'logs-kaudit.findings-*']);
    expect(titles('search').sort()).toEqual([
      'Denied secret access',
      'Findings, last 24 h',
      'Secret access by non-system identities',
    ]);
    expect(titles('dashboard')).toHaveLength(1);
    expect(new Set(objects.map((o) => o.id)).size).toBe(objects.length);
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

  it('the dashboard has a reference for every panel', () => {
    const dashboard = objects.find((o) => o.type === 'dashboard')!;
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
  });

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
