/** `resnet train`: placeholder registration, replaced by the issue that builds this command. */
import { Command } from 'commander';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('(not built yet)')
    .action(() => {
      throw new Error('resnet train is not built yet');
    });
}
