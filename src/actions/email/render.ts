import type { Decision } from '../../core/types.js';
import {
  banEnd,
  banLength,
  decisionLine,
  failuresOf,
  jailCounts,
  listed,
  type Notification,
  shownMatches,
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

/** A mail about one ban shows all its matches (the guard keeps 10, of 1 KiB at most each). */
const SINGLE_MATCHES = { count: 100, chars: 1024 };
/** A digest shows the newest few of each listed ban, shorter. */
const DIGEST_MATCHES = { count: 5, chars: 500 };

/**
 * The matches of a ban as text lines (`  > line`, with a note of those left out) and as HTML (a
 * `<pre>`, every character of the attacker's text escaped). Empty for an unban or no matches.
 */
function matchesOf(
  decision: Decision,
  event: 'ban' | 'unban',
  limits: { count: number; chars: number },
): { text: string[]; html: string } {
  if (event !== 'ban') return { text: [], html: '' };
  const { lines, more } = shownMatches(decision, limits.count, limits.chars);
  if (lines.length === 0) return { text: [], html: '' };
  const note = more > 0 ? [`(${more} earlier not shown)`] : [];
  return {
    text: [...note, ...lines].map((line) => `  > ${line}`),
    html: `<pre>${[...note, ...lines].map(escapeHtml).join('\n')}</pre>`,
  };
}

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
    const decision = notification.decisions[0] as Decision;
    const detail = rows(decision, notification.event);
    const matches = matchesOf(decision, notification.event, SINGLE_MATCHES);
    const seen =
      matches.text.length === 0 ? [] : ['', `matched (${decision.matches?.length}):`, ...matches.text];
    text = [heading, '', ...detail.map(([k, v]) => `${k.padEnd(11)} ${v}`), ...seen, '', footer, ''].join(
      '\n',
    );
    body = `<table>${detail.map(([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
    if (matches.html !== '') body += `<p>Matched (${decision.matches?.length}):</p>${matches.html}`;
  } else {
    const lines = shown.flatMap((d) => [
      decisionLine(d, notification.event),
      ...matchesOf(d, notification.event, DIGEST_MATCHES).text,
    ]);
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
      ...shown.map((d) => {
        const row = `<tr>${cells(d)
          .map((c) => `<td>${escapeHtml(c)}</td>`)
          .join('')}</tr>`;
        const { html } = matchesOf(d, notification.event, DIGEST_MATCHES);
        return html === '' ? row : `${row}<tr><td></td><td colspan="${head.length - 1}">${html}</td></tr>`;
      }),
      '</table>',
      more > 0 ? `<p>and ${more} more</p>` : '',
    ].join('');
  }
  const html = `<!doctype html><html><body><h3>${escapeHtml(heading)}</h3>${body}<p><small>${escapeHtml(footer)}</small></p></body></html>`;
  return { subject: subjectOf(template, notification), text, html };
}
