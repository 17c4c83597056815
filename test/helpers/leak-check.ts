import { afterAll, beforeAll } from 'vitest';

// A test file must release every handle it opened (servers, sockets, child processes, ref'd
// timers): STYLE.md, "tests fail if they leave handles open". Each file runs in its own worker;
// after its own afterAll hooks, the active resources that keep the event loop alive must be back
// to what the worker had before the file ran.

/** How long handles get to close after the last hook (sockets finish their FIN, children exit). */
const GRACE_MS = 3_000;

let baseline: Map<string, number>;

function counts(): Map<string, number> {
  const out = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) out.set(type, (out.get(type) ?? 0) + 1);
  return out;
}

function leaks(): string[] {
  const out: string[] = [];
  for (const [type, count] of counts()) {
    const before = baseline.get(type) ?? 0;
    if (count > before) out.push(`${type} ×${count - before}`);
  }
  return out;
}

beforeAll(() => {
  // stdout and stderr are pipes opened on first use (a logger, console.log): not the file's to close.
  void process.stdout.writable;
  void process.stderr.writable;
  baseline = counts();
});

afterAll(async () => {
  const deadline = Date.now() + GRACE_MS;
  let left = leaks();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    left = leaks();
  }
  if (left.length > 0) {
    throw new Error(
      `this test file left handles open: ${left.join(', ')} (close servers, sockets, children and timers)`,
    );
  }
});
