// The canonical form of a .qal file: two-space indentation, `key = value` one per line, one
// blank line between statements, lists as `[a, b]`, comments kept where they were (before a
// node, or at the end of its line). Formatting a formatted file changes nothing.
import type { Body, Comment, LayerItem, Scalar, Selector, Setting, SourceFile, Statement, Value } from './ast.ts';

function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function scalar(s: Scalar): string {
  return s.kind === 'string' ? quote(s.value as string) : s.text;
}

function value(v: Value): string {
  return v.kind === 'list' ? `[${v.items.map(scalar).join(', ')}]` : scalar(v);
}

function layerItem(item: LayerItem): string {
  if (item.kind === 'all') return 'all';
  return item.first === item.last ? `${item.first}` : `${item.first}..${item.last}`;
}

function selector(s: Selector): string {
  return s.kind === 'layers'
    ? `layers ${s.items.map(layerItem).join(', ')}`
    : `proj ${s.names.map((n) => n.name).join(', ')}`;
}

function header(statement: Statement): string {
  switch (statement.kind) {
    case 'spec': return `spec ${statement.name}`;
    case 'include': return `include ${quote(statement.path)}`;
    case 'block': return statement.block;
    case 'target': return `target ${statement.target}`;
    case 'override': return `override ${statement.selectors.map(selector).join(' ')}`;
  }
}

class Printer {
  private readonly lines: string[] = [];
  private next = 0;

  constructor(private readonly file: SourceFile) {}

  private get comments(): readonly Comment[] {
    return this.file.comments;
  }

  /** Comments that start before `offset` and have not been printed yet, on lines of their own. */
  private leading(offset: number, indent: string): void {
    while (this.next < this.comments.length && this.comments[this.next]!.span.offset < offset) {
      this.lines.push(indent + this.comments[this.next]!.text.trimEnd());
      this.next++;
    }
  }

  /** A comment on `line` after the node: kept at the end of the printed line. */
  private trailing(line: number): string {
    const c = this.comments[this.next];
    if (c && c.span.line === line) {
      this.next++;
      return `  ${c.text.trimEnd()}`;
    }
    return '';
  }

  private setting(s: Setting, previousEndLine: number | undefined): void {
    // One blank line between groups of settings survives; more collapse to one.
    const firstLineOfNode = Math.min(s.span.line, this.comments[this.next]?.span.offset !== undefined && this.comments[this.next]!.span.offset < s.span.offset ? this.comments[this.next]!.span.line : Infinity);
    if (previousEndLine !== undefined && firstLineOfNode > previousEndLine + 1) this.lines.push('');
    this.leading(s.span.offset, '  ');
    const endLine = s.value.span.line;
    this.lines.push(`  ${s.key} = ${value(s.value)}${this.trailing(endLine)}`);
  }

  private body(body: Body, head: string): void {
    const openLine = body.span.line;
    if (body.settings.length === 0 && !this.comments.slice(this.next).some((c) => c.span.offset < body.span.offset + body.span.length)) {
      this.lines.push(`${head} {}${this.trailing(openLine)}`);
      return;
    }
    this.lines.push(`${head} {${this.trailing(openLine)}`);
    let previousEnd: number | undefined;
    for (const s of body.settings) {
      this.setting(s, previousEnd);
      previousEnd = s.value.span.line;
    }
    const closeOffset = body.span.offset + body.span.length - 1;
    this.leading(closeOffset, '  ');
    const closeLine = this.closeLine(closeOffset);
    this.lines.push(`}${this.trailing(closeLine)}`);
  }

  private closeLine(offset: number): number {
    let line = 1;
    for (let i = 0; i < offset; i++) if (this.file.text.charCodeAt(i) === 10) line++;
    return line;
  }

  print(): string {
    let previous: Statement | undefined;
    for (const statement of this.file.statements) {
      const groupedWithPrevious = previous?.kind === 'include' && statement.kind === 'include';
      if (previous && !groupedWithPrevious) this.lines.push('');
      this.leading(statement.span.offset, '');
      if (statement.kind === 'spec' || statement.kind === 'include') {
        this.lines.push(header(statement) + this.trailing(statement.span.line));
      } else {
        this.body(statement.body, header(statement));
      }
      previous = statement;
    }
    if (this.next < this.comments.length) {
      if (this.lines.length > 0) this.lines.push('');
      this.leading(Infinity, '');
    }
    return this.lines.join('\n') + '\n';
  }
}

/** The canonical text of a file that parsed without errors. */
export function formatSource(file: SourceFile): string {
  return new Printer(file).print();
}
