/** `resnet eval`: placeholder registration, replaced by the issue that builds this command. */
import { Command } from 'commander';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('(not built yet)')
    .action(() => {
      throw new Error('resnet eval is not built yet');
    });
}
