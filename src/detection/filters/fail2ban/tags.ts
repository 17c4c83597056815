/**
 * fail2ban's `<tag>` interpolation of filter options: `<name>` in a value is replaced by the
 * option `name` (from the combined [Definition] options, [Init] options and the jail's parameters,
 * else by `lookup(name)`), recursively and innermost first, so `<lt_<logtype>/__prefix_line>` reads
 * `<logtype>` first. Tags no option defines (`<HOST>`, `<F-USER>`) are left for the regex layer.
 */

/** Thrown for a tag that refers to itself (directly, or more than 25 times through others), or grows past 64 KiB. */
export class TagLoopError extends Error {}

const MAX_EXPANDED = 64 * 1024;

const TAG = /<([^ <>]+)>/g;
const MAX_REPLACE = 25;

export function substituteTags(
  input: ReadonlyMap<string, string>,
  lookup: (name: string) => string | undefined,
  ignore: ReadonlySet<string> = new Set(),
): Map<string, string> {
  const tags = new Map(input);
  const done = new Set<string>();
  const counts = new Map<string, Map<string, number>>();
  for (let pass = 0; ; pass++) {
    let again = false;
    for (const [tag, original] of tags) {
      if (ignore.has(tag) || done.has(tag)) continue;
      let value = original;
      const replaced = counts.get(tag) ?? new Map<string, number>();
      TAG.lastIndex = 0;
      let m = TAG.exec(value);
      while (m !== null) {
        const name = m[1] as string;
        if (ignore.has(name)) {
          m = TAG.exec(value);
          continue;
        }
        if (name === tag || (replaced.get(name) ?? 1) > MAX_REPLACE)
          throw new TagLoopError(`<${tag}> refers to itself (through <${name}>)`);
        const replacement = tags.get(name) ?? lookup(name);
        if (replacement === undefined) {
          m = TAG.exec(value);
          continue;
        }
        value = value.split(`<${name}>`).join(replacement);
        if (value.length > MAX_EXPANDED)
          throw new TagLoopError(
            `<${tag}> expands to more than ${MAX_EXPANDED / 1024} KiB (through <${name}>; tags that repeat each other grow exponentially)`,
          );
        replaced.set(name, (replaced.get(name) ?? 0) + 1);
        TAG.lastIndex = m.index;
        m = TAG.exec(value);
      }
      if (value !== original) {
        TAG.lastIndex = 0;
        if (TAG.test(value)) {
          counts.set(tag, replaced);
          again = true;
        }
        tags.set(tag, value);
      }
      if (!value.includes('<')) done.add(tag);
    }
    if (!again || pass > 100) break;
  }
  return tags;
}
