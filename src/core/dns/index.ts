export * from './names.js';
export * from './records.js';
export * from './change-set.js';
export * from './dig-output.js';
export * from './key-file.js';
export * from './settings.js';
export * from './undo-zone.js';
