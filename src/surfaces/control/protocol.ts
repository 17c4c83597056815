import * as z from 'zod';

/**
 * The control socket's wire format: newline-delimited JSON, one request a line, one response a
 * line, in order.
 *
 * ```
 * → {"id":1,"op":"ban","args":{"target":"192.0.2.7","jail":"sshd","bantimeMs":3600000}}
 * ← {"id":1,"ok":true,"result":{"target":"192.0.2.7","jail":"sshd",...}}
 * ← {"id":2,"ok":false,"error":{"code":"PC_ERR_UNKNOWN_JAIL","message":"no jail named \"ssh\""}}
 * ```
 */

/** A request line longer than this (bytes, before its newline) is refused and the connection closed. */
export const MAX_REQUEST_BYTES = 64 * 1024;

const target = z.string().min(1).max(100);
const jail = z.string().min(1).max(64);

/** Every operation and its arguments. */
export const CONTROL_OPS = {
  ping: z.strictObject({}),
  status: z.strictObject({}),
  jail: z.strictObject({ name: jail }),
  decisions: z.strictObject({
    jail: jail.optional(),
    ip: target.optional(),
    limit: z.number().int().min(0).optional(),
  }),
  banned: z.strictObject({ ip: target }),
  ban: z.strictObject({
    target,
    jail: jail.optional(),
    /** ms, or -1 for permanent. */
    bantimeMs: z.number().int().min(-1).optional(),
    reason: z.string().max(500).optional(),
    /** A range wider than /8 or /32, or with bits past its prefix. */
    force: z.boolean().optional(),
  }),
  unban: z.strictObject({ target, jail: jail.optional() }),
  unbanAll: z.strictObject({ jail: jail.optional() }),
  reload: z.strictObject({ jail: jail.optional() }),
  stop: z.strictObject({}),
} as const;

export type ControlOp = keyof typeof CONTROL_OPS;
export type ControlArgs<Op extends ControlOp> = z.input<(typeof CONTROL_OPS)[Op]>;

export interface ControlRequest {
  id?: number | string;
  op: string;
  args?: Record<string, unknown>;
}

export type ControlResponse =
  | { id?: number | string | null; ok: true; result: unknown }
  | { id?: number | string | null; ok: false; error: { code: string; message: string } };
