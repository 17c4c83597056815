/**
 * RFC 5952 text of an IPv6 address from its 16 bytes (`2001:db8::1`): lowercase hex groups without
 * leading zeros, the longest run of two or more zero groups (the leftmost of equal ones) written
 * `::`. The same text as ipaddr.js's `toRFC5952String()`, without building its objects: this runs
 * once per counted failure of an IPv6 client (its `/64` key), where ipaddr.js costs microseconds.
 */
export function formatIPv6(bytes: Uint8Array): string {
  let bestStart = -1;
  let bestLength = 1;
  let runStart = -1;
  for (let group = 0; group < 8; group++) {
    if (bytes[2 * group] === 0 && bytes[2 * group + 1] === 0) {
      if (runStart < 0) runStart = group;
      if (group - runStart + 1 > bestLength) {
        bestLength = group - runStart + 1;
        bestStart = runStart;
      }
    } else {
      runStart = -1;
    }
  }
  let out = '';
  let colon = false;
  for (let group = 0; group < 8; group++) {
    if (group === bestStart) {
      out += '::';
      colon = false;
      group += bestLength - 1;
      continue;
    }
    if (colon) out += ':';
    out += (((bytes[2 * group] as number) << 8) | (bytes[2 * group + 1] as number)).toString(16);
    colon = true;
  }
  return out;
}

/**
 * True when `text` is already the RFC 5952 text of an IPv6 address that is not IPv4-mapped: what
 * `normalizeIp(text)` would give back unchanged, found in one pass without parsing to bytes and
 * formatting again (a log filter meets most IPv6 clients once; its host cache does not help them).
 * Anything else (uppercase, leading zeros, a zone, brackets, a dotted tail, a `::` that is not the
 * longest zero run) is `false`, and the caller takes the long way.
 */
export function isCanonicalIPv6(text: string): boolean {
  const length = text.length;
  if (length < 2 || length > 39) return false;
  let count = 0; // explicit groups
  let gap = -1; // explicit groups before the `::`
  let afterGap = false; // the group being read follows the `::`
  let zeroRun = 0; // the current run of explicit zero groups
  let longestBefore = 0; // the longest such run before the `::`
  let longestAfter = 0; // and after it
  let firstIsFfff = false;
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    gap = 0;
    afterGap = true;
    i = 2;
  }
  while (i < length) {
    const from = i;
    let zero = true;
    while (i < length) {
      const c = text.charCodeAt(i);
      if (c === 58) break;
      if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
      if (c !== 48) zero = false;
      i++;
    }
    const digits = i - from;
    // A group: 1 to 4 lowercase hex digits, no leading zero (`0` itself excepted).
    if (digits === 0 || digits > 4 || (digits > 1 && text.charCodeAt(from) === 48)) return false;
    if (count === 0 && gap === 0) firstIsFfff = digits === 4 && text.startsWith('ffff', from);
    if (zero) {
      // A zero group next to the `::` is part of its run: the text would compress them together.
      if (afterGap) return false;
      zeroRun++;
      if (gap === -1) longestBefore = Math.max(longestBefore, zeroRun);
      else longestAfter = Math.max(longestAfter, zeroRun);
    } else zeroRun = 0;
    afterGap = false;
    count++;
    if (i === length) break;
    // At a colon: one ends the group, two are the `::` (only one, not right after a zero group).
    if (text.charCodeAt(i + 1) === 58) {
      if (gap !== -1 || zeroRun > 0) return false;
      gap = count;
      afterGap = true;
      i += 2;
    } else {
      i++;
      if (i === length) return false;
    }
    if (count === 8) return false;
  }
  if (gap === -1) return count === 8 && longestBefore < 2;
  const gapLength = 8 - count;
  // `::` stands for two groups or more: the longest run of zero groups, the leftmost of equals.
  if (gapLength < 2 || longestBefore >= gapLength || longestAfter > gapLength) return false;
  // `::ffff:a:b` is an IPv4 address (normalised to its dotted quad).
  return !(gap === 0 && count === 3 && firstIsFfff);
}
