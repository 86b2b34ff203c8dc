// The daemon's process supervisor with real child processes: restarts with backoff after
// unrequested exits (exit code and signal reported), signals by pid, stops with SIGTERM then
// SIGKILL, a failing start hook counts as a failed start, and a supervised process does not
// outlive a SIGKILLed supervisor.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type ProcessExit, ProcessSupervisor } from '@klb/backend-keepalived-nginx';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from './daemon-fixtures.js';

const test = suite('process supervisor');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('restarts a process that exits on its own and reports each exit code', async () => {
  const exits: ProcessExit[] = [];
  const starts: number[] = [];
  const supervisor = new ProcessSupervisor({
    name: 'quitter',
    bin: process.execPath,
    args: ['-e', 'setTimeout(() => process.exit(3), 50)'],
    backoff: { baseMs: 20, maxMs: 100 },
    onExit: (exit) => exits.push(exit),
    onStart: (pid) => starts.push(pid),
  });
  await supervisor.start();
  await waitFor('three exits', async () => (exits.length >= 3 ? true : undefined));
  await supervisor.stop();
  assert.ok(exits.slice(0, 3).every((e) => e.code === 3 && e.signal === null && !e.requested));
  assert.ok(supervisor.restarts >= 2);
  assert.ok(new Set(starts).size >= 3, 'a new process each time');
  assert.is(supervisor.supervising, false);
});

test('signals the running process by pid, reports a kill, and stops it for good', async () => {
  const exits: ProcessExit[] = [];
  const lines: string[] = [];
  const supervisor = new ProcessSupervisor({
    name: 'sleeper',
    bin: process.execPath,
    args: ['-e', "process.on('SIGHUP', () => console.log('reload')); console.log('up'); setInterval(() => {}, 1000)"],
    backoff: { baseMs: 20, maxMs: 100 },
    onExit: (exit) => exits.push(exit),
    onOutput: (line) => lines.push(line),
  });
  await supervisor.start();
  await waitFor('the process to be up', async () => (lines.includes('up') ? true : undefined));
  const first = supervisor.pid as number;
  assert.ok(supervisor.signal('SIGHUP'));
  await waitFor('the reload line', async () => (lines.includes('reload') ? true : undefined));
  process.kill(first, 'SIGKILL');
  await waitFor('a restart', async () => {
    const pid = supervisor.pid;
    return pid !== undefined && pid !== first ? pid : undefined;
  });
  assert.is(exits[0]?.signal, 'SIGKILL');
  assert.is(exits[0]?.code, null);
  const second = supervisor.pid as number;
  await supervisor.stop();
  assert.not.ok(alive(second), 'stopped by pid');
  assert.is(supervisor.lastExit?.requested, true);
  assert.is(supervisor.pid, undefined);
  assert.not.ok(supervisor.signal('SIGHUP'), 'nothing to signal once stopped');
  await new Promise((r) => setTimeout(r, 200));
  assert.is(supervisor.pid, undefined, 'not restarted after stop');
});

test('SIGKILLs a process that ignores SIGTERM after the grace period', async () => {
  const lines: string[] = [];
  const supervisor = new ProcessSupervisor({
    name: 'stubborn',
    bin: process.execPath,
    args: ['-e', "process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)"],
    stopGraceMs: 200,
    onOutput: (line) => lines.push(line),
  });
  await supervisor.start();
  await waitFor('the process to be up', async () => (lines.includes('up') ? true : undefined));
  const pid = supervisor.pid as number;
  await supervisor.stop();
  assert.not.ok(alive(pid));
  assert.is(supervisor.lastExit?.signal, 'SIGKILL');
});

test('a missing binary or a failing start hook is retried with backoff, never thrown', async () => {
  let hookCalls = 0;
  const missing = new ProcessSupervisor({
    name: 'missing',
    bin: '/nonexistent/klb-binary',
    args: [],
    backoff: { baseMs: 10, maxMs: 20 },
  });
  await missing.start();
  await waitFor('retries of the missing binary', async () => (missing.restarts >= 2 ? true : undefined));
  assert.is(missing.lastExit?.code, -1);
  await missing.stop();
  const hooked = new ProcessSupervisor({
    name: 'hooked',
    bin: process.execPath,
    args: ['-e', 'setInterval(() => {}, 1000)'],
    backoff: { baseMs: 10, maxMs: 20 },
    beforeStart: async () => {
      hookCalls++;
      if (hookCalls < 3) throw new Error('not yet');
    },
  });
  await hooked.start();
  await waitFor('the start after the hook succeeded', async () => hooked.pid);
  assert.is(hookCalls, 3);
  await hooked.stop();
});

/** Whether `pid` runs (a zombie, ended but not yet reaped by whoever adopted it, does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('a supervised process ends when its supervisor is SIGKILLed (setpriv --pdeathsig)', async () => {
  // A supervisor in a process of its own, as the daemon is, that prints its child's pid.
  const script = `
    import { ProcessSupervisor } from '@klb/backend-keepalived-nginx';
    const s = new ProcessSupervisor({ name: 'child', bin: 'sleep', args: ['300'], onStart: (pid) => console.log(pid) });
    await s.start();
    setInterval(() => {}, 1000);`;
  const daemon = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  daemon.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const child = await waitFor('the supervised pid', async () =>
    /^\d+\n/.test(out) ? Number.parseInt(out, 10) : undefined,
  );
  assert.ok(running(child));
  daemon.kill('SIGKILL');
  await waitFor('the supervised process to end', async () => (running(child) ? undefined : true));
});

test.run();
