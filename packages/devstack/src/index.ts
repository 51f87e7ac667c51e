export { type DevCerts, type DevCertsOptions, devCertPaths, ensureDevCerts, readDevToken } from './certs';
export {
  type SlackMessage,
  type SlackStandin,
  type SlackStandinOptions,
  startSlackStandin,
} from './slack-standin';
