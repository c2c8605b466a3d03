/**
 * Test fixture (not a test): the `resnet` command from the TypeScript sources, exactly as bin/resnet.js runs the
 * compiled CLI, so that tests under tsx spawn the code they are testing (bin/resnet.js needs dist/).
 * Use `cliCommand()` from ./cli to get the right command for the way the tests run.
 */
import { main } from '../../src/cli/main';

main(process.argv).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`resnet: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
