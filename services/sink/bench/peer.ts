import { type BenthosProcess, benthosBinary, startBenthos } from '@kaudit/testkit';
import { closedPort } from '../test/helpers';

/**
 * The peer in the same run on the same request bodies: Benthos v4.27.0 as webhook -> Kafka
 * (http_server answering 200 once the output acknowledged, the EventList's items unarchived into one
 * message each, kafka_franz with gzip, keyed like the sink: cluster/username). It neither authenticates,
 * validates, redacts, wraps an envelope nor spools: a ratio near 1 is kaudit doing that work for free.
 */
export async function startPeerSink(options: {
  brokers: string[];
  topic: string;
  inFlight: number;
}): Promise<{ url: string; stop(): Promise<void> } | { unavailable: string }> {
  const binary = benthosBinary();
  if ('unavailable' in binary) return binary;
  const port = await closedPort();
  const peer: BenthosProcess = startBenthos(
    binary.path,
    `input:
  http_server:
    address: 127.0.0.1:${port}
    path: /audit
    allowed_verbs: [POST]
    sync_response:
      status: "200"
pipeline:
  processors:
    - mapping: 'root = this.items'
    - unarchive:
        format: json_array
output:
  kafka_franz:
    seed_brokers: ${JSON.stringify(options.brokers)}
    topic: ${JSON.stringify(options.topic)}
    key: 'bench/\${! json("user.username") }'
    compression: gzip
    max_in_flight: ${options.inFlight}
`,
  );
  const url = `http://127.0.0.1:${port}/audit`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await fetch(url, { method: 'POST', body: '{"items":[]}' }).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline || peer.child.exitCode !== null) {
      await peer.stop();
      return { unavailable: 'Benthos did not start listening within 30 s' };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, stop: () => peer.stop() };
}
