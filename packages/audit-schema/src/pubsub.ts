/**
 * A Pub/Sub push subscription's request body: `{"message":{"data":"<base64>","attributes":{…},
 * "messageId":"…","publishTime":"…"},"subscription":"projects/<p>/subscriptions/<s>"}`. Pub/Sub treats
 * 102, 200, 201, 202 and 204 as an acknowledgement and redelivers on anything else (with the
 * subscription's retry policy, then its dead-letter topic if it has one). Pure.
 */
export interface PubSubPush {
  messageId: string;
  subscription: string | undefined;
  attributes: Record<string, string>;
  publishTime: string | undefined;
  data: Buffer;
}

export type PubSubParse = { ok: true; push: PubSubPush } | { ok: false; reason: string };

export function parsePubSubPush(body: unknown): PubSubParse {
  const doc = body as { message?: unknown; subscription?: unknown } | null;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return { ok: false, reason: 'body must be a Pub/Sub push object' };
  const message = doc.message as
    | {
        data?: unknown;
        attributes?: unknown;
        messageId?: unknown;
        message_id?: unknown;
        publishTime?: unknown;
      }
    | undefined;
  if (typeof message !== 'object' || message === null)
    return { ok: false, reason: 'message must be an object' };
  const messageId = message.messageId ?? message.message_id;
  if (typeof messageId !== 'string' || messageId === '')
    return { ok: false, reason: 'message.messageId must be a non-empty string' };
  if (typeof message.data !== 'string') return { ok: false, reason: 'message.data must be a base64 string' };
  const attributes: Record<string, string> = {};
  if (typeof message.attributes === 'object' && message.attributes !== null)
    for (const [key, value] of Object.entries(message.attributes))
      if (typeof value === 'string') attributes[key] = value;
  return {
    ok: true,
    push: {
      messageId,
      subscription: typeof doc.subscription === 'string' ? doc.subscription : undefined,
      attributes,
      publishTime: typeof message.publishTime === 'string' ? message.publishTime : undefined,
      data: Buffer.from(message.data, 'base64'),
    },
  };
}
