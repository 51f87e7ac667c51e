import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPolicyFile } from './policy-path';

describe('service-kit > readPolicyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'policy-file-'));
  const parse = (text: string, file: string) => {
    if (!text.startsWith('ok')) throw new Error(`${file}: not a policy`);
    return text.trim();
  };

  it('returns the parsed file and adds no problem', () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(file, 'ok\n');
    const problems: string[] = [];
    expect(readPolicyFile({ variable: 'X_POLICY_FILE', file, problems, parse })).toBe('ok');
    expect(problems).toEqual([]);
  });

  it('names the variable, the file and the errno code when the file cannot be read', () => {
    const file = join(dir, 'missing.yaml');
    const problems: string[] = [];
    expect(readPolicyFile({ variable: 'X_POLICY_FILE', file, problems, parse })).toBeUndefined();
    expect(problems).toEqual([`X_POLICY_FILE: cannot read ${file} (ENOENT)`]);
  });

  it("names the variable and carries the parser's message when the file is not a policy", () => {
    const problems: string[] = [];
    const read = readPolicyFile({
      variable: 'X_POLICY_FILE',
      file: 'in-memory.yaml',
      problems,
      parse,
      readFile: () => 'nope',
    });
    expect(read).toBeUndefined();
    expect(problems).toEqual(['X_POLICY_FILE: in-memory.yaml: not a policy']);
  });
});
