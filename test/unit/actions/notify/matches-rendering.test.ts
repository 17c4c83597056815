import { describe, expect, it } from 'vitest';
import { renderMail } from '../../../../src/actions/email/render.js';
import { linesWithin } from '../../../../src/actions/notify/lines.js';
import { notificationOf, shownMatches, withoutMatches } from '../../../../src/actions/notify/message.js';
import { smsText } from '../../../../src/actions/sms/sms-action.js';
import { discordBody, genericBody, slackBody, teamsBody } from '../../../../src/actions/webhook/formats.js';
import type { Decision } from '../../../../src/core/types.js';

/** Everything an attacker can put in a log line at once. */
const HOSTILE =
  'sshd[1]: Invalid user <script>alert(1)</script> <!channel> <@U123> @everyone @here $(id) `id` ``` [x](http://evil.example) **b** &amp; from 203.0.113.9\nFAKE: banned 198.51.100.1';

const ban = (extra: Partial<Decision> = {}): Decision => ({
  target: '203.0.113.9',
  jail: 'sshd',
  reason: '3 failures within 10m',
  startedAt: Date.parse('2026-01-01T00:00:00Z'),
  expiresAt: Date.parse('2026-01-01T01:00:00Z'),
  banCount: 1,
  dryRun: false,
  origin: 'host:1',
  ...extra,
});

const note = (decisions: Decision[], event: 'ban' | 'unban' = 'ban') =>
  notificationOf(event, decisions, { firstAtMs: 0, madeAtMs: 0 }, 'test-host', 100);

const matches = ['Jan  1 00:00:01 gate sshd[1]: Failed password for root from 203.0.113.9', HOSTILE];

describe('matches in messages', () => {
  it('shows the newest matches, each one line, cut', () => {
    const many = Array.from({ length: 10 }, (_, i) => `line ${i} ${'x'.repeat(400)}`);
    const shown = shownMatches(ban({ matches: many }), 5, 300);
    expect(shown.more).toBe(5);
    expect(shown.lines).toHaveLength(5);
    expect(shown.lines[0]?.startsWith('line 5 ')).toBe(true);
    expect(shown.lines.every((l) => l.length === 300 && l.endsWith('…'))).toBe(true);
    expect(shownMatches(ban({ matches: [HOSTILE] }), 5, 1000).lines[0]).not.toContain('\n');
    expect(shownMatches(ban(), 5, 300)).toEqual({ lines: [], more: 0 });
    expect(withoutMatches(ban({ matches }))).not.toHaveProperty('matches');
  });

  it('mail: text and HTML list the matched lines, the HTML escaped, no line forged by a newline', () => {
    const mail = renderMail('portcullis: <summary>', note([ban({ matches })]));
    expect(mail.text).toContain('matched (2):');
    expect(mail.text).toContain(
      '  > Jan  1 00:00:01 gate sshd[1]: Failed password for root from 203.0.113.9',
    );
    // The newline inside the match is shown as `\n`: the fake line stays inside its match.
    expect(mail.text).toContain('from 203.0.113.9\\nFAKE: banned 198.51.100.1');
    expect(mail.text.split('\n').some((line) => line.startsWith('FAKE'))).toBe(false);
    expect(mail.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(mail.html).toContain('&amp;amp;');
    expect(mail.html).not.toMatch(/<script|<!channel>|<@U123>/);
    expect(mail.html).toContain('<pre>');
    expect(mail.subject).not.toContain('script');
  });

  it('mail digest: the newest 5 matches under each listed ban', () => {
    const many = Array.from({ length: 8 }, (_, i) => `try ${i} <b>`);
    const mail = renderMail('<summary>', note([ban({ matches: many }), ban({ target: '203.0.113.10' })]));
    expect(mail.text).toContain('  > (3 earlier not shown)');
    expect(mail.text).toContain('  > try 7 <b>');
    expect(mail.text).not.toContain('try 2 <b>');
    expect(mail.html).toContain('try 7 &lt;b&gt;');
    expect(mail.html).not.toContain('<b>');
    // An unban carries no evidence.
    expect(renderMail('<summary>', note([ban({ matches: many })], 'unban')).text).not.toContain('try 7');
  });

  it('slack: escapes <, > and &, so no mention, broadcast or link survives, and the code block stays closed', () => {
    const body = slackBody(note([ban({ matches })]));
    const text = JSON.stringify(body);
    expect(text).not.toMatch(/<!channel>|<@U123>|<script>|<http/);
    const block = (body.blocks as { text: { text: string } }[])[1]?.text.text as string;
    expect(block).toContain('&lt;!channel&gt; &lt;@U123&gt;');
    expect(block).toContain('&amp;amp;');
    // One fence opens, one closes: the line's own ``` cannot end the block early.
    expect(block.match(/```/g)).toHaveLength(2);
    expect(block.startsWith('```') && block.endsWith('```')).toBe(true);
  });

  it('discord: pings nobody and keeps the list in one code block', () => {
    const body = discordBody(note([ban({ matches })]));
    expect(body.allowed_mentions).toEqual({ parse: [] });
    const description = (body.embeds as { description: string }[])[0]?.description as string;
    expect(description).not.toMatch(/@everyone|@here/);
    expect(description).toContain('@\u200beveryone');
    expect(description.match(/```/g)).toHaveLength(2);
    expect(description.length).toBeLessThanOrEqual(4096);
  });

  it('teams: the list is a TextRun (never markdown), matches included', () => {
    const body = teamsBody(note([ban({ matches })])) as {
      attachments: { content: { body: { type: string; inlines: { type: string; text: string }[] }[] } }[];
    };
    const blocks = body.attachments[0]?.content.body ?? [];
    expect(
      blocks.every((b) => b.type === 'RichTextBlock' && b.inlines.every((i) => i.type === 'TextRun')),
    ).toBe(true);
    expect(blocks[1]?.inlines[0]?.text).toContain('[x](http://evil.example)');
  });

  it('generic: the newest 5 matches per decision, 300 characters at most each', () => {
    const many = [...Array.from({ length: 9 }, (_, i) => `m${i}`), 'y'.repeat(5000)];
    const body = genericBody(note([ban({ matches: many }), ban({ target: '203.0.113.10' })]));
    const [first, second] = body.decisions as { matches: string[]; matchesOmitted: number }[];
    expect(first?.matches).toEqual(['m5', 'm6', 'm7', 'm8', `${'y'.repeat(299)}…`]);
    expect(first?.matchesOmitted).toBe(5);
    expect(second?.matches).toEqual([]);
  });

  it('chat lists stay within their block budget with matches', () => {
    const decisions = Array.from({ length: 50 }, (_, i) =>
      ban({ target: `203.0.113.${i}`, matches: Array.from({ length: 10 }, () => 'z'.repeat(1024)) }),
    );
    const lines = linesWithin(note(decisions), 2900);
    expect(lines.length).toBeLessThanOrEqual(2900);
    expect(lines).toMatch(/and \d+ more$/);
  });

  it('sms: stays one short line, without the matched text', () => {
    const text = smsText(note([ban({ matches })]));
    expect(text).toBe('portcullis: banned 203.0.113.9 (sshd, 3 failures) for 1h');
  });
});
