export * from './access';
export * from './client';
export * from './dead-letter';
export * from './kafkajs-warnings';
export * from './lag';
export * from './offset-tracker';
export * from './read-to-end';
export * from './security';
