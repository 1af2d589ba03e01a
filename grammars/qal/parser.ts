// The grammar of the .qal language, defined once: the parser below is the grammar
// (chevrotain builds it from these rules), and grammars/qal.railroad.html is drawn from it.
//
//   statement := 'spec' Identifier
//              | 'include' String
//              | ('model' | 'quant' | 'adapter' | 'train' | 'export') body
//              | 'target' Name body
//              | 'override' selector+ body
//   selector  := 'layers' layerItem (',' layerItem)*  |  'proj' Name (',' Name)*
//   layerItem := 'all' | Integer ('..' Integer)?
//   body      := '{' (Name '=' value)* '}'
//   value     := scalar | '[' (scalar (',' scalar)*)? ']'
//   scalar    := Integer | Number | String | Name | '-' (Integer | Number)
//
// A file is a sequence of statements; the front end splits the token stream at statement
// keywords and parses each statement on its own, so one mistake never hides the next.
import { CstParser, type IParserErrorMessageProvider, type TokenType, type IToken } from 'chevrotain';
import * as T from './tokens.ts';

function describe(token: IToken): string {
  return token.tokenType.name === 'EOF' ? 'the end of the statement' : `'${token.image}'`;
}

function labelOf(type: TokenType): string {
  return type.LABEL ?? type.name;
}

/** Messages in the compiler's voice rather than chevrotain's. */
const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }) {
    return `expected ${labelOf(expected)} but found ${describe(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `unexpected ${describe(firstRedundant)} after the end of the statement`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }) {
    const starts = new Set<string>();
    for (const alt of expectedPathsPerAlt) for (const path of alt) if (path[0]) starts.add(labelOf(path[0]));
    const what = ruleName === 'scalar' || ruleName === 'value' ? 'a value' : [...starts].join(', ');
    return `expected ${what} but found ${describe(actual[0]!)}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual }) {
    const starts = new Set<string>();
    for (const path of expectedIterationPaths) if (path[0]) starts.add(labelOf(path[0]));
    return `expected ${[...starts].join(' or ')} but found ${describe(actual[0]!)}`;
  },
};

export class QalParser extends CstParser {
  constructor() {
    super(T.ALL_TOKENS, { recoveryEnabled: true, errorMessageProvider: messages, maxLookahead: 2 });
    this.performSelfAnalysis();
  }

  public statement = this.RULE('statement', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.specStatement) },
      { ALT: () => this.SUBRULE(this.includeStatement) },
      { ALT: () => this.SUBRULE(this.blockStatement) },
      { ALT: () => this.SUBRULE(this.targetStatement) },
      { ALT: () => this.SUBRULE(this.overrideStatement) },
    ]);
  });

  public specStatement = this.RULE('specStatement', () => {
    this.CONSUME(T.Spec);
    this.CONSUME(T.Identifier);
  });

  public includeStatement = this.RULE('includeStatement', () => {
    this.CONSUME(T.Include);
    this.CONSUME(T.StringLiteral);
  });

  public blockStatement = this.RULE('blockStatement', () => {
    this.CONSUME(T.BlockKeyword);
    this.SUBRULE(this.body);
  });

  public targetStatement = this.RULE('targetStatement', () => {
    this.CONSUME(T.Target);
    this.CONSUME(T.Name);
    this.SUBRULE(this.body);
  });

  public overrideStatement = this.RULE('overrideStatement', () => {
    this.CONSUME(T.Override);
    this.AT_LEAST_ONE(() => this.SUBRULE(this.selector));
    this.SUBRULE(this.body);
  });

  public selector = this.RULE('selector', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Layers);
          this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.layerItem) });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Proj);
          this.AT_LEAST_ONE_SEP2({ SEP: T.Comma, DEF: () => this.CONSUME(T.Name) });
        },
      },
    ]);
  });

  public layerItem = this.RULE('layerItem', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.All) },
      {
        ALT: () => {
          this.CONSUME(T.IntegerLiteral, { LABEL: 'first' });
          this.OPTION(() => {
            this.CONSUME(T.DotDot);
            this.CONSUME2(T.IntegerLiteral, { LABEL: 'last' });
          });
        },
      },
    ]);
  });

  public body = this.RULE('body', () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.setting));
    this.CONSUME(T.RCurly);
  });

  public setting = this.RULE('setting', () => {
    this.CONSUME(T.Name);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.value);
  });

  public value = this.RULE('value', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.list) },
      { ALT: () => this.SUBRULE(this.scalar) },
    ]);
  });

  public list = this.RULE('list', () => {
    this.CONSUME(T.LSquare);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.scalar) });
    this.CONSUME(T.RSquare);
  });

  public scalar = this.RULE('scalar', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.IntegerLiteral) },
      { ALT: () => this.CONSUME(T.NumberLiteral) },
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.Name) },
      {
        ALT: () => {
          this.CONSUME(T.Minus);
          this.OR2([
            { ALT: () => this.CONSUME2(T.IntegerLiteral) },
            { ALT: () => this.CONSUME2(T.NumberLiteral) },
          ]);
        },
      },
    ]);
  });
}

/** One parser instance is enough: chevrotain parsers are reusable by resetting `input`. */
export const qalParser = new QalParser();
