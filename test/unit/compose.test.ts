import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseRoutingPolicy } from '../../services/alerter/src/routing';

// No Docker engine here: this keeps docker-compose.yml honest without one — it parses, every service
// under services/ has a compose service built from services/Dockerfile, and every file it mounts exists.
const root = join(__dirname, '../..');

interface ComposeService {
  image?: string;
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
});
