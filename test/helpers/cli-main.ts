/** The CLI's main() from source (no build), for tests that check what a person sees: node --import tsx test/helpers/cli-main.ts <args…> */
import { main } from '../../src/cli/main';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
