// Remakes the screenshots of docs/commands/review.md (docs/commands/img/review-loupe.png and
// review-grid.png) from the current page: `node tests/review/screens.js` from the source tree,
// after a build in build/ and `npm ci` in tests/review. It runs screenshots.test.mjs (the same
// steps CTest checks) with its output pointed at docs/commands/img; KILN, KILN_SRC and
// KILN_SCREENSHOTS override the defaults.
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.env.KILN_SRC ||= src;
process.env.KILN ||= path.join(src, 'build/kiln');
process.env.KILN_SCREENSHOTS ||= path.join(src, 'docs/commands/img');
process.env.PUPPETEER_SKIP_DOWNLOAD = '1';
/* lib.mjs reads the environment when it loads: import after setting it */
await import('./screenshots.test.mjs');
