// Bundle entry (IIFE): sets window.DFSignals in the page.
import { install } from './index.js';

if (typeof window !== 'undefined' && window.document) {
  install(window);
}
