// Build-time validator of schemas/train-config.schema.json: ajv compiles the schema here, once, and
// writes the result as plain JavaScript ("standalone code"), so the CLI and the extension neither
// load ajv nor compile the schema when they start. esbuild.mjs puts this code in place of
// src/core/config-validate.ts, which compiles the same schema with the same options when run from
// sources; test/unit/config-validator.test.ts checks that both give the same answers.
import Ajv from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { readFileSync } from 'node:fs';

/** The options of src/core/config-validate.ts (the test compares them). */
export const AJV_OPTIONS = { allErrors: true, strict: false };

export const SCHEMA_PATH = new URL('../schemas/train-config.schema.json', import.meta.url);

/**
 * The validator as a module. `esm` → ES module exporting `configValidator()` and `AJV_OPTIONS`
 * like src/core/config-validate.ts; otherwise CommonJS with the same exports.
 */
export function standaloneConfigValidator({ esm = true } = {}) {
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'));
  const ajv = new (Ajv.default ?? Ajv)({ ...AJV_OPTIONS, code: { source: true, esm } });
  ajv.addSchema(schema, 'trainConfig');
  const code = (standaloneCode.default ?? standaloneCode)(ajv, { trainConfig: 'trainConfig' });
  const options = JSON.stringify(AJV_OPTIONS);
  return esm
    ? `${code}\nexport const AJV_OPTIONS = ${options};\nexport function configValidator() { return trainConfig; }\n`
    : `${code}\nexports.AJV_OPTIONS = ${options};\nexports.configValidator = function configValidator() { return exports.trainConfig; };\n`;
}
