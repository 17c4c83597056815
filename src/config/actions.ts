import type * as z from 'zod';
import { bundledActionPresets } from '../actions/bundled-presets.js';
import { ACTION_KINDS, type ActionSpec } from '../actions/registry.js';
import { PLANNED_ACTION_KINDS } from './unavailable.js';

/**
 * Resolves `actions:` — the top-level map of named presets, `defaults.actions` and each jail's
 * list — into action instances. One instance per distinct definition: a preset is one instance
 * wherever it is named, and `nftables` (or identical inline options) in several jails is one
 * instance, so one set of kernel objects. Each kind's options are validated by its schema in
 * `src/actions/registry.ts`.
 */

type Mapping = Record<string, unknown>;
const isMapping = (value: unknown): value is Mapping =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Preset names: a letter, then letters, digits, `-`, `_`. */
const PRESET_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

export interface ActionsInput {
  /** The top-level `actions:` map. */
  presets: Mapping | undefined;
  /** `defaults.actions`. */
  defaults: readonly unknown[] | undefined;
  /** Each jail's own `actions` (undefined: it inherits `defaults.actions`). */
  jails: readonly { name: string; actions: readonly unknown[] | undefined }[];
}

export interface ResolvedActions {
  /** Every instance some jail uses, in first-use order. */
  instances: ActionSpec[];
  /** Per jail, the instances it lists. */
  byJail: Map<string, ActionSpec[]>;
  /** `defaults.actions`: where bans of no configured jail (manual ones) also go. */
  defaults: ActionSpec[];
  problems: string[];
}

