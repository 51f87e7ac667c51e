import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseRoutingPolicy } from '../../services/alerter/src/routing';
import { loadSinkConfig } from '../../services/sink/src/config';

// No Docker engine here: this keeps docker-compose.yml honest without one — it parses, every service
// under services/ has a compose service built from services/Dockerfile, and every file it mounts exists.
const root = join(__dirname, '../..');

interface ComposeService {
  image?: string;
  profiles?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  volumes?: string[];
  entrypoint?: string[];
}

const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};

describe('docker-compose', () => {
  it('builds one compose service per services/* from the one services/Dockerfile', () => {
    const names = readdirSync(join(root, 'services'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    expect(names.sort()).toEqual(['alerter', 'detector', 'indexer', 'sink']);
    for (const name of names) {
      const service = compose.services[name];
      expect({ name, build: service?.build }).toEqual({
        name,
        build: { context: '.', dockerfile: 'services/Dockerfile', args: { SERVICE: name } },
      });
    }
    expect(existsSync(join(root, 'services/Dockerfile'))).toBe(true);
    expect(readFileSync(join(root, 'services/Dockerfile'), 'utf8')).toContain('deploy --prod');
  });

  it('ships dist only from each service package, so no test or bench code reaches an image', () => {
    for (const name of ['alerter', 'detector', 'indexer', 'sink']) {
      const pkg = JSON.parse(readFileSync(join(root, `services/${name}/package.json`), 'utf8'));
      expect({ name, files: pkg.files }).toEqual({ name, files: ['dist'] });
    }
  });

  it('mounts only files that exist', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (!source.startsWith('./')) continue;
        expect({ name, source, exists: existsSync(join(root, source)) }).toEqual({
          name,
          source,
          exists: true,
        });
      }
    }
    const importScript = compose.services['kibana-setup']?.entrypoint?.[1];
    expect(importScript).toBe('/kibana/import.sh');
    expect(existsSync(join(root, 'policies/kibana/import.sh'))).toBe(true);
  });

  it('runs the same server versions as the test stack', () => {
    const pom = readFileSync(join(root, 'test/stack/pom.xml'), 'utf8');
    const kafka = /<kafka.version>(.+)<\/kafka.version>/.exec(pom)?.[1];
    const es = /<elasticsearch.version>(.+)<\/elasticsearch.version>/.exec(pom)?.[1];
    expect(compose.services.kafka?.image).toBe(`apache/kafka:${kafka}`);
    expect(compose.services.elasticsearch?.image).toBe(`docker.elastic.co/elasticsearch/elasticsearch:${es}`);
    expect(compose.services.kibana?.image).toBe(`docker.elastic.co/kibana/kibana:${es}`);
  });

  it("gives the alerter a routing file that validates with compose's own secrets", () => {
    const env = compose.services.alerter?.environment ?? {};
    const file = env.ALERTER_ROUTING_FILE?.replace('/app/', '');
    expect(file).toBe('policies/routing.local.yaml');
    const text = readFileSync(join(root, file!), 'utf8');
    expect(() => parseRoutingPolicy(text, file)).not.toThrow();
    expect(text).toContain('urlFrom: { env: SLACK_WEBHOOK_URL }');
    expect(env.SLACK_WEBHOOK_URL).toMatch(/:-http:\/\/slack-standin:8080\//);
  });

  describe('secure profile', () => {
    const inProfile = (profile: string | undefined) =>
      Object.entries(compose.services)
        .filter(([, service]) => service.profiles?.[0] === profile)
        .map(([name]) => name);

    it('keeps the quick trial the default and puts the TLS sink and its certificates in "secure"', () => {
      expect(inProfile('secure').sort()).toEqual(['certs', 'sink-secure']);
      expect(inProfile(undefined)).toContain('sink');
      expect(compose.services.sink?.environment?.SINK_INSECURE_DEV).toBe('true');
      const secure = compose.services['sink-secure']!;
      expect(secure.build).toEqual(compose.services.sink?.build);
      expect(secure.environment?.SINK_INSECURE_DEV).toBeUndefined();
      expect(secure.ports).toEqual(['9443:8443']);
      expect(secure.depends_on?.certs).toEqual({ condition: 'service_completed_successfully' });
      // The certificates volume is written by the one-shot container and only read by the sink.
      expect(secure.volumes).toContain('sink-certs:/certs:ro');
      expect(compose.services.certs?.volumes).toContain('sink-certs:/certs');
    });

    it("starts the secure sink: its environment, with the certs container's script output, is a valid mTLS configuration", () => {
      const dir = mkdtempSync(join(tmpdir(), 'kaudit-compose-certs-'));
      try {
        const entrypoint = compose.services.certs?.entrypoint?.join(' ') ?? '';
        expect(entrypoint).toContain('sh /scripts/dev-certs.sh /certs 1000');
        execFileSync('sh', [join(root, 'deploy/compose/dev-certs.sh'), dir, String(process.getuid?.() ?? 0)]);
        const env = Object.fromEntries(
          Object.entries(compose.services['sink-secure']?.environment ?? {}).map(([name, value]) => [
            name,
            String(value)
              .replace(/^\/certs\//, `${dir}/`)
              .replace(/^\/app\/policies\//, `${root}/policies/`),
          ]),
        );
        const config = loadSinkConfig(env);
        expect(config.insecureDev).toBe(false);
        expect(config.tls?.caFile).toBe(`${dir}/ca.crt`);
        expect([...config.allowedSubjects]).toEqual([['kube-apiserver-audit', 'compose']]);

        const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
        const server = new X509Certificate(readFileSync(join(dir, 'server.crt')));
        const client = new X509Certificate(readFileSync(join(dir, 'client.crt')));
        expect(server.verify(ca.publicKey) && client.verify(ca.publicKey)).toBe(true);
        expect(server.checkHost('sink-secure')).toBe('sink-secure');
        expect(server.checkHost('localhost')).toBe('localhost');
        expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
        expect(client.subject).toContain('CN=kube-apiserver-audit');
        expect(client.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // clientAuth
        // A second run keeps the files (the container runs on every `up`).
        const before = readFileSync(join(dir, 'server.crt'), 'utf8');
        execFileSync('sh', [join(root, 'deploy/compose/dev-certs.sh'), dir]);
        expect(readFileSync(join(dir, 'server.crt'), 'utf8')).toBe(before);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
