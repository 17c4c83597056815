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
});
