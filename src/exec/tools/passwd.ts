import type { CommandRunner } from '../runner.js';

/** SHA-512 crypt hash of a password, via `openssl passwd -6` with the password on stdin (never in argv). */
export async function hashPassword(runner: CommandRunner, password: string): Promise<string> {
  const { stdout } = await runner.run(['openssl', 'passwd', '-6', '-stdin'], { input: `${password}\n` });
  return stdout.trim();
}
