/** The backends every conformance test runs on: the reference, plus the native addon when it loaded. */
import type { Backend } from '../../src/backend/backend.js';
import { nativeBackend } from '../../src/backend/native.js';
import { refBackend } from '../../src/backend/ref.js';

export function availableBackends(): Backend[] {
  return nativeBackend ? [refBackend, nativeBackend] : [refBackend];
}
