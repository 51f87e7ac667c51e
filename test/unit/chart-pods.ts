import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadResources } from '../../packages/es-resources/src/resources';
import { loadAlerterConfig } from '../../services/alerter/src/config';
import { loadDetectorConfig } from '../../services/detector/src/config';
import { loadIndexerConfig } from '../../services/indexer/src/config';
import { loadSinkConfig } from '../../services/sink/src/config';

// Runs each rendered container's configuration through its service's own loader, the way the pod would
// start: the environment as rendered, its ConfigMap volumes with their rendered content and its Secret
// volumes with stand-in content, every mount path moved under a temporary root. What the loader refuses
// (an unknown value, a policy file that does not parse, a path that is not mounted) is the pod's start-up
// error. Used on the committed default render (helm-chart.test.ts) and on helm's renders (helm.int.test.ts).

export interface RenderedObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: unknown;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  env: EnvVar[];
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string }>;
}
interface Volume {
  name: string;
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  emptyDir?: object;
}
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
}

/** What a Secret key holds in the test: a URL for *_URL variables, else an opaque value. */
const standIn = (key: string) =>
  /url/i.test(key) ? 'https://hooks.example.com/services/T0/B0/x' : 'stand-in';

const loaders: Record<string, (env: Record<string, string>) => void> = {
  sink: (env) => void loadSinkConfig(env),
  detector: (env) => void loadDetectorConfig(env),
  alerter: (env) => void loadAlerterConfig(env),
  indexer: (env) => {
    const config = loadIndexerConfig(env);
    const resources = loadResources(config.policiesDir, {
      retention: config.retention,
      numberOfReplicas: config.numberOfReplicas,
    });
    if (resources.componentTemplates.length === 0 || resources.indexTemplates.length === 0)
      throw new Error(`no templates under ES_POLICIES_DIR ${config.policiesDir}`);
  },
};

/** A container's files and environment laid out under a temporary root (see the header). */
export interface MaterializedContainer {
  container: string;
  workload: string;
  root: string;
  env: Record<string, string>;
  /** Container ports by name. */
  ports: Record<string, number>;
  probes: Record<'livenessProbe' | 'readinessProbe' | 'startupProbe', Probe | undefined>;
  cleanup: () => void;
}
export interface Probe {
  httpGet: { path: string; port: string | number; scheme?: string };
}

/** Lays out every workload container. secretFile gives a Secret key's content (default: a stand-in). */
export function materializeContainers(
  objects: RenderedObject[],
  secretFile: (secret: string, key: string) => string | undefined = () => undefined,
): MaterializedContainer[] {
  const configMaps = new Map(
    objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data ?? {}]),
  );
  const out: MaterializedContainer[] = [];
  for (const workload of objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment')) {
    const pod = (workload.spec as { template: { spec: PodSpec } }).template.spec;
    for (const container of pod.containers) {
      const root = mkdtempSync(join(tmpdir(), `kaudit-pod-${container.name}-`));
      const cleanup = () => rmSync(root, { recursive: true, force: true });
      const at = (path: string) => join(root, path);
      const write = (path: string, text: string) => {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, text);
      };
      try {
        for (const mount of container.volumeMounts ?? []) {
          const volume = pod.volumes?.find((v) => v.name === mount.name);
          mkdirSync(at(mount.mountPath), { recursive: true });
          if (volume?.configMap) {
            const data = configMaps.get(volume.configMap.name);
            if (!data) throw new Error(`ConfigMap ${volume.configMap.name} is not rendered`);
            for (const item of volume.configMap.items ??
              Object.keys(data).map((key) => ({ key, path: key }))) {
              if (data[item.key] === undefined)
                throw new Error(`ConfigMap ${volume.configMap.name} has no ${item.key}`);
              write(join(at(mount.mountPath), item.path), data[item.key]!);
            }
          } else if (volume?.secret) {
            const name = volume.secret.secretName;
            const content = (key: string) => secretFile(name, key) ?? standIn(key);
            if (mount.subPath) {
              rmSync(at(mount.mountPath), { recursive: true });
              write(at(mount.mountPath), content(mount.subPath));
            } else
              for (const item of volume.secret.items ?? [])
                write(join(at(mount.mountPath), item.path), content(item.key));
          }
        }
        const env: Record<string, string> = {};
        for (const v of container.env) {
          if (v.valueFrom?.secretKeyRef) env[v.name] = standIn(v.valueFrom.secretKeyRef.key);
          else if (v.valueFrom?.fieldRef) env[v.name] = `${workload.metadata.name}-0`;
          else env[v.name] = (v.value ?? '').startsWith('/') ? at(v.value!) : (v.value ?? '');
        }
        // File paths inside the routing policy are mount paths too.
        const routing = env.ALERTER_ROUTING_FILE;
        if (routing)
          writeFileSync(
            routing,
            readFileSync(routing, 'utf8').replace(/\{ file: (\/[^ }]+) \}/g, `{ file: ${root}$1 }`),
          );
        const spec = container as Container & {
          ports?: Array<{ name: string; containerPort: number }>;
          livenessProbe?: Probe;
          readinessProbe?: Probe;
          startupProbe?: Probe;
        };
        out.push({
          container: container.name,
          workload: workload.metadata.name,
          root,
          env,
          ports: Object.fromEntries((spec.ports ?? []).map((p) => [p.name, p.containerPort])),
          probes: {
            livenessProbe: spec.livenessProbe,
            readinessProbe: spec.readinessProbe,
            startupProbe: spec.startupProbe,
          },
          cleanup,
        });
      } catch (error) {
        cleanup();
        throw new Error(`${workload.metadata.name}/${container.name}: ${(error as Error).message}`);
      }
    }
  }
  return out;
}

/** Each workload container with the loader's error, or undefined when it would start. */
export function loadRenderedConfigs(
  objects: RenderedObject[],
  secretFile?: (secret: string, key: string) => string | undefined,
): Array<{ container: string; error?: string }> {
  return materializeContainers(objects, secretFile).map(({ container, env, cleanup }) => {
    try {
      const loader = loaders[container];
      if (!loader) throw new Error(`no loader for container ${container}`);
      loader(env);
      return { container };
    } catch (error) {
      return { container, error: (error as Error).message };
    } finally {
      cleanup();
    }
  });
}
