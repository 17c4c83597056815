import { linesWithin } from '../notify/lines.js';
import {
  CHAT_MATCHES,
  clip,
  decisionJson,
  listed,
  type Notification,
  shownMatches,
  summaryOf,
} from '../notify/message.js';
import type { WebhookFormat } from './options.js';

/**
 * JSON bodies per format: pure functions of the notification. What a message lists comes partly
 * from the attacker (a user name in a reason, the matched log lines and requests), so each format
 * neutralises its own markup: no mention, link or code-block escape can be smuggled in.
 */

const title = (notification: Notification) =>
  `portcullis on ${notification.instance}: ${summaryOf(notification)}`;

/** Backticks never run three in a row, so a line cannot close a code block. */
const unfence = (text: string) => text.replace(/`/g, '`\u200b');

/**
 * Slack's markup: `&`, `<` and `>` are escaped as Slack asks, which disarms `<!channel>`,
 * `<@U123>` and `<http://…|links>`; in a code block, also its fence.
 */
export const slackText = (text: string): string =>
  text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));

/** Discord: `@everyone`, `@here` and `<@…>`/`<#…>` mentions are broken by a zero-width space. */
export const discordText = (text: string): string => text.replace(/@/g, '@\u200b');

/** Slack incoming webhook: `{ text, blocks }` (`text` is the notification's fallback). */
export function slackBody(notification: Notification): Record<string, unknown> {
  const heading = slackText(title(notification));
  // Escaping lengthens a line: the block's budget is counted after it.
  const lines = linesWithin(notification, 2900, (line) => unfence(slackText(line)));
  return {
    text: clip(heading, 3000),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: clip(`*${heading}*`, 3000) } },
      { type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${lines}\`\`\`` } },
    ],
  };
}

/** Discord webhook: `{ content, embeds, allowed_mentions }`; the list in a code block. */
export function discordBody(notification: Notification): Record<string, unknown> {
  const lines = linesWithin(notification, 4000, (line) => unfence(discordText(line)));
  return {
    content: clip(discordText(title(notification)), 2000),
    // Nothing in a message pings anyone, whatever it contains.
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title: clip(discordText(summaryOf(notification)), 256),
        description: `\`\`\`\n${lines}\n\`\`\``,
        color: notification.event === 'ban' ? 0xc0392b : 0x27ae60,
        timestamp: new Date(notification.madeAtMs).toISOString(),
        footer: { text: clip(`portcullis on ${notification.instance}`, 2048) },
      },
    ],
  };
}

/**
 * Microsoft Teams (Workflows "post to a channel when a webhook request is received"): a minimal
 * Adaptive Card. The list is a `TextRun`, which Adaptive Cards never read as markdown, so a
 * `[link](…)` or `**` in a log line stays text.
 */
export function teamsBody(notification: Notification): Record<string, unknown> {
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            {
              type: 'RichTextBlock',
              inlines: [{ type: 'TextRun', text: title(notification), weight: 'Bolder' }],
            },
            {
              type: 'RichTextBlock',
              inlines: [{ type: 'TextRun', text: linesWithin(notification, 20_000), fontType: 'Monospace' }],
            },
          ],
        },
      },
    ],
  };
}

/**
 * For your own receiver: `{ event, summary, instance, total, jails, decisions, omitted }`; each
 * decision of a ban with its newest `matches` (5, of 300 characters at most; plain strings:
 * escaping them is the receiver's business) and `matchesOmitted`.
 */
export function genericBody(notification: Notification): Record<string, unknown> {
  const { shown, more } = listed(notification);
  return {
    event: notification.event,
    summary: summaryOf(notification),
    instance: notification.instance,
    total: notification.decisions.length,
    jails: notification.jails,
    decisions: shown.map((decision) => {
      const matches = shownMatches(decision, CHAT_MATCHES.count, CHAT_MATCHES.chars);
      return { ...decisionJson(decision), matches: matches.lines, matchesOmitted: matches.more };
    }),
    omitted: more,
  };
}

export const WEBHOOK_BODIES: Readonly<
  Record<WebhookFormat, (notification: Notification) => Record<string, unknown>>
> = { slack: slackBody, discord: discordBody, teams: teamsBody, generic: genericBody };
