/** `resnet bench`: placeholder registration, replaced by the issue that builds this command. */
import { Command } from 'commander';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('(not built yet)')
    .action(() => {
      throw new Error('resnet bench is not built yet');
    });
}
