import type { Decision } from '../../core/types.js';
import {
  banEnd,
  banLength,
  decisionLine,
  failuresOf,
  jailCounts,
  listed,
  type Notification,
  summaryOf,
} from '../notify/message.js';

/** The mail of a notification: subject, plain text and HTML. Pure. */
export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

/** Fills the subject template's tags: `<summary>`, `<count>`, `<jails>`, `<instance>`. */
export function subjectOf(template: string, notification: Notification): string {
  const values: Record<string, string> = {
    summary: summaryOf(notification),
    count: String(notification.decisions.length),
    jails: Object.keys(notification.jails).sort().join(', '),
    instance: notification.instance,
  };
  // Decisions' text is ours, but keep a header one line whatever it holds.
  return template
    .replace(/<(summary|count|jails|instance)>/g, (_m, tag: string) => values[tag] as string)
    .replace(/[\r\n]+/g, ' ');
}

/** Label/value rows describing one decision in detail. */
function rows(decision: Decision, event: 'ban' | 'unban'): [string, string][] {
  const out: [string, string][] = [
    ['address', decision.target],
    ['jail', decision.jail],
    [event === 'unban' ? 'ended' : 'reason', decision.reason],
  ];
  if (event === 'ban') {
    const failures = failuresOf(decision);
    if (failures !== null) out.push(['failures', String(failures)]);
    out.push([
      'ban',
      decision.expiresAt === null ? 'permanent' : `${banLength(decision)}, until ${banEnd(decision)}`,
    ]);
    out.push(['started', new Date(decision.startedAt).toISOString()]);
    if (decision.banCount > 1) out.push(['repeat', `ban #${decision.banCount} of this address`]);
    if (decision.dryRun) out.push(['dry run', 'recorded, not enforced']);
  }
  if (decision.origin !== '') out.push(['decided by', decision.origin]);
  return out;
}

export function renderMail(template: string, notification: Notification): RenderedMail {
  const summary = summaryOf(notification);
  const heading = `portcullis on ${notification.instance}: ${summary}`;
  const { shown, more } = listed(notification);
  const single = notification.decisions.length === 1;
  const footer = `instance ${notification.instance}`;

  let text: string;
  let body: string;
  if (single) {
    const detail = rows(notification.decisions[0] as Decision, notification.event);
    text = [heading, '', ...detail.map(([k, v]) => `${k.padEnd(11)} ${v}`), '', footer, ''].join('\n');
    body = `<table>${detail.map(([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
  } else {
    const lines = shown.map((d) => decisionLine(d, notification.event));
    if (more > 0) lines.push(`and ${more} more`);
    text = [heading, '', `by jail: ${jailCounts(notification)}`, '', ...lines, '', footer, ''].join('\n');
    const head = ['address', 'jail', notification.event === 'unban' ? 'ended' : 'reason', 'ban', 'until'];
    const cells = (d: Decision) =>
      notification.event === 'unban'
        ? [d.target, d.jail, d.reason, '', '']
        : [d.target, d.jail, d.reason, banLength(d), banEnd(d)];
    body = [
      `<p>By jail: ${escapeHtml(jailCounts(notification))}</p>`,
      '<table>',
      `<tr>${head.map((h) => `<th align="left">${h}</th>`).join('')}</tr>`,
      ...shown.map(
        (d) =>
          `<tr>${cells(d)
            .map((c) => `<td>${escapeHtml(c)}</td>`)
            .join('')}</tr>`,
      ),
      '</table>',
      more > 0 ? `<p>and ${more} more</p>` : '',
    ].join('');
  }
  const html = `<!doctype html><html><body><h3>${escapeHtml(heading)}</h3>${body}<p><small>${escapeHtml(footer)}</small></p></body></html>`;
  return { subject: subjectOf(template, notification), text, html };
}
