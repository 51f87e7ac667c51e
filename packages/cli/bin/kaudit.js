#!/usr/bin/env node
// The `kaudit` bin pnpm links at install time, before anything is built: a committed file, so a fresh
// `pnpm install` has a target to link (dist/bin.js only exists after `pnpm build`).
require('../dist/bin.js');
