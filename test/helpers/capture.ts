import { Writable } from 'node:stream';

/** A writable stream that keeps what is written (a CLI's stdout/stderr in tests). */
export class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}
