import { AppError } from '@kaudit/common';
import { dictionary, type IdentityState } from './baseline';
import type { EngineState } from './engine';
import type { Identity } from './identity';
import type { Observation } from './scope';

type SecretRead = NonNullable<Observation['secret']>;

/**
 * The changelog's encoding of one identity's state: a JSON array in a fixed field order instead of the
 * object, times as offsets from `lastSeen` (a few digits instead of 13), and the reordering buffer's
 * observations as tuples that leave out what repeats the previous one (identity, address, agent).
 * Every batch rewrites the state of each identity it touched, so the record's size is what the detector
 * spends on JSON, on kafkajs' encoding and CRCs, and on the broker; in the bench mix it is half the JSON
 * object (527 instead of 1,042 bytes).
 *
 * Records written before this encoding are JSON objects and are still read (decodeIdentity).
 *
 * The one encoding of IdentityState: the detector's changelog (one record per identity) and
 * `kaudit detect --state` (encodeEngineState, every identity in one file) both use it, so a baseline
 * learned by one can be read by the other.
 */
const FORMAT = 2;
/** In a pending tuple: the value is the previous observation's. */
const SAME = 0;

type Row = unknown[];
const EMPTY: Record<string, number> = Object.freeze({});

/** The identity as the codec's array (what encodeIdentity stringifies). */
export function identityRow(state: IdentityState): unknown[] {
  const base = state.lastSeen;
  const row: Row = [
    FORMAT,
    state.cluster,
    state.username,
    state.firstSeen,
    base,
    state.secretReads,
    state.clusterWideReads ? 1 : 0,
    times(state.ips, base),
    times(state.ipKnownFrom, base),
    times(state.agents, base),
    times(state.namespaces, base),
    state.hours,
    times(state.hoursSeen, base),
    reads(state.recentReads, base),
    state.recentDenied.map((t) => base - t),
    times(state.seen, base),
    pending(state.pending, base),
    state.groups,
    times(state.emitted ?? EMPTY, base),
    base - state.prunedAt,
  ];
  // Issue 15's fields, only when one holds something (most identities: the 20 columns of before).
  const extension = extensions(state, base);
  if (extension) row.push(extension);
  return row;
}

export function encodeIdentity(state: IdentityState): string {
  return JSON.stringify(identityRow(state));
}

/** A changelog value: the array of encodeIdentity, or the JSON object earlier versions wrote. */
export function decodeIdentity(text: string): IdentityState {
  return identityFromValue(JSON.parse(text));
}

/** The parsed form of decodeIdentity: an identityRow array, or an IdentityState object (older writers). */
export function identityFromValue(value: unknown): IdentityState {
  if (!Array.isArray(value)) return value as IdentityState;
  if (value[0] !== FORMAT) throw new Error(`unknown identity state format ${String(value[0])}`);
  const base = value[4] as number;
  return {
    cluster: value[1] as string,
    username: value[2] as string,
    firstSeen: value[3] as number,
    lastSeen: base,
    secretReads: value[5] as number,
    clusterWideReads: value[6] === 1,
    ips: untimes(value[7] as Row, base),
    ipKnownFrom: untimes(value[8] as Row, base),
    agents: untimes(value[9] as Row, base, {}),
    namespaces: untimes(value[10] as Row, base, {}),
    hours: value[11] as number[],
    hoursSeen: untimes(value[12] as Row, base, {}),
    recentReads: unreads(value[13] as Row, base),
    recentDenied: (value[14] as number[]).map((d) => base - d),
    seen: untimes(value[15] as Row, base),
    pending: unpending(value[16] as Row[], base),
    groups: value[17] as IdentityState['groups'],
    ...((value[18] as Row).length > 0 && { emitted: untimes(value[18] as Row, base) }),
    prunedAt: base - (value[19] as number),
    ...unextensions(value[20] as Row | null | undefined, base),
  };
}

/**
 * Issue 15's fields, appended as a 21st column only when one holds something (most identities never
 * do): rows written before it have 20 columns and decode without the fields, so a deploy reads the
 * changelog and `--state` files of the version before (state-codec.test.ts).
 */
function extensions(state: IdentityState, base: number): Row | null {
  const { recentNewNamespaces = [], tokens = {}, recentRefused = [], csrs = {} } = state;
  const tokenKeys = Object.keys(tokens);
  if (
    recentNewNamespaces.length === 0 &&
    tokenKeys.length === 0 &&
    recentRefused.length === 0 &&
    Object.keys(csrs).length === 0
  ) {
    return null;
  }
  const tokenRow: Row = [];
  for (const key of tokenKeys) tokenRow.push(key, tokens[key]![0], base - tokens[key]![1]);
  return [reads(recentNewNamespaces, base), tokenRow, recentRefused.map((t) => base - t), times(csrs, base)];
}

type Extensions = Pick<IdentityState, 'recentNewNamespaces' | 'tokens' | 'recentRefused' | 'csrs'>;

/** Only the fields that hold something, as the engine keeps them (absent until learned). */
function unextensions(row: Row | null | undefined, base: number): Extensions {
  if (!row) return {};
  const tokens: NonNullable<IdentityState['tokens']> = dictionary();
  const tokenRow = row[1] as Row;
  for (let i = 0; i < tokenRow.length; i += 3)
    tokens[tokenRow[i] as string] = [tokenRow[i + 1] as string, base - (tokenRow[i + 2] as number)];
  const extensions: Extensions = {};
  if ((row[0] as Row).length > 0) extensions.recentNewNamespaces = unreads(row[0] as Row, base);
  if (tokenRow.length > 0) extensions.tokens = tokens;
  if ((row[2] as number[]).length > 0) extensions.recentRefused = (row[2] as number[]).map((d) => base - d);
  if ((row[3] as Row).length > 0) extensions.csrs = untimes(row[3] as Row, base);
  return extensions;
}

