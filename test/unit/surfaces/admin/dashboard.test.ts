import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_CSP, DASHBOARD_HTML } from '../../../../src/surfaces/admin/dashboard.js';

const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

describe('dashboard page', () => {
  it('is one self-contained page: no external script, style, font or image', () => {
    expect(DASHBOARD_HTML).not.toMatch(/<script[^>]+src=/i);
    expect(DASHBOARD_HTML).not.toMatch(/<link[^>]+rel="stylesheet"/i);
    expect(DASHBOARD_HTML).not.toMatch(/https?:\/\//);
    expect(DASHBOARD_HTML.match(/<script>/g)).toHaveLength(1);
    expect(DASHBOARD_HTML.match(/<style>/g)).toHaveLength(1);
  });

  it('allows exactly its own inline script and style by hash, and same-origin calls only', () => {
    const script = /<script>([\s\S]*)<\/script>/.exec(DASHBOARD_HTML)?.[1] as string;
    const style = /<style>([\s\S]*)<\/style>/.exec(DASHBOARD_HTML)?.[1] as string;
    expect(DASHBOARD_CSP).toContain(`script-src ${hash(script)}`);
    expect(DASHBOARD_CSP).toContain(`style-src ${hash(style)}`);
    expect(DASHBOARD_CSP).toContain("default-src 'none'");
    expect(DASHBOARD_CSP).toContain("connect-src 'self'");
    expect(DASHBOARD_CSP).toContain("frame-ancestors 'none'");
    expect(DASHBOARD_CSP).not.toContain('unsafe');
  });

  it('renders data as text only: no innerHTML, outerHTML, insertAdjacentHTML, document.write or eval', () => {
    for (const sink of [
      'innerHTML',
      'outerHTML',
      'insertAdjacentHTML',
      'document.write',
      'eval(',
      'new Function',
    ])
      expect(DASHBOARD_HTML, sink).not.toContain(sink);
    // No inline event handler attributes (the CSP would block them anyway).
    expect(DASHBOARD_HTML).not.toMatch(/\son[a-z]+="/);
  });
});
