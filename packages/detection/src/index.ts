export { formatDuration, parseDurationMs } from '@kaudit/common';
export {
  agentProduct,
  type IdentityState,
  learnedHours,
} from './baseline';
export { type BusinessHours, createBusinessHours, createLocalClock, type LocalTime } from './business-hours';
export { latestRevisions } from './emission';
export {
  type ClusterState,
  createEngine,
  type Engine,
  type EngineInput,
  type EngineState,
  type EngineStats,
} from './engine';
export { findingId, MITRE, TITLES } from './grouping';
export { addressSet, classify, type Identity, identityOf, sourceIPOf } from './identity';
export {
  defaultPolicy,
  loadPolicyText,
  type Policy,
  PolicyError,
  type PolicyInput,
  PolicySchema,
  parsePolicy,
} from './policy';
export { RULES } from './rules';
export { isSecretRead, type Observation, observe } from './scope';
export {
  decodeEngineState,
  decodeIdentity,
  encodeEngineState,
  encodeIdentity,
  identityFromValue,
  identityRow,
} from './state-codec';
