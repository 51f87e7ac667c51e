import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';

// Jest gives each suite its own `process` object while Node's timers warn through the real one, so the
// filter is exercised in a child Node (which runs this TypeScript source as is) against the real kafkajs
// code that sets the negative timer. Node reports a negative timer once per process: one child per case.
const requestQueue = join(dirname(require.resolve('kafkajs/package.json')), 'src/network/requestQueue');

const STEPS = {
  suppress: `const { suppressKafkajsTimeoutWarning } = require(${JSON.stringify(join(__dirname, 'kafkajs-warnings.ts'))});
    suppressKafkajsTimeoutWarning();
    suppressKafkajsTimeoutWarning();`,
  // kafkajs 2.2.4: throttledUntil (-1) - Date.now()
  kafkajsTimer: `const RequestQueue = require(${JSON.stringify(requestQueue)});
    const queue = new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 1000, clientId: 't', broker: 'b' });
    queue.scheduleCheckPendingRequests();
    clearTimeout(queue.throttleCheckTimeoutId);`,
  ownTimer: 'clearTimeout(setTimeout(() => {}, -5));',
  otherWarnings: `process.emitWarning('something else', 'OtherWarning');
    process.emitWarning('options form', { type: 'TimeoutNegativeWarning' });
    process.emitWarning(new Error('an error object'));`,
};

function runChild(...steps: Array<keyof typeof STEPS>): string {
  const child = spawnSync(process.execPath, ['-e', steps.map((s) => STEPS[s]).join('\n')], {
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`child failed: ${child.stderr}`);
  return child.stderr;
}

const KAFKAJS_WARNING = /TimeoutNegativeWarning: -\d{12,} is a negative number/;

describe('service-kit > kafkajs warnings', () => {
  it('without the filter, kafkajs makes Node print a TimeoutNegativeWarning (the bug being hidden)', () => {
    expect(runChild('kafkajsTimer')).toMatch(KAFKAJS_WARNING);
  });

  it('drops the TimeoutNegativeWarning kafkajs causes and lets other warnings through', () => {
    const stderr = runChild('suppress', 'kafkajsTimer', 'otherWarnings');
    expect(stderr).not.toMatch(KAFKAJS_WARNING);
    expect(stderr).toContain('OtherWarning: something else');
    expect(stderr).toContain('TimeoutNegativeWarning: options form');
    expect(stderr).toContain('Error: an error object');
  });

  it('still shows a negative timer our own code sets', () => {
    expect(runChild('suppress', 'ownTimer')).toContain('TimeoutNegativeWarning: -5 is a negative number');
  });
});
