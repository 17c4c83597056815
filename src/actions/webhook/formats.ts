import { linesWithin } from '../notify/lines.js';
import { clip, decisionJson, listed, type Notification, summaryOf } from '../notify/message.js';
import type { WebhookFormat } from './options.js';

/** JSON bodies per format: pure functions of the notification. */

const title = (notification: Notification) =>
  `portcullis on ${notification.instance}: ${summaryOf(notification)}`;

/** Slack incoming webhook: `{ text, blocks }` (`text` is the notification's fallback). */
export function slackBody(notification: Notification): Record<string, unknown> {
  return {
    text: clip(title(notification), 3000),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: clip(`*${title(notification)}*`, 3000) } },
      { type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${linesWithin(notification, 2900)}\`\`\`` } },
    ],
  };
}

/** Discord webhook: `{ content, embeds }`. */
export function discordBody(notification: Notification): Record<string, unknown> {
  return {
    content: clip(title(notification), 2000),
    embeds: [
      {
        title: clip(summaryOf(notification), 256),
        description: clip(linesWithin(notification, 4000), 4096),
        color: notification.event === 'ban' ? 0xc0392b : 0x27ae60,
        timestamp: new Date(notification.madeAtMs).toISOString(),
        footer: { text: clip(`portcullis on ${notification.instance}`, 2048) },
      },
    ],
  };
}

/** Microsoft Teams (Workflows "post to a channel when a webhook request is received"): a minimal Adaptive Card. */
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
            { type: 'TextBlock', text: title(notification), weight: 'Bolder', wrap: true },
            { type: 'TextBlock', text: linesWithin(notification, 20_000), wrap: true, fontType: 'Monospace' },
          ],
        },
      },
    ],
  };
}

/** For your own receiver: `{ event, summary, instance, total, jails, decisions, omitted }`. */
export function genericBody(notification: Notification): Record<string, unknown> {
  const { shown, more } = listed(notification);
  return {
    event: notification.event,
    summary: summaryOf(notification),
    instance: notification.instance,
    total: notification.decisions.length,
    jails: notification.jails,
    decisions: shown.map(decisionJson),
    omitted: more,
  };
}

export const WEBHOOK_BODIES: Readonly<
  Record<WebhookFormat, (notification: Notification) => Record<string, unknown>>
> = { slack: slackBody, discord: discordBody, teams: teamsBody, generic: genericBody };
