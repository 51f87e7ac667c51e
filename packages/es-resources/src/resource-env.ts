import { envBoolean, envInt, parseConfig } from '@kaudit/service-kit';
import { z } from 'zod';
import { DEFAULT_NAMESPACE, namespaceProblem } from './names';
import { DEFAULT_RETENTION, retentionProblem } from './resources';

const problemCheck =
  (check: (value: string) => string | undefined) => (value: string, ctx: z.RefinementCtx) => {
    const problem = check(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  };

/**
 * The variables that shape kaudit's Elasticsearch resources, parsed once for the indexer (its
 * config.ts spreads this shape) and `kaudit es-setup` (its flags default to them): the same defaults,
 * the same accepted values, the same messages.
 */
export const esResourceEnv = {
  ES_DATA_STREAM_NAMESPACE: z.string().default(DEFAULT_NAMESPACE).superRefine(problemCheck(namespaceProblem)),
  ES_RETENTION: z.string().default(DEFAULT_RETENTION).superRefine(problemCheck(retentionProblem)),
  ES_NUMBER_OF_REPLICAS: envInt(1, { min: 0, max: 10 }),
  ES_ILM_POLICY: envBoolean(false),
};

export const EsResourceEnvSchema = z.object(esResourceEnv);
export type EsResourceEnv = z.infer<typeof EsResourceEnvSchema>;

export interface EsResourceSettings {
  namespace: string;
  retention: string;
  numberOfReplicas: number;
  ilm: boolean;
}

/** Parses the resource variables of `env`; never throws, problems are named by variable. */
export function parseEsResourceEnv(env: Record<string, string | undefined>): {
  value: EsResourceSettings | undefined;
  problems: string[];
} {
  const { value, problems } = parseConfig(EsResourceEnvSchema, env);
  return {
    value: value && {
      namespace: value.ES_DATA_STREAM_NAMESPACE,
      retention: value.ES_RETENTION,
      numberOfReplicas: value.ES_NUMBER_OF_REPLICAS,
      ilm: value.ES_ILM_POLICY,
    },
    problems,
  };
}
