import { detach } from '../../../core/detach.js';

/**
 * Multi-line sessions: lines with the same `<F-MLFID>` value (sshd's `sshd[1234]`) belong to one
 * session, so a failure can use what an earlier line said (the client's IP on a "Connection from"
 * line) and a failure seen before the IP is known waits for the line that names it.
 *
 * Bounded three ways, all by log time and line counts, never by wall time: at most
 * {@link MAX_SESSIONS} sessions (the least recently seen is forgotten first), a session is forgotten
 * after `maxlines` of its lines have matched or {@link SESSION_TTL_MS} of log time without one, and
 * it holds at most `maxlines` waiting failures.
 */

/** Sessions remembered at once. */
export const MAX_SESSIONS = 1000;
/** A session silent this long (log time) is forgotten. */
export const SESSION_TTL_MS = 10 * 60_000;

/** A failure waiting for its session to name the client. */
export interface PendingFailure {
  timeMs: number;
  fields: Record<string, string>;
  regexIndex: number;
}

export interface Session {
  ip: string | undefined;
  fields: Record<string, string>;
  pending: PendingFailure[];
  lines: number;
  lastMs: number;
}

/** Sessions as plain (structured-clone and JSON friendly) data: `[id, session]`, oldest first. */
export type SessionSnapshot = [id: string, session: Session][];

export class SessionTable {
  readonly #sessions = new Map<string, Session>();
  readonly #maxLines: number;

  constructor(maxLines: number) {
    this.#maxLines = maxLines;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** The session `id`, created or renewed; counts this line in it. */
  touch(id: string, timeMs: number): Session {
    let session = this.#sessions.get(id);
    if (session !== undefined) {
      this.#sessions.delete(id); // re-inserted below: Map order is recency order
      if (timeMs - session.lastMs > SESSION_TTL_MS || session.lines >= this.#maxLines) session = undefined;
    }
    if (session === undefined) {
      session = { ip: undefined, fields: {}, pending: [], lines: 0, lastMs: timeMs };
      if (this.#sessions.size >= MAX_SESSIONS) {
        const oldest = this.#sessions.keys().next().value as string;
        this.#sessions.delete(oldest);
      }
    }
    session.lines++;
    session.lastMs = Math.max(session.lastMs, timeMs);
    // The id is cut from a line: kept as a key, it must not keep the line's block alive.
    this.#sessions.set(detach(id), session);
    return session;
  }

  /** Holds a failure until the session names its client (dropping the oldest beyond `maxlines`). */
  hold(session: Session, failure: PendingFailure): void {
    session.pending.push(failure);
    if (session.pending.length > this.#maxLines) session.pending.shift();
  }

  /** The sessions as plain data, least recently seen first (a copy: later lines do not change it). */
  snapshot(): SessionSnapshot {
    return [...this.#sessions].map(([id, s]) => [
      id,
      {
        ip: s.ip,
        fields: { ...s.fields },
        pending: s.pending.map((p) => ({ ...p, fields: { ...p.fields } })),
        lines: s.lines,
        lastMs: s.lastMs,
      },
    ]);
  }

  /** Replaces the sessions with a {@link snapshot}'s (copied). */
  restore(snapshot: SessionSnapshot): void {
    this.#sessions.clear();
    for (const [id, s] of snapshot) {
      this.#sessions.set(id, {
        ip: s.ip,
        fields: { ...s.fields },
        pending: s.pending.map((p) => ({ ...p, fields: { ...p.fields } })),
        lines: s.lines,
        lastMs: s.lastMs,
      });
    }
  }

  forget(id: string): void {
    this.#sessions.delete(id);
  }

  clear(): void {
    this.#sessions.clear();
  }
}
