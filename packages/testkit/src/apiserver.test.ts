import { metricSum } from './apiserver';

describe('metricSum', () => {
  const text = [
    '# HELP apiserver_audit_error_total [ALPHA] Counter of audit events that failed to be audited properly.',
    '# TYPE apiserver_audit_error_total counter',
    'apiserver_audit_error_total{plugin="log"} 0',
    'apiserver_audit_error_total{plugin="webhook"} 17',
    'apiserver_audit_event_total 950',
    'apiserver_audit_event_total_other 5',
  ].join('\n');

  it('adds a counter over its label sets, and only that counter', () => {
    expect(metricSum(text, 'apiserver_audit_error_total')).toBe(17);
    expect(metricSum(text, 'apiserver_audit_event_total')).toBe(950);
  });

  it('is 0 for a counter the API server never reported', () => {
    expect(metricSum(text, 'apiserver_audit_requests_rejected_total')).toBe(0);
  });
});
