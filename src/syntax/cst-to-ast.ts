// Turns chevrotain's concrete syntax tree for one statement into the AST. A statement that
// error recovery left incomplete yields what is complete: a setting missing its value is
// dropped (its error is already reported), so the checker sees no half-built nodes.
import type { CstNode, IToken } from 'chevrotain';
import type { SourceSpan } from '../diagnostics/diagnostic.ts';
import type { Body, BlockKind, LayerItem, ListValue, Scalar, Selector, Setting, Statement, Value } from './ast.ts';
import { isRealToken, joinSpans, tokenSpan } from './span.ts';

type Children = Record<string, (CstNode | IToken)[] | undefined>;

function children(node: CstNode): Children {
  return node.children as Children;
}

function tokens(node: CstNode, name: string): IToken[] {
  return (children(node)[name] ?? []).filter((t): t is IToken => 'image' in t && isRealToken(t));
}

function token(node: CstNode, name: string): IToken | undefined {
  return tokens(node, name)[0];
}

function nodes(node: CstNode, name: string): CstNode[] {
  return (children(node)[name] ?? []).filter((n): n is CstNode => 'children' in n);
}

function node(node: CstNode, name: string): CstNode | undefined {
  return nodes(node, name)[0];
}

/** Undoes the two escapes strings allow. */
function unquote(image: string): string {
  return image.slice(1, -1).replace(/\\(["\\])/g, '$1');
}

export class AstBuilder {
  constructor(private readonly file: string) {}

  private span(t: IToken): SourceSpan {
    return tokenSpan(this.file, t);
  }

  statement(cst: CstNode): Statement | undefined {
    const inner = Object.values(children(cst)).flat()[0];
    if (!inner || !('children' in inner)) return undefined;
    switch (inner.name) {
      case 'specStatement': return this.spec(inner);
      case 'includeStatement': return this.include(inner);
      case 'blockStatement': return this.block(inner);
      case 'targetStatement': return this.target(inner);
      case 'overrideStatement': return this.override(inner);
      default: return undefined;
    }
  }

  private spec(cst: CstNode): Statement | undefined {
    const keyword = token(cst, 'Spec');
    const name = token(cst, 'Identifier');
    if (!keyword || !name) return undefined;
    return { kind: 'spec', name: name.image, nameSpan: this.span(name), span: joinSpans(this.span(keyword), this.span(name)) };
  }

  private include(cst: CstNode): Statement | undefined {
    const keyword = token(cst, 'Include');
    const path = token(cst, 'StringLiteral');
    if (!keyword || !path) return undefined;
    return { kind: 'include', path: unquote(path.image), pathSpan: this.span(path), span: joinSpans(this.span(keyword), this.span(path)) };
  }

  private block(cst: CstNode): Statement | undefined {
    const keyword = token(cst, 'BlockKeyword');
    const body = this.body(node(cst, 'body'));
    if (!keyword || !body) return undefined;
    return { kind: 'block', block: keyword.image as BlockKind, body, span: joinSpans(this.span(keyword), body.span) };
  }

  private target(cst: CstNode): Statement | undefined {
    const keyword = token(cst, 'Target');
    const name = token(cst, 'Name');
    const body = this.body(node(cst, 'body'));
    if (!keyword || !name || !body) return undefined;
    return { kind: 'target', target: name.image, targetSpan: this.span(name), body, span: joinSpans(this.span(keyword), body.span) };
  }

  private override(cst: CstNode): Statement | undefined {
    const keyword = token(cst, 'Override');
    const body = this.body(node(cst, 'body'));
    const selectors = nodes(cst, 'selector').map((s) => this.selector(s));
    if (!keyword || !body || selectors.length === 0 || selectors.some((s) => s === undefined)) return undefined;
    return { kind: 'override', selectors: selectors as Selector[], body, span: joinSpans(this.span(keyword), body.span) };
  }

  private selector(cst: CstNode): Selector | undefined {
    const layers = token(cst, 'Layers');
    if (layers) {
      const items = nodes(cst, 'layerItem').map((i) => this.layerItem(i));
      if (items.length === 0 || items.some((i) => i === undefined)) return undefined;
      const last = items[items.length - 1]!;
      return { kind: 'layers', items: items as LayerItem[], span: joinSpans(this.span(layers), last.span) };
    }
    const proj = token(cst, 'Proj');
    const names = tokens(cst, 'Name');
    if (!proj || names.length === 0) return undefined;
    return {
      kind: 'proj',
      names: names.map((n) => ({ name: n.image, span: this.span(n) })),
      span: joinSpans(this.span(proj), this.span(names[names.length - 1]!)),
    };
  }

  private layerItem(cst: CstNode): LayerItem | undefined {
    const all = token(cst, 'All');
    if (all) return { kind: 'all', span: this.span(all) };
    const first = (children(cst).first ?? [])[0] as IToken | undefined;
    const last = (children(cst).last ?? [])[0] as IToken | undefined;
    if (!isRealToken(first)) return undefined;
    if (children(cst).DotDot && !isRealToken(last)) return undefined;
    const end = isRealToken(last) ? last : first;
    return { kind: 'range', first: Number(first.image), last: Number(end.image), span: joinSpans(this.span(first), this.span(end)) };
  }

  private body(cst: CstNode | undefined): Body | undefined {
    if (!cst) return undefined;
    const open = token(cst, 'LCurly');
    const close = token(cst, 'RCurly');
    if (!open || !close) return undefined;
    const settings = nodes(cst, 'setting').map((s) => this.setting(s)).filter((s): s is Setting => s !== undefined);
    return { settings, span: joinSpans(this.span(open), this.span(close)) };
  }

  private setting(cst: CstNode): Setting | undefined {
    const key = token(cst, 'Name');
    const equals = token(cst, 'Equals');
    const value = this.value(node(cst, 'value'));
    if (!key || !equals || !value) return undefined;
    const keySpan = this.span(key);
    return { key: key.image, keySpan, value, span: joinSpans(keySpan, value.span) };
  }

  private value(cst: CstNode | undefined): Value | undefined {
    if (!cst) return undefined;
    const list = node(cst, 'list');
    if (list) return this.list(list);
    return this.scalar(node(cst, 'scalar'));
  }

  private list(cst: CstNode): ListValue | undefined {
    const open = token(cst, 'LSquare');
    const close = token(cst, 'RSquare');
    const items = nodes(cst, 'scalar').map((s) => this.scalar(s));
    if (!open || !close || items.some((i) => i === undefined)) return undefined;
    return { kind: 'list', items: items as Scalar[], span: joinSpans(this.span(open), this.span(close)) };
  }

  private scalar(cst: CstNode | undefined): Scalar | undefined {
    if (!cst) return undefined;
    const minus = token(cst, 'Minus');
    const integer = token(cst, 'IntegerLiteral');
    const number = token(cst, 'NumberLiteral');
    const string = token(cst, 'StringLiteral');
    const name = token(cst, 'Name');
    if (integer || number) {
      const literal = (integer ?? number)!;
      const span = minus ? joinSpans(this.span(minus), this.span(literal)) : this.span(literal);
      const text = (minus ? '-' : '') + literal.image;
      return { kind: integer ? 'integer' : 'number', text, value: Number(text), span };
    }
    if (minus) return undefined;
    if (string) return { kind: 'string', text: string.image, value: unquote(string.image), span: this.span(string) };
    if (name) return { kind: 'name', text: name.image, value: name.image, span: this.span(name) };
    return undefined;
  }
}
