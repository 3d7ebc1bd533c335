// Builds the browser page into crates/pqdrop-relay/web/, which is committed
// and embedded into the relay at compile time (so building Rust needs no
// Node.js).
//
//   node build.mjs           build into crates/pqdrop-relay/web/
//   node build.mjs --check   build into a temporary folder and fail (exit 1)
//                            when the committed files differ from it
//
// The output must be deterministic: the same sources and the same pinned
// esbuild give the same bytes, which is what makes `--check` meaningful.

import { build } from 'esbuild';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const committed = resolve(here, '..', 'crates', 'pqdrop-relay', 'web');

/** Bundled scripts: output name → entry point. */
const SCRIPTS = {
  'app.js': 'src/app/main.ts',
  'sw.js': 'src/sw.ts',
};
/** Files copied as they are. */
const STATIC = ['index.html', 'style.css', 'icon.svg'];

async function buildInto(outDir) {
  await mkdir(outDir, { recursive: true });
  for (const [name, entry] of Object.entries(SCRIPTS)) {
    const result = await build({
      absWorkingDir: here,
      entryPoints: [entry],
      outfile: join(outDir, name),
      bundle: true,
      minify: true,
      format: 'iife',
      target: 'es2022',
      platform: 'browser',
      sourcemap: false,
      legalComments: 'eof', // the libraries' licence notices (MIT) stay with the code
      charset: 'utf8',
      write: false,
      logLevel: 'warning',
    });
    for (const f of result.outputFiles) await writeFile(f.path, f.contents);
  }
  for (const name of STATIC) await copyFile(join(here, 'static', name), join(outDir, name));
  return [...Object.keys(SCRIPTS), ...STATIC].sort();
}

async function check() {
  const tmp = await mkdtemp(join(tmpdir(), 'pqdrop-web-'));
  try {
    const names = await buildInto(tmp);
    const problems = [];
    for (const name of names) {
      const fresh = await readFile(join(tmp, name));
      let old;
      try {
        old = await readFile(join(committed, name));
      } catch {
        problems.push(`${name}: missing from crates/pqdrop-relay/web/`);
        continue;
      }
      if (!fresh.equals(old)) problems.push(`${name}: differs from a fresh build`);
    }
    let present = [];
    try {
      present = await readdir(committed);
    } catch {
      // reported above, file by file
    }
    for (const name of present) {
      if (!name.startsWith('.') && !names.includes(name)) problems.push(`${name}: in crates/pqdrop-relay/web/ but not made by the build`);
    }
    if (problems.length > 0) {
      console.error('The committed page in crates/pqdrop-relay/web/ is out of date:');
      for (const p of problems) console.error(`  ${p}`);
      console.error('Run `npm run build` in web/ (after `npm ci`) and commit crates/pqdrop-relay/web/.');
      process.exitCode = 1;
    } else {
      console.log(`crates/pqdrop-relay/web/ matches a fresh build (${names.length} files).`);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv.includes('--check')) {
  await check();
} else {
  const names = await buildInto(committed);
  // The folder holds exactly the build's output: a file left from an older
  // build would otherwise be served (and embedded) forever.
  for (const name of await readdir(committed)) {
    if (!name.startsWith('.') && !names.includes(name)) {
      await rm(join(committed, name), { force: true });
      console.log(`removed ${name}, which the build no longer makes`);
    }
  }
  console.log(`built ${names.join(', ')} into crates/pqdrop-relay/web/`);
}
