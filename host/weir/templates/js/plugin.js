// The component's entry module (`weir plugin build` builds from here).
import * as host from 'weir:plugin/host@0.1.0';
import { @@EXPORT@@ } from './weir-plugin.js';
import { @@TYPE@@ } from './@@NAME@@.js';

export const { init, @@CALL@@ } = @@EXPORT@@(@@TYPE@@, host);
