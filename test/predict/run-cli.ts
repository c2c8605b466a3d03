/**
 * Runs the real `resnet` command line (src/cli/main.ts) from source, for tests that need a separate process
 * (a piped stdin, signals): `node --import tsx test/predict/run-cli.ts predict ...`.
 * Not a different CLI: it is bin/resnet.js without the compile step.
 */
import { main } from '../../src/cli/main';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`run-cli: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
