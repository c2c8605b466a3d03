/** `resnet export`: placeholder registration, replaced by the issue that builds this command. */
import { Command } from 'commander';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('(not built yet)')
    .action(() => {
      throw new Error('resnet export is not built yet');
    });
}
