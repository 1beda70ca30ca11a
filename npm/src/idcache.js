// Bounded memory of the signal ids already dispatched.
//
// The server sends one copy of a message per matching topic (a window in both
// WINDOW and BROADCAST gets it twice, same signal_id). Upstream kept every id
// forever; we keep the last `capacity` ids (least recently seen evicted first).

export class BoundedIdSet {
  /** @param {number} capacity maximum number of remembered ids (>= 1) */
  constructor(capacity = 1000) {
    this.capacity = Math.max(1, Math.floor(Number(capacity) || 1000));
    this._ids = new Map();
  }

  get size() {
    return this._ids.size;
  }

  has(id) {
    return this._ids.has(id);
  }

  /**
   * Remember `id`. Returns false when it was already known (its recency is
   * refreshed), true when it is new.
   */
  add(id) {
    if (this._ids.has(id)) {
      this._ids.delete(id);
      this._ids.set(id, true);
      return false;
    }
    this._ids.set(id, true);
    while (this._ids.size > this.capacity) {
      this._ids.delete(this._ids.keys().next().value);
    }
    return true;
  }
}
