import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signature of the generic webhook, in the scheme Stripe and Slack made familiar:
 *   X-Kaudit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
 * The timestamp is inside the signed text so a captured request cannot be replayed later with a new
 * one; receivers reject signatures older than a tolerance (5 minutes by default).
 */
export const SIGNATURE_HEADER = 'X-Kaudit-Signature';

export function computeSignature(key: string | Buffer, timestampSec: number, body: string): string {
  return createHmac('sha256', key).update(`${timestampSec}.${body}`, 'utf8').digest('hex');
}

/** The header value for `body` signed at `nowMs`. */
export function signatureHeaderValue(key: string | Buffer, body: string, nowMs: number = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${computeSignature(key, t, body)}`;
}

export type VerifyResult = { ok: true; timestampSec: number } | { ok: false; reason: string };

/**
 * What a receiver runs on the raw request body (bytes as received, before any JSON parsing) and the
 * header value. Self-contained on purpose: copy it into a receiver as it is.
 */
export function verifySignature(
  key: string | Buffer,
  body: string,
  header: string | undefined,
  options: { toleranceSec?: number; nowMs?: number } = {},
): VerifyResult {
  if (!header) return { ok: false, reason: 'missing signature header' };
  let timestampSec: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === 't' && /^\d+$/.test(value)) timestampSec = Number(value);
    // Several v1 values are allowed so a sender can sign with an old and a new key during rotation.
    if (name === 'v1') candidates.push(value);
  }
  if (timestampSec === undefined) return { ok: false, reason: 'no timestamp in signature header' };
  if (candidates.length === 0) return { ok: false, reason: 'no v1 signature in signature header' };
  const toleranceSec = options.toleranceSec ?? 300;
  const nowSec = Math.floor((options.nowMs ?? Date.now()) / 1000);
  if (Math.abs(nowSec - timestampSec) > toleranceSec) {
    return { ok: false, reason: 'timestamp outside the tolerance' };
  }
  const expected = Buffer.from(computeSignature(key, timestampSec, body), 'hex');
  const matched = candidates.some((candidate) => {
    const given = Buffer.from(candidate, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return matched ? { ok: true, timestampSec } : { ok: false, reason: 'signature does not match' };
}
