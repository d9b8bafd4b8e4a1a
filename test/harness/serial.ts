/**
 * A tiny expect-style client for a guest's serial console exposed by libvirt as a UNIX socket: log in and
 * run commands inside the guest without SSH or networking.
 */
import { constants, openSync } from 'node:fs';
import { createConnection } from 'node:net';
import { ReadStream, WriteStream } from 'node:tty';

interface Channel {
  on(event: 'data', fn: (d: string | Buffer) => void): unknown;
  write(text: string): unknown;
  destroy(): unknown;
}

export class SerialConsole {
  private buf = '';
  private constructor(
    private readonly input: Channel,
    private readonly output: Channel,
  ) {
    input.on('data', (d) => {
      this.buf += d.toString();
    });
  }

  /** A serial exposed as a UNIX socket (libvirt `<serial type='unix'>`). */
  static async connect(path: string): Promise<SerialConsole> {
    const sock = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return new SerialConsole(sock, sock);
  }

  /**
   * A serial exposed as a pty (`<serial type='pty'>`, what `virsh console` uses). The slave side must be raw:
   * with the default line discipline it would echo the guest's output back to the guest.
   */
  static openPty(path: string): SerialConsole {
    const input = new ReadStream(openSync(path, constants.O_RDWR | constants.O_NOCTTY));
    input.setRawMode(true);
    const output = new WriteStream(openSync(path, constants.O_RDWR | constants.O_NOCTTY));
    return new SerialConsole(input, output);
  }

  send(text: string): void {
    this.output.write(text);
  }

  /** Waits until `re` matches the output received since the last successful wait; returns that output. */
  async waitFor(re: RegExp, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        const upto = this.buf.slice(0, m.index + m[0].length);
        this.buf = this.buf.slice(m.index + m[0].length);
        return upto;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} on the serial console; got: ${JSON.stringify(this.buf.slice(-500))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async login(user: string, password: string): Promise<void> {
    // Poke the getty until it (re)prints its prompt: our connection may have missed the first one.
    let seen = '';
    // Generous waits: under TCG on a loaded 2-core host (load 20 in CI-like runs) a login took over a minute.
    for (let i = 0; i < 30; i++) {
      this.send('\r');
      try {
        seen = await this.waitFor(/(login: |# )$/m, 5_000);
        break;
      } catch (e) {
        if (i === 29) throw e;
      }
    }
    if (/# $/.test(seen)) return; // a shell from an earlier session is still open
    this.send(`${user}\r`);
    await this.waitFor(/Password: ?$/m, 120_000);
    this.send(`${password}\r`);
    await this.waitFor(/# $/m, 240_000);
  }

  /** Runs a shell command in the logged-in guest and returns its output (between unique markers). */
  async run(command: string, timeoutMs = 180_000): Promise<string> {
    const tag = `VMF${Math.random().toString(36).slice(2, 8)}`;
    this.send(`echo ${tag}-START; ${command}; echo ${tag}-END\r`);
    const end = `\n${tag}-END`;
    const out = (await this.waitFor(new RegExp(`\\n${tag}-END`), timeoutMs)).replace(/\r/g, '');
    const start = out.lastIndexOf(`${tag}-START`);
    return out.slice(start + tag.length + 6, out.length - end.length).trim();
  }

  close(): void {
    this.input.destroy();
    if (this.output !== this.input) this.output.destroy();
  }
}
