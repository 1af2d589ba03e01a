// The tokens of the .qal language. Identifiers are restricted here, at the lexer, to
// [A-Za-z_][A-Za-z0-9_]*: every name that can reach emitted CUDA, WGSL or TypeScript is then a
// valid identifier in all three, and nothing a user writes can carry source text into them.
// Paths and other free text only ever appear as string literals, which are data.
import { createToken, Lexer, type TokenType } from 'chevrotain';

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED, line_breaks: true });
/** Comments are kept (not skipped) so the formatter can put them back. */
export const Comment = createToken({ name: 'Comment', pattern: /#[^\n]*/, group: 'comments' });

/**
 * `// …` is not a comment in .qal, but writing one is a common slip: it is lexed whole, into a
 * group of its own, so the front end reports it once instead of tripping over every word in it.
 */
export const SlashComment = createToken({ name: 'SlashComment', pattern: /\/\/[^\n]*/, group: 'slashComments' });

/** Any word usable as a setting name or a value: identifiers and every keyword. */
export const Name = createToken({ name: 'Name', pattern: Lexer.NA, label: 'a name' });
/** Keywords that open a settings block: `model { … }`, `quant { … }`, … */
export const BlockKeyword = createToken({ name: 'BlockKeyword', pattern: Lexer.NA, label: 'a block keyword' });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, categories: [Name], label: 'a name' });
/**
 * `llama2-7b`: a word with hyphens. It may be a value the checker recognises (preset names
 * are written both ways) but it is never an Identifier, so it can never name generated code.
 */
export const HyphenatedWord = createToken({ name: 'HyphenatedWord', pattern: /[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)+/, categories: [Name], label: 'a name' });

function keyword(word: string, extraCategories: TokenType[] = []): TokenType {
  return createToken({
    name: word[0]!.toUpperCase() + word.slice(1),
    pattern: new RegExp(word),
    longer_alt: Identifier,
    categories: [Name, ...extraCategories],
    label: `'${word}'`,
  });
}

export const Spec = keyword('spec');
export const Include = keyword('include');
export const Model = keyword('model', [BlockKeyword]);
export const Quant = keyword('quant', [BlockKeyword]);
export const Adapter = keyword('adapter', [BlockKeyword]);
export const Train = keyword('train', [BlockKeyword]);
export const Export = keyword('export', [BlockKeyword]);
export const Target = keyword('target');
export const Override = keyword('override');
export const Layers = keyword('layers');
export const Proj = keyword('proj');
export const All = keyword('all');

/** The words that begin a top-level statement; the parser resynchronises on them. */
export const STATEMENT_KEYWORDS = ['spec', 'include', 'model', 'quant', 'adapter', 'train', 'export', 'target', 'override'] as const;

export const NumberLiteral = createToken({ name: 'NumberLiteral', pattern: /\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+/, label: 'a number' });
export const IntegerLiteral = createToken({ name: 'IntegerLiteral', pattern: /\d+/, longer_alt: NumberLiteral, label: 'an integer' });
/** Strings hold paths and other data; no newlines, escapes \" and \\ only. */
export const StringLiteral = createToken({ name: 'StringLiteral', pattern: /"(?:[^"\\\n]|\\["\\])*"/, label: 'a string' });

export const DotDot = createToken({ name: 'DotDot', pattern: /\.\./, label: "'..'" });
export const Equals = createToken({ name: 'Equals', pattern: /=/, label: "'='" });
export const Comma = createToken({ name: 'Comma', pattern: /,/, label: "','" });
export const Minus = createToken({ name: 'Minus', pattern: /-/, label: "'-'" });
export const LCurly = createToken({ name: 'LCurly', pattern: /\{/, label: "'{'" });
export const RCurly = createToken({ name: 'RCurly', pattern: /\}/, label: "'}'" });
export const LSquare = createToken({ name: 'LSquare', pattern: /\[/, label: "'['" });
export const RSquare = createToken({ name: 'RSquare', pattern: /\]/, label: "']'" });

/** Order matters: keywords before Identifier, NumberLiteral before IntegerLiteral. */
export const ALL_TOKENS: TokenType[] = [
  WhiteSpace, Comment, SlashComment,
  Spec, Include, Model, Quant, Adapter, Train, Export, Target, Override, Layers, Proj, All,
  HyphenatedWord, Identifier, Name, BlockKeyword,
  NumberLiteral, IntegerLiteral, StringLiteral,
  DotDot, Equals, Comma, Minus, LCurly, RCurly, LSquare, RSquare,
];

/** Lines end at '\n' only (a lone '\r' is whitespace), as in every editor and in the diagnostics printer. */
export const qalLexer = new Lexer(ALL_TOKENS, {
  positionTracking: 'full',
  ensureOptimizations: false,
  lineTerminatorsPattern: /\n/g,
  lineTerminatorCharacters: ['\n'],
});
