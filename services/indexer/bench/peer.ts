import { type BenthosProcess, benthosBinary, stackEnv, startBenthos } from '@kaudit/testkit';

/**
 * The peer in the same run on the same messages: Benthos v4.27.0 reading the indexer's events topic
 * (kafka_franz, its own consumer group) into Elasticsearch (create, batches of `batchDocs`, `inFlight`
 * requests in flight, id = auditID). It stores the envelope as it is into an index that maps nothing
 * (`dynamic: false`): less work than kaudit's ECS documents into a mapped data stream, so a ratio
 * above 1 is kaudit doing more in less time. Timed like the indexer: from its first indexed document
 * to its last (Elasticsearch's real-time indexing counter).
 */
export async function peerIndexer(options: {
  topic: string;
  total: number;
  batchDocs: number;
  inFlight: number;
}): Promise<{ docsPerSecond: number } | { unavailable: string }> {
  const binary = benthosBinary();
  if ('unavailable' in binary) return binary;
  const { kafkaBrokers, esNode } = stackEnv();
  const index = `bench-peer-${Date.now().toString(36)}`;
  const created = await fetch(`${esNode}/${index}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: { dynamic: false },
    }),
  });
  if (!created.ok) throw new Error(`peer index: ${created.status} ${await created.text()}`);
  const indexed = async () => {
    const response = await fetch(`${esNode}/${index}/_stats/indexing`);
    const stats = (await response.json()) as {
      _all: { primaries: { indexing?: { index_total: number } } };
    };
    return stats._all.primaries.indexing?.index_total ?? 0;
  };
  let peer: BenthosProcess | undefined;
  try {
    peer = startBenthos(
      binary.path,
      `input:
  kafka_franz:
    seed_brokers: ${JSON.stringify(kafkaBrokers)}
    topics: [${JSON.stringify(options.topic)}]
    consumer_group: ${JSON.stringify(`${index}-group`)}
    start_from_oldest: true
    # Benthos' default (1024 messages per partition in flight) held one 1000-document batch per
    # partition at a time: 700 docs/s whatever the load, the 12x "win" of 2026-12-03. kaudit reads ahead
    # (5 MiB fetches, the next bulk decoded while one is indexed); so does the peer now.
    checkpoint_limit: 100000
    batching: { count: ${options.batchDocs}, period: 200ms }
output:
  elasticsearch:
    urls: [${JSON.stringify(esNode)}]
    index: ${index}
    action: create
    id: '\${! json("event.auditID") }'
    sniff: false
    healthcheck: false
    max_in_flight: ${options.inFlight}
    batching: { count: ${options.batchDocs}, period: 200ms }
`,
    );
    let first: { at: number; count: number } | undefined;
    const deadline = Date.now() + 300_000;
    for (;;) {
      const count = await indexed();
      if (!first && count > 0) first = { at: performance.now(), count };
      if (count >= options.total) break;
      if (Date.now() > deadline || peer.child.exitCode !== null)
        throw new Error(`peer indexed ${count} of ${options.total} documents`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const seconds = (performance.now() - first!.at) / 1000;
    return { docsPerSecond: (options.total - first!.count) / seconds };
  } finally {
    await peer?.stop();
    await fetch(`${esNode}/${index}`, { method: 'DELETE' }).catch(() => undefined);
  }
}
