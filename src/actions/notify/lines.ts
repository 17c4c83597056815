import { CHAT_MATCHES, decisionLine, type Notification, shownMatches } from './message.js';

/**
 * The decisions as text lines, as many as `maxListed` and `maxChars` allow, then `and N more`:
 * chat APIs cap a block's length (Slack 3,000, Discord 4,096 characters). Under each ban, its
 * newest matches ({@link CHAT_MATCHES}), as `  > line`, while they fit. `format` escapes each
 * line for the target markup (its output is what is counted).
 */
export function linesWithin(
  notification: Notification,
  maxChars: number,
  format = (line: string) => line,
): string {
  const out: string[] = [];
  let used = 0;
  let listed = 0;
  const total = notification.decisions.length;
  const reserve = 40; // room for "and N more"
  const fits = (line: string) => used + line.length + 1 <= maxChars - reserve;
  for (const decision of notification.decisions) {
    if (listed >= notification.maxListed) break;
    const line = format(decisionLine(decision, notification.event));
    if (!fits(line)) break;
    out.push(line);
    used += line.length + 1;
    listed++;
    if (notification.event !== 'ban') continue;
    const { lines, more } = shownMatches(decision, CHAT_MATCHES.count, CHAT_MATCHES.chars);
    if (more > 0) lines.unshift(`(${more} earlier ${more === 1 ? 'match' : 'matches'} not shown)`);
    for (const match of lines) {
      const shown = format(`  > ${match}`);
      if (!fits(shown)) break;
      out.push(shown);
      used += shown.length + 1;
    }
  }
  if (listed < total) out.push(`and ${total - listed} more`);
  return out.join('\n');
}
