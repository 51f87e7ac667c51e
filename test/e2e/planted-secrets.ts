import { randomBytes } from 'node:crypto';
import { loadSampleEvents } from '@kaudit/testkit';

/**
 * RequestResponse-level events that carry secret values, for the end-to-end test to plant among the
 * example traffic: Secret reads and writes with data / stringData / a last-applied annotation, a
 * TokenRequest and a TokenReview, each with a value unique to the run, plus the real (throw-away)
 * Secret events of ../shared/audit-samples/falco-secrets. Timed into a Monday morning of the example
 * week by identities that do such things then, so they add no finding.
 */
export interface PlantedSecrets {
  events: Array<Record<string, unknown>>;
  /** Every value that must not appear anywhere downstream of the sink. */
  values: string[];
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

export function plantedSecrets(): PlantedSecrets {
  const marker = (label: string) => `kaudit-planted-${label}-${randomBytes(9).toString('base64url')}`;
  const dbPassword = marker('db-password');
  const apiKey = marker('api-key');
  const stringDataValue = marker('string-data');
  const lastApplied = marker('last-applied');
  const issuedToken = `eyJhbGciOiJSUzI1NiJ9.${marker('token-request')}`;
  const reviewedToken = `eyJhbGciOiJSUzI1NiJ9.${marker('token-review')}`;
  const values = [
    dbPassword,
    b64(dbPassword),
    apiKey,
    b64(apiKey),
    stringDataValue,
    lastApplied,
    issuedToken,
    reviewedToken,
  ];

  // Monday 9 February 2026, 10:xx Europe/Berlin: after the learning week, at work.
  let minute = 10;
  const at = () => {
    minute += 1;
    return `2026-02-09T09:${String(minute).padStart(2, '0')}:00.000000Z`;
  };
  const base = (overrides: Record<string, unknown>) => {
    const time = at();
    return {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'RequestResponse',
      auditID: `e2e00000-0000-4000-8000-${randomBytes(6).toString('hex')}`,
      stage: 'ResponseComplete',
      responseStatus: { metadata: {}, code: 200 },
      requestReceivedTimestamp: time,
      stageTimestamp: time.replace('.000000Z', '.004000Z'),
      annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': '' },
      ...overrides,
    };
  };
  const alice = {
    user: {
      username: 'alice@example.com',
      groups: ['oidc:platform-admins', 'oidc:engineering', 'system:authenticated'],
    },
    sourceIPs: ['198.51.100.23'],
    userAgent: 'kubectl/v1.31.4 (darwin/arm64) kubernetes/a78aa47',
  };
  const secret = (name: string) => ({
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: {
      name,
      namespace: 'payments',
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name, namespace: 'payments' },
          data: { password: b64(lastApplied) },
          stringData: { note: lastApplied },
        }),
      },
    },
    type: 'Opaque',
    data: { password: b64(dbPassword), 'api-key': b64(apiKey) },
  });

  const events: Array<Record<string, unknown>> = [
    // kubectl apply of a Secret: request with stringData, response with data and the annotation.
    base({
      ...alice,
      verb: 'patch',
      requestURI: '/api/v1/namespaces/payments/secrets/db-admin?fieldManager=kubectl-client-side-apply',
      objectRef: { resource: 'secrets', namespace: 'payments', name: 'db-admin', apiVersion: 'v1' },
      requestObject: { ...secret('db-admin'), stringData: { url: `postgres://admin:${stringDataValue}@db` } },
      responseObject: secret('db-admin'),
    }),
    // Reading it back, and listing the namespace: values in responseObject and in list items.
    base({
      ...alice,
      verb: 'get',
      requestURI: '/api/v1/namespaces/payments/secrets/db-admin',
      objectRef: { resource: 'secrets', namespace: 'payments', name: 'db-admin', apiVersion: 'v1' },
      responseObject: secret('db-admin'),
    }),
    base({
      ...alice,
      verb: 'list',
      requestURI: '/api/v1/namespaces/payments/secrets?limit=500',
      objectRef: { resource: 'secrets', namespace: 'payments', apiVersion: 'v1' },
      responseObject: {
        kind: 'SecretList',
        apiVersion: 'v1',
        metadata: {},
        items: [secret('db-admin'), secret('stripe-api-key')],
      },
    }),
    // A kubelet asks for a service-account token (TokenRequest): the token is in status.token.
    base({
      user: { username: 'system:node:worker-1', groups: ['system:nodes', 'system:authenticated'] },
      sourceIPs: ['10.0.1.11'],
      userAgent: 'kubelet/v1.31.4 (linux/amd64) kubernetes/a78aa47',
      verb: 'create',
      requestURI: '/api/v1/namespaces/shop/serviceaccounts/api/token',
      objectRef: {
        resource: 'serviceaccounts',
        namespace: 'shop',
        name: 'api',
        apiVersion: 'v1',
        subresource: 'token',
      },
      responseStatus: { metadata: {}, code: 201 },
      requestObject: {
        kind: 'TokenRequest',
        apiVersion: 'authentication.k8s.io/v1',
        spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3607 },
      },
      responseObject: {
        kind: 'TokenRequest',
        apiVersion: 'authentication.k8s.io/v1',
        spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3607 },
        status: { token: issuedToken, expirationTimestamp: '2026-02-09T10:12:07Z' },
      },
    }),
    // Prometheus' kube-rbac-proxy reviews a bearer token (TokenReview): the token is in spec.token.
    base({
      user: {
        username: 'system:serviceaccount:monitoring:prometheus-k8s',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:monitoring', 'system:authenticated'],
      },
      sourceIPs: ['10.244.2.14'],
      userAgent: 'prometheus/2.55.1',
      verb: 'create',
      requestURI: '/apis/authentication.k8s.io/v1/tokenreviews',
      objectRef: { resource: 'tokenreviews', apiGroup: 'authentication.k8s.io', apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 201 },
      requestObject: {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        spec: { token: reviewedToken },
      },
      responseObject: {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        spec: { token: reviewedToken },
        status: { authenticated: true, user: { username: 'system:serviceaccount:shop:api' } },
      },
    }),
  ];

  // Real Secret events at RequestResponse level with real throw-away values, moved into the week.
  for (const file of [
    'create_secret.requestresponse.json',
    'create_kube_system_secret.requestresponse.json',
    'create_service_account_token_secret.requestresponse.json',
  ]) {
    for (const event of loadSampleEvents(`falco-secrets/${file}`)) {
      const time = at();
      events.push({
        ...event,
        requestReceivedTimestamp: time,
        stageTimestamp: time.replace('.000000Z', '.003000Z'),
      });
      for (const object of [event.requestObject, event.responseObject]) {
        const data = (object as { data?: Record<string, string> } | undefined)?.data ?? {};
        for (const value of Object.values(data)) if (value.length >= 8) values.push(value);
      }
    }
  }
  return { events, values: [...new Set(values)] };
}
