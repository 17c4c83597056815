import { decisionLine, type Notification } from './message.js';

/**
 * The decisions as text lines, as many as `maxListed` and `maxChars` allow, then `and N more`:
 * chat APIs cap a block's length (Slack 3,000, Discord 4,096 characters).
 */
export function linesWithin(
  notification: Notification,
  maxChars: number,
  format = (line: string) => line,
): string {
  const out: string[] = [];
  let used = 0;
  const total = notification.decisions.length;
  const reserve = 40; // room for "and N more"
  for (const decision of notification.decisions) {
    if (out.length >= notification.maxListed) break;
    const line = format(decisionLine(decision, notification.event));
    if (used + line.length + 1 > maxChars - reserve) break;
    out.push(line);
    used += line.length + 1;
  }
  if (out.length < total) out.push(`and ${total - out.length} more`);
  return out.join('\n');
}
