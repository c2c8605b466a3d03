/**
 * The README's screenshots of `resnet serve`, taken with the packaged weights and a real training run:
 *
 *   npx tsx scripts/screenshots.ts --image CAT.jpg --run RUN_DIR [--out docs]
 *
 * Starts `resnet serve --run RUN_DIR` (no --weights: the packaged ones), opens its page in headless Chromium
 * (/usr/bin/chromium, or RESNET_CHROMIUM), chooses the image, presses 运行 and saves OUT/predict-serve-page.png, then
 * saves the dashboard of the run as OUT/predict-serve-dashboard.png. Needs chromium and a CJK font
 * (`apt-get install chromium fonts-wqy-microhei`).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`usage: npx tsx scripts/screenshots.ts --image FILE --run RUN_DIR [--out docs] (missing ${name})`);
  return v;
}

async function main(): Promise<void> {
  const image = path.resolve(arg('--image'));
  const run = path.resolve(arg('--run'));
  const out = path.resolve(arg('--out', 'docs'));
  const root = path.resolve(__dirname, '..');
  const server = spawn(process.execPath, [path.join(root, 'bin', 'resnet.js'), 'serve', '--port', '0', '--run', run, '--quiet'], { cwd: root });
  let log = '';
  server.stderr.on('data', (c: Buffer) => (log += c.toString('utf8')));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      server.stdout.on('data', (c: Buffer) => {
        text += c.toString('utf8');
        const m = /listening on (http:\/\/\S+)/.exec(text);
        if (m) resolve(m[1]);
      });
      server.on('exit', (code) => reject(new Error(`resnet serve exited (${code}) before listening:\n${log}`)));
    });
    const browser = await chromium.launch({ executablePath: process.env.RESNET_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
      await page.goto(url);
      await page.setInputFiles('#file-input', image);
      await page.click('#run-button');
      await page.waitForSelector('#result:not([hidden])', { timeout: 120_000 });
      await page.screenshot({ path: path.join(out, 'predict-serve-page.png') });
      const shown = `${await page.textContent('#result-zh')} ${await page.textContent('#result-en')} ${await page.textContent('#result-confidence')}`.replace(/\s+/g, ' ');
      const dash = await browser.newPage({ viewport: { width: 1100, height: 1200 } });
      await dash.goto(`${url}/dashboard`);
      await dash.waitForSelector('#dash-status[data-epochs]', { timeout: 30_000 });
      await dash.screenshot({ path: path.join(out, 'predict-serve-dashboard.png'), fullPage: true });
      process.stdout.write(`wrote ${path.join(out, 'predict-serve-page.png')} (${path.basename(image)}: ${shown.trim()}) and ${path.join(out, 'predict-serve-dashboard.png')}\n`);
    } finally {
      await browser.close();
    }
  } finally {
    server.kill('SIGINT');
  }
  process.stdout.write(`${log.split('\n').find((l) => l.includes('weights')) ?? ''}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`screenshots: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
