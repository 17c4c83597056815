import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../../src/config/json-schema.js';

describe('JSON Schema', () => {
  it('schema/portcullis.schema.json is generated from the current config schema (run npm run build)', () => {
    const committed = JSON.parse(
      readFileSync(new URL('../../../schema/portcullis.schema.json', import.meta.url), 'utf8'),
    );
    expect(committed).toEqual(configJsonSchema());
  });

  it('describes jails with fail2ban names and durations as patterns', () => {
    const schema = configJsonSchema() as {
      properties: Record<string, { properties?: Record<string, unknown> }>;
    };
    const defaults = schema.properties.defaults?.properties as Record<string, { description?: string }>;
    expect(Object.keys(defaults)).toEqual(
      expect.arrayContaining(['maxretry', 'findtime', 'bantime', 'ignoreip']),
    );
    expect(JSON.stringify(defaults.findtime)).toContain('pattern');
  });

  it('documents every key (editors show it), the inline filters of detection/ aside', () => {
    const missing: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (node === null || typeof node !== 'object') return;
      const schema = node as Record<string, unknown>;
      for (const [key, child] of Object.entries((schema.properties ?? {}) as Record<string, unknown>)) {
        if (!(child as { description?: string }).description) missing.push(`${path}${key}`);
        if (key !== 'filter') walk(child, `${path}${key}.`);
      }
      for (const list of [schema.anyOf, schema.oneOf, schema.allOf]) {
        if (Array.isArray(list)) for (const option of list) walk(option, path);
      }
      walk(schema.items, `${path}N.`);
      walk(schema.additionalProperties, `${path}*.`);
    };
    walk(configJsonSchema(), '');
    expect(missing).toEqual([]);
  });
});
