import pino from 'pino';

/** The process logger: JSON lines on stdout, one object per event, for journald and log shippers. */
export function createProcessLogger(level: string): pino.Logger {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
