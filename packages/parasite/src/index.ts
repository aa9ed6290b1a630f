// The parasite as compel's sequence: freeze (seize every thread) → infect (withInfection runs
// the blob in the task and always cures) → collect (what only the task can tell) and move
// pages → resume or kill. The remote-call and register internals stay inside the package.
export { freezeProcess, resumeProcess, withInfection, collectInfected, collectTaskState, type TaskState, type ThreadState, type CollectOptions } from './parasite.js';
export { listThreads, reapKilled, readMemory, SECCOMP_MODE, type SeccompFilter, type StoppedThread } from './ptrace.js';
export { restartableRegs, type GpRegs } from './regs.js';
export type { CodeArea, Infection } from './remote.js';
export { holdPages, pagesNotHeld, openPageTransfer, type HeldPages, type PageRun } from './pages.js';
export { spawnDetached } from './helpers.js';
export { setNativeBinding } from './load-native.js';
export { takeTaskUserfaultfd } from './uffd.js';
