/**
 * The page at / (public/) in a real browser: Debian's Chromium driven by playwright-core against
 * a real `wrangler dev` (the front Worker with its static assets, local R2 seeded with a test
 * model and the example policy). It uploads a photo through the file input, waits for the bars,
 * and holds what they show against the API's own answer for the same file; then a phone-width
 * screen, the keyboard, the live region, an API error, and a deployment with an API key.
 *
 * Screenshots go to test-results/ (page.png, page-phone.png); with UPDATE_DOCS_SCREENSHOT=1 the
 * desktop one is also written to docs/page.png, the README's.
 *
 * Without Chromium the tests are skipped, loudly; under CI (CI=true) a missing browser fails
 * (.ci/run installs Debian's chromium first).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WranglerDev } from '../../bench/workerd';
import { policyCommand } from '../../models/src/commands/policy';
import { uploadModel } from '../../models/src/upload';
import type { ModerateBody, PredictBody } from '../../src/answers/types';
import { ensureTestModel } from '../models';

const ROOT = resolve(import.meta.dirname, '../..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CI = process.env.CI === 'true';
const HAS_BROWSER = existsSync(CHROMIUM);
if (!HAS_BROWSER) {
  const line = '!'.repeat(100);
  console.warn(
    `\n${line}\n!! test/node/page.test.ts: no Chromium at ${CHROMIUM}: the page at / is NOT tested.\n` +
      `!! Install it (apt-get install -y --no-install-recommends chromium) or set CHROMIUM_PATH.` +
      `${CI ? '\n!! CI=true: this is a failure.' : ''}\n${line}\n`,
  );
}

const PHOTO = join(ROOT, 'test/fixtures/photos/chelsea.jpg');
const MODEL = 'resnet18v1';
const POLICY = join(ROOT, 'examples/policies/weapons.json');
const RESULTS = join(ROOT, 'test-results');
const API_KEY = 'page-test-key';

let persistTo: string;
let browser: Browser;

/*
 * The browser globals that the callbacks below use (page.evaluate runs them in the page): the
 * project compiles against the Workers' types, which have no DOM, and adding the DOM library
 * would clash with them. Module-scoped, so nothing leaks into other files.
 */
interface DomElement {
  id: string;
  tagName: string;
  outerHTML: string;
  textContent: string | null;
  nextElementSibling: DomElement | null;
  /** Form controls only. */
  labels?: { length: number } | null;
  closest(selector: string): DomElement | null;
  querySelector(selector: string): DomElement | null;
  getBoundingClientRect(): { width: number; right: number };
  getClientRects(): { length: number };
}
declare const document: {
  documentElement: { scrollWidth: number };
  body: { scrollWidth: number };
  activeElement: DomElement | null;
  querySelectorAll(selector: string): Iterable<DomElement>;
  dispatchEvent(event: unknown): boolean;
};
declare const window: { innerWidth: number };
declare const DataTransfer: new () => { items: { add(file: unknown): unknown } };
declare const ClipboardEvent: new (type: string, init: { clipboardData: unknown; bubbles: boolean }) => unknown;
declare const sessionStorage: { getItem(key: string): string | null };

/** One row of a bar list as the page shows it. */
interface Row {
  name: string;
  detail: string;
  /** The percentage as displayed ("41.0%"). */
  value: string;
  /** The bar's width, in percent of its track. */
  width: number;
}

async function rows(list: Locator): Promise<Row[]> {
  return list.locator(':scope > li').evaluateAll((items) =>
    (items as unknown as DomElement[]).map((li) => {
      const text = (selector: string) => li.querySelector(selector)?.textContent ?? '';
      const fill = li.querySelector('.bar-fill');
      const track = li.querySelector('.bar-track');
      return {
        name: text('.bar-name'),
        detail: text('.bar-detail'),
        value: text('.bar-value'),
        width: fill && track ? (fill.getBoundingClientRect().width / track.getBoundingClientRect().width) * 100 : NaN,
      };
    }),
  );
}

/** A displayed percentage agrees with a probability to the precision it is shown with. */
function expectPercent(shown: string, probability: number, what: string): void {
  const m = /^(\d+(?:\.(\d+))?)%$/.exec(shown);
  expect(m, `${what}: "${shown}" is not a percentage`).not.toBeNull();
  const decimals = m![2]?.length ?? 0;
  expect(Math.abs(Number(m![1]) - probability * 100), `${what}: ${shown} vs ${probability}`).toBeLessThanOrEqual(0.5 * 10 ** -decimals + 1e-9);
}

