// esbuild options of the browser bundle, shared by build.mjs and the test
// that checks the shipped bundle is up to date.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const defaultOutdir = path.resolve(here, '..', 'df_websockets', 'static', 'js');

export function bundleOptions(outdir = defaultOutdir) {
  return {
    entryPoints: [path.join(here, 'src', 'browser.js')],
    outfile: path.join(outdir, 'df_websockets.min.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    sourcemap: 'linked',
    sourcesContent: true,
    legalComments: 'none',
    charset: 'utf8',
  };
}
