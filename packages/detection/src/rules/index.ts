import { accessDeniedBurst } from './access-denied-burst';
import { anonymousAccess } from './anonymous-access';
import { anonymousApi } from './anonymous-api';
import { canaryRead } from './canary-read';
import { credentialMinted } from './credential-minted';
import { enumeration } from './enumeration';
import { escalationThenSecrets } from './escalation-then-secrets';
import { newNamespace } from './new-namespace';
import { newServiceAccount } from './new-service-account';
import { newSourceIp } from './new-source-ip';
import { offHours } from './off-hours';
import { tokenProvenance } from './token-provenance';
import type { RequestRule, Rule } from './types';
import { unusualUserAgent } from './unusual-user-agent';

export type { RequestRule, Rule, RuleContext } from './types';

/** Every secret-read rule, in the order they are evaluated (the order findings of one request are emitted in). */
export const RULES: readonly Rule[] = [
  canaryRead,
  anonymousAccess,
  offHours,
  newSourceIp,
  newServiceAccount,
  enumeration,
  accessDeniedBurst,
  unusualUserAgent,
  newNamespace,
  escalationThenSecrets,
];

/** Rules over any request with facts (request-facts.ts), evaluated after the secret-read rules. */
export const REQUEST_RULES: readonly RequestRule[] = [credentialMinted, tokenProvenance, anonymousApi];
