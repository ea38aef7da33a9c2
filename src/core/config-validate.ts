/**
 * The validator of schemas/train-config.schema.json (the file VS Code also uses through
 * `jsonValidation`).
 *
 * The shipped bundles never run this file: esbuild.mjs puts in its place the validator ajv generates
 * from the same schema at build time (scripts/config-validator.mjs), so starting the CLI or the
 * extension neither loads ajv nor compiles the schema. Run from sources (tests, tsx) it compiles the
 * schema on first use with the same options; test/unit/config-validator.test.ts checks both agree.
 */
import Ajv, { type ErrorObject } from 'ajv';
import schema from '../../schemas/train-config.schema.json';
import type { TrainConfigFile } from './shared/config-types';

/** An ajv validate function: true, or false with `errors` set. */
export interface ConfigValidator {
  (data: unknown): data is TrainConfigFile;
  errors?: ErrorObject[] | null;
}

/** The same as scripts/config-validator.mjs's. */
export const AJV_OPTIONS = { allErrors: true, strict: false };

let compiled: ConfigValidator | undefined;

export function configValidator(): ConfigValidator {
  compiled ??= new Ajv(AJV_OPTIONS).compile<TrainConfigFile>(schema);
  return compiled;
}
