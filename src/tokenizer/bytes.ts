/**
 * GPT-2's reversible map between bytes and printable unicode characters.
 *
 * Byte-level BPE works on bytes, but vocab files store tokens as strings. GPT-2 maps every byte to a
 * printable character so that tokens contain no whitespace or control characters: the 188 bytes that
 * are already printable Latin-1 (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) map to themselves, and the other 68
 * (control characters, space, DEL, NBSP, soft hyphen) map to U+0100.. in byte order. So a space is
 * `Ġ` (U+0120) and a newline is `Ċ` (U+010A).
 */

function buildByteToUnicode(): string[] {
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out = new Array<string>(256);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    out[b] = printable(b) ? String.fromCharCode(b) : String.fromCharCode(256 + next++);
  }
  return out;
}

/** `BYTE_TO_UNICODE[b]` is the one-character string that stands for byte `b` (0..255) in a vocab. */
export const BYTE_TO_UNICODE: readonly string[] = Object.freeze(buildByteToUnicode());

/** Inverse of `BYTE_TO_UNICODE`: character → byte. Characters outside the 256-entry map are absent. */
export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

const utf8Encoder = new TextEncoder();

/** UTF-8 encodes `text` (lone surrogates become U+FFFD, as in every UTF-8 encoder) and maps each byte to its symbol. */
export function textToByteSymbols(text: string): string {
  const bytes = utf8Encoder.encode(text);
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_UNICODE[bytes[i]!]!;
  return s;
}

/**
 * The bytes a vocab token stands for, following Hugging Face's ByteLevel decoder: if every character
 * of `token` is a byte symbol, those bytes; otherwise (e.g. an added token such as `hello world`,
 * whose space is not a byte symbol) the token's own UTF-8 bytes.
 */
export function tokenToBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (const ch of token) {
    const b = UNICODE_TO_BYTE.get(ch);
    if (b === undefined) return utf8Encoder.encode(token);
    out[n++] = b;
  }
  return out.subarray(0, n);
}
