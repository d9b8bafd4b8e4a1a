/** Whether a process exists (EPERM means it does, owned by someone else): used to tell stale locks and journals. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
