/**
 * Typed message descriptors with their own validation, shared by both ends of a channel (host ↔
 * trainer, host ↔ webview). A descriptor names the message type and the fields it must carry; the
 * receiving side parses every incoming message through its table of descriptors, so an unknown or
 * malformed message is reported (with the field at fault) instead of reaching the code that acts.
 */

/** What a field must hold. A trailing `?` makes it optional (absent or undefined). */
/** 'number|null': a number, or null where JSON carried a NaN/Infinity (a diverged loss). */
export type FieldRule = 'string' | 'number' | 'number|null' | 'integer' | 'boolean' | 'object' | 'array' | 'string?' | 'number?' | 'integer?' | 'boolean?' | 'object?' | 'array?';

export interface MessageDescriptor<T extends { type: string }> {
  readonly type: T['type'];
  readonly fields: Readonly<Record<string, FieldRule>>;
  /** Why `m` is not a valid message of this type, or undefined when it is. */
  problem(m: Record<string, unknown>): string | undefined;
}

function holds(v: unknown, rule: FieldRule): boolean {
  const optional = rule.endsWith('?');
  if (v === undefined) return optional;
  switch (rule.replace('?', '')) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && !Number.isNaN(v);
    case 'number|null':
      return v === null || typeof v === 'number';
    case 'integer':
      return Number.isInteger(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    default:
      return false;
  }
}

/**
 * A descriptor for messages `{ type, ...fields }`. `check`, for what a field's kind cannot say (a
 * length, a pattern, an array's items), runs once the fields hold and returns why not, or undefined.
 */
export function message<T extends { type: string }>(
  type: T['type'],
  fields: Readonly<Record<string, FieldRule>> = {},
  check?: (m: Record<string, unknown>) => string | undefined,
): MessageDescriptor<T> {
  return {
    type,
    fields,
    problem(m) {
      for (const [name, rule] of Object.entries(fields)) {
        if (!holds(m[name], rule)) return `"${type}" message: field "${name}" must be ${rule.endsWith('?') ? `absent or ${rule.slice(0, -1)}` : rule}`;
      }
      const why = check?.(m);
      return why === undefined ? undefined : `"${type}" message: ${why}`;
    },
  };
}

export type Parsed<T> = { ok: true; message: T } | { ok: false; error: string };

/**
 * Checks `raw` against a table of descriptors (by its `type`), and its `v` against `version` when
 * one is given. The message is returned typed when valid; otherwise the reason, for the log.
 */
export function parseMessage<T extends { type: string }>(raw: unknown, table: readonly MessageDescriptor<T>[], version?: number): Parsed<T> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, error: 'not an object' };
  const m = raw as Record<string, unknown>;
  if (version !== undefined && m['v'] !== version) return { ok: false, error: `protocol version ${JSON.stringify(m['v'])}, expected ${version}` };
  const d = table.find((x) => x.type === m['type']);
  if (!d) return { ok: false, error: `unknown message type ${JSON.stringify(m['type'])}` };
  const problem = d.problem(m);
  return problem ? { ok: false, error: problem } : { ok: true, message: raw as T };
}
