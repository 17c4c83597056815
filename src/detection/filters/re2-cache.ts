import RE2 from 're2';

/**
 * Every RE2 program of the filters, compiled once per process: the config check compiles a
 * pattern to validate it, and the jail built from that config gets the same program back instead
 * of compiling it again (so does a reload that keeps the pattern). RE2 objects without the `g`
 * or `y` flag keep no state between matches, so sharing them is safe.
 */
const programs = new Map<string, RE2 | Error>();
/** Distinct patterns kept; past it the oldest are forgotten (and compiled again if used). */
const MAX_PROGRAMS = 8_192;

/** The RE2 program of `pattern`; throws RE2's own error (a `SyntaxError`) when it cannot compile. */
export function re2Program(pattern: string): RE2 {
  let program = programs.get(pattern);
  if (program === undefined) {
    try {
      program = new RE2(pattern);
    } catch (error) {
      program = error instanceof Error ? error : new Error(String(error));
    }
    if (programs.size >= MAX_PROGRAMS) programs.delete(programs.keys().next().value as string);
    programs.set(pattern, program);
  }
  if (program instanceof Error) throw program;
  return program;
}

/** How many programs are cached (for tests). */
export function re2ProgramCount(): number {
  return programs.size;
}
