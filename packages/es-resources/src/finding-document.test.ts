import { sampleFinding } from '../test/findings';
import { toFindingDocument } from './finding-document';

describe('es-resources > finding document', () => {
  it('is created under the finding id, so a finding produced twice is stored once', () => {
    const finding = sampleFinding();
    expect(toFindingDocument(finding)._id).toBe(finding.id);
    expect(toFindingDocument(finding)).toEqual(toFindingDocument(structuredClone(finding)));
  });

  it('carries rule, severity, technique, identity and the audit IDs it covers', () => {
    const { doc } = toFindingDocument(sampleFinding(), { namespace: 'default' });
    expect(doc).toMatchObject({
      '@timestamp': '2026-01-05T10:00:00.000000Z',
      data_stream: { type: 'logs', dataset: 'kaudit.findings', namespace: 'default' },
      event: { kind: 'alert', severity: 3, risk_score: 73, action: 'secret-new-source-ip' },
      rule: {
        id: 'secret-new-source-ip',
        uuid: 'secret-new-source-ip',
        ruleset: 'kaudit',
        author: ['kaudit'],
      },
      threat: {
        framework: 'MITRE ATT&CK',
        technique: {
          id: ['T1552', 'T1078'],
          reference: [
            'https://attack.mitre.org/techniques/T1552/',
            'https://attack.mitre.org/techniques/T1078/',
          ],
          subtechnique: { id: ['T1552.007'], reference: ['https://attack.mitre.org/techniques/T1552/007/'] },
        },
      },
      user: { name: 'system:serviceaccount:ci:deployer' },
      source: { ip: '198.51.100.7' },
      kubernetes: { audit: { auditID: ['a-1', 'a-2', 'a-3'] } },
      kaudit: {
        finding: {
          severity: 'high',
          count: 3,
          identity: { kind: 'serviceaccount', namespace: 'ci' },
          details: { knownIPs: ['10.1.2.3'], windowMs: 300000 },
        },
      },
    });
  });

  it.each([
    ['low', 1, 21],
    ['medium', 2, 47],
    ['critical', 4, 99],
  ] as const)('severity %s is event.severity %d and risk score %d', (severity, rank, risk) => {
    const { doc } = toFindingDocument(sampleFinding({ severity }));
    expect(doc.event).toMatchObject({ severity: rank, risk_score: risk });
  });

  it('relates the impersonator and leaves out an unparsable source address', () => {
    const { doc } = toFindingDocument(
      sampleFinding({
        sourceIP: 'unknown',
        identity: { username: 'bob', kind: 'user', groups: [], impersonator: 'admin' },
        mitre: [],
      }),
    );
    expect(doc.related).toEqual({ user: ['bob', 'admin'] });
    expect(doc).not.toHaveProperty('source');
    expect(doc).not.toHaveProperty('threat');
  });
});
