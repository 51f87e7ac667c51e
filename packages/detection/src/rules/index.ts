import { accessDeniedBurst } from './access-denied-burst';
import { anonymousAccess } from './anonymous-access';
import { enumeration } from './enumeration';
import { newServiceAccount } from './new-service-account';
import { newSourceIp } from './new-source-ip';
import { offHours } from './off-hours';
import type { Rule } from './types';
import { unusualUserAgent } from './unusual-user-agent';

export type { Rule, RuleContext } from './types';

/** Every rule, in the order they are evaluated (the order findings of one request are emitted in). */
export const RULES: readonly Rule[] = [
  anonymousAccess,
  offHours,
  newSourceIp,
  newServiceAccount,
  enumeration,
  accessDeniedBurst,
  unusualUserAgent,
];
