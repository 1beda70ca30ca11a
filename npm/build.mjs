// Build the browser bundle shipped in the Python package:
//   ../df_websockets/static/js/df_websockets.min.js (+ .map)
// Usage: npm run build   (or: node build.mjs --outdir DIR)
import { build } from 'esbuild';
import path from 'node:path';
import { bundleOptions } from './build-options.mjs';

const args = process.argv.slice(2);
const outdirIndex = args.indexOf('--outdir');
const options = bundleOptions(outdirIndex >= 0 ? path.resolve(args[outdirIndex + 1]) : undefined);

const result = await build({ ...options, logLevel: 'info', metafile: true });
const outputs = Object.keys(result.metafile.outputs);
console.log(`built ${outputs.join(', ')}`);
