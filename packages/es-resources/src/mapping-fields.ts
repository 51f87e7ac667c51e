import { AppError } from '@kaudit/common';
import type { Resources } from './resources';

type Json = Record<string, unknown>;

interface MappingNode {
  type?: string;
  dynamic?: boolean | string;
  enabled?: boolean;
  properties?: Record<string, MappingNode>;
  fields?: Record<string, MappingNode>;
}

/**
 * The mappings an index template produces: its component templates' mappings merged in order, then
 * its own, as Elasticsearch composes them. For tests and tooling that check documents and Kibana
 * objects against what the cluster will actually map.
 */
export function composedMappings(resources: Resources, indexTemplate: string): MappingNode {
  const template = resources.indexTemplates.find((t) => t.name === indexTemplate);
  if (!template) throw new AppError('KAUDIT_ERR_POLICY', `no index template ${indexTemplate}`);
  const body = template.body as { composed_of?: string[]; template?: { mappings?: MappingNode } };
  let merged: MappingNode = {};
  for (const name of body.composed_of ?? []) {
    const component = resources.componentTemplates.find((c) => c.name === name);
    const mappings = (component?.body as { template?: { mappings?: MappingNode } } | undefined)?.template
      ?.mappings;
    if (mappings) merged = mergeMappings(merged, mappings);
  }
  return body.template?.mappings ? mergeMappings(merged, body.template.mappings) : merged;
}

function mergeMappings(base: MappingNode, over: MappingNode): MappingNode {
  const out: MappingNode = { ...base, ...over };
  if (base.properties || over.properties) {
    const properties: Record<string, MappingNode> = { ...(base.properties ?? {}) };
    for (const [name, node] of Object.entries(over.properties ?? {})) {
      properties[name] = properties[name] ? mergeMappings(properties[name], node) : node;
    }
    out.properties = properties;
  }
  return out;
}

export interface MappedFields {
  /** Every searchable leaf (multi-fields included, e.g. user_agent.original.text) and its type. */
  leaves: Map<string, string>;
  /**
   * Object paths whose content is accepted without a mapping: flattened fields, disabled objects and
   * `dynamic: false` objects.
   */
  open: Set<string>;
}

export function mappedFields(mappings: MappingNode): MappedFields {
  const leaves = new Map<string, string>();
  const open = new Set<string>();
  const walk = (node: MappingNode, path: string) => {
    if (node.type && node.type !== 'object' && node.type !== 'nested') {
      leaves.set(path, node.type);
      if (node.type === 'flattened') open.add(path);
      for (const [name, sub] of Object.entries(node.fields ?? {}))
        leaves.set(`${path}.${name}`, sub.type ?? '');
      return;
    }
    if (path && (node.enabled === false || node.dynamic === false || node.dynamic === 'false'))
      open.add(path);
    for (const [name, child] of Object.entries(node.properties ?? {}))
      walk(child, path ? `${path}.${name}` : name);
  };
  walk(mappings, '');
  return { leaves, open };
}

/** Leaf paths of a document (arrays looked through), each with its values. */
export function documentLeaves(doc: Json): Map<string, unknown[]> {
  const out = new Map<string, unknown[]>();
  const walk = (value: unknown, path: string) => {
    if (Array.isArray(value)) {
      for (const item of value) walk(item, path);
      return;
    }
    if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) walk(child, path ? `${path}.${key}` : key);
      return;
    }
    out.set(path, [...(out.get(path) ?? []), value]);
  };
  walk(doc, '');
  return out;
}

/** The closest open ancestor (see MappedFields.open) of a path, if any. */
export function openAncestor(fields: MappedFields, path: string): string | undefined {
  const parts = path.split('.');
  for (let i = parts.length - 1; i > 0; i--) {
    const prefix = parts.slice(0, i).join('.');
    if (fields.open.has(prefix)) return prefix;
  }
  return undefined;
}
