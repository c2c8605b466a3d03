/** `resnet serve`: placeholder registration, replaced by the issue that builds this command. */
import { Command } from 'commander';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('(not built yet)')
    .action(() => {
      throw new Error('resnet serve is not built yet');
    });
}
