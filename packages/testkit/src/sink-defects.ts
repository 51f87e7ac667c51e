import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * ../shared/sink-defects beside the checkout: request bodies from an adversarial campaign against the
 * sink, each exposing a class of defect (see its README). Planted secret values start with `MK`.
 */
export const sinkDefectsDir =
  process.env.KAUDIT_SINK_DEFECTS_DIR ?? join(__dirname, '../../../../shared/sink-defects');

export interface DefectBody {
  file: string;
  body: Buffer;
  contentType: string;
}

/** Every request body of the campaign (the `.json` files; `.ct` beside one names its Content-Type). */
export function loadSinkDefects(): DefectBody[] {
  return readdirSync(sinkDefectsDir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => {
      const ct = join(sinkDefectsDir, file.replace(/\.json$/, '.ct'));
      let contentType = 'application/json';
      try {
        contentType = readFileSync(ct, 'utf8').trim();
      } catch {}
      return { file, body: readFileSync(join(sinkDefectsDir, file)), contentType };
    });
}

/**
 * The secret values planted in a text: `MK…` markers, their base64 forms, and every value of a `data`,
 * `stringData` or `token` map the text carries (real throw-away credentials in the samples). Searching
 * output for all of them catches a leak in any encoding the sink could have produced.
 */
export function plantedSecrets(text: string): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(/MK[0-9A-Za-z]{6,}/g)) {
    found.add(match[0]);
    found.add(Buffer.from(match[0]).toString('base64').replace(/=+$/, ''));
  }
  for (const match of text.matchAll(/TUs[0-9A-Za-z+/]{8,}/g)) found.add(match[0]);
  for (const match of text.matchAll(/\\?"(?:data|stringData)\\?":\s*\{([^{}]*)\}/g))
    for (const value of match[1]!.matchAll(/:\s*\\?"([^"\\]{8,})\\?"/g)) found.add(value[1]!);
  for (const match of text.matchAll(/\\?"token\\?":\s*\\?"([^"\\]{8,})\\?"/g)) found.add(match[1]!);
  return [...found];
}
