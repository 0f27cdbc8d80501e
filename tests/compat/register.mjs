// Load with `node --import ./register.mjs script.mjs`.
//
// @laserfiche/lf-api-client-core@1.1.21 ships ESM whose dist/lib/BaseTokenClient.js imports './ApiException'
// and './ProblemDetails' without the '.js' extension. Node's ESM loader refuses such specifiers; the
// vendor runs its tests under vitest, whose resolver accepts them. This registers resolve-hook.mjs, which
// retries a relative specifier that failed to resolve with '.js' appended.
import { register } from 'node:module';

register('./resolve-hook.mjs', import.meta.url);