function times(map: Record<string, number>, base: number): Row {
  const row: Row = [];
  for (const key in map) row.push(key, base - map[key]!);
  return row;
}

/** `into`: a `{}` for the maps of few shared keys (agents, namespaces, hours), as baseline.ts makes them. */
function untimes(
  row: Row,
  base: number,
  into: Record<string, number> = dictionary(),
): Record<string, number> {
  const map = into;
  for (let i = 0; i < row.length; i += 2) map[row[i] as string] = base - (row[i + 1] as number);
  return map;
}

function reads(entries: Array<[number, string]>, base: number): Row {
  const row: Row = [];
  for (const [t, object] of entries) row.push(base - t, object);
  return row;
}

function unreads(row: Row, base: number): Array<[number, string]> {
  const entries: Array<[number, string]> = [];
  for (let i = 0; i < row.length; i += 2) entries.push([base - (row[i] as number), row[i + 1] as string]);
  return entries;
}

function sameIdentity(a: Identity, b: Identity): boolean {
  if (a === b) return true;
  if (
    a.username !== b.username ||
    a.kind !== b.kind ||
    a.namespace !== b.namespace ||
    a.impersonator !== b.impersonator ||
    a.groups.length !== b.groups.length
  ) {
    return false;
  }
  for (let i = 0; i < a.groups.length; i++) if (a.groups[i] !== b.groups[i]) return false;
  return true;
}

/** Observations as [dt, auditID, requestKey, stageRank, identity, verb, sourceIP, userAgent, code, secret, tooLate, facts?]. */
function pending(observations: Observation[], base: number): Row[] {
  let previous: Observation | undefined;
  return observations.map((o) => {
    const { secret } = o;
    const row: Row = [
      base - o.t,
      o.auditID,
      o.requestKey,
      o.stageRank,
      previous && sameIdentity(previous.identity, o.identity) ? SAME : o.identity,
      o.verb,
      optional(o.sourceIP, previous?.sourceIP, previous !== undefined),
      optional(o.userAgent, previous?.userAgent, previous !== undefined),
      o.code ?? null,
      secret
        ? [secret.clusterWide ? 1 : 0, secret.outcome, secret.namespace ?? null, secret.name ?? null]
        : null,
      o.tooLate ? 1 : 0,
    ];
    // Issue 15: the request's facts, only for the few requests that have them (older rows end before).
    if (o.facts) row.push(o.facts);
    previous = o;
    return row;
  });
}

/** null: absent; SAME: the previous observation's value (which is present). */
function optional(value: string | undefined, previous: string | undefined, hasPrevious: boolean): unknown {
  if (value === undefined) return null;
  return hasPrevious && value === previous ? SAME : value;
}

function unpending(rows: Row[], base: number): Observation[] {
  let previous: Observation | undefined;
  return rows.map((row) => {
    const identity = row[4] === SAME ? previous!.identity : (row[4] as Identity);
    const o: Observation = {
      t: base - (row[0] as number),
      auditID: row[1] as string,
      requestKey: row[2] as string,
      stageRank: row[3] as number,
      identity,
      verb: row[5] as string,
    };
    const sourceIP = row[6] === SAME ? previous!.sourceIP : (row[6] as string | null);
    if (sourceIP !== null && sourceIP !== undefined) o.sourceIP = sourceIP;
    const userAgent = row[7] === SAME ? previous!.userAgent : (row[7] as string | null);
    if (userAgent !== null && userAgent !== undefined) o.userAgent = userAgent;
    if (row[8] !== null) o.code = row[8] as number;
    const secret = row[9] as [number, SecretRead['outcome'], string | null, string | null] | null;
    if (secret) {
      o.secret = { clusterWide: secret[0] === 1, outcome: secret[1] };
      if (secret[2] !== null) o.secret.namespace = secret[2];
      if (secret[3] !== null) o.secret.name = secret[3];
    }
    if (row[10] === 1) o.tooLate = true;
    if (row[11]) o.facts = row[11] as Observation['facts'] & object;
    previous = o;
    return o;
  });
}

/**
 * `kaudit detect --state`: the engine's whole state in one JSON file, `{ version: 1, clusters,
 * identities }`, each identity in the codec's array form. Files written before it hold identities as
 * objects; decodeEngineState reads both (an identity is an array or an object, as in the changelog).
 */
export function encodeEngineState(state: EngineState): string {
  const identities: Record<string, unknown[]> = {};
  for (const [key, identity] of Object.entries(state.identities)) identities[key] = identityRow(identity);
  return JSON.stringify({ version: state.version, clusters: state.clusters, identities });
}

export function decodeEngineState(text: string, source = 'state'): EngineState {
  const value = JSON.parse(text) as { version?: unknown; clusters?: unknown; identities?: unknown };
  if (value.version !== 1)
    throw new AppError('KAUDIT_ERR_INPUT', `${source}: unsupported state version ${String(value.version)}`);
  const identities: Record<string, IdentityState> = {};
  for (const [key, identity] of Object.entries((value.identities ?? {}) as Record<string, unknown>))
    identities[key] = identityFromValue(identity);
  return { version: 1, clusters: (value.clusters ?? {}) as EngineState['clusters'], identities };
}
