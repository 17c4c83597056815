import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS package loaded on first use instead of at import time, for a module that needs it
 * only on a rare path: every CLI call pays for what its modules import (yaml and zod were 0.1 s of
 * `portcullis test`'s 0.25 s). `require` of a CommonJS package (yaml, ipaddr.js) returns the same
 * instance an `import` elsewhere does. zod ships both builds: `require('zod')` is its CommonJS
 * copy, a separate instance from the ESM one `import * as z from 'zod'` gives.
 */
export function lazyRequire<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= require(id) as T;
    return loaded;
  };
}
