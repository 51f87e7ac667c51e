import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@elastic/elasticsearch';
import type { AuditEvent } from '@kaudit/audit-schema';
import { parse } from 'yaml';
import { kqlToDsl } from './kql';

/**
 * The conformance suite's reading of elastic-rules.yaml (Elastic's prebuilt Kubernetes rules, their
 * trigger and non-trigger events) and its one question per rule and cluster: would the rule fire on
 * the documents the indexer stored for that cluster? Test code only.
 */
type Dsl = Record<string, unknown>;

interface RegexpClause {
  field: string;
  /** A regular expression over the field as stored. */
  pattern?: string;
  /** One written over the URL-decoded URI (the ES|QL rules URL_DECODE it); matched against the encoded one. */
  decodedPattern?: string;
}

export interface Threshold {
  /** Field -> [min] or [min, max] distinct values (ES|QL count_distinct ... | WHERE). */
  distinct?: Record<string, number[]>;
  maxDocs?: number;
  /** At least one document of the group matches this KQL. */
  some?: string;
}

export interface ElasticRule {
  id: string;
  name: string;
  file: string;
  type: 'query' | 'new_terms' | 'eql' | 'esql';
  language: 'kuery' | 'eql' | 'esql';
  query: string;
  fields: string[];
  equivalent?: {
    kql?: string;
    regexp?: RegexpClause[];
    notRegexp?: RegexpClause[];
    threshold?: Threshold;
    sequence?: { by: string; maxspanMs: number; steps: string[] };
  };
  /** Why the rule cannot match kaudit's documents (and the test asserts that it does not). */
  misses?: string;
  /** The rule's query without what `misses` names: must behave, to show nothing else is missing. */
  withoutMissing?: string;
  trigger: Array<Record<string, unknown>>;
  nonTrigger: Array<Record<string, unknown>>;
}

export const RULES_FILE = join(__dirname, 'elastic-rules.yaml');

export function loadElasticRules(): { defaults: Record<string, unknown>; rules: ElasticRule[] } {
  return parse(readFileSync(RULES_FILE, 'utf8')) as {
    defaults: Record<string, unknown>;
    rules: ElasticRule[];
  };
}

/** The audit events of one side of a rule, a second apart so sequences have an order. */
export function ruleEvents(
  defaults: Record<string, unknown>,
  overrides: Array<Record<string, unknown>>,
  ruleIndex: number,
  side: 't' | 'n',
): AuditEvent[] {
  return overrides.map((override, i) => {
    const at = new Date(Date.UTC(2026, 0, 5, 10, 0, 0) + ruleIndex * 60_000 + i * 1000).toISOString();
    const event: Record<string, unknown> = {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      auditID: `00000000-0000-4000-${side === 't' ? '8' : '9'}${String(ruleIndex).padStart(3, '0')}-${String(i).padStart(12, '0')}`,
      requestURI: '/api/v1/namespaces/default/secrets/db-password',
      ...defaults,
      requestReceivedTimestamp: at,
      stageTimestamp: at,
      ...override,
    };
    for (const [key, value] of Object.entries(event)) if (value === null) delete event[key];
    return event as unknown as AuditEvent;
  });
}

/** A regular expression over decoded text as one over the URL-encoded text (/ : & > may be %-encoded). */
export function encodedPattern(decoded: string): string {
  const encodings: Record<string, string> = { '/': '2[Ff]', ':': '3[Aa]', '&': '26', '>': '3[Ee]' };
  let out = '';
  let inClass = false;
  for (let i = 0; i < decoded.length; i++) {
    const c = decoded[i]!;
    if (c === '\\') {
      out += c + (decoded[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '[') inClass = true;
    if (c === ']') inClass = false;
    out += !inClass && encodings[c] ? `(${c === '&' ? '\\&' : c === '>' ? '\\>' : c}|%${encodings[c]})` : c;
  }
  return out;
}

function regexpQuery(clause: RegexpClause): Dsl {
  const value = clause.decodedPattern !== undefined ? encodedPattern(clause.decodedPattern) : clause.pattern!;
  // NONE: only the basic operators, so & > # @ ~ < are plain characters as in ES|QL's RLIKE.
  return { regexp: { [clause.field]: { value, flags: 'NONE' } } };
}

/** The rule's condition as Query DSL: the KQL as written, or its stated equivalent. */
export function ruleQuery(rule: ElasticRule, kql?: string): Dsl {
  const text = kql ?? (rule.language === 'kuery' ? rule.query : rule.equivalent?.kql);
  if (text === undefined) throw new Error(`${rule.id}: no KQL and no equivalent`);
  const filter: Dsl[] = [kqlToDsl(text), ...(rule.equivalent?.regexp ?? []).map(regexpQuery)];
  const mustNot = (rule.equivalent?.notRegexp ?? []).map(regexpQuery);
  return { bool: { filter, must_not: mustNot } };
}

export const RULES_INDEX = 'logs-kubernetes.audit_logs-*';

interface Hit {
  _source: { '@timestamp': string; user?: { name?: string } };
}

/** Would the rule fire on the documents of `cluster` (searched on the rules' own index pattern)? */
export async function fires(es: Client, rule: ElasticRule, cluster: string, kql?: string): Promise<boolean> {
  const inCluster = { term: { 'kaudit.cluster': cluster } };
  const sequence = rule.equivalent?.sequence;
  if (sequence && kql === undefined) {
    const steps = await Promise.all(
      sequence.steps.map(async (step) => {
        const reply = await es.search<Hit['_source']>({
          index: RULES_INDEX,
          size: 100,
          query: { bool: { filter: [kqlToDsl(step), inCluster] } },
        });
        return reply.hits.hits.map((hit) => ({
          by: hit._source?.user?.name,
          at: Date.parse(hit._source!['@timestamp']),
        }));
      }),
    );
    const [first, second] = steps as [Array<{ by?: string; at: number }>, Array<{ by?: string; at: number }>];
    return first.some((a) =>
      second.some(
        (b) => a.by !== undefined && a.by === b.by && b.at >= a.at && b.at - a.at <= sequence.maxspanMs,
      ),
    );
  }
  const threshold = kql === undefined ? rule.equivalent?.threshold : undefined;
  const aggs: Record<string, Dsl> = {};
  for (const field of Object.keys(threshold?.distinct ?? {})) aggs[field] = { cardinality: { field } };
  if (threshold?.some) aggs.some = { filter: kqlToDsl(threshold.some) };
  const reply = await es.search({
    index: RULES_INDEX,
    size: 0,
    track_total_hits: true,
    query: { bool: { filter: [ruleQuery(rule, kql), inCluster] } },
    ...(Object.keys(aggs).length > 0 ? { aggs } : {}),
  });
  const count = (reply.hits.total as { value: number }).value;
  if (count === 0) return false;
  if (!threshold) return true;
  const results = (reply.aggregations ?? {}) as Record<string, { value?: number; doc_count?: number }>;
  for (const [field, [min, max]] of Object.entries(threshold.distinct ?? {})) {
    const value = results[field]?.value ?? 0;
    if (value < min! || (max !== undefined && value > max)) return false;
  }
  if (threshold.maxDocs !== undefined && count > threshold.maxDocs) return false;
  if (threshold.some && (results.some?.doc_count ?? 0) === 0) return false;
  return true;
}
