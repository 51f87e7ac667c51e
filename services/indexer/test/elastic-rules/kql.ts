/**
 * A small KQL -> Query DSL translator for the conformance suite, covering what Elastic's prebuilt
 * Kubernetes rules use: `field : value`, `field : (a or b)`, value expressions with `and`/`or`/`not`
 * and parentheses, `*` (exists), wildcards, quoted phrases and backslash escapes (`system\:node\:*`).
 * It builds the queries Kibana's KQL builds for these forms: match for a bare value, match_phrase for
 * a quoted one, exists for `*`, and a wildcard query for a value with `*` (Kibana uses query_string
 * there; on keyword fields both match the same terms). No npm package does this outside Kibana
 * (@kbn/es-query is not published), hence this file. Test code only.
 */
type Dsl = Record<string, unknown>;

interface Token {
  kind: 'lparen' | 'rparen' | 'colon' | 'word' | 'quoted';
  text: string;
  /** For words: whether a `*` in the text is a wildcard (not escaped). */
  wildcard?: boolean;
}

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ':') {
      tokens.push({ kind: c === '(' ? 'lparen' : c === ')' ? 'rparen' : 'colon', text: c });
      i++;
    } else if (c === '"') {
      let text = '';
      i++;
      while (i < input.length && input[i] !== '"') {
        if (input[i] === '\\' && i + 1 < input.length) i++;
        text += input[i];
        i++;
      }
      if (input[i] !== '"') throw new Error(`KQL: unterminated string in ${input}`);
      i++;
      tokens.push({ kind: 'quoted', text });
    } else {
      let text = '';
      let wildcard = false;
      while (i < input.length && !/[\s():"]/.test(input[i]!)) {
        if (input[i] === '\\' && i + 1 < input.length) {
          i++;
          // An escaped * stays literal: marked for the wildcard query by its own escape.
          text += input[i] === '*' ? '\\*' : input[i];
        } else {
          if (input[i] === '*') wildcard = true;
          text += input[i];
        }
        i++;
      }
      tokens.push({ kind: 'word', text, wildcard });
    }
  }
  return tokens;
}

const isKeyword = (token: Token | undefined, word: string) =>
  token?.kind === 'word' && token.text.toLowerCase() === word;

class Parser {
  private position = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Dsl {
    const query = this.or();
    if (this.position < this.tokens.length)
      throw new Error(`KQL: unexpected ${this.tokens[this.position]!.text} at token ${this.position}`);
    return query;
  }

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.position + offset];
  }

  private next(): Token {
    const token = this.tokens[this.position++];
    if (!token) throw new Error('KQL: unexpected end of query');
    return token;
  }

  private or(): Dsl {
    const clauses = [this.and()];
    while (isKeyword(this.peek(), 'or')) {
      this.next();
      clauses.push(this.and());
    }
    return clauses.length === 1 ? clauses[0]! : { bool: { should: clauses, minimum_should_match: 1 } };
  }

  private and(): Dsl {
    const clauses = [this.not()];
    while (isKeyword(this.peek(), 'and')) {
      this.next();
      clauses.push(this.not());
    }
    return clauses.length === 1 ? clauses[0]! : { bool: { filter: clauses } };
  }

  private not(): Dsl {
    if (isKeyword(this.peek(), 'not')) {
      this.next();
      return { bool: { must_not: [this.not()] } };
    }
    return this.primary();
  }

  private primary(): Dsl {
    const token = this.next();
    if (token.kind === 'lparen') {
      const inner = this.or();
      if (this.next().kind !== 'rparen') throw new Error('KQL: missing )');
      return inner;
    }
    if (token.kind !== 'word' || this.peek()?.kind !== 'colon')
      throw new Error(`KQL: expected field:value at ${token.text} (free text is not supported)`);
    this.next();
    // One value, or a parenthesized group in which and/or/not combine values.
    return new ValueParser(this, token.text).value();
  }

  /** Shared with ValueParser: the value grammar reads the same token stream. */
  take(): Token {
    return this.next();
  }

  look(): Token | undefined {
    return this.peek();
  }
}

class ValueParser {
  constructor(
    private readonly parser: Parser,
    private readonly field: string,
  ) {}

  value(): Dsl {
    return this.primary();
  }

  private or(): Dsl {
    const clauses = [this.and()];
    while (isKeyword(this.parser.look(), 'or')) {
      this.parser.take();
      clauses.push(this.and());
    }
    return clauses.length === 1 ? clauses[0]! : { bool: { should: clauses, minimum_should_match: 1 } };
  }

  private and(): Dsl {
    const clauses = [this.not()];
    while (isKeyword(this.parser.look(), 'and')) {
      this.parser.take();
      clauses.push(this.not());
    }
    return clauses.length === 1 ? clauses[0]! : { bool: { filter: clauses } };
  }

  private not(): Dsl {
    if (isKeyword(this.parser.look(), 'not')) {
      this.parser.take();
      return { bool: { must_not: [this.not()] } };
    }
    return this.primary();
  }

  private primary(): Dsl {
    const token = this.parser.take();
    if (token.kind === 'lparen') {
      // A group inside a field's value: `field:(a or b)`. Nested groups work the same.
      const inner = this.or();
      if (this.parser.take().kind !== 'rparen') throw new Error('KQL: missing ) in value');
      return inner;
    }
    if (token.kind === 'quoted') return { match_phrase: { [this.field]: token.text } };
    if (token.kind !== 'word') throw new Error(`KQL: unexpected ${token.text} in the value of ${this.field}`);
    if (token.text === '*') return { exists: { field: this.field } };
    if (token.wildcard) return { wildcard: { [this.field]: { value: token.text } } };
    return { match: { [this.field]: token.text.replaceAll('\\*', '*') } };
  }
}

export function kqlToDsl(query: string): Dsl {
  return new Parser(tokenize(query)).parse();
}

/** The fields a KQL query reads. */
export function kqlFields(query: string): string[] {
  const tokens = tokenize(query);
  const fields = new Set<string>();
  tokens.forEach((token, i) => {
    if (token.kind === 'word' && tokens[i + 1]?.kind === 'colon') fields.add(token.text);
  });
  return [...fields];
}
