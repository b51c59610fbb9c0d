// The component's entry module: `weir plugin build` points componentize-js
// here. The rules live in pii-mask.js, which runs natively in tests too.
import * as host from 'weir:plugin/host@0.1.0';
import { exportTransformer } from './weir-plugin.js';
import { PiiMask } from './pii-mask.js';

export const { init, transform } = exportTransformer(PiiMask, host);
