/**
 * Exact rewrites of two Python regex idioms fail2ban's filters (sshd's among them) use and RE2
 * cannot run, into regexes without them, before the rest of the translation (python-regex.ts).
 * Anything else, or either idiom in a shape not listed here, is left as it is (and refused there).
 *
 * 1. **Conditionals** `(?(name)yes|no)` after the place that decides whether group `name` took
 *    part: a greedy optional group `(?P<name>...)?` (or a lazy one), or a group one of whose
 *    alternatives holds `(?P<name>...)` directly. That place and everything after it in the same
 *    sequence are written out once per choice, in the order Python tries them, with the
 *    conditional replaced by the branch that choice implies:
 *    `A (?P<g>x)? B (?(g)y|z) C` → `A (?:(?P<g>x) B y C|B z C)`. The same texts match, with the
 *    same groups, preferred in the same order (RE2's leftmost-first alternation is Python's
 *    backtracking order). The copies repeat group names; the filter compiler numbers each.
 * 2. **Tempered tokens** `(?:(?!L).)*` and `(?:(?!L).)*?` with `L` a literal text, followed (past
 *    group ends and fail2ban's `</F-...>` tags, which match nothing) by text that starts with
 *    `L`, or by `$` at the end of the pattern. The token takes characters other than a line end
 *    as long as `L` does not start at any of them; before `L` or the end of the line the text it
 *    takes is one and the same however it is repeated, so it is written as a regex for "the
 *    texts in which `L` does not start", built from the automaton that follows `L` (states: how
 *    much of `L` the text ends with), with the states whose unfinished `L` the following text
 *    completes left out.
 * 3. **Words checked by a look-ahead** `(?:\w+ (?!L\b)){m,n}\w+` with `L` a word of ASCII
 *    letters and digits, the blank any one non-word character, and a non-word character (or the
 *    line's end, or the pattern's) after the last word (sshd's `no matching <__alg_match>
 *    found`): up to n + 1 words, each one after the first other than `L`. The words are whole (a blank or that character follows
 *    each), so the check moves onto the word itself: `\w+(?: W){m,n}`, W the words other than `L`
 *    (`f`, `fo`, `fou`, `foun`, words not going on like `found`, or going on past it), written
 *    with `[^\Wf]` (a word character other than `f`). Same texts, same order of preference.
 *    At the very end of the pattern (a search: anything may follow) each such word ends at a
 *    `\b`. Rules 3 to 8 are not applied under `(?i)` (case folding would change what `[^\Wf]`
 *    excludes) or `(?s)` (`.` would take line ends).
 * 4. **A run checked by a look-ahead** `(?!W )\S+` (or `(?!W )<F-USER>\S+</F-USER>`), `W`
 *    literal text without blanks, followed by the same blank (traefik-auth's user, `(?!- )`): the
 *    run is whole, so the look-ahead refuses the run `W` alone: `\S+` becomes the runs other than
 *    `W`, written with `[^\s-]` (a non-blank other than `-`). Same texts, same preference.
 * 5. **A run's start checked by a look-ahead** `(?!L)\S+` (or `\S*`, `.+`, `.*`, alone or in a
 *    group) followed by literal text (apache's `(?!evasive)\S+:\S+`, recidive's
 *    `\[(?!recidive\])(?:.*)\]`): the text there does not start with `L`, so the run does not, nor
 *    is it the first k characters of `L` where the text after it goes on with the rest of `L`
 *    (`recidive` before `]`); written as those runs, longer ones first (the greedy order). When
 *    what follows does not say (it is not literal far enough), nothing is written out.
 * 6. **One character refused** `(?!c)` before a group of alternatives each `\S` or `.` repeated
 *    (apache-auth's user, ``(?!`)<F-USER>(?:\S*|.*?)</F-USER>``), followed by a character other
 *    than `c`: each alternative's first character is not `c` (`[^\s`]\S*`, `[^\n`].*?`), an
 *    empty one staying as it was preferred.
 * 7. **A word checked by a look-ahead before its separator** `(?!Wc)\w+c`, W ASCII letters and
 *    digits and c one non-word character (asterisk's `,(?!RemoteAddress=)\w+="..."`), also as the
 *    alternatives of a group (courier-auth's `(?!ip=)(?:user=...|\w+=[^,]*)`, where `user=` is
 *    never refused): the `\w+` before c is a whole word, so the look-ahead refuses exactly the word
 *    W: `\w+` becomes the words other than W, as in rule 3. Same texts, same groups.
 * 8. **A look-ahead for what follows anyway** `(?=L)` before literal text starting with `L`, or
 *    ending the rounds of a repeated group whose every alternative starts with `L` as the text after
 *    the repetition does (exim's `(?:"+[^"]*(?="))*?"`): a way on that does not start with `L`
 *    fails there anyway, so dropping it changes neither what matches nor the order of the tries.
 * 9. **A back-reference to a group of a few texts** `(?P<q>"?)\S+(?P=q)` (selinux-ssh's quote
 *    around the account): like a conditional, the group and what follows it are written out once
 *    per text the group can match, in Python's order, the back-reference replaced by that text.
 */

type Item = Atom | Group | Quantified;

interface Atom {
  kind: 'atom';
  text: string;
}

interface Group {
  kind: 'group';
  /** `(`, `(?:`, `(?P<name>`, `(?!`, `(?(name)`, `<F-USER>`, ... */
  open: string;
  /** `)` or `</F-USER>`. */
  close: string;
  body: Seq[];
}

interface Quantified {
  kind: 'quantified';
  item: Atom | Group;
  /** `*`, `+?`, `{0,2}`, ... */
  quantifier: string;
}

