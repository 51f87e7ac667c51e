import { join } from 'node:path';
import { runStackScript, type StackAddresses } from '../stack';

/**
 * The chaos run's own Kafka and Elasticsearch (test/stack/stack.sh, one server per directory, so
 * either can be stopped and restarted with its data while the other runs). Never the shared test
 * stack: stopping a broker other suites use would break them.
 */
export interface ChaosServer {
  name: 'Kafka' | 'Elasticsearch';
  up(): Promise<void>;
  /** Stops the server (SIGTERM, as an operator's restart or a node drain would) keeping its data. */
  down(): Promise<void>;
}

export interface ChaosServers {
  kafka: ChaosServer;
  elasticsearch: ChaosServer;
  addresses: StackAddresses;
}

export function chaosServers(options: {
  rootDir: string;
  dir: string;
  kafkaPort: number;
  esPort: number;
  log: (text: string) => void;
}): ChaosServers {
  const { rootDir, dir, kafkaPort, esPort, log } = options;
  const server = (name: ChaosServer['name'], env: Record<string, string>): ChaosServer => {
    let started = false;
    const run = (command: 'up' | 'down') =>
      runStackScript(rootDir, command, (text) => log(`[${name}] ${text.trimEnd()}`), {
        ...env,
        // The first start formats fresh data; restarts keep it (a restart, not a new cluster).
        KAUDIT_STACK_KEEP_DATA: started ? 'true' : 'false',
      });
    return {
      name,
      async up() {
        await run('up');
        started = true;
      },
      down: () => run('down'),
    };
  };
  return {
    kafka: server('Kafka', {
      KAUDIT_STACK_ONLY: 'kafka',
      KAUDIT_STACK_DIR: join(dir, 'kafka'),
      KAFKA_PORT: String(kafkaPort),
      KAFKA_CONTROLLER_PORT: String(kafkaPort + 1),
    }),
    elasticsearch: server('Elasticsearch', {
      KAUDIT_STACK_ONLY: 'elasticsearch',
      KAUDIT_STACK_DIR: join(dir, 'elasticsearch'),
      ES_PORT: String(esPort),
      ES_TRANSPORT_PORT: String(esPort + 100),
    }),
    addresses: { kafkaBrokers: [`127.0.0.1:${kafkaPort}`], esNode: `http://127.0.0.1:${esPort}` },
  };
}
