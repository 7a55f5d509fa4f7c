import type { Reporter, TestCase, TestModule } from 'vitest/node';

/**
 * Names what is running when a run stops moving. vitest prints a file only when it ends, and a
 * workerd isolate that spins blocks vitest's own timeouts, so a hung run says nothing of where it
 * hung. This reporter logs each file as it starts, and when no test has started or ended for
 * `VITEST_WATCHDOG_S` seconds (default 300), it lists the tests still running; with
 * `VITEST_WATCHDOG_EXIT=1` it then ends the run with WATCHDOG_EXIT_CODE rather than let CI time
 * out (.ci/run tells that code from failed tests).
 */
export const WATCHDOG_EXIT_CODE = 75; // EX_TEMPFAIL
export default class WatchdogReporter implements Reporter {
  private readonly running = new Map<string, { name: string; since: number }>();
  private last = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly quietMs = Number(process.env.VITEST_WATCHDOG_S ?? 300) * 1000;

  onInit(): void {
    this.timer = setInterval(() => this.check(), 10_000);
    this.timer.unref();
  }

  onTestModuleStart(module: TestModule): void {
    this.log(`start ${module.project.name} ${module.moduleId.replace(`${process.cwd()}/`, '')}`);
    this.last = Date.now();
  }

  onTestCaseReady(test: TestCase): void {
    this.running.set(test.id, { name: `${test.module.moduleId.split('/test/').pop()} > ${test.fullName}`, since: Date.now() });
    this.last = Date.now();
  }

  onTestCaseResult(test: TestCase): void {
    this.running.delete(test.id);
    this.last = Date.now();
  }

  onTestRunEnd(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    const quiet = Date.now() - this.last;
    if (quiet < this.quietMs) return;
    const lines = [...this.running.values()].map((t) => `  ${t.name} (running ${Math.round((Date.now() - t.since) / 1000)} s)`);
    this.log(`no test has moved for ${Math.round(quiet / 1000)} s; running:\n${lines.join('\n') || '  (none: a file is loading)'}`);
    this.last = Date.now();
    if (process.env.VITEST_WATCHDOG_EXIT === '1') {
      this.log(`ending the run with code ${WATCHDOG_EXIT_CODE} (VITEST_WATCHDOG_EXIT=1)`);
      process.exit(WATCHDOG_EXIT_CODE);
    }
  }

  private log(line: string): void {
    process.stderr.write(`[watchdog ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  }
}
