// @@NAME@@: settles a conflict by a version column: the higher version
// wins, a tie keeps the local row, an incoming delete wins.
// Config: {"column": "version"}.
import { KEEP_LOCAL, TAKE_INCOMING } from './weir-plugin.js';

export class @@TYPE@@ {
  constructor(config) {
    const unknown = Object.keys(config).filter((k) => k !== 'column');
    if (unknown.length) throw new Error(`invalid plugin config: unknown field(s) ${unknown.join(', ')}`);
    if (typeof config.column !== 'string' || !config.column) {
      throw new Error('invalid plugin config: `column` must name a column');
    }
    this.column = config.column;
  }

  resolve(conflict) {
    const incoming = conflict.incoming.after;
    if (!incoming) return TAKE_INCOMING;
    const local = conflict.local.get(this.column);
    const theirs = incoming.get(this.column);
    if (typeof local !== 'bigint' || typeof theirs !== 'bigint') {
      throw new Error(`column \`${this.column}\` is not an integer in both versions`);
    }
    return theirs > local ? TAKE_INCOMING : KEEP_LOCAL;
  }
}
