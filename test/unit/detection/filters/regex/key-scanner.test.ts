import { describe, expect, it } from 'vitest';
import { KeyScanner } from '../../../../../src/detection/filters/regex/line-prefilter.js';
import { cutText, type DateCut } from '../../../../../src/sources/log/dates.js';

/**
 * The key scanner says which regexes can match a line from their key literals; it must name
 * exactly the regexes one of whose keys the line holds — on short lines (one search) and on long
 * ones (searched only around their blanks when every key has one).
 */

function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state;
  };
}

/** What a scanner must answer: every owner with a key literal somewhere in the text. */
function naive(keys: readonly (readonly string[] | null)[], text: string): number[] {
  return keys.flatMap((key, i) => (key === null || key.some((literal) => text.includes(literal)) ? [i] : []));
}

describe('KeyScanner', () => {
  const spaced = [
    ['Failed password for ', 'Failed none for '],
    ['Failed '],
    ['Invalid user '],
    [' not allowed because '],
    ['Connection closed by ', 'Connection reset by '],
    ['ab c'],
    [' x'],
    // The longest keys, with their only blank at one end: the window around a blank must reach
    // a whole key's length either way.
    [' LongKeyWithItsBlankFirst0123456789abcdef', 'LongKeyWithItsBlankLast0123456789abcdefg '],
  ];

  it('names exactly the regexes whose keys a text holds, short or long, keys at any place', () => {
    const next = random(11);
    const alphabet = 'abcxyzFICLW0123456789+/=:.-'.split('');
    for (const keys of [spaced, [...spaced, ['nospace']], [...spaced, null]]) {
      const scanner = new KeyScanner(keys);
      const literals = keys.flatMap((key) => key ?? []);
      for (let round = 0; round < 3000; round++) {
        // Mostly blobs without blanks (what makes a line long), a few blanks, keys planted anywhere:
        // at the start, the end, across where the windows around blanks would meet.
        const length = next() % 4 === 0 ? 20 + (next() % 200) : 500 + (next() % 4000);
        const chars: string[] = [];
        // Free text has a blank every few characters, a blob hardly any.
        const blankEvery = round % 3 === 0 ? 5 : 97;
        for (let i = 0; i < length; i++)
          chars.push(next() % blankEvery === 0 ? ' ' : (alphabet[next() % alphabet.length] as string));
        let text = chars.join('');
        for (let k = next() % 4; k > 0; k--) {
          const at = next() % (text.length + 1);
          text = text.slice(0, at) + (literals[next() % literals.length] as string) + text.slice(at);
        }
        expect(scanner.candidates(text, []), JSON.stringify(text.slice(0, 120))).toEqual(naive(keys, text));
      }
    }
  });

  it('finds a key that straddles the text between two far-apart blanks', () => {
    const scanner = new KeyScanner(spaced);
    const blob = 'q'.repeat(2000);
    expect(scanner.candidates(`${blob} x${blob}`, [])).toEqual([6]);
    expect(scanner.candidates(`${blob}Invalid user ${blob}`, [])).toEqual([2]);
    expect(scanner.candidates(`${blob}Invalid${blob}`, [])).toEqual([]);
    // Free text: blanks every few characters, a key far past where searching blank by blank stops.
    const words = 'ab cd '.repeat(400);
    expect(scanner.candidates(`${words}Invalid user ${words}Failed none for `, [])).toEqual([0, 1, 2, 5]);
    expect(scanner.candidates(`${blob}Failed none for${blob} x`, [])).toEqual([1, 6]);
    expect(scanner.candidates(`${blob} LongKeyWithItsBlankFirst0123456789abcdef${blob}`, [])).toEqual([7]);
    expect(scanner.candidates(`${blob}LongKeyWithItsBlankLast0123456789abcdefg ${blob}`, [])).toEqual([7]);
  });

  it('finds the keys of a line with its date cut out without making that text: keys created at the join too', () => {
    // Keys with blanks and without, one of a single blank, keys that start or end with the
    // characters around a cut.
    const keys = [[' 404 '], ['- "GET'], ['"GET /wp'], ['][x'], ['ab'], [' '], ['zz"'], null];
    for (const withNull of [false, true]) {
      const owners = withNull ? keys : keys.slice(0, -1);
      const scanner = new KeyScanner(owners);
      const next = random(23);
      // The generator's low bits repeat with a short period: take high ones.
      const pick = (n: number) => (next() >>> 12) % n;
      const alphabet = ' -"GET/wp404[]xabz'.split('');
      for (let round = 0; round < 20000; round++) {
        const length = 1 + pick(40);
        const chars: string[] = [];
        for (let i = 0; i < length; i++) chars.push(alphabet[pick(alphabet.length)] as string);
        const line = chars.join('');
        const a = pick(length + 1);
        const b = a + pick(length + 1 - a);
        const cut: DateCut = { before: a, sep: pick(2) === 0 ? '' : ' ', after: b };
        if (cut.before === 0 || cut.after >= line.length) cut.sep = '';
        const text = cutText(line, cut);
        const found = scanner.candidatesOfCut(line, cut, []);
        const where = JSON.stringify({ line, cut, text });
        // Every regex whose key the text holds is named (more is allowed: a key only in the date).
        for (const owner of naive(owners, text)) expect(found, where).toContain(owner);
        // ... and nothing that neither the line nor the text holds.
        const either = new Set([...naive(owners, text), ...naive(owners, line)]);
        for (const owner of found) expect(either.has(owner), where).toBe(true);
        expect(
          [...found].sort((x, y) => x - y),
          where,
        ).toEqual(found);
      }
    }
  });

  it('names the keys an access log line holds only once its date is cut out', () => {
    const scanner = new KeyScanner([['- "GET /'], [' 404 ']]);
    const line = '192.0.2.1 - [03/Oct/2026:06:00:00 +0000] "GET / HTTP/1.1" 200 5';
    const cut: DateCut = { before: line.indexOf(' ['), sep: ' ', after: line.indexOf('"') };
    expect(cutText(line, cut)).toBe('192.0.2.1 - "GET / HTTP/1.1" 200 5');
    expect(scanner.candidates(line, [])).toEqual([]);
    expect(scanner.candidatesOfCut(line, cut, [])).toEqual([0]);
    expect(scanner.candidatesOfCut(line, { before: 0, sep: '', after: line.indexOf('"') }, [])).toEqual([]);
  });
});
