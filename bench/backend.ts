/**
 * Which of our backends a bench child runs on: `ref` (pure TypeScript, the specification), `native` (the
 * C++ addon; an error if it is not built) or `auto` (native when it loaded, else ref, as the library's
 * selectBackend does). The chosen backend's thread/ISA settings go into the bench output.
 */
import type { Backend } from '../src/backend/backend.js';
import { nativeBackend, nativeInfo } from '../src/backend/native.js';
import { refBackend } from '../src/backend/ref.js';
import { UserError } from '../src/errors.js';

export type BackendChoice = 'auto' | 'ref' | 'native';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'ref', 'native'];

export interface ChosenBackend {
  backend: Backend;
  /** thread settings and kernel set of this backend, as reported in the bench output */
  threads: Record<string, unknown>;
  /** why `auto` fell back to the reference backend, if it did */
  note?: string;
}

export function chooseBackend(choice: BackendChoice): ChosenBackend {
  const ref: ChosenBackend = { backend: refBackend, threads: { threads: 1, kind: 'pure TypeScript, single-threaded' } };
  if (choice === 'ref') return ref;
  const info = nativeInfo();
  if (nativeBackend) return { backend: nativeBackend, threads: { ...info } };
  if (choice === 'native') throw new UserError(`--backend native: the native backend is unavailable: ${info.reason}`, 2);
  return { ...ref, note: `native backend unavailable (${info.reason}); using ref` };
}
