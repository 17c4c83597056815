/**
 * A string equal to `text` that holds no reference to the string it was cut from.
 *
 * V8 makes a substring of 13 characters or more (a regex capture, `slice`) a view into its
 * parent. A log line is such a view into the 64 KiB block it was decoded from, and an address
 * captured from it is a view too: kept as a failure window's key, a session's id or a cache
 * entry, it kept the whole block alive — a live jail draining 500,000 lines from 200,000 clients
 * held every block it had read (tens of MB), and its young-generation collections copied them.
 * Whatever a filter hands on to be kept goes through here first.
 *
 * Shorter substrings are copies already. A longer one is joined to one character and sliced off
 * again: the join is flattened into a fresh string of `text.length + 1` characters, and the result
 * is a view into that small string only.
 */
export function detach(text: string): string {
  return text.length < 13 ? text : ` ${text}`.slice(1);
}
