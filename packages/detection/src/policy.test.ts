import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPolicy, loadPolicyText } from './policy';

describe('detection > policy', () => {
  it('validates the shipped policies/detection.yaml and sets every key', () => {
    const text = readFileSync(join(__dirname, '../../../policies/detection.yaml'), 'utf8');
    const policy = loadPolicyText(text);
    expect(policy.timezone).toBe('Europe/Berlin');
    expect(policy.businessHours).toMatchObject({
      days: ['mon', 'tue', 'wed', 'thu', 'fri'],
      start: 480,
      end: 1140,
    });
    expect(policy.learningPeriod).toBe(7 * 86_400_000);
    expect(policy.network.clusterCIDRs).toContain('10.0.0.0/8');
    expect(policy.rules['secret-enumeration']).toMatchObject({
      enabled: true,
      distinctSecrets: 20,
      window: 300_000,
    });
    expect(Object.keys(policy.rules)).toHaveLength(13);
  });

  it('fills defaults for an empty document', () => {
    const policy = loadPolicyText('');
    expect(policy).toEqual(defaultPolicy());
    expect(policy.timezone).toBe('UTC');
    expect(policy.grouping.window).toBe(600_000);
    expect(policy.rules['secret-access-denied-burst'].threshold).toBe(5);
    expect(policy.network.knownAddressMinAge).toBe(3_600_000);
    expect(policy.baseline.hours.retention).toBe(30 * 86_400_000);
  });

  it.each([
    ['businessHours:\n  start: "8am"', /businessHours\.start: must be HH:MM/],
    ['timezone: Mars/Olympus', /timezone: must be an IANA time zone/],
    ['learningPeriod: soon', /learningPeriod: must be a duration/],
    [
      'network:\n  clusterCIDRs: ["10.0.0.0/33"]',
      /network\.clusterCIDRs\.0: must be an IP address or a CIDR/,
    ],
    ['rules:\n  secret-off-hours:\n    severity: urgent', /rules\.secret-off-hours\.severity/],
    [
      'rules:\n  secret-enumeration:\n    treshold: 3',
      /rules\.secret-enumeration: Unrecognized key: "treshold"/,
    ],
    ['rules:\n  secret-made-up: {}', /rules: Unrecognized key: "secret-made-up"/],
    ['businessHours:\n  start: "09:00"\n  end: "09:00"', /businessHours\.end: start and end must differ/],
    ['businessHours:\n  start: "24:00"\n  end: "06:00"', /businessHours\.start: must be before 24:00/],
    ['businessHours:\n  holidays: ["25.12.2026"]', /businessHours\.holidays\.0: must be a date/],
    ['learningPeriod: [', /not valid YAML/],
    ['baseline:\n  hours:\n    retention: forever', /baseline\.hours\.retention: must be a duration/],
    ['network:\n  knownAddressMinAge: -1', /network\.knownAddressMinAge: must be a duration/],
  ])('rejects %j naming the path', (yaml, message) => {
    expect(() => loadPolicyText(yaml)).toThrow(message);
  });

  it('accepts hours that span midnight (start after end)', () => {
    expect(loadPolicyText('businessHours:\n  start: "22:00"\n  end: "06:00"').businessHours).toMatchObject({
      start: 1320,
      end: 360,
    });
  });

  it('lists every problem at once', () => {
    expect(() => loadPolicyText('timezone: Nowhere\nlearningPeriod: x')).toThrow(
      /timezone: .*; learningPeriod: /,
    );
  });
});
