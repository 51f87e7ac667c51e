export { type FieldPath, formatFieldPath, parseFieldPath } from './path';
export {
  DEFAULT_REDACTION_POLICY,
  LAST_APPLIED_ANNOTATION,
  parseRedactionPolicy,
  parseRedactionPolicyYaml,
  type RedactionPolicy,
  RedactionPolicyError,
  type RedactionPolicyInput,
  RedactionPolicySchema,
  type RedactionRule,
} from './policy';
export { createRedactor, type RawRedactionResult, type RedactionResult, type Redactor } from './redact';
