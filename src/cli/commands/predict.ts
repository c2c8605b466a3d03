/** `resnet predict`: placeholder registration, replaced by the issue that builds this command. */
import { Command } from 'commander';

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('(not built yet)')
    .action(() => {
      throw new Error('resnet predict is not built yet');
    });
}
