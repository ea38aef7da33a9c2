/** A bounded async FIFO: `push` waits while full, `shift` waits while empty. */
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private readonly takers: { resolve: (v: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  private readonly pushers: (() => void)[] = [];
  private closed = false;
  private failure: { error: unknown } | undefined;

  constructor(readonly capacity: number) {
    if (capacity < 1) throw new RangeError('capacity must be ≥ 1');
  }

  get length(): number {
    return this.items.length;
  }

  /** Resolves once the item is queued (immediately while there is room). Returns false if closed. */
  async push(item: T): Promise<boolean> {
    while (!this.closed && this.items.length >= this.capacity && this.takers.length === 0) {
      await new Promise<void>((r) => this.pushers.push(r));
    }
    if (this.closed) return false;
    const taker = this.takers.shift();
    if (taker) taker.resolve({ value: item, done: false });
    else this.items.push(item);
    return true;
  }

  /** Next item, or done once the queue is closed and drained; rejects after `fail`. */
  shift(): Promise<IteratorResult<T>> {
    const item = this.items.shift();
    if (item !== undefined || this.items.length > 0) {
      this.pushers.shift()?.();
      return Promise.resolve({ value: item as T, done: false });
    }
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.takers.push({ resolve, reject }));
  }

  /** No more items: pending and later `shift`s see done after the queued items. */
  close(): void {
    this.closed = true;
    for (const t of this.takers.splice(0)) t.resolve({ value: undefined, done: true });
    for (const p of this.pushers.splice(0)) p();
  }

  /** Producer failure: takers reject with `error`. Queued items are dropped. */
  fail(error: unknown): void {
    this.failure = { error };
    this.items.length = 0;
    for (const t of this.takers.splice(0)) t.reject(error);
    this.close();
  }
}
