// Integration tests run against the real stack. If it is not reachable, start it with the project's own
// script (test/stack/stack.sh) and remember to stop it in teardown. KAUDIT_STACK_AUTOSTART=false turns the
// auto-start off, so the suites fail fast when nothing runs (how we prove they need the real servers).
const { execFileSync } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const esNode = process.env.ES_NODE ?? 'http://127.0.0.1:9200';

function tcpReachable(hostPort) {
  const [host, port] = hostPort.trim().split(':');
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(port), timeout: 1000 });
    socket.once('connect', () => socket.end() && resolve(true));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => socket.destroy() && resolve(false));
  });
}

async function esReachable() {
  try {
    return (await fetch(`${esNode}/_cluster/health`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

module.exports = async () => {
  const up = (await tcpReachable(brokers[0])) && (await esReachable());
  if (up) return;
  if (process.env.KAUDIT_STACK_AUTOSTART === 'false') {
    console.warn(
      `\n[stack] Kafka ${brokers[0]} or Elasticsearch ${esNode} is not reachable and auto-start is off`,
    );
    return;
  }
  console.log('\n[stack] not running: starting it with test/stack/stack.sh up');
  execFileSync('bash', [path.join(__dirname, 'stack.sh'), 'up'], { stdio: 'inherit' });
  globalThis.__kauditStackStartedByJest = true;
};