type Seq = Item[];

class Unparsable extends Error {}

/** The rewritten pattern, or the pattern itself when nothing here applies (or it cannot be parsed). */
export function rewritePythonIdioms(pattern: string): string {
  if (
    !pattern.includes('(?(') &&
    !pattern.includes('(?!') &&
    !pattern.includes('(?=') &&
    !pattern.includes('(?P=')
  )
    return pattern;
  let tree: Seq[];
  try {
    tree = parse(pattern);
  } catch (error) {
    if (error instanceof Unparsable) return pattern;
    throw error;
  }
  // Each round removes one conditional (then one back-reference); copies repeat the later ones,
  // so sequential conditionals double the pattern each: past the limits it is left as it was
  // (and refused).
  for (const expandIn of [conditionalIn, referenceIn])
    for (let round = 0; tree.some(expandIn); round++)
      if (round === MAX_CONDITIONALS || render(tree).length > MAX_REWRITTEN) return pattern;
  rewriteTemperedTokens(tree, []);
  // Not under (?i) (case folding changes what `[^\Wf]` excludes) or (?s) (`.` takes line ends).
  if (!/\(\?[a-zA-Z]*[is]/.test(pattern)) rewriteWordLookaheads(tree, []);
  const out = render(tree);
  return out.length > MAX_REWRITTEN ? pattern : out;
}

/** The longest rewrite kept, and the most conditionals written out (sshd's take 4). */
const MAX_REWRITTEN = 32 * 1024;
const MAX_CONDITIONALS = 16;

// ---------------------------------------------------------------------------------------------
// Parsing and rendering (structure only: every character keeps its text)

const F_TAG = /^<(\/?)F-[A-Za-z0-9_-]+>/;
/** Python's quantifiers (`{` not followed by one of these shapes is a literal brace). */
const QUANTIFIER = /^(?:[*+?]|\{\d+\}|\{\d*,\d*\})[?+]?/;

function parse(pattern: string): Seq[] {
  let i = 0;
  const alternatives = (closing: string | null): Seq[] => {
    const branches: Seq[] = [[]];
    for (;;) {
      const branch = branches[branches.length - 1] as Seq;
      if (i >= pattern.length) {
        if (closing !== null) throw new Unparsable(`missing ${closing}`);
        return branches;
      }
      const c = pattern[i] as string;
      const tag = c === '<' ? F_TAG.exec(pattern.slice(i, i + 40)) : null;
      if (c === ')' || (tag !== null && tag[1] === '/')) {
        const text = tag !== null ? tag[0] : ')';
        if (closing !== text) throw new Unparsable(`unexpected ${text}`);
        i += text.length;
        return branches;
      }
      if (c === '|') {
        branches.push([]);
        i++;
        continue;
      }
      let item: Atom | Group;
      if (tag !== null) {
        i += tag[0].length;
        const name = tag[0].slice(1, -1);
        item = { kind: 'group', open: tag[0], close: `</${name}>`, body: alternatives(`</${name}>`) };
      } else if (c === '(') {
        const open = groupOpening(pattern, i);
        i += open.length;
        item = { kind: 'group', open, close: ')', body: alternatives(')') };
      } else if (c === '\\') {
        if (i + 1 >= pattern.length) throw new Unparsable('lone backslash');
        item = { kind: 'atom', text: pattern.slice(i, i + 2) };
        i += 2;
      } else if (c === '[') {
        const end = classEnd(pattern, i);
        item = { kind: 'atom', text: pattern.slice(i, end) };
        i = end;
      } else if ('*+?'.includes(c) || QUANTIFIER.test(pattern.slice(i, i + 24))) {
        throw new Unparsable('a quantifier with nothing before it');
      } else {
        item = { kind: 'atom', text: c };
        i++;
      }
      const quantifier = QUANTIFIER.exec(pattern.slice(i, i + 24));
      if (quantifier !== null) {
        i += quantifier[0].length;
        branch.push({ kind: 'quantified', item, quantifier: quantifier[0] });
      } else branch.push(item);
    }
  };
  return alternatives(null);
}

function groupOpening(pattern: string, i: number): string {
  const rest = pattern.slice(i, i + 80);
  const opening =
    /^\(\?P<[A-Za-z_]\w*>/.exec(rest) ??
    /^\(\?\([A-Za-z_]\w*\)/.exec(rest) ??
    /^\(\?(?:[:=!]|<[=!]|[a-zA-Z]*(?:-[a-zA-Z]+)?:)/.exec(rest) ??
    /^\(\?P=\w+/.exec(rest);
  if (opening !== null) return opening[0];
  if (rest.startsWith('(?')) throw new Unparsable(`group syntax ${rest.slice(0, 6)}`);
  return '(';
}

/** The index after the character class starting at `start`. */
function classEnd(pattern: string, start: number): number {
  let i = start + 1;
  if (pattern[i] === '^') i++;
  if (pattern[i] === ']') i++;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === '\\') i += 2;
    else if (c === ']') return i + 1;
    else i++;
  }
  throw new Unparsable('unclosed class');
}

function render(branches: readonly Seq[]): string {
  return branches.map((seq) => seq.map(renderItem).join('')).join('|');
}

function renderItem(item: Item): string {
  if (item.kind === 'atom') return item.text;
  if (item.kind === 'group') return `${item.open}${render(item.body)}${item.close}`;
  return `${renderItem(item.item)}${item.quantifier}`;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

// ---------------------------------------------------------------------------------------------
// Conditionals

const CONDITIONAL = /^\(\?\(([A-Za-z_]\w*)\)$/;

/**
 * Expands the first conditional found that can be expanded (a sequence in which a choice item
 * decides a conditional later in the same sequence); false when none is left or none can be.
 */
function conditionalIn(seq: Seq): boolean {
  for (let i = 0; i < seq.length; i++) {
    const item = seq[i] as Item;
    const choice = choicesOf(item).find((c) =>
      seq.slice(i + 1).some((later) => holdsConditional(later, c.name)),
    );
    if (choice !== undefined) {
      const alternatives = choice.options.map(({ replacement, present }) => [
        ...replacement,
        ...seq.slice(i + 1).map((later) => resolve(clone(later), choice.name, present)),
      ]);
      seq.splice(i, seq.length - i, { kind: 'group', open: '(?:', close: ')', body: alternatives });
      return true;
    }
    // Deeper: the first item whose inside expands.
    for (const inner of innerSeqs(item)) if (conditionalIn(inner)) return true;
  }
  return false;
}

interface Choice {
  name: string;
  /** What replaces the choice item for each way it can go, in Python's order. */
  options: { replacement: Item[]; present: boolean }[];
}

/** The choices `item` makes about named groups: an optional group, or an alternation holding some. */
function choicesOf(item: Item): Choice[] {
  if (item.kind === 'quantified' && item.item.kind === 'group') {
    const name = groupName(item.item);
    if (name === null || (item.quantifier !== '?' && item.quantifier !== '??')) return [];
    const present = { replacement: [clone(item.item)], present: true };
    const absent = { replacement: [], present: false };
    return [{ name, options: item.quantifier === '?' ? [present, absent] : [absent, present] }];
  }
  if (item.kind !== 'group' || item.body.length < 2 || CONDITIONAL.test(item.open) || isLookaround(item.open))
    return [];
  // A named group directly in one alternative (not repeated, not inside another choice) took
  // part exactly when that alternative did.
  const choices: Choice[] = [];
  item.body.forEach((branch, holder) => {
    for (const inBranch of branch) {
      const name = inBranch.kind === 'group' ? groupName(inBranch) : null;
      if (name === null) continue;
      choices.push({
        name,
        options: item.body.map((only, k) => ({
          replacement: [{ ...clone(item), body: [clone(only)] }],
          present: k === holder,
        })),
      });
    }
  });
  return choices;
}

function groupName(group: Group): string | null {
  return /^\(\?P<([A-Za-z_]\w*)>$/.exec(group.open)?.[1] ?? null;
}

function isLookaround(open: string): boolean {
  return open === '(?=' || open === '(?!' || open === '(?<=' || open === '(?<!';
}

function innerSeqs(item: Item): Seq[] {
  if (item.kind === 'group') return item.body;
  if (item.kind === 'quantified' && item.item.kind === 'group') return item.item.body;
  return [];
}

function holdsConditional(item: Item, name: string): boolean {
  const group = item.kind === 'quantified' ? item.item : item;
  if (group.kind !== 'group') return false;
  if (CONDITIONAL.exec(group.open)?.[1] === name) return true;
  return group.body.some((seq) => seq.some((inner) => holdsConditional(inner, name)));
}

/** `item` with each conditional on `name` replaced by its yes or no branch. */
function resolve(item: Item, name: string, present: boolean): Item {
  if (item.kind === 'atom') return item;
  if (item.kind === 'quantified') return { ...item, item: resolve(item.item, name, present) as Atom | Group };
  const body = item.body.map((seq) => seq.map((inner) => resolve(inner, name, present)));
  if (CONDITIONAL.exec(item.open)?.[1] === name) {
    if (body.length > 2) throw new Error('a conditional with more than two branches');
    const chosen = present ? body[0] : body[1];
    return { kind: 'group', open: '(?:', close: ')', body: [chosen ?? []] };
  }
  return { ...item, body };
}

// ---------------------------------------------------------------------------------------------
// Back-references to a group of a few texts

/** The most texts a group may have for its back-references to be written out. */
const MAX_TEXTS = 8;

/**
 * Expands the first back-reference found that can be expanded (false when none is left or none
 * can be): a sequence in which a named group of a few literal texts (selinux-ssh's
 * `(?P<_quote_acct>"?)`) is referred back to later in the same sequence: the group and everything
 * after it are written out once per text, in the order Python tries them, with the group matching
 * that text and each `(?P=name)` replaced by it. When a back-reference is reached the group has
 * matched (it comes first in the same sequence), so it stands for exactly that text.
 */
function referenceIn(seq: Seq): boolean {
  for (let i = 0; i < seq.length; i++) {
    const item = seq[i] as Item;
    const name = item.kind === 'group' ? groupName(item) : null;
    if (item.kind === 'group' && name !== null && seq.slice(i + 1).some((later) => refersTo(later, name))) {
      const texts = textsOf(item.body);
      if (texts !== null) {
        const alternatives = texts.map((text) => [
          { ...item, body: [literalItems(text)] },
          ...seq.slice(i + 1).map((later) => substituteReference(clone(later), name, text)),
        ]);
        seq.splice(i, seq.length - i, { kind: 'group', open: '(?:', close: ')', body: alternatives });
        return true;
      }
    }
    for (const inner of innerSeqs(item)) if (referenceIn(inner)) return true;
  }
  return false;
}

/**
 * The texts alternatives of literal characters, optional ones (`c?`, `c??`) and plain groups of
 * such alternatives can match, in the order Python tries them; null for anything else or more
 * than MAX_TEXTS.
 */
function textsOf(branches: readonly Seq[]): string[] | null {
  const out: string[] = [];
  for (const branch of branches) {
    let texts = [''];
    for (const item of branch) {
      let options: string[] | null = null;
      if (item.kind === 'atom') {
        const char = literalChar(item.text);
        options = char === null ? null : [char];
      } else if (
        item.kind === 'quantified' &&
        item.item.kind === 'atom' &&
        (item.quantifier === '?' || item.quantifier === '??')
      ) {
        const char = literalChar(item.item.text);
        options = char === null ? null : item.quantifier === '?' ? [char, ''] : ['', char];
      } else if (item.kind === 'group' && item.open === '(?:') options = textsOf(item.body);
      if (options === null) return null;
      const next: string[] = [];
      for (const text of texts) for (const option of options) next.push(text + option);
      if (next.length > MAX_TEXTS) return null;
      texts = next;
    }
    out.push(...texts);
    if (out.length > MAX_TEXTS) return null;
  }
  return out;
}

function literalItems(text: string): Item[] {
  return [...text].map((c) => ({ kind: 'atom', text: escapeChar(c) }));
}

function refersTo(item: Item, name: string): boolean {
  const group = item.kind === 'quantified' ? item.item : item;
  if (group.kind !== 'group') return false;
  if (group.open === `(?P=${name}`) return true;
  return group.body.some((seq) => seq.some((inner) => refersTo(inner, name)));
}

/** `item` with each `(?P=name)` replaced by `text` (a plain group, so a quantifier still applies to all of it). */
function substituteReference(item: Item, name: string, text: string): Item {
  if (item.kind === 'atom') return item;
  if (item.kind === 'quantified')
    return { ...item, item: substituteReference(item.item, name, text) as Atom | Group };
  if (item.open === `(?P=${name}`)
    return { kind: 'group', open: '(?:', close: ')', body: [literalItems(text)] };
  return {
    ...item,
    body: item.body.map((seq) => seq.map((inner) => substituteReference(inner, name, text))),
  };
}

// ---------------------------------------------------------------------------------------------
// Tempered tokens

/** What follows an item: the items after it in each enclosing sequence, innermost first. */
type Trail = { seq: Seq; index: number }[];

function rewriteTemperedTokens(branches: Seq[], trail: Trail): void {
  for (const seq of branches) {
    for (let i = 0; i < seq.length; i++) {
      const item = seq[i] as Item;
      const here: Trail = [{ seq, index: i }, ...trail];
      const literal = temperedLiteral(item);
      if (literal !== null) {
        const follows = followingText(here);
        const replacement = follows === null ? null : avoiding(literal, follows);
        if (replacement !== null) seq[i] = { kind: 'atom', text: replacement };
        continue;
      }
      // Inside a group that repeats, what follows is not known: only plain groups are looked into.
      if (item.kind !== 'group' || isLookaround(item.open) || item.open.startsWith('(?P=')) continue;
      rewriteTemperedTokens(item.body, here);
    }
  }
}

/** `L` of `(?:(?!L).)*` or `(?:(?!L).)*?` with `L` plain text; otherwise null. */
function temperedLiteral(item: Item): string | null {
  if (item.kind !== 'quantified' || (item.quantifier !== '*' && item.quantifier !== '*?')) return null;
  const group = item.item;
  if (group.kind !== 'group' || group.open !== '(?:' || group.body.length !== 1) return null;
  const [look, dot] = group.body[0] as Seq;
  if (group.body[0]?.length !== 2 || dot?.kind !== 'atom' || dot.text !== '.') return null;
  const literal = look === undefined ? null : lookaheadText(look);
  return literal === null || literal.includes('\n') ? null : literal;
}

/** The texts `A`, `B`, ... of a negative look-ahead `(?!A|B|...)` of plain characters; otherwise null. */
function lookaheadTexts(item: Item): string[] | null {
  if (item.kind !== 'group' || item.open !== '(?!') return null;
  const texts: string[] = [];
  for (const branch of item.body) {
    const text = lookaheadText({ ...item, body: [branch] });
    if (text === null) return null;
    texts.push(text);
  }
  return texts;
}

/** The text `L` of a negative look-ahead `(?!L)` of plain characters; otherwise null. */
function lookaheadText(item: Item): string | null {
  if (item.kind !== 'group' || item.open !== '(?!' || item.body.length !== 1) return null;
  let text = '';
  for (const part of item.body[0] as Seq) {
    const char = part.kind === 'atom' ? literalChar(part.text) : null;
    if (char === null) return null;
    text += char;
  }
  return text === '' ? null : text;
}

/**
 * The item right after `seq[i]`, or the only item of the group there when it is a tag's group (or,
 * with `plain`, a `(?:...)` group): where it is, and what follows it.
 */
function guardedItem(
  seq: Seq,
  i: number,
  trail: Trail,
  plain: boolean,
): { holder: Seq; index: number; after: Trail } | null {
  const next = seq[i + 1];
  if (next === undefined) return null;
  const after: Trail = [{ seq, index: i + 1 }, ...trail];
  if (next.kind !== 'group' || !((plain && next.open === '(?:') || F_TAG.test(next.open)))
    return { holder: seq, index: i + 1, after };
  const inner = next.body[0] as Seq;
  if (next.body.length !== 1 || inner.length !== 1) return null;
  return { holder: inner, index: 0, after: [{ seq: inner, index: 0 }, ...after] };
}

/**
 * The literal text that certainly follows the item at the head of `trail`, read on past the ends
 * of the groups around it (up to `limit` characters); `'$'` when the end of the pattern follows
 * at once (`$` as its last item); null when neither is known.
 */
function followingText(trail: Trail, limit = 64): string | null {
  let text = '';
  for (let level = 0; level < trail.length; level++) {
    const { seq, index } = trail[level] as Trail[number];
    for (let k = index + 1; k < seq.length; k++) {
      const next = seq[k] as Item;
      const char = next.kind === 'atom' ? literalChar(next.text) : null;
      if (char !== null) {
        text += char;
        if (text.length >= limit) return text;
        continue;
      }
      const endsHere =
        next.kind === 'atom' &&
        next.text === '$' &&
        k === seq.length - 1 &&
        trail.slice(level + 1).every((outer) => outer.index === outer.seq.length - 1);
      if (endsHere && text === '') return '$';
      return text === '' ? null : text;
    }
  }
  // The pattern's end without `$`: a search goes on to any text.
  return text === '' ? null : text;
}

// ---------------------------------------------------------------------------------------------
// Words checked by a look-ahead

/** Greedy quantifiers (a lazy one would prefer fewer words: the rewrite keeps greedy order). */
const GREEDY = /^(?:[*+?]|\{\d+\}|\{\d*,\d*\})$/;

function rewriteWordLookaheads(branches: Seq[], trail: Trail): void {
  for (const seq of branches) {
    for (let i = 0; i < seq.length; i++) {
      const item = seq[i] as Item;
      const guarded = guardedWords(item);
      if (guarded !== null && i + 1 < seq.length && isPlusOf(seq[i + 1] as Item, '\\w')) {
        const after: Trail = [{ seq, index: i + 1 }, ...trail];
        const follows = followingText(after, 1);
        // At the end of the pattern (a search: any text may follow), a word must end at a `\b`.
        const bounded = follows === null && after.every(({ seq: s, index }) => index === s.length - 1);
        if (bounded || (follows !== null && (follows === '$' || isAsciiNonWord(follows[0] as string)))) {
          const word = otherWord(guarded.word) + (bounded ? '\\b' : '');
          seq.splice(i, 2, seq[i + 1] as Item, {
            kind: 'quantified',
            item: {
              kind: 'group',
              open: '(?:',
              close: ')',
              body: [[guarded.separator, { kind: 'atom', text: word }]],
            },
            quantifier: guarded.quantifier,
          });
          continue;
        }
      }
      // Rule 8: a look-ahead for the text that follows anyway.
      const ahead = aheadText(item);
      if (
        ahead !== null &&
        followingText([{ seq, index: i }, ...trail], ahead.length)?.startsWith(ahead) === true
      ) {
        seq.splice(i, 1);
        i--;
        continue;
      }
      const refusedWords = refusedWord(seq, i, trail);
      if (refusedWords !== null) {
        // The look-ahead goes; each `\w+` it guarded becomes the words other than the refused one.
        for (const { holder, index } of refusedWords.targets)
          holder[index] = { kind: 'atom', text: refusedWords.replacement };
        seq.splice(i, 1);
        i--;
        continue;
      }
      const start = refusedStart(seq, i, trail);
      if (start !== null) {
        start.holder[start.index] = start.replacement;
        seq.splice(i, 1);
        i--;
        continue;
      }
      const refused = refusedRun(seq, i, trail);
      if (refused !== null) {
        // The look-ahead goes; the run it guarded (maybe inside a tag's group) takes its place.
        refused.holder[refused.index] = { kind: 'atom', text: otherRun(refused.run) };
        seq.splice(i, 1);
        i--;
        continue;
      }
      if (item.kind === 'quantified') {
        // Inside a repetition what follows the body is not known (another round, or the rest).
        const group = item.item;
        if (group.kind === 'group' && isPlainGroup(group)) {
          dropAheadAtRoundEnd(group, [{ seq, index: i }, ...trail]);
          rewriteWordLookaheads(group.body, REPEATED);
        }
        continue;
      }
      if (item.kind !== 'group' || !isPlainGroup(item)) continue;
      rewriteWordLookaheads(item.body, [{ seq, index: i }, ...trail]);
    }
  }
}

/** `L` of a positive look-ahead `(?=L)` of plain characters; otherwise null. */
function aheadText(item: Item): string | null {
  return item.kind === 'group' && item.open === '(?=' ? lookaheadText({ ...item, open: '(?!' }) : null;
}

/**
 * Rule 8 at the end of a repeated group's rounds (exim's `(?:"+[^"]*(?="))*?"`): `(?=L)` ending a
 * round is dropped when every way on starts with `L`: each alternative of the group (another round)
 * and the text after the repetition (`after`: the trail of the quantified item).
 */
function dropAheadAtRoundEnd(group: Group, after: Trail): void {
  const ends = group.body.map((branch) => branch[branch.length - 1]);
  const ahead = ends[0] === undefined ? null : aheadText(ends[0]);
  if (ahead === null || ends.some((end) => end === undefined || aheadText(end) !== ahead)) return;
  const rounds = group.body.every((branch) =>
    leadingText(branch.slice(0, -1), ahead.length).startsWith(ahead),
  );
  if (!rounds || followingText(after, ahead.length)?.startsWith(ahead) !== true) return;
  for (const branch of group.body) branch.pop();
}

/** The literal text a sequence certainly starts with (up to `limit` characters; `c+` gives `c`). */
function leadingText(seq: Seq, limit: number): string {
  let text = '';
  for (const item of seq) {
    if (text.length >= limit) break;
    if (item.kind === 'atom') {
      const char = literalChar(item.text);
      if (char === null) break;
      text += char;
    } else {
      const char =
        item.kind === 'quantified' && item.quantifier.startsWith('+') && item.item.kind === 'atom'
          ? literalChar(item.item.text)
          : null;
      if (char !== null) text += char;
      break;
    }
  }
  return text;
}

/** A group that only groups or captures (not a look-around, back-reference or conditional). */
function isPlainGroup(group: Group): boolean {
  return !isLookaround(group.open) && !group.open.startsWith('(?P=') && !group.open.startsWith('(?(');
}

/**
 * The trail of a repeated group's body: past its end nothing is known (an item that no rule reads
 * as text, and the pattern does not end there).
 */
const UNKNOWN: Atom = { kind: 'atom', text: '.' };
const REPEATED: Trail = [{ seq: [UNKNOWN, UNKNOWN], index: 0 }];

/** `(?:\w+ (?!L\b))` under a greedy quantifier, the blank one non-word character: its parts. */
function guardedWords(item: Item): { separator: Atom; word: string; quantifier: string } | null {
  if (item.kind !== 'quantified' || !GREEDY.test(item.quantifier)) return null;
  const group = item.item;
  if (group.kind !== 'group' || group.open !== '(?:' || group.body.length !== 1) return null;
  const body = group.body[0] as Seq;
  const [run, separator, look] = body;
  if (body.length !== 3 || run === undefined || !isPlusOf(run, '\\w') || separator?.kind !== 'atom')
    return null;
  const blank = literalChar(separator.text);
  if (blank === null || !isAsciiNonWord(blank) || blank === '\n') return null;
  if (look?.kind !== 'group' || look.open !== '(?!' || look.body.length !== 1) return null;
  const parts = look.body[0] as Seq;
  const last = parts[parts.length - 1];
  if (last?.kind !== 'atom' || last.text !== '\\b') return null;
  let word = '';
  for (const part of parts.slice(0, -1)) {
    if (part.kind !== 'atom' || !/^[A-Za-z0-9]$/.test(part.text)) return null;
    word += part.text;
  }
  return word === '' ? null : { separator, word, quantifier: item.quantifier };
}

/**
 * At `seq[i]`, `(?!W )` followed by `\S+` (alone or as the only thing in a plain or tag group)
 * and then by the blank that ends the look-ahead: `W`, and where the `\S+` is.
 */
function refusedRun(seq: Seq, i: number, trail: Trail): { run: string; holder: Seq; index: number } | null {
  const text = lookaheadText(seq[i] as Item);
  if (text === null) return null;
  const blank = text[text.length - 1];
  const run = text.slice(0, -1);
  if (blank !== ' ' || run === '' || /\s/.test(run)) return null;
  const guarded = guardedItem(seq, i, trail, true);
  if (guarded === null || !isPlusOf(guarded.holder[guarded.index] as Item, '\\S')) return null;
  return followingText(guarded.after, 1) === blank
    ? { run, holder: guarded.holder, index: guarded.index }
    : null;
}

/**
 * At `seq[i]`, rule 7's `(?!Wc)` (W ASCII letters and digits, c one ASCII non-word character)
 * before `\w+` followed by c (alone or in a tag's group), or before a plain group each of whose
 * alternatives starts so or with literal text the look-ahead cannot refuse (it differs from `Wc`
 * within both): where the `\w+`s are, and the words they become; null otherwise.
 */
function refusedWord(
  seq: Seq,
  i: number,
  trail: Trail,
): { targets: { holder: Seq; index: number }[]; replacement: string } | null {
  const text = lookaheadText(seq[i] as Item);
  if (text === null || text.length < 2) return null;
  const c = text[text.length - 1] as string;
  const word = text.slice(0, -1);
  if (!isAsciiNonWord(c) || c === '\n' || c === '$' || !/^[A-Za-z0-9]+$/.test(word)) return null;
  const targets: { holder: Seq; index: number }[] = [];
  const next = seq[i + 1];
  if (next?.kind === 'group' && next.open === '(?:') {
    const after: Trail = [{ seq, index: i + 1 }, ...trail];
    for (const branch of next.body) {
      const first = branch[0];
      if (first !== undefined && isPlusOf(first, '\\w')) {
        if (followingText([{ seq: branch, index: 0 }, ...after], 1) !== c) return null;
        targets.push({ holder: branch, index: 0 });
        continue;
      }
      let prefix = '';
      for (const part of branch) {
        const char = part.kind === 'atom' ? literalChar(part.text) : null;
        if (char === null || prefix.length === text.length) break;
        prefix += char;
      }
      let differs = false;
      for (let k = 0; k < prefix.length && !differs; k++) differs = prefix[k] !== text[k];
      if (!differs) return null;
    }
  } else {
    const guarded = guardedItem(seq, i, trail, false);
    if (guarded === null || !isPlusOf(guarded.holder[guarded.index] as Item, '\\w')) return null;
    if (followingText(guarded.after, 1) !== c) return null;
    targets.push({ holder: guarded.holder, index: guarded.index });
  }
  return targets.length === 0 ? null : { targets, replacement: otherWord(word) };
}

/**
 * At `seq[i]`, a look-ahead rule 5 or 6 writes out: where the guarded item is (alone, or as the
 * only thing in a plain or tag group) and what replaces it; null otherwise.
 */
function refusedStart(
  seq: Seq,
  i: number,
  trail: Trail,
): { holder: Seq; index: number; replacement: Item } | null {
  const texts = lookaheadTexts(seq[i] as Item);
  if (texts === null) return null;
  // Rule 5: `\S+`, `\S*`, `.+`, `.*` or a class's run (maybe alone in a group), then literal text.
  const run = guardedItem(seq, i, trail, true);
  const item = run === null ? undefined : run.holder[run.index];
  const chars = item?.kind === 'quantified' && item.item.kind === 'atom' ? runChars(item.item.text) : null;
  if (run !== null && item?.kind === 'quantified' && chars !== null) {
    const quantifier = item.quantifier;
    // Every refused text is a run's start (a character the run cannot take would end it first).
    if ((quantifier !== '+' && quantifier !== '*') || !texts.every((t) => [...t].every(chars.has)))
      return null;
    // A run exactly a text's first k characters is refused only when the text after it goes on
    // with the rest of it; when that is not known, nothing is written out.
    const follows = followingText(run.after, Math.max(...texts.map((t) => t.length)));
    if (follows === null || follows === '$') return null;
    const refused = new Set<string>();
    for (const text of texts) {
      for (let k = quantifier === '+' ? 1 : 0; k < text.length; k++) {
        const rest = text.slice(k);
        if (follows.startsWith(rest)) refused.add(text.slice(0, k));
        else if (rest.startsWith(follows)) return null;
      }
    }
    const replacement = notStartingRun(texts, chars, quantifier === '*', refused);
    // No run at all is left: the pattern stays as it was (and is refused).
    if (replacement === null) return null;
    return { holder: run.holder, index: run.index, replacement: { kind: 'atom', text: replacement } };
  }
  if (texts.length !== 1) return null;
  const text = texts[0] as string;
  if (/\s/.test(text)) return null;
  // A plain group after the look-ahead is rule 6's target itself, not a wrapper.
  const guarded = guardedItem(seq, i, trail, false);
  if (guarded === null) return null;
  const { holder, index } = guarded;
  const target = holder[index] as Item;
  const follows = followingText(guarded.after, 1);
  if (follows === null || follows === '$') return null;
  const c = follows[0] as string;
  // Rule 6: one character refused, before `(?:A|B|...)` of repeated `\S` or `.`.
  if (text.length !== 1 || c === text || target.kind !== 'group' || target.open !== '(?:') return null;
  const alternatives: Seq[] = [];
  for (const branch of target.body) {
    const only = branch[0];
    if (branch.length !== 1 || only?.kind !== 'quantified' || only.item.kind !== 'atom') return null;
    const first =
      only.item.text === '\\S'
        ? `[^\\s${escapeChar(text)}]`
        : only.item.text === '.'
          ? `[^\\n${escapeChar(text)}]`
          : null;
    if (first === null || !['*', '*?', '+', '+?'].includes(only.quantifier)) return null;
    const rest = `${only.item.text}*${only.quantifier.endsWith('?') ? '?' : ''}`;
    const nonEmpty = `${first}${rest}`;
    const text2 =
      only.quantifier === '*'
        ? `(?:${nonEmpty}|)`
        : only.quantifier === '*?'
          ? `(?:|${nonEmpty})`
          : `(?:${nonEmpty})`;
    alternatives.push([{ kind: 'atom', text: text2 }]);
  }
  return { holder, index, replacement: { kind: 'group', open: '(?:', close: ')', body: alternatives } };
}

/**
 * The characters of a run's atom rule 5 writes out: `\S`, `.`, `\w` or a class of `\w` and single
 * characters (`[\w-]`), as a membership test and, for a set of characters to leave out, the
 * Python regex of the others. Null for any other atom.
 */
interface RunChars {
  readonly atom: string;
  has(c: string): boolean;
  /** Null when no character is left. */
  other(excluded: readonly string[]): string | null;
}

function runChars(atom: string): RunChars | null {
  const asciiWord = (c: string) => /^[A-Za-z0-9_]$/.test(c);
  const list = (excluded: readonly string[]) => excluded.map(escapeChar).join('');
  if (atom === '\\S' || atom === '.') {
    const not = atom === '.' ? '\\n' : '\\s';
    return {
      atom,
      has: (c) => (atom === '.' ? c !== '\n' : !/\s/.test(c)),
      other: (excluded) => `[^${not}${list(excluded)}]`,
    };
  }
  const inner = atom === '\\w' ? '\\w' : /^\[([^\]^][^\]]*)\]$/.exec(atom)?.[1];
  if (inner === undefined) return null;
  // `\w` and single characters (plain or escaped punctuation), nothing else (no ranges).
  const singles: string[] = [];
  let word = false;
  for (let k = 0; k < inner.length; k++) {
    const c = inner[k] as string;
    if (c === '\\') {
      const next = inner[k + 1];
      if (next === 'w') word = true;
      else if (next !== undefined && /[^A-Za-z0-9]/.test(next)) singles.push(next);
      else return null;
      k++;
    } else if (c === '-' && k > 0 && k < inner.length - 1) return null;
    else if (/[A-Za-z0-9_ \-:.,/@=+#!%&~]/.test(c)) singles.push(c);
    else return null;
  }
  // A literal the look-ahead refuses is compared as ASCII (Python's \w holds every letter).
  return {
    atom,
    has: (c) => (word && asciiWord(c)) || singles.includes(c),
    other: (excluded) => {
      const parts: string[] = [];
      if (word) parts.push(`[^\\W${list(excluded.filter(asciiWord))}]`);
      for (const c of singles)
        if (!excluded.includes(c) && !(word && asciiWord(c))) parts.push(escapeChar(c));
      if (parts.length === 0) return null;
      return parts.length === 1 ? (parts[0] as string) : `(?:${parts.join('|')})`;
    },
  };
}

/**
 * Runs of `chars` that start with none of `texts` and are none of the texts' starts in `refused`
 * (the empty run only when `empty`), longer ones first: the greedy order. At each character the
 * run either leaves every text (another character, then anything), follows one, or ends.
 */
function notStartingRun(
  texts: readonly string[],
  chars: RunChars,
  empty: boolean,
  refused: ReadonlySet<string>,
): string | null {
  // Null: no run goes on from `prefix` (every character and the end refused).
  const level = (prefix: string): string | null => {
    const next = new Set<string>();
    for (const text of texts)
      if (text.length > prefix.length && text.startsWith(prefix)) next.add(text[prefix.length] as string);
    const parts: string[] = [];
    const leave = chars.other([...next]);
    if (leave !== null) parts.push(`${leave}${chars.atom}*`);
    for (const c of next) {
      // A text ending here is refused with everything after it: no way on.
      const deeper = texts.includes(prefix + c) ? null : level(prefix + c);
      if (deeper !== null) parts.push(`${escapeChar(c)}${deeper}`);
    }
    if ((prefix !== '' || empty) && !refused.has(prefix)) parts.push('');
    return parts.length === 0 ? null : `(?:${parts.join('|')})`;
  };
  return level('');
}

/** Runs of non-blanks (Python's `\S`) other than `text`. */
function otherRun(text: string): string {
  const head = escapeChar(text[0] as string);
  const rest = text.slice(1);
  const tail = (t: string): string => {
    if (t === '') return '\\S+';
    const h = escapeChar(t[0] as string);
    return `(?:|[^\\s${h}]\\S*|${h}${tail(t.slice(1))})`;
  };
  return `(?:[^\\s${head}]\\S*|${head}${tail(rest)})`;
}

/** `X+`, X the atom `atom` (`\w`, `\S`). */
function isPlusOf(item: Item, atom: string): boolean {
  return (
    item.kind === 'quantified' &&
    item.quantifier === '+' &&
    item.item.kind === 'atom' &&
    item.item.text === atom
  );
}

/** An ASCII character `\w` does not match (Python's `\w` holds every Unicode letter and digit). */
function isAsciiNonWord(c: string): boolean {
  return c.charCodeAt(0) < 128 && !/[A-Za-z0-9_]/.test(c);
}

/** Runs of word characters other than `word` (its ASCII letters and digits), as Python text. */
function otherWord(word: string): string {
  const head = word[0] as string;
  return `(?:[^\\W${head}]\\w*|${head}${otherThanRest(word.slice(1))})`;
}

/** Runs of word characters, maybe empty, other than `text`. */
function otherThanRest(text: string): string {
  if (text === '') return '\\w+';
  const head = text[0] as string;
  return `(?:|[^\\W${head}]\\w*|${head}${otherThanRest(text.slice(1))})`;
}

/** The character an atom stands for when it is a literal one, else null. */
function literalChar(text: string): string | null {
  if (text.length === 1 && !'.^$[]{}()*+?|\\'.includes(text)) return text;
  if (/^\\[^A-Za-z0-9]$/.test(text)) return text[1] as string;
  return null;
}

/**
 * A Python regex (non-capturing) for the texts without a line end in which `literal` starts at no
 * character, `follows` being the text after them (`'$'`: the end of the line), or null when that
 * text does not start with `literal` (then the token's greedy and lazy forms take different texts)
 * or the literal is not of a shape handled here.
 *
 * With c the literal's first character, such a text is a run without c, then blocks of c and a run
 * without c; the literal can only start at a block's c. Two shapes of literal are handled (every
 * one fail2ban's filters use): c appears nowhere else in it (` from`: a block must not go on with
 * the rest, `from`), or only at its end too (` from `: a block must not be exactly `from` when
 * another c follows — another block, or the following text, which starts with the literal).
 */
function avoiding(literal: string, follows: string): string | null {
  if (follows !== '$' && !follows.startsWith(literal)) return null;
  const c = literal[0] as string;
  const rest = literal.slice(1);
  const run = `[^${escapeChar(c)}\\n]`;
  if (rest === '') return `(?:${run}*)`;
  const inside = rest.slice(0, -1);
  if (!rest.includes(c)) return `(?:${run}*(?:${escapeChar(c)}${notStartingWith(rest, c)})*)`;
  if (inside.includes(c) || rest[rest.length - 1] !== c) return null;
  // Every block but a last one before the end of the line must not be exactly `inside`.
  const blocks = `${run}*(?:${escapeChar(c)}${notExactly(inside, c)})*`;
  return follows === '$' ? `(?:${blocks}(?:${escapeChar(c)}${run}*)?)` : `(?:${blocks})`;
}

/** Runs without `c` (nor a line end) that do not start with `text` (which holds no `c`). */
function notStartingWith(text: string, c: string): string {
  const head = text[0] as string;
  const tail = text.slice(1);
  const other = `[^${escapeChar(head)}${escapeChar(c)}\\n][^${escapeChar(c)}\\n]*`;
  return tail === '' ? `(?:|${other})` : `(?:|${other}|${escapeChar(head)}${notStartingWith(tail, c)})`;
}

/** Runs without `c` (nor a line end) other than `text` itself (which holds no `c`). */
function notExactly(text: string, c: string): string {
  const run = `[^${escapeChar(c)}\\n]`;
  if (text === '') return `${run}+`;
  const head = text[0] as string;
  const other = `[^${escapeChar(head)}${escapeChar(c)}\\n]${run}*`;
  return `(?:|${other}|${escapeChar(head)}${notExactly(text.slice(1), c)})`;
}

/** A character as Python regex text, the same in a class and out of one. */
function escapeChar(c: string): string {
  return /[A-Za-z0-9 ]/.test(c) ? c : `\\${c}`;
}