/** The API's own answers for the photo, asked for over plain HTTP. */
async function apiAnswers(base: string, headers: Record<string, string> = {}): Promise<{ predict: PredictBody; moderate: ModerateBody }> {
  const post = async (path: string) => {
    const form = new FormData();
    form.append('data', new Blob([await readFile(PHOTO)], { type: 'image/jpeg' }), 'chelsea.jpg');
    const res = await fetch(`${base}${path}`, { method: 'POST', body: form, headers });
    expect(res.status, `${path}: ${await res.clone().text()}`).toBe(200);
    return res.json();
  };
  return {
    predict: (await post(`/predict/${MODEL}?topk=5&concepts=dog,cat`)) as PredictBody,
    moderate: (await post('/moderate/weapons')) as ModerateBody,
  };
}

/**
 * What went wrong inside each page: uncaught errors, and console errors (a CSP refusal is one)
 * other than the browser's note on the API's deliberate 401s and 404s.
 */
const pageProblems = new WeakMap<Page, string[]>();
const EXPECTED_CONSOLE = /^Failed to load resource: the server responded with a status of (401|404)/;

function expectNoPageProblems(page: Page): void {
  expect(pageProblems.get(page)).toEqual([]);
}

/** Opens the page. */
async function openPage(context: BrowserContext, base: string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  const problems: string[] = [];
  pageProblems.set(page, problems);
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !EXPECTED_CONSOLE.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  const res = await page.goto(`${base}/`);
  expect(res?.status()).toBe(200);
  expect(res?.headers()['content-type']).toMatch(/^text\/html/);
  // public/_headers: the page may load and call nothing but its own origin.
  expect(res?.headers()['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
  return page;
}

/** Uploads the photo through the file input, as a person picking a file does, and waits for the answer. */
async function classifyPhoto(page: Page): Promise<void> {
  await page.getByLabel('Choose an image').setInputFiles(PHOTO);
  await page.getByRole('status').filter({ hasText: /top class/ }).waitFor();
}

// Under CI, a missing browser is one failed test (counted in .ci/run's summary), not a skip.
it.runIf(!HAS_BROWSER && CI)('has Chromium to test the page with (CI=true)', () => {
  throw new Error(`CI=true and no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium package`);
});

beforeAll(async () => {
  if (!HAS_BROWSER) return;
  persistTo = await mkdtemp(join(tmpdir(), 'edge-resnet-page-'));
  const model = await ensureTestModel(MODEL, 'int8');
  await uploadModel(model.dir, { target: 'local', persistTo });
  await policyCommand.run(['put', POLICY, '--local', '--persist-to', persistTo]);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  await mkdir(RESULTS, { recursive: true });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
});

describe.skipIf(!HAS_BROWSER)('the page at /, no API key', () => {
  let server: WranglerDev | undefined;
  let base: string;
  let api: { predict: PredictBody; moderate: ModerateBody };

  beforeAll(async () => {
    server = await WranglerDev.start(join(ROOT, 'wrangler.toml'), persistTo);
    base = server.base;
    api = await apiAnswers(base);
  }, 300_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('shows the top 5 as the API answers them, with the notice, size, timings, concepts and decision', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await openPage(context, base);
      const model = page.getByRole('combobox', { name: 'Model' });
      await model.locator(`option[value="${MODEL}"]`).waitFor({ state: 'attached' });
      expect(await model.inputValue()).toBe(MODEL);
      // No key here: the field stays out of the way.
      expect(await page.getByLabel('API key').isVisible()).toBe(false);
      await page.getByRole('combobox', { name: 'Moderation policy' }).selectOption('weapons');
      await classifyPhoto(page);

      const expected = api.predict.images[0]!;
      const top = await rows(page.getByRole('list', { name: 'Top 5' }));
      expect(top).toHaveLength(5);
      top.forEach((row, i) => {
        const p = expected.predictions[i]!;
        expect(row.name).toBe(p.label);
        expect(row.detail).toBe(p.synset);
        expectPercent(row.value, p.probability, `row ${i}`);
        expect(row.width).toBeCloseTo(p.probability * 100, 0);
      });

      const notice = page.locator('#notice');
      expect(await notice.isVisible()).toBe(true);
      expect(await notice.textContent()).toContain(api.predict.notice!);

      const facts = Object.fromEntries(
        await page.locator('#facts dt').evaluateAll((dts) => (dts as unknown as DomElement[]).map((dt) => [dt.textContent ?? '', dt.nextElementSibling?.textContent ?? ''])),
      ) as Record<string, string>;
      expect(facts['Upright size']).toBe(`${expected.width} × ${expected.height} px`);
      expect(facts['Model']).toBe(`${MODEL} (${api.predict.model.precision}, synthetic weights)`);
      expect(facts['Server time']).toMatch(/^[\d.]+ ms: model [\d.]+ ms, decode [\d.]+ ms, preprocess [\d.]+ ms, inference [\d.]+ ms, cache BYPASS$/);
      expect(facts['Round trip']).toMatch(/^[\d.]+ ms$/);

      const concepts = await rows(page.getByRole('list', { name: 'Concepts' }));
      expect(concepts.map((c) => c.name)).toEqual(expected.concepts!.map((c) => c.name));
      concepts.forEach((row, i) => {
        const c = expected.concepts![i]!;
        expect(row.detail).toBe(`${c.id}, ${c.classes} classes`);
        expectPercent(row.value, c.probability, c.name);
      });

      const decision = api.moderate.images[0]!.decision;
      expect(await page.locator('#decision').textContent()).toMatch(new RegExp(`^${decision.toUpperCase()} by policy "weapons" \\(model ${MODEL}, synthetic weights`));
      const triggered = await page.getByRole('list', { name: 'Moderation' }).getByRole('listitem').allTextContents();
      expect(triggered).toHaveLength(Math.max(1, api.moderate.images[0]!.triggered.length));

      // The live region says what came back, synthetic weights included.
      const status = await page.getByRole('status').textContent();
      expect(status).toContain(`top class ${expected.predictions[0]!.label}`);
      expect(status).toContain('Synthetic weights: not a real classification.');
      expect(status).toContain(`Moderation: ${decision}.`);

      const shot = join(RESULTS, 'page.png');
      await page.screenshot({ path: shot, fullPage: true });
      if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
        // The README's copy: a 256-colour palette keeps it small (the photo is most of the bytes).
        await mkdir(join(ROOT, 'docs'), { recursive: true });
        await sharp(shot).png({ palette: true, colours: 256, effort: 10 }).toFile(join(ROOT, 'docs/page.png'));
      }
      expect((await stat(shot)).size).toBeGreaterThan(10_000);
      // The headers file configures the assets; it is not one.
      expect((await fetch(`${base}/_headers`)).status).toBe(404);
      expectNoPageProblems(page);
    } finally {
      await context.close();
    }
  });

  it('fits a phone-width screen with no sideways scroll, and offers the camera there', async () => {
    const context = await browser.newContext({ viewport: { width: 360, height: 780 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    try {
      const page = await openPage(context, base);
      expect(await page.getByLabel('Take a photo').getAttribute('capture')).toBe('environment');
      expect(await page.locator('#camera-label').isVisible()).toBe(true);
      await page.getByRole('combobox', { name: 'Model' }).locator(`option[value="${MODEL}"]`).waitFor({ state: 'attached' });
      await page.getByRole('combobox', { name: 'Moderation policy' }).selectOption('weapons');
      await classifyPhoto(page);
      await page.locator('#decision').filter({ hasText: /by policy/ }).waitFor();
      expect(await rows(page.getByRole('list', { name: 'Top 5' }))).toHaveLength(5);
      const widths = await page.evaluate(() => ({
        viewport: window.innerWidth,
        document: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
      }));
      expect(widths.viewport).toBe(360);
      expect(widths.document, JSON.stringify(widths)).toBeLessThanOrEqual(widths.viewport);
      expect(widths.body, JSON.stringify(widths)).toBeLessThanOrEqual(widths.viewport);
      // Nothing inside pokes out either (an overflow hidden by a parent would not scroll the page).
      const wide = await page.evaluate(() =>
        [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5 && e.getClientRects().length > 0).map((e) => e.outerHTML.slice(0, 80)),
      );
      expect(wide).toEqual([]);
      await page.screenshot({ path: join(RESULTS, 'page-phone.png'), fullPage: true });
      expectNoPageProblems(page);
    } finally {
      await context.close();
    }
  });

  it('takes an image dropped on the drop zone, or pasted anywhere on the page', async () => {
    const context = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    try {
      const page = await openPage(context, base);
      await page.getByRole('combobox', { name: 'Model' }).locator(`option[value="${MODEL}"]`).waitFor({ state: 'attached' });
      const bytes = [...(await readFile(PHOTO))];
      // The files a drag from the desktop or a copied image would carry, made in the page.
      const carrying = (name: string) =>
        page.evaluateHandle(
          ([data, file]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(data)], file, { type: 'image/jpeg' }));
            return transfer;
          },
          [bytes, name] as const,
        );
      const live = page.getByRole('status');
      const caption = page.locator('#preview-caption');

      await page.locator('#drop').dispatchEvent('drop', { dataTransfer: await carrying('dropped.jpg') });
      await live.filter({ hasText: /top class/ }).waitFor();
      expect(await caption.textContent()).toMatch(/^dropped\.jpg, /);
      expect(await rows(page.getByRole('list', { name: 'Top 5' }))).toHaveLength(5);

      // A new image puts "Classifying…" in the live region at once, so the wait below is for the new answer.
      const clipboard = await carrying('pasted.jpg');
      await page.evaluate((data) => document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true })), clipboard);
      await live.filter({ hasText: /top class/ }).waitFor();
      expect(await caption.textContent()).toMatch(/^pasted\.jpg, /);
      expectNoPageProblems(page);
    } finally {
      await context.close();
    }
  });

  it('labels every control, is driven by the keyboard, and reads answers and errors out in a live region', async () => {
    const context = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    try {
      const page = await openPage(context, base);
      await page.getByRole('combobox', { name: 'Model' }).locator(`option[value="${MODEL}"]`).waitFor({ state: 'attached' });

      // Every visible control has an accessible name from a <label> (or its own text, for buttons).
      const unlabelled = await page.locator('input, select, textarea, button').evaluateAll((controls) =>
        (controls as unknown as DomElement[])
          .filter((c) => !c.closest('[hidden]'))
          .filter((c) => (c.tagName === 'BUTTON' ? !c.textContent?.trim() : !(c.labels?.length ?? 0)))
          .map((c) => c.outerHTML.slice(0, 80)),
      );
      expect(unlabelled).toEqual([]);
      const live = page.getByRole('status');
      expect(await live.count()).toBe(1);

      // Tab order: the skip link, the file picker, then the options and the button.
      const order: string[] = [];
      for (let i = 0; i < 6; i++) {
        await page.keyboard.press('Tab');
        order.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim() || ''));
      }
      expect(order).toEqual(['Skip to results', 'file', 'model', 'concepts', 'policy', 'submit']);
      // The API reference is linked from the foot of the page, after the form in tab order.
      expect(await page.locator('footer a[href="/docs"]').count()).toBe(1);

      // Classify with no image: told so, in the live region.
      await page.keyboard.press('Enter');
      await live.filter({ hasText: 'Pick an image first' }).waitFor();

      await page.getByLabel('Choose an image').setInputFiles(PHOTO);
      await live.filter({ hasText: /top class/ }).waitFor();
      // A concept the API does not know: its 404 message reaches the page and the live region.
      const concepts = page.getByRole('textbox', { name: 'Concepts' });
      await concepts.focus();
      await concepts.fill('nudity');
      await page.keyboard.press('Enter');
      await live.filter({ hasText: /^Error: .*nudity/ }).waitFor();
      expect(await page.locator('#error').textContent()).toMatch(/nudity.*\(HTTP 404\)$/);
      expect(await page.locator('#answer').isVisible()).toBe(false);
      // Enter in the field runs it again with what was typed.
      await concepts.fill('dog');
      await page.keyboard.press('Enter');
      await live.filter({ hasText: /top class/ }).waitFor();
      const scored = await rows(page.getByRole('list', { name: 'Concepts' }));
      expect(scored.map((c) => c.detail)).toEqual(['n02084071, 118 classes']);
      expect(await page.locator('#error').isVisible()).toBe(false);
      expectNoPageProblems(page);
    } finally {
      await context.close();
    }
  });
});

