import type { Command } from 'commander';

// Placeholder until its issue lands; the command is not registered yet.
export function registerEsSetup(_program: Command): void {}
