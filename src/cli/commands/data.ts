/** `resnet data`: placeholder registration, replaced by the issue that builds this command. */
import { Command } from 'commander';

export function registerData(program: Command): void {
  program
    .command('data')
    .description('(not built yet)')
    .action(() => {
      throw new Error('resnet data is not built yet');
    });
}
