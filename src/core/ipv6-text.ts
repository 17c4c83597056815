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
