/** The backends every conformance test runs on (the native one joins when it is built). */
import type { Backend } from '../../src/backend/backend.js';
import { refBackend } from '../../src/backend/ref.js';

export function availableBackends(): Backend[] {
  return [refBackend];
}
