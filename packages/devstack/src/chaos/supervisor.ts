import type { Pipeline, ServiceName } from '../pipeline';
import type { ServiceProcess } from '../service-process';

interface Managed {
  name: ServiceName;
  /** Environment beyond the pipeline's (a second detector's instance id and port). */
  env: Record<string, string>;
  process: ServiceProcess;
  /** Not restarted when it exits (removed from the group on purpose). */
  retired: boolean;
}

/**
 * Why a service exited on its own, from the last lines of its log: the reason its crash policy logged
 * at fatal before exiting 1 (service-kit liveness: "dead: ..."), or undefined when it logged none (a
 * crash the service did not decide: an unhandled error, the OOM killer).
 */
export function fatalReason(logTail: string): string | undefined {
  let reason: string | undefined;
  for (const line of logTail.split('\n')) {
    if (!line.includes('"level":"fatal"')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: unknown; reason?: unknown };
      reason = String(entry.reason ?? entry.msg ?? 'fatal');
    } catch {
      reason = 'fatal';
    }
  }
  return reason;
}

/**
 * Plays the orchestrator: a service process that exits (SIGKILLed by the scenario, or crashing on its
 * own) is started again after `restartDelayMs`, as a Deployment's pod would be; restarts are counted,
 * and the crashes the scenario did not cause are counted apart (they are findings of the run).
 */
export function createSupervisor(
  pipeline: Pipeline,
  options: { restartDelayMs?: number; log: (t: string) => void },
) {
  const restartDelayMs = options.restartDelayMs ?? 2000;
  const managed: Managed[] = pipeline.services.map((process) => ({
    name: process.name as ServiceName,
    env: {},
    process,
    retired: false,
  }));
  const restarts: Record<string, number> = {};
  const unplannedExits: Record<string, number> = {};
  /** Exits on its own with the reason the service's crash policy logged (designed: the orchestrator restarts it). */
  const policyExits: string[] = [];
  const planned = new Set<ServiceProcess>();
  let generation = 0;
  let watching = true;

  const restart = async (entry: Managed) => {
    generation += 1;
    entry.process = await pipeline.launch(entry.name, {
      env: entry.env,
      logSuffix: `-${generation}`,
      waitReady: false,
    });
    restarts[entry.name] = (restarts[entry.name] ?? 0) + 1;
    options.log(`${entry.name} restarted (pid ${entry.process.pid})`);
  };

  const loop = (async () => {
    while (watching) {
      for (const entry of managed) {
        const exit = entry.process.exited();
        if (!exit || entry.retired) continue;
        if (!planned.has(entry.process)) {
          const reason = exit.code === 1 ? fatalReason(entry.process.tail()) : undefined;
          if (reason) policyExits.push(`${entry.name}: ${reason}`);
          else unplannedExits[entry.name] = (unplannedExits[entry.name] ?? 0) + 1;
          options.log(
            `${entry.name} exited on its own (${exit.signal ?? `code ${exit.code}`}${reason ? `, crash policy: ${reason}` : ', no reason logged'}): restarting`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, restartDelayMs));
        if (watching) await restart(entry);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();

  return {
    /** SIGKILLs the first running process of `name` (or the one with this instance env); it is restarted. */
    async crash(name: ServiceName, which = 0): Promise<void> {
      const entry = managed.filter((m) => m.name === name && !m.retired)[which];
      if (!entry) throw new Error(`no running ${name} #${which}`);
      planned.add(entry.process);
      options.log(`SIGKILL ${name} (pid ${entry.process.pid})`);
      await entry.process.kill('SIGKILL');
    },
    /** SIGKILLs one and does not restart it (a node lost for good). */
    async remove(name: ServiceName, which = 0): Promise<void> {
      const entry = managed.filter((m) => m.name === name && !m.retired)[which];
      if (!entry) throw new Error(`no running ${name} #${which}`);
      entry.retired = true;
      options.log(`SIGKILL ${name} (pid ${entry.process.pid}), not restarted`);
      await entry.process.kill('SIGKILL');
    },
    /** One more process of a service (another detector in the group), supervised like the others. */
    async add(name: ServiceName, env: Record<string, string>): Promise<void> {
      const process = await pipeline.launch(name, { env, logSuffix: `-${env.DETECTOR_INSTANCE_ID ?? 'x'}` });
      managed.push({ name, env, process, retired: false });
      options.log(`${name} added (pid ${process.pid})`);
    },
    restarts: () => ({ ...restarts }),
    /** Exits nobody planned and no crash policy explained: defects. */
    unplannedExits: () => ({ ...unplannedExits }),
    /** Exits by a service's own crash policy, with its reason: designed, shown in the report. */
    policyExits: () => [...policyExits],
    async stop() {
      watching = false;
      await loop;
    },
  };
}

export type Supervisor = ReturnType<typeof createSupervisor>;
