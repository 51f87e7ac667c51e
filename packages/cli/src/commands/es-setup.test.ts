import { esSetupProblems, formatEsSetupResult } from './es-setup';

const options = {
  policies: 'policies/elasticsearch',
  namespace: 'default',
  retention: '365d',
  replicas: 1,
  ilm: false,
};

describe('cli > es-setup', () => {
  it('accepts the defaults', () => {
    expect(esSetupProblems(options, {})).toEqual([]);
  });

  it('names every bad option and variable at once', () => {
    const problems = esSetupProblems(
      { ...options, namespace: 'Prod-EU', retention: '1y', replicas: -1 },
      { ES_NODE: 'es:9200', ES_API_KEY: 'k', ES_USERNAME: 'u' },
    ).join('\n');
    for (const name of [
      '--namespace',
      '--retention',
      '--replicas',
      'ES_NODE',
      'ES_API_KEY',
      'ES_USERNAME/ES_PASSWORD',
    ]) {
      expect(problems).toContain(`${name}:`);
    }
  });

  it('prints one greppable line per resource', () => {
    const text = formatEsSetupResult({
      componentTemplates: ['kaudit-settings'],
      indexTemplates: ['logs-kaudit.audit'],
      ilm: 'skipped',
      retention: '30d',
      dataStreams: [{ name: 'logs-kaudit.audit-default', outcome: 'existed' }],
      streamLifecycle: 'unsupported',
    });
    expect(text.split('\n')).toEqual([
      'component template kaudit-settings: applied',
      'index template logs-kaudit.audit: applied',
      'retention: data stream lifecycle, 30d (ILM requested but not available on this cluster)',
      'data stream logs-kaudit.audit-default: existed',
      'data stream lifecycle: unchanged (this cluster has no data stream lifecycle API; only new streams follow the templates)',
      '',
    ]);
  });
});
