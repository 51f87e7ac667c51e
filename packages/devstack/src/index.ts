export type { DevCerts } from '@kaudit/testkit';
export { type ChaosReport, markdown as chaosMarkdown } from './chaos/report';
export { problemsOf, runScenario, type ScenarioResult } from './chaos/run';
export { SCENARIOS, type Scenario } from './chaos/scenarios';
export { chaosServers } from './chaos/servers';
export {
  defaultRootDir,
  isolatedRun,
  type Pipeline,
  type PipelineOptions,
  type PipelineTopics,
  SERVICE_NAMES,
  type ServiceName,
  startPipeline,
} from './pipeline';
export { reservePort } from './ports';
export { type ServiceProcess, spawnService, waitUntilReady } from './service-process';
export {
  type SlackMessage,
  type SlackStandin,
  type SlackStandinOptions,
  startSlackStandin,
} from './slack-standin';
export { runStackScript, type StackAddresses, stackAddresses, stackReachable } from './stack';
export { readTopics, type TopicMessage } from './topic-reader';
