import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { EnvSchema as AlerterEnv } from '../../services/alerter/src/config';
import { EnvSchema as DetectorEnv } from '../../services/detector/src/config';
import { IndexerEnvSchema } from '../../services/indexer/src/config';
import { SinkEnvSchema } from '../../services/sink/src/config';
import { loadRenderedConfigs, type RenderedObject } from './chart-pods';
import { serviceVariables } from './service-variables';

// What can be checked of deploy/helm/kaudit without helm (helm lint, template and the API server's
// verdict are in deploy/helm/helm.int.test.ts): the chart's copy of policies/ is current, every variable
// name it sets is one a service reads, every metric its alerts use is one a service exports.
const root = join(__dirname, '../..');
const chart = join(root, 'deploy/helm/kaudit');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

describe('deploy > helm chart', () => {
  it('carries a current copy of policies/ (deploy/render.sh policies refreshes it)', () => {
    const source = join(root, 'policies');
    const copy = join(chart, 'files/policies');
    const wanted = files(source)
      .map((f) => relative(source, f))
      .filter((f) => !f.startsWith('kibana/'))
      .sort();
    expect(
      files(copy)
        .map((f) => relative(copy, f))
        .sort(),
    ).toEqual(wanted);
    for (const file of wanted) {
      expect({
        file,
        same: readFileSync(join(copy, file), 'utf8') === readFileSync(join(source, file), 'utf8'),
      }).toEqual({ file, same: true });
    }
  });

  it('sets only variables that some service reads', () => {
    const known = new Set(Object.values(serviceVariables()).flatMap((set) => [...set]));
    const text = files(join(chart, 'templates'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const names = new Set([...text.matchAll(/name: ([A-Z][A-Z0-9_]+)\b/g)].map((m) => m[1]!));
    const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as {
      alerter: { secretEnv: Array<{ name: string }> };
    };
    for (const { name } of values.alerter.secretEnv) names.add(name);
    expect(names.size).toBeGreaterThan(30);
    expect([...names].filter((name) => !known.has(name))).toEqual([]);
  });

  it('alerts only on metrics the services export', () => {
    const rule = readFileSync(join(chart, 'templates/prometheusrule.yaml'), 'utf8');
    const exported = readdirSync(join(root, 'services'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .map((s) => readFileSync(join(root, 'services', s, 'src/metrics.ts'), 'utf8'))
      .join('\n');
    const used = [...new Set([...rule.matchAll(/\bkaudit_[a-z_]+/g)].map((m) => m[0]))];
    expect(used.length).toBeGreaterThanOrEqual(7);
    expect(used.filter((name) => !exported.includes(`'${name}'`))).toEqual([]);
  });

  it("probes each consumer on the port its config.ts reads, with the config's default", () => {
    const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Record<
      string,
      { port: number }
    >;
    const defaults = {
      sink: SinkEnvSchema.shape.SINK_PORT.parse(undefined),
      detector: DetectorEnv.shape.DETECTOR_PORT.parse(undefined),
      indexer: IndexerEnvSchema.shape.INDEXER_PORT.parse(undefined),
      alerter: AlerterEnv.shape.ALERTER_PORT.parse(undefined),
    };
    for (const [service, port] of Object.entries(defaults)) {
      expect({ service, port: values[service]?.port }).toEqual({ service, port });
    }
  });

  it('renders pods whose configuration each service loads (deploy/kubernetes/kaudit.yaml)', () => {
    const objects = parseAllDocuments(readFileSync(join(root, 'deploy/kubernetes/kaudit.yaml'), 'utf8'))
      .map((doc) => doc.toJS() as RenderedObject | null)
      .filter((o): o is RenderedObject => o !== null);
    const results = loadRenderedConfigs(objects);
    expect(results.filter((r) => r.error)).toEqual([]);
    expect(results.map((r) => r.container).sort()).toEqual(['alerter', 'detector', 'indexer', 'sink']);
  });
});
