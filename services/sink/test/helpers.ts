import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { readToEnd } from '@kaudit/service-kit';
import { freeLoopbackPort } from '@kaudit/testkit';
import type { Kafka } from 'kafkajs';
import pino from 'pino';

/**
 * Helpers for the sink's integration tests and benchmark: a bare HTTP(S) client that can present a
 * client certificate, a reader that returns every message of a topic, and a port nobody listens on
 * (to stand in for a Kafka broker that is down without stopping the shared one).
 */
export interface PostOptions {
  port: number;
  path?: string;
  body: string | Buffer;
  contentType?: string;
  token?: string;
  /** Further request headers (the cloud sources' credentials, Content-Encoding). */
  headers?: Record<string, string>;
  tls?: { ca: string; cert?: string; key?: string };
}

export interface PostResult {
  status: number;
  headers: IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: test helper: the JSON answer is checked by the caller
  body: any;
}

export function postAudit(options: PostOptions): Promise<PostResult> {
  const headers: Record<string, string> = { 'Content-Type': options.contentType ?? 'application/json' };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  Object.assign(headers, options.headers);
  const common = {
    host: '127.0.0.1',
    port: options.port,
    path: options.path ?? '/audit',
    method: 'POST',
    headers,
    agent: false as const,
  };
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', reject);
    };
    const req = options.tls
      ? httpsRequest(
          {
            ...common,
            servername: 'localhost',
            ca: readFileSync(options.tls.ca),
            ...(options.tls.cert ? { cert: readFileSync(options.tls.cert) } : {}),
            ...(options.tls.key ? { key: readFileSync(options.tls.key) } : {}),
          },
          onResponse,
        )
      : httpRequest(common, onResponse);
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface TopicMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: string;
}

/** Every message on the topic right now, in offset order per partition. */
export async function readTopic(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<TopicMessage[]> {
  const messages: TopicMessage[] = [];
  await readToEnd({
    kafka,
    topics: [topic],
    groupId: `reader-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    timeoutMs,
    onMessage: (message, _topic, partition) =>
      messages.push({
        partition,
        offset: message.offset,
        key: message.key?.toString('utf8') ?? null,
        value: message.value?.toString('utf8') ?? '',
      }),
  });
  return messages;
}

/**
 * A loopback port with no listener: connections to it are refused; a sink started on it later binds it
 * (testkit's freeLoopbackPort: below the ephemeral range, so no outgoing connection takes it meanwhile).
 */
export const closedPort = freeLoopbackPort;

/**
 * The environment of a plain-HTTP sink on a free loopback port for the outage tests: the shipped redaction
 * policy, a 4 s request timeout, and the brokers, topics, spool and cluster the test names.
 */
export function insecureSinkEnv(options: {
  brokers: string;
  eventsTopic: string;
  dlqTopic: string;
  spoolDir: string;
  cluster: string;
}): Record<string, string> {
  return {
    KAFKA_BROKERS: options.brokers,
    SINK_INSECURE_DEV: 'true',
    SINK_PORT: '0',
    SINK_HOST: '127.0.0.1',
    AUDIT_EVENTS_TOPIC: options.eventsTopic,
    AUDIT_DLQ_TOPIC: options.dlqTopic,
    SINK_SPOOL_DIR: options.spoolDir,
    SINK_CLUSTER_NAME: options.cluster,
    SINK_REQUEST_TIMEOUT_MS: '4s',
    SINK_REDACTION_POLICY_FILE: join(__dirname, '../../../policies/redaction.yaml'),
  };
}

export interface RawConnection {
  socket: Socket;
  /** Resolves when the other side closed the connection. */
  closed: Promise<void>;
  /** Everything received so far (latin1, so bytes stay bytes). */
  received(): string;
  /** Resolves with what was received once it matches; rejects if the connection closes first. */
  until(pattern: RegExp): Promise<string>;
}

/** A bare TCP connection to write HTTP by hand (what a client library would not let a test do). */
export function rawConnection(port: number): RawConnection {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let isClosed = false;
  const listeners = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    for (const listener of [...listeners]) listener();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) =>
    socket.on('close', () => {
      isClosed = true;
      for (const listener of [...listeners]) listener();
      resolve();
    }),
  );
  return {
    socket,
    closed,
    received: () => text,
    until: (pattern) =>
      new Promise<string>((resolve, reject) => {
        const check = () => {
          if (pattern.test(text)) {
            listeners.delete(check);
            resolve(text);
          } else if (isClosed) {
            listeners.delete(check);
            reject(new Error(`connection closed before ${pattern}; received ${JSON.stringify(text)}`));
          }
        };
        listeners.add(check);
        check();
      }),
  };
}

/** A debug-level logger whose lines are kept, so a test can assert that no secret reached a log. */
export function capturingLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    }),
  );
  return { logger, lines };
}
