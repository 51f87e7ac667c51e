export * from './config';
export * from './errors';
export * from './kafka';
export * from './logger';
export * from './metrics';
export * from './ops';
export * from './retry';
export * from './shutdown';
