// @@NAME@@: routes every event to `<prefix>.<table>`.
// Config: {"prefix": "lake"}.

export class @@TYPE@@ {
  constructor(config) {
    const unknown = Object.keys(config).filter((k) => k !== 'prefix');
    if (unknown.length) throw new Error(`invalid plugin config: unknown field(s) ${unknown.join(', ')}`);
    if (typeof config.prefix !== 'string' || !config.prefix) {
      throw new Error('invalid plugin config: `prefix` must not be empty');
    }
    this.prefix = config.prefix;
  }

  // The destinations of one event; an empty array drops it.
  route(event) {
    return [`${this.prefix}.${event.table}`];
  }
}