describe.skipIf(!HAS_BROWSER)('the page at /, a deployment with an API key', () => {
  let server: WranglerDev | undefined;
  let base: string;

  beforeAll(async () => {
    server = await WranglerDev.start(join(ROOT, 'wrangler.toml'), persistTo, 180_000, { vars: { API_KEY } });
    base = server.base;
  }, 300_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('asks for the key after a 401, keeps it in sessionStorage for the tab, and sends it', async () => {
    const context = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    try {
      // The page itself is a static asset: served without the key.
      const page = await openPage(context, base);
      const key = page.getByLabel('API key');
      await key.waitFor({ state: 'visible' });
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('api-key');
      expect(await page.getByRole('status').textContent()).toMatch(/needs an API key/);

      await key.fill('wrong');
      await page.keyboard.press('Enter');
      await page.getByRole('status').filter({ hasText: /key was refused/ }).waitFor();

      await key.fill(API_KEY);
      await page.keyboard.press('Enter');
      await page.getByRole('combobox', { name: 'Model' }).locator(`option[value="${MODEL}"]`).waitFor({ state: 'attached' });
      expect(await page.evaluate(() => sessionStorage.getItem('edge-resnet.api-key'))).toBe(API_KEY);
      await classifyPhoto(page);
      const api = await apiAnswers(base, { Authorization: `Bearer ${API_KEY}` });
      const top = await rows(page.getByRole('list', { name: 'Top 5' }));
      expect(top.map((r) => r.detail)).toEqual(api.predict.images[0]!.predictions.map((p) => p.synset));

      // A reload in the same tab keeps the key: no 401, the lists load at once.
      await page.reload();
      await page.getByRole('combobox', { name: 'Model' }).locator(`option[value="${MODEL}"]`).waitFor({ state: 'attached' });
      expect(await key.inputValue()).toBe(API_KEY);
      expect(await page.locator('#error').isVisible()).toBe(false);
      expectNoPageProblems(page);
    } finally {
      await context.close();
    }
  });
});
