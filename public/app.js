// @ts-check
/**
 * The page at /: pick, drop, paste or photograph an image, and it is classified at once;
 * the options (model, concepts, policy) apply to the next run, or to this image again with
 * "Classify". The page has no state on the server: the API key, when the deployment has one,
 * is asked for after a 401 and kept in sessionStorage for this tab.
 */
import { ApiError, listModels, listPolicies, moderate, predict, storedKey, storeKey } from './api.js';
import { renderAnswer, renderModels, renderPolicies } from './render.js';

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
function byId(id, type) {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`page is missing #${id}`);
  return node;
}

const ui = {
  form: byId('form', HTMLFormElement),
  drop: byId('drop', HTMLElement),
  file: byId('file', HTMLInputElement),
  camera: byId('camera', HTMLInputElement),
  cameraLabel: byId('camera-label', HTMLElement),
  preview: byId('preview', HTMLElement),
  previewImg: byId('preview-img', HTMLImageElement),
  previewCaption: byId('preview-caption', HTMLElement),
  model: byId('model', HTMLSelectElement),
  concepts: byId('concepts', HTMLInputElement),
  policy: byId('policy', HTMLSelectElement),
  keyField: byId('key-field', HTMLElement),
  key: byId('api-key', HTMLInputElement),
  results: byId('results', HTMLElement),
  status: byId('status', HTMLElement),
  error: byId('error', HTMLElement),
  answer: byId('answer', HTMLElement),
};

/** @type {Blob | undefined} */
let image;
/** @type {string | undefined} */
let previewUrl;
/** Each run's number: an answer that arrives after a newer run started is dropped. */
let runs = 0;

// A camera button only where it means one (phones, tablets); elsewhere it would be a second file picker.
ui.cameraLabel.hidden = !matchMedia('(pointer: coarse)').matches;

ui.key.value = storedKey();
if (ui.key.value) ui.keyField.hidden = false;

/**
 * @param {string} message
 * @param {'key' | 'other'} [kind] a key error is cleared by the lists loading with a new key
 */
function showError(message, kind = 'other') {
  ui.error.textContent = message;
  ui.error.dataset['kind'] = kind;
  ui.error.hidden = false;
  ui.status.textContent = `Error: ${message}`;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

/** After a 401: the key field, focused, with the API's message. */
function askForKey() {
  ui.keyField.hidden = false;
  showError(ui.key.value ? 'The API key was refused: check it and press Enter.' : 'This deployment needs an API key: enter it and press Enter.', 'key');
  ui.key.focus();
}

/** @param {unknown} err */
function fail(err) {
  if (err instanceof ApiError && err.status === 401) return askForKey();
  const message = err instanceof ApiError ? `${err.message}${err.status ? ` (HTTP ${err.status})` : ''}` : String(err);
  showError(message);
}

/** The model and policy lists; a deployment with a key answers 401 until it is given. */
async function loadLists() {
  try {
    const [models, policies] = await Promise.all([listModels(ui.key.value), listPolicies(ui.key.value)]);
    renderModels(ui.model, models);
    renderPolicies(ui.policy, policies);
    if (ui.error.dataset['kind'] === 'key') {
      clearError();
      ui.status.textContent = image ? 'Key accepted: press Classify.' : 'Key accepted: pick an image to classify it.';
    }
  } catch (err) {
    fail(err);
  }
}

/** @param {Blob} chosen @param {string} name */
function setImage(chosen, name) {
  image = chosen;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(chosen);
  ui.previewImg.src = previewUrl;
  ui.previewImg.alt = `The image to classify: ${name}`;
  ui.previewCaption.textContent = `${name}, ${(chosen.size / 1024).toFixed(0)} KB`;
  ui.preview.hidden = false;
  void classify();
}

function concepts() {
  return ui.concepts.value
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
}

async function classify() {
  if (!image) {
    showError('Pick an image first.');
    ui.file.focus();
    return;
  }
  const run = ++runs;
  const key = ui.key.value;
  clearError();
  ui.results.setAttribute('aria-busy', 'true');
  ui.status.textContent = 'Classifying…';
  try {
    const predicted = await predict(image, { model: ui.model.value, concepts: concepts(), key });
    // One request at a time: the isolate runs one inference at a time anyway, and with the
    // deployment's default model the moderation's classification is a cache hit.
    const moderation = ui.policy.value ? await moderate(image, { policy: ui.policy.value, key }) : undefined;
    if (run !== runs) return;
    ui.status.textContent = renderAnswer({ predict: predicted, ...(moderation ? { moderation } : {}) });
    revealResults();
  } catch (err) {
    if (run !== runs) return;
    ui.answer.hidden = true;
    fail(err);
  } finally {
    if (run === runs) ui.results.setAttribute('aria-busy', 'false');
  }
}

/**
 * On a phone the results are below the options, out of sight: brought up once they arrive.
 * Focus stays where it was (the live region has already said what came back).
 */
function revealResults() {
  if (ui.results.getBoundingClientRect().top < window.innerHeight * 0.8) return;
  const smooth = !matchMedia('(prefers-reduced-motion: reduce)').matches;
  ui.results.scrollIntoView({ block: 'start', behavior: smooth ? 'smooth' : 'auto' });
}

for (const input of [ui.file, ui.camera]) {
  input.addEventListener('change', () => {
    const chosen = input.files?.[0];
    if (chosen) setImage(chosen, chosen.name);
  });
}

ui.drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  ui.drop.classList.add('dragging');
});
ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('dragging'));
ui.drop.addEventListener('drop', (event) => {
  event.preventDefault();
  ui.drop.classList.remove('dragging');
  const dropped = event.dataTransfer?.files[0];
  if (dropped) setImage(dropped, dropped.name);
});

// Anywhere on the page. Only an image file is taken: pasted text (a key, concepts) goes into its field.
document.addEventListener('paste', (event) => {
  const pasted = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
  if (!pasted) return;
  event.preventDefault();
  setImage(pasted, pasted.name || 'pasted image');
});

/** The key the lists were last loaded with. */
let listedWith = ui.key.value;

/** A new key is remembered for this tab, and the lists that its absence stopped are loaded. */
function applyKey() {
  ui.key.value = ui.key.value.trim();
  if (ui.key.value === listedWith) return;
  listedWith = ui.key.value;
  storeKey(ui.key.value);
  void loadLists();
}

// Enter in the key field changes it first, then submits: the run below already carries the key.
ui.key.addEventListener('change', applyKey);
ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  applyKey();
  // Enter in the key field before any image: the key was the point, not a run.
  if (!image && document.activeElement === ui.key) return;
  void classify();
});

void loadLists();
