import { describe, expect, it } from 'vitest';
import { KeyScanner } from '../../../../../src/detection/filters/regex/line-prefilter.js';

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
});
