export * from './audit-event';
export * from './decode';
export * from './decode-envelope';
export * from './envelope';
export * from './finding';
export * from './identity';
export * from './item-splitter';
export * from './json-error';
