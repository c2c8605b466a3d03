/**
 * File names as bytes. On Linux a name is any bytes but "/" and NUL; Node decodes names as UTF-8 by default,
 * turning each invalid byte into U+FFFD, and such a name no longer opens the file (and two names can become one).
 * So folders are listed with Buffer names and files opened by their bytes; the name shown is `displayName`.
 *
 * Not here: what the files hold (imagefolder.ts), listing folders (dataset.ts) and archives (archive.ts).
 * Reference: the Unicode Standard 15, 3.9 table 3-7 (well-formed UTF-8 byte sequences).
 */

const FATAL = new TextDecoder('utf-8', { fatal: true });

/** The length of the well-formed UTF-8 sequence that starts at b[i], or 0 when b[i] starts none. */
function sequenceLength(b: Uint8Array, i: number): number {
  for (let n = 1; n <= 4 && i + n <= b.length; n++) {
    try {
      FATAL.decode(b.subarray(i, i + n));
      return n;
    } catch {
      // a longer sequence may still be well-formed
    }
  }
  return 0;
}

export function isValidUtf8(b: Uint8Array): boolean {
  try {
    FATAL.decode(b);
    return true;
  } catch {
    return false;
  }
}

/**
 * A name's text: itself when it is valid UTF-8, otherwise its valid parts with each invalid byte written
 * `\xNN` (like Python's repr of bytes), so that names differing only in such bytes stay different.
 */
export function displayName(b: Uint8Array): string {
  if (isValidUtf8(b)) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  let out = '';
  for (let i = 0; i < b.length; ) {
    const n = sequenceLength(b, i);
    if (n === 0) {
      out += `\\x${b[i].toString(16).toUpperCase().padStart(2, '0')}`;
      i++;
    } else {
      out += FATAL.decode(b.subarray(i, i + n));
      i += n;
    }
  }
  return out;
}

/** The note for a listing with `count` such names, so that a user knows why a name looks escaped. */
export function invalidNamesNote(where: string, count: number): string {
  return `${where}: ${count} names are not valid UTF-8; they are read as they are and shown with \\xNN for each invalid byte`;
}
