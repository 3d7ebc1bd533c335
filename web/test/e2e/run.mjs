#!/usr/bin/env node
// `npm run e2e`: the browser end-to-end tests, which live in the Rust test
// crates/pqdrop/tests/browser.rs (it starts the relay, the CLI and
// driver.mjs). Extra arguments go to the test binary, e.g.
// `npm run e2e -- hostile` runs the tests whose names contain "hostile".

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { WEB_DIR } from './lib/browser.mjs';

const extra = process.argv.slice(2);
const r = spawnSync('cargo', ['test', '-p', 'pqdrop', '--test', 'browser', '--', '--nocapture', ...extra], {
  cwd: join(WEB_DIR, '..'),
  stdio: 'inherit',
});
if (r.error) {
  console.error(`cannot run cargo: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
