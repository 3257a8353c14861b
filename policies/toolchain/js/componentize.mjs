// Builds a JavaScript policy into a WebAssembly component with
// componentize-js, against the wasmwall:policy world.
//
// Usage: node componentize.mjs SOURCE.js WIT_DIR OUTPUT.wasm
//
// Only the "stdio" feature of the engine stays: an uncaught exception is
// then printed to stderr, which the runtime captures into its log. Random
// numbers (disabled: deterministic), clocks, outgoing HTTP and the fetch
// event would each add WASI imports a policy must not need.
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const [sourcePath, witPath, output] = process.argv.slice(2);
if (!output) {
  console.error('usage: node componentize.mjs SOURCE.js WIT_DIR OUTPUT.wasm');
  process.exit(2);
}
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName: 'policy',
  disableFeatures: ['random', 'clocks', 'http', 'fetch-event'],
});
await writeFile(output, component);
