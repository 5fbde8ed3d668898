// Bundle the studio (src/index.js and the CSS it imports) into dist/: studio.js, studio.css and the icon
// fonts, for pages to load from /static/studio/dist/. Run by `npm run build` (scripts/setup.sh does it).
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, 'dist');
const started = Date.now();
// STUDIO_DEBUG=1 keeps the bundle readable, for finding which library line a browser error points at.
const debug = process.env.STUDIO_DEBUG === '1';

await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { studio: join(here, 'src', 'index.js') },
  outdir,
  bundle: true,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  minify: !debug,
  sourcemap: true,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
  loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file', '.svg': 'file' },
  assetNames: 'assets/[name]-[hash]',
  define: { 'process.env.NODE_ENV': '"production"' },
});
const outputs = Object.entries(result.metafile.outputs)
  .filter(([file]) => /\.(js|css)$/.test(file))
  .map(([file, info]) => `${file.split('/').pop()} ${(info.bytes / 1024).toFixed(0)} KiB`);
console.log(`studio: ${outputs.join(', ')} in ${Date.now() - started} ms`);
