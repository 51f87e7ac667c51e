import type { Command } from 'commander';

// Placeholder until its issue lands; the command is not registered yet.
export function registerDetect(_program: Command): void {}
