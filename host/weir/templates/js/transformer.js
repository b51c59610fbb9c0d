// @@NAME@@: upper-cases one text column of every event's after image.
// Config: {"column": "name"}.
import { KEEP } from './weir-plugin.js';

export class @@TYPE@@ {
  constructor(config) {
    const unknown = Object.keys(config).filter((k) => k !== 'column');
    if (unknown.length) throw new Error(`invalid plugin config: unknown field(s) ${unknown.join(', ')}`);
    if (typeof config.column !== 'string' || !config.column) {
      throw new Error('invalid plugin config: `column` must name a column');
    }
    this.column = config.column;
  }

  transform(event) {
    const text = event.after?.get(this.column);
    if (typeof text === 'string') event.setAfter(this.column, text.toUpperCase());
    return KEEP;
  }
}