const stable = (value: unknown): string =>
  JSON.stringify(value, (_key, v) =>
    isMapping(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );

const kindList = () => Object.keys(ACTION_KINDS).join(', ');

/**
 * `formatIssue` formats a zod issue whose path is from the file's top (the load layer's, so the
 * messages read like every other config error).
 */
export function resolveActions(
  input: ActionsInput,
  name: string,
  formatIssue: (issue: z.core.$ZodIssue) => string,
): ResolvedActions {
  const problems: string[] = [];
  const instances = new Map<string, ActionSpec>();
  const usedNames = new Set<string>();

  /** Validates one `{ kind: options }` at `path`; the kind's resolved config, or undefined. */
  const parseKind = (kind: string, raw: unknown, path: (string | number)[], instanceName: string) => {
    const entry = ACTION_KINDS[kind];
    if (entry === undefined) return undefined;
    const result = entry.schema.safeParse(raw ?? {}, { reportInput: true });
    if (!result.success) {
      for (const issue of result.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          const known = Object.keys((entry.schema as unknown as { shape: Mapping }).shape ?? {});
          for (const key of issue.keys)
            problems.push(
              `${name}: ${[...path, ...issue.path, key].join('.')}: unknown setting of the ${kind} action (known: ${known.join(', ')})`,
            );
        } else problems.push(formatIssue({ ...issue, path: [...path, ...issue.path] }));
      }
      return undefined;
    }
    return { options: entry.resolve(instanceName, result.data as never) as Mapping, raw: result.data };
  };

  const uniqueName = (wanted: string) => {
    let candidate = wanted;
    for (let n = 2; usedNames.has(candidate); n++) candidate = `${wanted}-${n}`;
    usedNames.add(candidate);
    return candidate;
  };

  // Presets: validated whether used or not.
  const presets = new Map<string, { kind: string; raw: unknown }>();
  for (const [preset, definition] of Object.entries(input.presets ?? {})) {
    const path = ['actions', preset];
    if (!PRESET_NAME.test(preset)) {
      problems.push(
        `${name}: actions.${preset}: action names are a letter, then letters, digits, "-" and "_" (up to 32)`,
      );
      continue;
    }
    if (preset in ACTION_KINDS || PLANNED_ACTION_KINDS.includes(preset)) {
      problems.push(
        `${name}: actions.${preset}: "${preset}" is an action kind; name the preset otherwise (e.g. ${preset}-ssh) and define it as { ${preset}: { ... } }`,
      );
      continue;
    }
    const keys = isMapping(definition) ? Object.keys(definition) : [];
    if (keys.length !== 1) {
      problems.push(
        `${name}: actions.${preset}: expected one action kind with its options, like { nftables: { ports: [22] } }, got ${JSON.stringify(definition)}`,
      );
      continue;
    }
    const kind = keys[0] as string;
    if (PLANNED_ACTION_KINDS.includes(kind) && !(kind in ACTION_KINDS)) continue; // said by unavailable.ts
    if (!(kind in ACTION_KINDS)) {
      problems.push(`${name}: actions.${preset}.${kind}: unknown action kind (known: ${kindList()})`);
      continue;
    }
    const raw = (definition as Mapping)[kind];
    if (parseKind(kind, raw, [...path, kind], preset) === undefined) continue;
    presets.set(preset, { kind, raw });
  }

  // Bundled presets (rules/actions/*.yaml): a name the top-level map does not define. A user's
  // preset of the same name wins; `{ preset: { ... } }` overrides some of a preset's options.
  const bundled = bundledActionPresets();
  const findPreset = (preset: string) => {
    const own = presets.get(preset);
    if (own !== undefined) return { ...own, path: ['actions', preset, own.kind], key: `preset:${preset}` };
    if (isMapping(input.presets) && preset in input.presets) return undefined;
    const shipped = bundled.get(preset);
    if (shipped === undefined || shipped.kind in ACTION_KINDS === false || preset in ACTION_KINDS)
      return undefined;
    return {
      kind: shipped.kind,
      raw: shipped.options,
      path: [`rules/actions/${preset}.yaml`, shipped.kind],
      key: `bundled:${preset}`,
    };
  };

  const instance = (key: string, wanted: string, kind: string, raw: unknown, path: (string | number)[]) => {
    const known = instances.get(key);
    if (known !== undefined) return known;
    const instanceName = uniqueName(wanted);
    const parsed = parseKind(kind, raw, path, instanceName);
    if (parsed === undefined) return undefined;
    const spec: ActionSpec = Object.freeze({
      name: instanceName,
      kind,
      options: parsed.options,
      firewall: (ACTION_KINDS[kind] as { firewall: boolean }).firewall,
    });
    instances.set(key, spec);
    return spec;
  };

  const resolveList = (list: readonly unknown[], path: string, where: string): ActionSpec[] => {
    const specs: ActionSpec[] = [];
    list.forEach((entry, i) => {
      const at = [...path.split('.'), i];
      if (typeof entry === 'string') {
        const preset = presets.get(entry);
        if (preset !== undefined) {
          const spec = instance(`preset:${entry}`, entry, preset.kind, preset.raw, [
            'actions',
            entry,
            preset.kind,
          ]);
          if (spec !== undefined) specs.push(spec);
          return;
        }
        if (entry in ACTION_KINDS) {
          const spec = instance(`${entry}:{}`, entry, entry, {}, at);
          if (spec !== undefined) specs.push(spec);
          return;
        }
        const shipped = findPreset(entry);
        if (shipped !== undefined) {
          const spec = instance(shipped.key, entry, shipped.kind, shipped.raw, shipped.path);
          if (spec !== undefined) specs.push(spec);
          return;
        }
        if (PLANNED_ACTION_KINDS.includes(entry)) return; // said by unavailable.ts
        if (isMapping(input.presets) && entry in input.presets) return; // a broken preset: said above
        const names = [...presets.keys()];
        problems.push(
          `${name}: ${at.join('.')}: unknown action ${JSON.stringify(entry)}: expected an action kind (${kindList()})${names.length > 0 ? ` or a name defined under actions: (${names.join(', ')})` : ' or a name defined under the top-level actions:'}, or a bundled preset (${[...bundled.keys()].join(', ')})`,
        );
        return;
      }
      const keys = isMapping(entry) ? Object.keys(entry) : [];
      if (keys.length !== 1) {
        problems.push(
          `${name}: ${at.join('.')}: expected an action name or one kind with its options, like { nftables: { ports: [22] } }, got ${JSON.stringify(entry)}`,
        );
        return;
      }
      const kind = keys[0] as string;
      if (PLANNED_ACTION_KINDS.includes(kind) && !(kind in ACTION_KINDS)) return;
      const base = kind in ACTION_KINDS ? undefined : findPreset(kind);
      const overrides = (entry as Mapping)[kind] ?? {};
      if (base !== undefined && isMapping(overrides) && isMapping(base.raw)) {
        // A preset with some options of its own: `{ nftables-ssh: { ports: [2222] } }`.
        const merged = { ...base.raw, ...overrides };
        const plain = Object.keys(overrides).length === 0;
        const spec = plain
          ? instance(base.key, kind, base.kind, base.raw, base.path)
          : instance(`${base.key}:${stable(overrides)}`, `${kind}-${where}`, base.kind, merged, [
              ...at,
              kind,
            ]);
        if (spec !== undefined) specs.push(spec);
        return;
      }
      if (!(kind in ACTION_KINDS)) {
        problems.push(`${name}: ${at.join('.')}.${kind}: unknown action kind (known: ${kindList()})`);
        return;
      }
      const raw = (entry as Mapping)[kind] ?? {};
      const empty = isMapping(raw) && Object.keys(raw).length === 0;
      const spec = instance(`${kind}:${stable(raw)}`, empty ? kind : `${kind}-${where}`, kind, raw, [
        ...at,
        kind,
      ]);
      if (spec !== undefined) specs.push(spec);
    });
    // One instance listed twice in a list is applied once.
    return [...new Set(specs)];
  };

  const defaults = resolveList(input.defaults ?? [], 'defaults.actions', 'defaults');
  const byJail = new Map<string, ActionSpec[]>();
  for (const jail of input.jails) {
    byJail.set(
      jail.name,
      jail.actions === undefined
        ? defaults
        : resolveList(jail.actions, `jails.${jail.name}.actions`, jail.name),
    );
  }

  // Only instances in use run; two of them must not claim the same kernel objects.
  const used = [...new Set([...byJail.values()].flat())];
  const claims = new Map<string, string>();
  for (const spec of used) {
    const key = ACTION_KINDS[spec.kind]?.conflictKey?.(spec.options as never) ?? null;
    if (key === null) continue;
    const other = claims.get(key);
    if (other !== undefined)
      problems.push(
        `${name}: actions: "${other}" and "${spec.name}" would share the ${key}; give one of them its own set_prefix`,
      );
    else claims.set(key, spec.name);
  }
  return { instances: used, byJail, defaults, problems };
}
