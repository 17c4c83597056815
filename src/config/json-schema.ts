import * as z from 'zod';
import { configSchema } from './schema.js';

/** The JSON Schema of the configuration file, for editor completion (`$schema` or yaml-language-server). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return { ...schema, title: 'portcullis configuration' };
}
