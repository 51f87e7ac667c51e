import { computeSignature, signatureHeaderValue, verifySignature } from './webhook-signature';

describe('alerter > webhook-signature', () => {
  const body = JSON.stringify({ id: 'f-1', rule: 'secret-new-source-ip', summary: 'ünïcode ✓' });
  const nowMs = Date.parse('2026-01-06T01:14:00Z');

  test('verifies with the key it was signed with', () => {
    const header = signatureHeaderValue('k3y', body, nowMs);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature('k3y', body, header, { nowMs })).toEqual({ ok: true, timestampSec: nowMs / 1000 });
  });

  test('fails with another key', () => {
    const header = signatureHeaderValue('k3y', body, nowMs);
    expect(verifySignature('other-key', body, header, { nowMs })).toEqual({
      ok: false,
      reason: 'signature does not match',
    });
  });

  test('fails when one byte of the body changed', () => {
    const header = signatureHeaderValue('k3y', body, nowMs);
    expect(verifySignature('k3y', body.replace('f-1', 'f-2'), header, { nowMs }).ok).toBe(false);
  });

  test('fails when the timestamp was swapped (it is part of the signed text)', () => {
    const header = signatureHeaderValue('k3y', body, nowMs).replace(/^t=\d+/, `t=${nowMs / 1000 + 1}`);
    expect(verifySignature('k3y', body, header, { nowMs })).toEqual({
      ok: false,
      reason: 'signature does not match',
    });
  });

  test('rejects a replay outside the tolerance', () => {
    const header = signatureHeaderValue('k3y', body, nowMs);
    expect(verifySignature('k3y', body, header, { nowMs: nowMs + 301_000 })).toEqual({
      ok: false,
      reason: 'timestamp outside the tolerance',
    });
    expect(verifySignature('k3y', body, header, { nowMs: nowMs + 301_000, toleranceSec: 600 }).ok).toBe(true);
  });

  test('accepts any of several v1 signatures (key rotation)', () => {
    const t = nowMs / 1000;
    const header = `t=${t},v1=${computeSignature('old', t, body)},v1=${computeSignature('new', t, body)}`;
    expect(verifySignature('new', body, header, { nowMs }).ok).toBe(true);
    expect(verifySignature('old', body, header, { nowMs }).ok).toBe(true);
    expect(verifySignature('neither', body, header, { nowMs }).ok).toBe(false);
  });

  test.each([
    [undefined, 'missing signature header'],
    ['v1=abcd', 'no timestamp in signature header'],
    ['t=1767662040', 'no v1 signature in signature header'],
    ['t=1767662040,v1=not-hex', 'signature does not match'],
  ])('rejects the malformed header %p', (header, reason) => {
    expect(verifySignature('k3y', body, header, { nowMs })).toEqual({ ok: false, reason });
  });
});
